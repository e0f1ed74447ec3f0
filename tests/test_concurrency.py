"""Many deliveries about the same entries at once, over a real Redis: whatever the interleaving,
the totals are what the ordering rules make order-independent, and every applied change is one
change event (no double counting, no lost update)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app import keys
from tests.conftest import WS, FixedClock
from tests.payloads import (
    BEN,
    MOBILE,
    entry_2024,
    post_webhook,
    rate,
    running_timer,
)

E1 = "65f0c0c0c0c0c0c0c0c0c0e1"
WEEK = {"start": "2026-03-23", "end": "2026-03-29"}
START = "2026-03-24T08:00:00Z"
STOP = "2026-03-24T09:30:00Z"  # 1h30m at 105.00 EUR/h = 157.50 EUR
APPLIED = {"started", "stopped", "created", "updated", "deleted", "restored"}


async def deliver_all(
    client: httpx.AsyncClient, deliveries: list[tuple[str, dict[str, Any]]], seed: int
) -> list[str]:
    shuffled = list(deliveries)
    random.Random(seed).shuffle(shuffled)
    responses = await asyncio.gather(
        *(post_webhook(client, event, body) for event, body in shuffled)
    )
    for response in responses:
        assert response.status_code == 200, response.text
    return [str(r.json()["outcome"]) for r in responses]


async def totals(client: httpx.AsyncClient) -> dict[str, Any]:
    summary = (await client.get("/api/summary", params={"groupBy": "USER", **WEEK})).json()
    entries = (await client.get("/api/entries", params=WEEK)).json()["entries"]
    running = (await client.get("/api/running")).json()["running"]
    team = (await client.get("/api/team", params=WEEK)).json()
    return {
        "seconds": summary["totalSeconds"],
        "amounts": summary["amounts"],
        "running": [t["id"] for t in running],
        "entries": [(e["id"], e["durationSeconds"], e["running"]) for e in entries],
        "team": team["totalSeconds"],
        "includesRunning": summary["includesRunning"],
    }


def start_stop(n: int) -> list[tuple[str, dict[str, Any]]]:
    start = running_timer(E1, START, hourly_rate=rate(10500))
    stop = entry_2024(E1, START, STOP, hourly_rate=rate(10500))
    # Clockify may also send TIME_ENTRY_UPDATED with the stopped body: the same state.
    return [("NEW_TIMER_STARTED", start), ("TIMER_STOPPED", stop), ("TIME_ENTRY_UPDATED", stop)] * n


@pytest.mark.parametrize("seed", range(4))
async def test_start_stop_storm_ends_stopped(
    client: httpx.AsyncClient, redis: Redis, seed: int
) -> None:
    outcomes = await deliver_all(client, start_stop(17), seed)  # 51 deliveries
    applied = [o for o in outcomes if o in APPLIED]
    # Either the start won the race (started, then stopped) or the stop did (created, and
    # every start after it is stale); never a second application of the same state.
    assert sorted(applied) in (["started", "stopped"], ["created"])
    assert await redis.xlen(keys.changes(WS)) == len(applied)
    assert await totals(client) == {
        "seconds": 5400,
        "amounts": [{"currency": "EUR", "amount": 157.5}],
        "running": [],
        "entries": [(E1, 5400, False)],
        "team": 5400,
        "includesRunning": False,
    }


@pytest.mark.parametrize("seed", range(4))
async def test_storm_with_a_delete_ends_deleted(
    client: httpx.AsyncClient, redis: Redis, seed: int
) -> None:
    deliveries = start_stop(12)
    stop = deliveries[1][1]
    deliveries += [("TIME_ENTRY_DELETED", stop)] * 6 + [
        ("TIME_ENTRY_DELETED", {"id": E1, "workspaceId": WS})
    ] * 6  # 36 + 12 deliveries
    outcomes = await deliver_all(client, deliveries, seed)
    assert outcomes.count("deleted") == 1
    assert await redis.xlen(keys.changes(WS)) == sum(o in APPLIED for o in outcomes)
    assert await totals(client) == {
        "seconds": 0,
        "amounts": [],
        "running": [],
        "entries": [],
        "team": 0,
        "includesRunning": False,
    }
    for group in ("PROJECT", "CLIENT", "TAG", "DATE"):
        summary = await client.get("/api/summary", params={"groupBy": group, **WEEK})
        # The Date grouping lists every day of the range, each empty here.
        assert [g for g in summary.json()["groups"] if g["totalSeconds"]] == []


@pytest.mark.parametrize("seed", range(3))
async def test_conflicting_edits_leave_exactly_one_state(
    client: httpx.AsyncClient, redis: Redis, seed: int
) -> None:
    """Two different stopped states with no ordering information: either may win, but the
    totals are exactly those of the state the store kept, never a mix or a double count."""
    short = entry_2024(E1, START, "2026-03-24T09:00:00Z", hourly_rate=rate(10500))  # 105.00
    long = entry_2024(E1, START, "2026-03-24T10:00:00Z", hourly_rate=rate(9000, "USD"))  # 180
    deliveries = [("TIME_ENTRY_UPDATED", short), ("TIME_ENTRY_UPDATED", long)] * 25
    outcomes = await deliver_all(client, deliveries, seed)
    assert await redis.xlen(keys.changes(WS)) == sum(o in APPLIED for o in outcomes)
    got = await totals(client)
    assert got in (
        {
            "seconds": 3600,
            "amounts": [{"currency": "EUR", "amount": 105.0}],
            "running": [],
            "entries": [(E1, 3600, False)],
            "team": 3600,
            "includesRunning": False,
        },
        {
            "seconds": 7200,
            "amounts": [{"currency": "USD", "amount": 180.0}],
            "running": [],
            "entries": [(E1, 7200, False)],
            "team": 7200,
            "includesRunning": False,
        },
    )


async def test_many_entries_at_once_sum_exactly(
    client: httpx.AsyncClient, redis: Redis, clock: FixedClock
) -> None:
    # 35 entries of 1h at 10.01 EUR/h (10.01 each) plus their duplicates, and 10 running
    # timers started 11:00 (1 h elapsed at the clock's 12:00), all at once: 90 requests, under
    # the Redis client's pool of 100 connections (beyond it redis-py fails fast, so a larger
    # burst in one process would answer 503 to some deliveries).
    bodies: list[tuple[str, dict[str, Any]]] = []
    for n in range(35):
        entry_id = f"65f0d0d0d0d0d0d0d0d0{n:04d}"
        body = entry_2024(
            entry_id,
            f"2026-03-{23 + n % 3}T{8 + n % 10:02d}:00:00Z",
            f"2026-03-{23 + n % 3}T{9 + n % 10:02d}:00:00Z",
            hourly_rate=rate(1001),
        )
        bodies += [("NEW_TIME_ENTRY", body), ("TIME_ENTRY_UPDATED", body)]
    for n in range(10):
        timer = running_timer(
            f"65f0e0e0e0e0e0e0e0e0{n:04d}",
            "2026-03-25T11:00:00Z",
            user=BEN,
            project=MOBILE,
            billable=False,
        )
        bodies += [("NEW_TIMER_STARTED", timer)] * 2
    outcomes = await deliver_all(client, bodies, seed=7)
    assert sum(o in APPLIED for o in outcomes) == 45
    assert await redis.xlen(keys.changes(WS)) == 45
    got = await totals(client)
    assert got["seconds"] == 45 * 3600
    assert got["amounts"] == [{"currency": "EUR", "amount": 350.35}]  # 35 x 10.01
    assert len(got["running"]) == 10
    assert got["team"] == 45 * 3600
    assert len(got["entries"]) == 45
