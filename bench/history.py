"""History import cost: Clockify API requests to import a year of a 20-person team (about 37,000
entries) on a paid plan and on Free, against the fake Clockify (app/sim/, in-process through
httpx.ASGITransport) on one fake clock, so simulated hours take seconds.

    python -m bench.history [--quick]

Paid: `clockwall import`'s loop; the floor is one request per 1,000 rows. Free: the service's
poller loop with the import in its turn (only the budget's spare), measured from start-up until
the import is done: its requests, the simulated hours it took, the most requests in any rolling
hour of the run (the budget is 30) and the longest gap between two running-timer polls beside
the schedule's interval. Redis at `CLOCKWALL_BENCH_REDIS`, database 13, flushed before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis

from app import keys
from app.budget import RequestBudget
from app.importer import HistoryImport, ImportJob
from app.metrics import Metrics
from app.poller import Poller
from app.projection import Basis
from app.rebuild import ensure_projection
from app.sim import ManualClock, SimulatedWorkspace, create_simulator_app
from app.sim.server import client_for as sim_client
from app.store import TotalsStore
from bench.common import REDIS_URL, TIMEZONE, print_table, row

HOUR_S = 3600.0
ZONE = ZoneInfo(TIMEZONE)
USERS = 20
PER_USER_DAY = 5  # 20 people x 5 entries x 370 days: 37,000 entries
DAYS = 370
API = "http://clockify.bench"


def seed(sim: SimulatedWorkspace, clock: ManualClock, users: int, rng: random.Random) -> int:
    """`PER_USER_DAY` entries a day for each of `users` over `DAYS` days, made long ago (so the
    change polls do not list them as new). Returns how many."""
    team = [sim.add_user(f"Person {i:02d}", time_zone=TIMEZONE) for i in range(users)]
    projects = [
        sim.add_project(
            f"Project {i}", sim.add_client(f"Client {i}", "EUR"), hourly_rate_minor=5000 + 500 * i
        )
        for i in range(8)
    ]
    now_s = clock()
    clock.advance(-2 * DAYS * 86400)
    today = datetime.fromtimestamp(now_s, ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    count = 0
    for back in range(1, DAYS + 1):
        midnight = today - timedelta(days=back)
        for user in team:
            for k in range(PER_USER_DAY):
                start = midnight + timedelta(hours=8, minutes=k * 95 + rng.randint(0, 30))
                length = timedelta(minutes=rng.randint(15, 85), seconds=rng.randint(0, 59))
                sim.add_manual_entry(
                    user, start, start + length, rng.choice(projects), notify=False
                )
                count += 1
    clock.now_s = now_s
    return count


def rolling_hour_max(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    most, low = 0, 0
    for high, at_s in enumerate(stamps):
        while stamps[low] <= at_s - HOUR_S:
            low += 1
        most = max(most, high - low + 1)
    return most


def gaps(stamps: list[float]) -> Iterator[float]:
    return (b - a for a, b in itertools.pairwise(stamps))


async def measure(plan: str, users: int) -> dict[str, Any]:
    clock = ManualClock()
    sim = SimulatedWorkspace(plan=plan, clock=clock, rng=random.Random(1))
    entries = seed(sim, clock, users, random.Random(2))
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    async def latency(request: httpx.Request) -> None:
        clock.advance(0.05)  # each request takes a little time, as over a network

    store = TotalsStore(redis, ZONE, clock=now)
    await ensure_projection(store, sim.id, Basis(ZONE, None))
    budget = RequestBudget(redis, sim.id, 30, clock=clock)
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    try:
        async with httpx.AsyncClient(transport=transport, event_hooks={"request": [latency]}) as h:
            client = sim_client(sim, h, API, budget, sleep)
            poller = Poller(
                sim.id, client, store, redis, Metrics(), mode="poll", budget=budget, clock=now
            )
            today = store.today()
            since = today - timedelta(days=365)
            rows = sum(
                1 for e in sim.entries.values() if since <= e.start.astimezone(ZONE).date() <= today
            )
            started_s = clock()
            if plan == "FREE":
                job = await run_service(poller, clock, since, today)
            else:
                job = await run_foreground(poller, since, today)
            took_s = clock() - started_s
    finally:
        await redis.flushdb()
        await redis.aclose()
    imports = [r for r in sim.requests if r.endpoint == "detailed_report"]
    timers = [r.at_s for r in sim.requests if r.endpoint == "in_progress"]
    return {
        "entries": entries,
        "rows": rows,
        "requests": len(sim.requests),
        "report_requests": len(imports),
        "job": job,
        "hours": took_s / HOUR_S,
        "rolling_max": rolling_hour_max([r.at_s for r in sim.requests]),
        "limited": sim.count(status=429),
        "timer_gap_s": max(gaps(timers), default=0.0),
        "running_s": poller.schedule.running_s,
    }


async def run_foreground(poller: Poller, since: date, today: date) -> ImportJob:
    """`clockwall import`: discovery, then pages as long as the budget allows."""
    history = HistoryImport(poller.ws, poller.redis, clock=poller.clock)
    await poller.discover()
    await history.request(since, today)
    while True:
        job = await history.step(poller)
        assert job is not None
        if job.state in ("done", "failed"):
            return job
        assert history.stopped_for == "pages", history.stopped_for


async def run_service(poller: Poller, clock: ManualClock, since: date, today: date) -> ImportJob:
    """The service: the poller's loop from start-up, the import in its turn."""
    history = HistoryImport(poller.ws, poller.redis, clock=poller.clock)
    poller.history = history
    asked = False
    for _ in range(100_000):
        wait_s = await poller.run_once()
        if not asked and poller.state.backfilled:
            asked = await history.request(since, today) is not None
        job = ImportJob.from_json(await poller.redis.hget(keys.coverage(poller.ws), "import"))
        if job is not None and job.state in ("done", "failed"):
            return job
        clock.advance(wait_s)
    raise RuntimeError("the import did not finish")


async def measure_all(quick: bool) -> list[dict[str, Any]]:
    users = 5 if quick else USERS
    rows: list[dict[str, Any]] = []
    for plan in ("PRO_2021", "FREE"):
        label = "paid" if plan != "FREE" else "Free"
        m = await measure(plan, users)
        job: ImportJob = m["job"]
        prefix = f"{label}, a year of {users} people ({m['rows']:,} entries):"
        floor = math.ceil(m["rows"] / 1000)
        if job.state != "done":
            rows.append(row(f"{prefix} import {job.state}", job.error or job.message))
            continue
        target = "<= 45" if plan != "FREE" and users == USERS else ""
        rows.append(row(f"{prefix} import requests", job.requests, floor, target, "requests"))
        if plan != "FREE":
            rows.append(row(f"{prefix} all requests (with discovery)", m["requests"], floor))
            rows.append(row(f"{prefix} 429 answers", m["limited"], target="0"))
            continue
        rows.append(row(f"{prefix} simulated hours to finish", round(m["hours"], 1), unit="h"))
        rows.append(
            row(
                f"{prefix} most requests in any rolling hour",
                m["rolling_max"],
                30,
                "<= 30",
                "requests",
            )
        )
        rows.append(
            row(
                f"{prefix} longest gap between running-timer polls",
                round(m["timer_gap_s"], 1),
                round(m["running_s"], 1),
                "= the schedule's interval",
                "s",
            )
        )
        rows.append(row(f"{prefix} 429 answers", m["limited"], target="0"))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(measure_all(quick))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 people instead of 20")
    print_table(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
