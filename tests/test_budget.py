"""RequestBudget on a real Redis (dbs.BUDGET): a hard cap per rolling hour, shared by every
instance ("process"), never exceeded, and the ClockifyClient never outruns it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app import keys
from app.budget import PAID_PLAN_PER_HOUR, RequestBudget, budget_for_plan
from app.clockify import BudgetExhaustedError, ClockifyClient
from app.config import Secret
from app.sim import ManualClock, SimulatedWorkspace
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.simulator_server import SIM_API_URL, open_sim_http

WS = "5f0e1a2b3c4d5e6f7a8b9c0d"
HOUR_S = 3600.0


@pytest.fixture
async def redis15() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(dbs.BUDGET)) as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_budget_for_plan() -> None:
    assert budget_for_plan("FREE", None) == 30
    assert budget_for_plan("", None) == 30  # unknown plan: the safe guess
    assert budget_for_plan("PRO_2021", None) == PAID_PLAN_PER_HOUR == 36_000
    assert PAID_PLAN_PER_HOUR / HOUR_S < 50  # well under Clockify's 50 requests/second
    assert budget_for_plan("FREE", 12) == 12  # configured wins
    assert budget_for_plan("ENTERPRISE", 100) == 100


def test_key_carries_the_workspace_hash_tag() -> None:
    assert keys.budget(WS) == f"cw:{{{WS}}}:budget"


async def test_acquire_up_to_the_limit_then_refuse(redis15: Redis, clock: ManualClock) -> None:
    budget = RequestBudget(redis15, WS, 3, clock=clock)
    assert await budget.remaining() == 3
    assert await budget.next_free_at() == clock()
    granted = []
    for _ in range(5):
        granted.append(await budget.acquire())
        clock.advance(10)
    assert granted == [True, True, True, False, False]
    assert await budget.remaining() == 0
    start = clock() - 50
    assert await budget.next_free_at() == start + HOUR_S  # when the first grant leaves
    clock.now_s = start + HOUR_S
    assert await budget.remaining() == 1
    assert await budget.acquire() is True
    assert await budget.acquire() is False


async def test_never_exceeded_in_any_rolling_hour(redis15: Redis, clock: ManualClock) -> None:
    limit = 30
    budget = RequestBudget(redis15, WS, limit, clock=clock)
    rng = random.Random(11)
    granted_at: list[float] = []
    start = clock()
    while clock() < start + 3 * HOUR_S:  # three simulated hours of eager callers
        if await budget.acquire():
            granted_at.append(clock())
        clock.advance(rng.uniform(0, 90))
    for t in granted_at:
        in_window = [g for g in granted_at if t - HOUR_S < g <= t]
        assert len(in_window) <= limit
    # Eager callers use the whole budget each hour, not less.
    assert len(granted_at) >= 3 * limit - 1


async def test_shared_between_two_processes(redis15: Redis, clock: ManualClock) -> None:
    other = Redis.from_url(redis_url(dbs.BUDGET))  # a second connection, as another process has
    try:
        first = RequestBudget(redis15, WS, 10, clock=clock)
        second = RequestBudget(other, WS, 10, clock=clock)
        results = []
        for index in range(16):
            results.append(await (first if index % 2 else second).acquire())
            clock.advance(1)
        assert results.count(True) == 10
        assert await first.remaining() == await second.remaining() == 0
        # A restarted process sees the same count.
        restarted = RequestBudget(other, WS, 10, clock=clock)
        assert await restarted.acquire() is False
    finally:
        await other.aclose()


async def test_concurrent_acquires_are_atomic(redis15: Redis, clock: ManualClock) -> None:
    connections = [Redis.from_url(redis_url(dbs.BUDGET)) for _ in range(4)]
    try:
        budgets = [RequestBudget(c, WS, 25, clock=clock) for c in connections]
        results = await asyncio.gather(*(budgets[i % 4].acquire() for i in range(100)))
        assert results.count(True) == 25
        assert await redis15.zcard(keys.budget(WS)) == 25
    finally:
        for connection in connections:
            await connection.aclose()


async def test_workspaces_have_separate_budgets(redis15: Redis, clock: ManualClock) -> None:
    one = RequestBudget(redis15, WS, 1, clock=clock)
    two = RequestBudget(redis15, "6a0e1a2b3c4d5e6f7a8b9c0e", 1, clock=clock)
    assert await one.acquire() and await two.acquire()
    assert not await one.acquire()


async def test_redis_server_clock_by_default(redis15: Redis) -> None:
    budget = RequestBudget(redis15, WS, 2)
    assert await budget.acquire() and await budget.acquire()
    assert not await budget.acquire()
    assert await budget.remaining() == 0
    seconds, _ = await redis15.time()
    assert seconds + HOUR_S - 5 <= await budget.next_free_at() <= seconds + HOUR_S + 5
    assert 0 < await redis15.pttl(keys.budget(WS)) <= HOUR_S * 1000


async def test_client_never_trips_the_free_plan_limit(redis15: Redis) -> None:
    """30/hour on Free: the budget stops the client before Clockify would answer 429."""
    clock = ManualClock()
    sim = SimulatedWorkspace(plan="FREE", clock=clock, rng=random.Random(4))
    sim.seed_demo_team(rng=random.Random(5))
    budget = RequestBudget(redis15, sim.id, budget_for_plan("FREE", None), clock=clock)
    async with open_sim_http(sim) as http:
        client = ClockifyClient(Secret(sim.api_key), budget=budget, api_url=SIM_API_URL, http=http)
        async with client:
            calls = 0
            with pytest.raises(BudgetExhaustedError):
                while True:
                    await client.list_in_progress(sim.id)
                    calls += 1
                    clock.advance(60)
            assert calls == 30
            assert sim.count(status=429) == 0 and sim.count() == 30
            # An hour after the first call, one slot is free again.
            clock.now_s = sim.requests[0].at_s + HOUR_S
            assert await client.get_workspace(sim.id)
            with pytest.raises(BudgetExhaustedError):
                await client.get_workspace(sim.id)
    assert sim.count(status=429) == 0
