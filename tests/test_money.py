"""Money as Clockify's reports compute it: per group, the exact sum of seconds x rate, rounded to
the cent once when answered. Through the webhook into the real Redis, read back through the API
and the wall's snapshot. Three 10-second entries at 100.00/h: 3 x 10 x 10000 = 300000, which is
83.33 cents, so 0.83 (each entry rounded on its own would make 3 x 0.28 = 0.84).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.main import create_app
from app.projection import minor_of_exact
from app.snapshot import read_snapshot
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import (
    ACME,
    ANA,
    URGENT,
    WEBSITE,
    client_for,
    entry_2024,
    new_project,
    post_webhook,
    rate,
)

DAY = "2026-03-24"  # in the clock's week (2026-03-23..29, Europe/Berlin)
WEEK = {"start": "2026-03-23", "end": "2026-03-29"}
IDS = ["65f0a0a0a0a0a0a0a0a0a1e1", "65f0a0a0a0a0a0a0a0a0a1e2", "65f0a0a0a0a0a0a0a0a0a1e3"]
GROUPS = {"PROJECT": WEBSITE.id, "USER": ANA.id, "CLIENT": ACME.id, "TAG": URGENT.id, "DATE": DAY}


@pytest.fixture
async def app(redis: Redis, clock: FixedClock) -> Any:
    return create_app(make_settings(), redis=redis, clock=clock)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


def ten_seconds(entry_id: str, minute: int, end: str | None = "") -> dict[str, Any]:
    start = f"{DAY}T09:{minute:02d}:00Z"
    return entry_2024(
        entry_id,
        start,
        f"{DAY}T09:{minute:02d}:10Z" if end == "" else end,
        tags=(URGENT,),
        hourly_rate=rate(10000),  # 100.00 EUR an hour
    )


async def post(client: httpx.AsyncClient, event: str, body: dict[str, Any]) -> str:
    response = await post_webhook(client, event, body)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


async def summary(client: httpx.AsyncClient, group: str) -> dict[str, Any]:
    response = await client.get("/api/summary", params={"groupBy": group, **WEEK})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def amounts_everywhere(client: httpx.AsyncClient) -> set[tuple[str, str, float]]:
    """(grouping, group id or "total", EUR amount) of every figure /api/summary answers."""
    out: set[tuple[str, str, float]] = set()
    for group, ident in GROUPS.items():
        answer = await summary(client, group)
        if group == "DATE":  # every day of the range is listed; one holds time
            answer["groups"] = [g for g in answer["groups"] if g["totalSeconds"]]
        assert [g["id"] for g in answer["groups"]] == [ident]
        [only] = answer["groups"]
        out.add((group, ident, only["billableAmount"]))
        assert only["amounts"] == [{"currency": "EUR", "amount": only["billableAmount"]}]
        out.add((group, "total", answer["billableAmount"]))
    return out


def all_groups(amount: float) -> set[tuple[str, str, float]]:
    return {(g, i, amount) for g, i in GROUPS.items()} | {(g, "total", amount) for g in GROUPS}


async def totals_fields(redis: Redis) -> dict[str, dict[str, int]]:
    """Every total hash of the workspace's generations (cells and project months), field ->
    value."""
    prefix = keys.workspace_prefix(WS)
    out = {}
    for pattern in (f"{prefix}g*:c:*", f"{prefix}g*:pm:*"):
        async for key in redis.scan_iter(match=pattern):
            fields = await redis.hgetall(key)
            out[key.decode()] = {k.decode(): int(v) for k, v in fields.items()}
    return out


async def test_three_ten_second_entries_at_100_an_hour_make_0_83_in_every_grouping(
    client: httpx.AsyncClient,
) -> None:
    for minute, entry_id in enumerate(IDS):
        assert await post(client, "NEW_TIME_ENTRY", ten_seconds(entry_id, minute)) == "created"
    assert await amounts_everywhere(client) == all_groups(0.83)

    # Each entry's own amount stays its own, rounded as an invoice line is.
    response = await client.get("/api/entries", params=WEEK)
    assert [e["billableAmount"] for e in response.json()["entries"]] == [0.28, 0.28, 0.28]


async def test_a_running_timer_joins_the_exact_sum_before_it_is_rounded(
    client: httpx.AsyncClient, clock: FixedClock
) -> None:
    for minute, entry_id in enumerate(IDS[:2]):
        await post(client, "NEW_TIME_ENTRY", ten_seconds(entry_id, minute))
    # Ten seconds running at the clock's moment (2026-03-25 12:00:00 UTC).
    running = entry_2024(
        IDS[2], "2026-03-25T11:59:50Z", None, tags=(URGENT,), hourly_rate=rate(10000)
    )
    assert await post(client, "NEW_TIMER_STARTED", running) == "started"
    answer = await summary(client, "PROJECT")
    assert (answer["billableAmount"], answer["includesRunning"]) == (0.83, True)
    assert answer["groups"][0]["billableAmount"] == 0.83


async def test_the_wall_snapshot_carries_the_exact_sum_for_the_browser_to_round_once(
    client: httpx.AsyncClient, app: Any
) -> None:
    for minute, entry_id in enumerate(IDS):
        await post(client, "NEW_TIME_ENTRY", ten_seconds(entry_id, minute))
    store = app.state.service.store
    snapshot = orjson.loads(
        (await read_snapshot(store, WS, date(2026, 3, 23), date(2026, 3, 29), {})).data
    )
    # One cell (user|project|task|billable|type|currency|tags|rate|cost rate) holds the three
    # entries; its earned amount stays exact (rate_minor x seconds) for the browser to round
    # once.
    [(cell, fields)] = snapshot["days"][DAY].items()
    assert cell == f"{ANA.id}|{WEBSITE.id}|-|1|R|EUR|{URGENT.id}|10000|0"
    assert fields == {"s": 30, "e": 300_000}
    assert minor_of_exact(fields["e"]) == 83


async def test_a_money_budget_counts_the_amount_rounded_once_with_running_timers_in_the_sum(
    client: httpx.AsyncClient, app: Any
) -> None:
    for minute, entry_id in enumerate(IDS[:2]):
        await post(client, "NEW_TIME_ENTRY", ten_seconds(entry_id, minute))
    running = entry_2024(
        IDS[2], "2026-03-25T11:59:50Z", None, tags=(URGENT,), hourly_rate=rate(10000)
    )
    await post(client, "NEW_TIMER_STARTED", running)
    budget = new_project(WEBSITE)  # after the entries: their project objects carry no budget
    budget.update(
        timeEstimate=None,
        budgetEstimate={"estimate": 100, "type": "MANUAL", "active": True},  # 1.00 EUR
        activeEstimate="BUDGET",
    )
    assert (await post_webhook(client, "PROJECT_UPDATED", budget)).status_code == 200
    store = app.state.service.store
    progress = (await store.read_progress(WS))["projects"][WEBSITE.id]
    assert (progress["kind"], progress["tracked"], progress["trackedExact"]) == (
        "budget",
        83,
        300_000,
    )
    # Without running timers (the wall's snapshot), the exact part is what is stored.
    stored = (await store.read_progress(WS, include_running=False))["projects"][WEBSITE.id]
    assert (stored["tracked"], stored["trackedExact"]) == (56, 200_000)


async def test_deleting_every_entry_nets_the_exact_fields_back_to_nothing(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    for minute, entry_id in enumerate(IDS):
        await post(client, "NEW_TIME_ENTRY", ten_seconds(entry_id, minute))
    for minute, entry_id in enumerate(IDS):
        assert await post(client, "TIME_ENTRY_DELETED", ten_seconds(entry_id, minute)) == "deleted"
    assert await totals_fields(redis) == {}
    answer = await summary(client, "PROJECT")
    assert (answer["groups"], answer["billableAmount"], answer["amounts"]) == ([], 0, [])


def test_rounding_an_exact_amount_is_half_up_for_negative_deltas_too() -> None:
    # 3600ths of a cent: 1799 -> 0, 1800 -> 1 (half up); -1800 -> 0 and -1801 -> -1 (half up).
    got = [minor_of_exact(x) for x in (0, 1799, 1800, 5399, 5400, -1800, -1801, -5400, -5401)]
    assert got == [0, 0, 1, 1, 2, 0, -1, -1, -2]
