"""Poller cost: Clockify API requests per poll cycle and per simulated hour, for workspaces of
10, 100 and 1,000 users on the Free plan (30 requests per rolling hour) and on a paid plan.

The fake Clockify (app/sim/) serves on a loopback port; one fake clock drives it, the
request budget, the store and the poller, so simulated hours take a second or two. Redis at
127.0.0.1:6379 (`CLOCKWALL_BENCH_REDIS`), database 13, flushed before each workspace.

    python -m bench.poll [--quick]

Per workspace: a start-up run_once (plan, names, timers, changes, week backfill), a quiet hour
(nothing changes: the steady cost), then active hours (a teammate starts or stops a timer,
logs or deletes an entry every 2 to 8 minutes). Paid plans poll every 5 s, so their runs are
ten minutes each (five with --quick), scaled to an hour; Free runs are whole hours.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis

from app.budget import RequestBudget
from app.metrics import Metrics
from app.poller import Poller
from app.sim import ManualClock, SimulatedWorkspace
from app.sim.server import client_for as sim_client
from app.sim.server import run_simulator
from app.store import TotalsStore
from bench.common import REDIS_URL, print_table, row

HOUR_S = 3600.0
SIZES = (10, 100, 1000)
PLANS = (("FREE", 30), ("PRO_2021", 36_000))
CYCLE_ENDPOINTS = ("in_progress", "entities_created", "entities_updated", "entities_deleted")


def rolling_hour_max(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    most, low = 0, 0
    for high, at_s in enumerate(stamps):
        while stamps[low] <= at_s - HOUR_S:
            low += 1
        most = max(most, high - low + 1)
    return most


def act(sim: SimulatedWorkspace, rng: random.Random) -> None:
    user = rng.choice(list(sim.users.values()))
    projects = list(sim.projects.values())
    roll = rng.random()
    running = sim.running_entries()
    if roll < 0.45 or not running:
        sim.start_timer(user, rng.choice(projects), "Focus")
    elif roll < 0.8:
        sim.stop_timer(rng.choice(running).user_id)
    elif roll < 0.95:
        end = sim.now() - timedelta(minutes=rng.randint(5, 60))
        sim.add_manual_entry(user, end - timedelta(minutes=rng.randint(10, 90)), end)
    else:
        stopped = [e.id for e in sim.entries.values() if e.end is not None]
        sim.delete_entry(rng.choice(stopped))


async def measure(
    users: int, plan: str, budget_per_hour: int, quiet_hours: float, active_hours: float
) -> dict[str, Any]:
    clock = ManualClock()
    sim = SimulatedWorkspace(plan=plan, clock=clock, rng=random.Random(1))
    sim.seed_demo_team(users, rng=random.Random(2), days=1)
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    store = TotalsStore(redis, ZoneInfo("UTC"), clock=now)
    budget = RequestBudget(redis, sim.id, budget_per_hour, clock=clock)
    try:
        async with run_simulator(sim) as url, httpx.AsyncClient() as http:
            client = sim_client(sim, http, url, budget, sleep)
            poller = Poller(
                sim.id,
                client,
                store,
                redis,
                Metrics(),
                mode="poll",
                budget=budget,
                clock=now,
                sleep=sleep,
            )
            wait_s = await poller.run_once()
            startup = len(sim.requests)
            await poller.sleep(wait_s)

            # A quiet spell: nothing changes in the workspace.
            quiet_from = len(sim.requests)
            cycle_max = 0
            end_s = clock() + quiet_hours * HOUR_S
            while clock() < end_s:
                before = len(sim.requests)
                wait_s = await poller.run_once()
                cycle = [r for r in sim.requests[before:] if r.endpoint in CYCLE_ENDPOINTS]
                cycle_max = max(cycle_max, len(cycle))
                await poller.sleep(min(wait_s, max(0.0, end_s - clock())) or 0.5)
            quiet = len(sim.requests) - quiet_from

            # Active hours: the team works.
            rng = random.Random(11)
            active_from = len(sim.requests)
            end_s = clock() + active_hours * HOUR_S
            next_act_s = clock() + rng.uniform(120, 480)
            while clock() < end_s:
                if clock() >= next_act_s:
                    act(sim, rng)
                    next_act_s = clock() + rng.uniform(120, 480)
                wait_s = await poller.run_once()
                await poller.sleep(max(0.0, min(clock() + wait_s, next_act_s, end_s) - clock()))
            active = len(sim.requests) - active_from
            await client.aclose()
    finally:
        await redis.flushdb()
        await redis.aclose()
    return {
        "startup": startup,
        "cycle_max": cycle_max,
        "quiet_per_hour": quiet / quiet_hours,
        "active_per_hour": active / active_hours,
        "rolling_max": rolling_hour_max([r.at_s for r in sim.requests]),
        "limited": sim.count(status=429),
        "running_s": poller.schedule.running_s,
        "last_error": poller.state.last_error,
    }


async def measure_all(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for plan, per_hour in PLANS:
        label = "Free" if plan == "FREE" else "paid"
        # Paid plans poll every 5 s: a sixth of an hour each shows the rate (scaled to an hour).
        quiet, active = (1.0, 1.0 if quick else 2.0) if plan == "FREE" else (1 / 6, 1 / 6)
        if quick and plan != "FREE":
            quiet = active = 1 / 12
        base_cycle: int | None = None
        for users in SIZES:
            m = await measure(users, plan, per_hour, quiet, active)
            base_cycle = base_cycle or m["cycle_max"]
            prefix = f"{label}, {users:>4} users:"
            rows.append(
                row(
                    f"{prefix} requests per poll cycle, nothing changed",
                    m["cycle_max"],
                    base_cycle,
                    "<= 4, flat in users",
                    "requests",
                )
            )
            rows.append(row(f"{prefix} start-up requests", m["startup"], unit="requests"))
            rows.append(
                row(
                    f"{prefix} requests per quiet hour",
                    round(m["quiet_per_hour"], 1),
                    per_hour,
                    unit="req/h",
                )
            )
            rows.append(
                row(
                    f"{prefix} requests per active hour",
                    round(m["active_per_hour"], 1),
                    per_hour,
                    unit="req/h",
                )
            )
            rows.append(
                row(
                    f"{prefix} most requests in any rolling hour (of the run)",
                    m["rolling_max"],
                    per_hour,
                    f"<= {per_hour}",
                    "requests",
                )
            )
            rows.append(row(f"{prefix} 429 answers", m["limited"], target="0"))
            rows.append(row(f"{prefix} timer poll interval", round(m["running_s"], 1), unit="s"))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(measure_all(quick))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter simulated hours")
    print_table(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
