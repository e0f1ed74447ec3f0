"""pytest fixtures for the fake Clockify served on a loopback port (app/simulator_server.py):

from tests.simulator_server import sim, sim_clock, sim_url  # fixtures: noqa F401

async def test_x(sim: SimulatedWorkspace, sim_url: str) -> None:
    api_url, reports_url = f"{sim_url}/api/v1", f"{sim_url}/reports/v1"
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from app.simulator import ManualClock, SimulatedWorkspace
from app.simulator_server import run_simulator


@pytest.fixture
def sim_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(sim_clock: ManualClock) -> SimulatedWorkspace:
    """A paid workspace with a seeded team (seeded rng: same ids every run)."""
    workspace = SimulatedWorkspace(plan="PRO_2021", clock=sim_clock, rng=random.Random(1))
    workspace.seed_demo_team(rng=random.Random(2))
    return workspace


@pytest.fixture
async def sim_url(sim: SimulatedWorkspace) -> AsyncIterator[str]:
    async with run_simulator(sim) as url:
        yield url
