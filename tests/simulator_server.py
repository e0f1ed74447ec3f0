"""The fake Clockify for tests: in this event loop through httpx.ASGITransport (no port), or on
a loopback port (app/sim/server.py) where a real socket is needed: a timeout (ASGITransport
enforces none), the app's own HTTP client, a thread or another process.

from tests.simulator_server import sim, sim_clock, sim_http  # fixtures: noqa F401

async def test_x(sim: SimulatedWorkspace, sim_http: httpx.AsyncClient) -> None:
    user = await sim_http.get("/user", headers={"X-Api-Key": sim.api_key})  # SIM_API_URL/user
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.sim import ManualClock, SimulatedWorkspace, create_simulator_app
from app.sim.server import run_simulator

SIM_URL = "http://clockify.test"  # never resolved: the ASGI transport answers every request
SIM_API_URL = f"{SIM_URL}/api/v1"
SIM_REPORTS_URL = f"{SIM_URL}/reports/v1"


def open_sim_http(sim: SimulatedWorkspace, **options: Any) -> httpx.AsyncClient:
    """An httpx client (use it `async with`) whose every request `sim` answers in this event
    loop; relative URLs go to its REST API (SIM_API_URL), absolute ones to any host, so give a
    ClockifyClient `api_url=SIM_API_URL, reports_url=SIM_REPORTS_URL, http=this`. `options`
    are httpx.AsyncClient's (headers, event_hooks)."""
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    return httpx.AsyncClient(transport=transport, base_url=SIM_API_URL, **options)


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
async def sim_http(sim: SimulatedWorkspace) -> AsyncIterator[httpx.AsyncClient]:
    """`open_sim_http(sim)`: the fake Clockify in this event loop, no port."""
    async with open_sim_http(sim) as http:
        yield http


@pytest.fixture
async def sim_url(sim: SimulatedWorkspace) -> AsyncIterator[str]:
    """`sim` on a loopback port: API at f"{sim_url}/api/v1", Reports at f"{sim_url}/reports/v1"."""
    async with run_simulator(sim) as url:
        yield url
