"""Report reads: seeds a month (200 users, 50 projects over 10 clients in 4 currencies, 20,000
stopped entries, a few running timers), then times /api/summary for every groupBy and /api/team
over HTTP to a uvicorn subprocess, and checks the totals against a brute-force sum.

    python -m bench.summary [--entries 20000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis

from app.models import parse_time_entry
from app.projection import minor_of_exact
from app.store import TotalsStore
from bench.common import (
    REDIS_URL,
    TIMEZONE,
    WS,
    Entry,
    ServerProcess,
    Team,
    entry_body,
    flush_bench_db,
    make_entry,
    make_team,
    percentile,
    print_table,
    row,
)

MONTH_START, MONTH_END = "2024-03-01", "2024-03-31"
FIRST_DAY = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2024, 3, 28, 15, 0, tzinfo=UTC)  # the server's fixed clock
STOPPED_DAYS = 27  # stopped entries start 03-01 .. 03-27; the running timers on 03-28
GROUPS = ("PROJECT", "USER", "CLIENT", "TAG", "DATE")
TARGET_MS = 20.0


def make_running(rng: random.Random, team: Team, count: int) -> list[Entry]:
    out = []
    for i in range(count):
        entry = make_entry(rng, team, f"ee{i:022x}", NOW, 1)
        start = NOW - timedelta(minutes=rng.randrange(5, 6 * 60))
        out.append(
            Entry(
                entry.id,
                entry.user,
                entry.project,
                entry.tags,
                start,
                0,
                entry.billable,
                entry.description,
            )
        )
    return out


async def seed(stopped: list[Entry], running: list[Entry], concurrency: int = 64) -> float:
    """Applies every entry through TotalsStore.apply_entry, as a webhook would; returns s."""
    redis = Redis.from_url(REDIS_URL)
    store = TotalsStore(redis, ZoneInfo(TIMEZONE), clock=lambda: NOW)
    gate = asyncio.Semaphore(concurrency)

    async def apply(entry: Entry, is_running: bool) -> None:
        parsed = parse_time_entry(entry_body(entry, running=is_running))
        async with gate:
            result = await store.apply_entry(parsed, "create")
        if not result.changed:
            raise RuntimeError(f"seeding {entry.id} gave {result.outcome}")

    started = time.perf_counter()
    try:
        await asyncio.gather(
            *(apply(e, False) for e in stopped), *(apply(e, True) for e in running)
        )
    finally:
        await redis.aclose()
    return time.perf_counter() - started


def expected_projects(stopped: list[Entry], running: list[Entry]) -> dict[str | None, Any]:
    """Brute force: per project id, [seconds, billable seconds, {currency: seconds x rate}]."""
    out: dict[str | None, Any] = defaultdict(lambda: [0, 0, defaultdict(int)])
    for entry, seconds in [(e, e.duration_s) for e in stopped] + [
        (e, int((NOW - e.start).total_seconds())) for e in running
    ]:
        bucket = out[entry.project.id if entry.project else None]
        bucket[0] += seconds
        if entry.billable:
            bucket[1] += seconds
            if entry.rate_minor and entry.currency:
                bucket[2][entry.currency] += seconds * entry.rate_minor
    return out


def check_project_summary(answer: dict[str, Any], expected: dict[str | None, Any]) -> list[str]:
    problems = []
    seen = set()
    for group in answer["groups"]:
        seen.add(group["id"])
        want = expected.get(group["id"])
        amounts = {a["currency"]: round(a["amount"] * 100) for a in group["amounts"]}
        got = (group["totalSeconds"], group["billableSeconds"], amounts)
        # A group's amount is its exact sum rounded once, as Clockify's reports round it.
        minor = {c: minor_of_exact(v) for c, v in want[2].items()} if want else {}
        if want is None or got != (want[0], want[1], {c: v for c, v in minor.items() if v}):
            problems.append(f"project {group['id']}: got {got}, expected {want}")
    problems += [f"project {p} missing" for p in expected.keys() - seen]
    total = sum(b[0] for b in expected.values())
    if answer["totalSeconds"] != total:
        problems.append(f"totalSeconds {answer['totalSeconds']} != brute force {total}")
    return problems


def time_http(client: httpx.Client, path: str, params: dict[str, str], n: int) -> list[float]:
    for _ in range(min(10, n)):  # warm caches and the connection
        client.get(path, params=params).raise_for_status()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        out.append(time.perf_counter() - t0)
        response.raise_for_status()
    return out


async def time_direct(n: int) -> dict[str, list[float]]:
    """The same reads called in-process on TotalsStore: what is store work and what is HTTP."""
    redis = Redis.from_url(REDIS_URL)
    store = TotalsStore(redis, ZoneInfo(TIMEZONE), clock=lambda: NOW)
    start, end = datetime(2024, 3, 1).date(), datetime(2024, 3, 31).date()
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        g: (lambda g=g: store.read_summary(WS, start, end, g)) for g in GROUPS
    }
    calls["TEAM"] = lambda: store.read_team(WS, start, end)
    out: dict[str, list[float]] = {}
    try:
        for name, call in calls.items():
            await call()
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                await call()
                samples.append(time.perf_counter() - t0)
            out[name] = samples
    finally:
        await redis.aclose()
    return out


def measure(entries: int, requests: int, verbose: bool = False) -> list[dict[str, Any]]:
    flush_bench_db()
    rng = random.Random(20240328)
    team = make_team(rng, users=200, projects=50, clients=10, tags=12)
    stopped = [make_entry(rng, team, f"{i:024x}", FIRST_DAY, STOPPED_DAYS) for i in range(entries)]
    running = make_running(rng, team, 6)
    seed_s = asyncio.run(seed(stopped, running))
    if verbose:
        print(
            f"seeded {len(stopped)} stopped entries + {len(running)} running timers in "
            f"{seed_s:.1f} s ({len(stopped) / seed_s:,.0f} applies/s)"
        )
    month = {"start": MONTH_START, "end": MONTH_END}
    timings: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    with (
        ServerProcess("clockwall", "--now", NOW.isoformat()) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        timings["healthz"] = time_http(client, "/healthz", {}, requests)
        for group in GROUPS:
            params = {**month, "groupBy": group}
            timings[group] = time_http(client, "/api/summary", params, requests)
            sizes[group] = len(client.get("/api/summary", params=params).content)
        timings["TEAM"] = time_http(client, "/api/team", month, requests)
        sizes["TEAM"] = len(client.get("/api/team", params=month).content)
        answer = client.get("/api/summary", params={**month, "groupBy": "PROJECT"}).json()
    direct = asyncio.run(time_direct(max(20, requests // 4)))
    problems = check_project_summary(answer, expected_projects(stopped, running))

    def ms(samples: list[float], q: float) -> float:
        return percentile(samples, q) * 1000

    if verbose:
        print(f"\n{requests} sequential requests each, fixed clock {NOW.isoformat()}")
        head = ("query", "HTTP p50 ms", "HTTP p99 ms", "store p50 ms", "store p99 ms", "bytes")
        print("  ".join(f"{h:>13s}" for h in head))
        for name in ("healthz", *GROUPS, "TEAM"):
            store_cells = ("-", "-")
            if name in direct:
                store_cells = (f"{ms(direct[name], 50):.2f}", f"{ms(direct[name], 99):.2f}")
            cells = (
                name,
                f"{ms(timings[name], 50):.2f}",
                f"{ms(timings[name], 99):.2f}",
                *store_cells,
                str(sizes.get(name, "-")),
            )
            print("  ".join(f"{c:>13s}" for c in cells))
        verdict = "OK" if not problems else "MISMATCH"
        print(
            f"\nbrute-force cross-check of groupBy=PROJECT (seconds, billable seconds, amounts "
            f"per currency, incl. running at the fixed clock): {verdict}"
        )
        for problem in problems[:5]:
            print(f"  {problem}")
        print()
    rows = []
    base50, base99 = ms(timings["healthz"], 50), ms(timings["healthz"], 99)
    for name in (*GROUPS, "TEAM"):
        label = "/api/team month" if name == "TEAM" else f"/api/summary month groupBy={name}"
        rows.append(row(f"{label} p50", ms(timings[name], 50), base50, f"< {TARGET_MS:.0f}", "ms"))
        rows.append(row(f"{label} p99", ms(timings[name], 99), base99, f"< {TARGET_MS:.0f}", "ms"))
    rows.append(
        row(
            "summary brute-force cross-check",
            "OK" if not problems else "MISMATCH",
            None,
            "OK",
            f"{len(stopped)} entries",
        )
    )
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return measure(4000, 50) if quick else measure(20_000, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200, help="per query, sequential")
    args = parser.parse_args()
    print_table(measure(args.entries, args.requests, verbose=True))


if __name__ == "__main__":
    main()
