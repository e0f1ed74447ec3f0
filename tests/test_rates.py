"""Cost rates, deleted names and rates Clockify re-applies to past entries, end to end.

Webhook bodies go through the real endpoint into a real Redis (the `redis` fixture, dbs.CORE);
re-applied rates go from the simulator's BILLABLE_/COST_RATE_UPDATED webhooks through the
rates-dirty marker to the poller, which re-reads the range from the simulated Detailed report
(dbs.POLLER, one fake clock for everything) within its request budget.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.config import Secret, Settings, WebhookToken
from app.main import create_app
from app.models import parse_time_entry
from app.poller import RATES_REREAD_MAX_DAYS, Poller
from app.rates import RatesMarker, default_since
from app.sim import (
    NEW_TIME_ENTRY,
    ManualClock,
    SimProject,
    SimulatedWorkspace,
    SimUser,
    WebhookSender,
)
from app.store import TotalsStore
from tests import dbs
from tests.conftest import OTHER_WS, WS, FixedClock, make_settings, redis_url
from tests.payloads import (
    ACME,
    ANA,
    ONSITE,
    TASK_ID,
    URGENT,
    WEBSITE,
    client_for,
    entry_2024,
    new_client,
    new_project,
    new_tag,
    post_webhook,
    rate,
    report_row,
    task_object,
    user_updated,
)
from tests.sim_rig import wired

E1 = "65f0a0a0a0a0a0a0a0a0a0e1"
E2 = "65f0a0a0a0a0a0a0a0a0a0e2"
BILLABLE = "BILLABLE_RATE_UPDATED"
COST = "COST_RATE_UPDATED"


async def accept(client: httpx.AsyncClient, event: str, body: Any) -> dict[str, Any]:
    # Bodies are sent as JSON text here: some hold integers beyond 64 bits on purpose.
    response = await post_webhook(client, event, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    return dict(response.json())


async def stored(redis: Redis, entry_id: str, ws: str = WS) -> dict[str, Any]:
    raw = await redis.hget(keys.entry_states(ws), entry_id)
    assert raw is not None, f"entry {entry_id} is not stored"
    state: dict[str, Any] = orjson.loads(raw)
    return state


async def name_record(redis: Redis, kind: str, ident: str, ws: str = WS) -> dict[str, Any]:
    raw = await redis.hget(keys.names(ws, kind), ident)
    assert raw is not None, f"no {kind} record for {ident}"
    record: dict[str, Any] = orjson.loads(raw)
    return record


async def marker(redis: Redis, ws: str = WS) -> dict[str, str]:
    raw = await redis.hgetall(keys.rates_dirty(ws))
    return {k.decode(): v.decode() for k, v in raw.items()}


# Cost rates --------------------------------------------------------------------------------------
def costed(entry_id: str = E1, **cost: Any) -> dict[str, Any]:
    body = entry_2024(
        entry_id, "2026-03-24T08:00:00Z", "2026-03-24T10:00:00Z", hourly_rate=rate(10500)
    )
    body["costRate"] = cost or rate(4000)
    return body


async def test_a_cost_rate_goes_from_the_webhook_into_the_stored_state(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    assert (await accept(client, "NEW_TIME_ENTRY", costed()))["outcome"] == "created"
    state = await stored(redis, E1)
    assert (state["rate"], state["costRate"], state["currency"]) == (10500, 4000, "EUR")

    # A webhook body is the whole entry: costRate null, or left out, means none.
    body = costed()
    body["costRate"] = None
    assert (await accept(client, "TIME_ENTRY_UPDATED", body))["outcome"] == "updated"
    assert (await stored(redis, E1))["costRate"] is None
    await accept(client, "TIME_ENTRY_UPDATED", costed(amount=5000, currency="EUR"))
    del body["costRate"]
    assert (await accept(client, "TIME_ENTRY_UPDATED", body))["outcome"] == "updated"
    assert (await stored(redis, E1))["costRate"] is None


async def test_an_entry_with_a_cost_rate_and_no_billable_rate_keeps_the_cost_currency(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    body = costed(amount=3000, currency="usd")
    body["hourlyRate"] = None
    body["billable"] = False
    await accept(client, "NEW_TIME_ENTRY", body)
    state = await stored(redis, E1)
    assert (state["rate"], state["costRate"], state["currency"]) == (None, 3000, "USD")


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ("40 EUR", "costRate must be an object"),
        ({"amount": -1, "currency": "EUR"}, r"costRate\.amount must be a non-negative"),
        ({"amount": "4000", "currency": "EUR"}, r"costRate\.amount must be a non-negative"),
        ({"amount": 4000, "currency": "EURO"}, r"costRate\.currency must be an ISO currency"),
        (10**30, "costRate must be a non-negative whole number"),
        (True, "costRate must be an object"),
    ],
)
async def test_a_malformed_cost_rate_is_refused_naming_the_field(
    client: httpx.AsyncClient, redis: Redis, cost: Any, message: str
) -> None:
    body = costed()
    body["costRate"] = cost
    response = await post_webhook(client, "NEW_TIME_ENTRY", json.dumps(body).encode())
    assert response.status_code == 400
    assert re.search(message, response.json()["error"]), response.text
    assert await redis.hget(keys.entry_states(WS), E1) is None


async def test_a_report_row_without_a_cost_rate_never_erases_the_stored_one(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await accept(client, "NEW_TIME_ENTRY", costed())
    store = client.app.state.service.store  # type: ignore[attr-defined]
    row = report_row(
        E1, "2026-03-24T08:00:00Z", "2026-03-24T10:00:00Z", description="Homepage layout"
    )
    del row["hourlyRate"]  # real rows carry flat rates only
    row.update(rate=10500, amount=21000, currency="EUR")
    await store.apply_entry(parse_time_entry(row), "sync")
    state = await stored(redis, E1)
    assert (state["rate"], state["costRate"], state["currency"]) == (10500, 4000, "EUR")
    # A row that carries it says the rate Clockify holds now (0 is the reports' "none").
    await store.apply_entry(parse_time_entry({**row, "costRate": 4500}), "sync")
    assert (await stored(redis, E1))["costRate"] == 4500
    await store.apply_entry(parse_time_entry({**row, "costRate": 0}), "sync")
    assert (await stored(redis, E1))["costRate"] is None


# Deleted names ------------------------------------------------------------------------------------
async def test_deleted_names_are_marked_deleted_and_a_later_update_restores_them(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    gone = new_project(WEBSITE)
    gone["archived"] = True  # Clockify archives a project before it can be deleted
    assert (await accept(client, "PROJECT_DELETED", gone))["outcome"] == "names"
    record = await name_record(redis, "project", WEBSITE.id)
    assert record["deleted"] is True and record["archived"] is True
    assert record["estimateSeconds"] == 120 * 3600  # the rest of the record stays
    last = (await redis.xrevrange(keys.changes(WS), count=1))[0][1][b"d"]
    assert b'"deleted":true' in last  # the live wall learns it from the names event

    await accept(client, "PROJECT_UPDATED", new_project(WEBSITE))  # restored
    record = await name_record(redis, "project", WEBSITE.id)
    assert "deleted" not in record and record["archived"] is False
    archived = new_project(WEBSITE)
    archived["archived"] = True
    await accept(client, "PROJECT_UPDATED", archived)  # archived, not deleted
    record = await name_record(redis, "project", WEBSITE.id)
    assert "deleted" not in record and record["archived"] is True

    for event, kind, body, ident in (
        ("CLIENT_DELETED", "client", new_client(ACME), ACME.id),
        ("TAG_DELETED", "tag", new_tag(URGENT), URGENT.id),
    ):
        await accept(client, event, body)
        assert (await name_record(redis, kind, ident))["deleted"] is True
    await accept(client, "NEW_TAG", new_tag(URGENT))
    assert "deleted" not in await name_record(redis, "tag", URGENT.id)
    await accept(client, "NEW_TAG", new_tag(ONSITE))
    assert await name_record(redis, "tag", ONSITE.id) == {"id": ONSITE.id, "name": ONSITE.name}


async def test_a_user_deleted_from_the_workspace_keeps_their_name_marked_deleted(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    # The body names no workspace and the token is bound to none: every workspace hears it.
    await accept(client, "USER_DELETED_FROM_WORKSPACE", user_updated(ANA))
    for ws in (WS, OTHER_WS):
        record = await name_record(redis, "user", ANA.id, ws)
        assert record == {"id": ANA.id, "name": ANA.name, "deleted": True}
    await accept(client, "USER_DEACTIVATED_ON_WORKSPACE", user_updated(ANA))
    assert "deleted" not in await name_record(redis, "user", ANA.id)


async def test_task_events_keep_the_task_names_with_their_project(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    task = task_object(WEBSITE)
    assert (await accept(client, "NEW_TASK", task))["outcome"] == "names"
    assert await name_record(redis, "task", TASK_ID) == {
        "id": TASK_ID,
        "name": "Design review",
        "projectId": WEBSITE.id,
    }
    await accept(client, "TASK_UPDATED", {**task, "name": "Design sign-off"})
    assert (await name_record(redis, "task", TASK_ID))["name"] == "Design sign-off"
    await accept(client, "TASK_DELETED", task)
    assert (await name_record(redis, "task", TASK_ID))["deleted"] is True
    metrics = (await client.get("/metrics")).text
    assert 'clockwall_webhooks_total{event="TASK_DELETED",outcome="accepted"} 1.0' in metrics


# Rate events mark the workspace ---------------------------------------------------------------
async def test_a_rate_event_marks_the_workspace_from_its_day_keeping_the_earliest(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    body = {"workspaceId": WS, "userId": ANA.id, "since": "2026-03-10"}
    assert await accept(client, BILLABLE, body) == {"outcome": "rates", "since": "2026-03-10"}
    first = await marker(redis)
    assert first["since"] == "2026-03-10" and first["marks"] == "1"
    assert datetime.fromisoformat(first["at"]) == datetime(2026, 3, 25, 12, tzinfo=UTC)

    await accept(client, COST, {**body, "since": "2026-03-17T23:30:00Z"})  # 18 March in Berlin
    assert (await marker(redis))["since"] == "2026-03-10"  # the earliest stays
    answer = await accept(client, COST, {"workspaceId": WS, "rate": {"from": "2026-02-02"}})
    assert answer["since"] == "2026-02-02"
    now = await marker(redis)
    assert now["since"] == "2026-02-02" and now["marks"] == "3"
    assert await marker(redis, OTHER_WS) == {}  # the body named its workspace
    metrics = (await client.get("/metrics")).text
    assert f'clockwall_webhooks_total{{event="{COST}",outcome="accepted"}} 2.0' in metrics


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        None,
        "rates",
        7,
        {"since": "soon"},
        {"since": 10**40},
        {"from": -1, "date": True},
        {"workspaceId": 5, "userId": {"id": []}},
        {"nested": [[[[{"since": None}]]]] * 50},
        {"since": "2031-01-01"},
    ],
)
async def test_a_rate_event_body_clockwall_cannot_read_is_still_accepted(
    client: httpx.AsyncClient, redis: Redis, body: Any
) -> None:
    answer = await accept(client, BILLABLE, body)
    # Nothing (or only a future day) named: the current month, or the week where it began
    # in the month before (this week starts on 23 March).
    expected = "2026-03-25" if body == {"since": "2031-01-01"} else "2026-03-01"
    assert answer == {"outcome": "rates", "since": expected}
    for ws in (WS, OTHER_WS):  # no workspace named: every configured one is marked
        assert (await marker(redis, ws))["since"] == expected


async def test_a_rate_event_for_a_workspace_not_configured_here_is_refused(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    response = await post_webhook(client, BILLABLE, {"workspaceId": "7a0e1a2b3c4d5e6f7a8b9c0f"})
    assert response.status_code == 403
    assert await marker(redis) == {}


def test_the_default_range_reaches_back_to_the_weeks_start_in_the_month_before() -> None:
    assert default_since(date(2026, 3, 25), date(2026, 3, 23)) == date(2026, 3, 1)
    assert default_since(date(2026, 4, 2), date(2026, 3, 30)) == date(2026, 3, 30)


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({}, "set CLOCKIFY_API_KEY"),
        ({"api_key": Secret("key"), "mode": "webhook"}, "set CLOCKWALL_MODE to hybrid"),
        ({"api_key": Secret("key"), "mode": "hybrid"}, None),
    ],
)
async def test_a_rate_event_nothing_will_re_read_is_warned_of_once_with_the_fix(
    redis: Redis,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, Any],
    fix: str | None,
) -> None:
    app = create_app(make_settings(**overrides), redis=redis, clock=clock)
    async with client_for(app) as http:
        with caplog.at_level(logging.WARNING, logger="app.webhooks"):
            for _ in range(3):
                await accept(http, BILLABLE, {"workspaceId": WS})
    warnings = [r.message for r in caplog.records if "re-applied" in r.message]
    if fix is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and fix in warnings[0] and "stale" in warnings[0]


async def test_a_marker_a_new_event_changed_meanwhile_is_not_cleared(redis: Redis) -> None:
    rates = RatesMarker(redis)
    at = datetime(2026, 3, 25, 12, tzinfo=UTC)
    default = date(2026, 3, 1)
    assert await rates.mark(WS, date(2026, 3, 10), at, default) == date(2026, 3, 10)
    seen = await rates.read(WS)
    assert seen is not None
    await rates.mark(WS, date(2026, 3, 20), at, default)  # same second, later day: still new
    assert not await rates.advance(WS, seen, None)
    again = await rates.read(WS)
    assert again is not None and again.since == "2026-03-10" and again.marks == "2"
    assert await rates.advance(WS, again, date(2026, 3, 15))  # moved on
    moved = await rates.read(WS)
    assert moved is not None and moved.since == "2026-03-15"
    assert await rates.advance(WS, moved, None)
    assert await rates.read(WS) is None
    # A stored "" stands for the default day when compared.
    await redis.hset(keys.rates_dirty(WS), mapping={"since": "", "at": "", "marks": "0"})
    assert await rates.mark(WS, date(2026, 3, 10), at, default) == date(2026, 3, 1)


# Re-applied rates, re-read by the poller -----------------------------------------------------
ZONE = "Europe/Berlin"
API = "http://clockify.test"
HOOK_URL = "http://clockwall.test/webhooks/clockify"


@dataclass
class Rig:
    clock: ManualClock
    sim: SimulatedWorkspace
    user: SimUser
    project: SimProject
    redis: Redis
    store: TotalsStore
    poller: Poller
    sender: WebhookSender
    requests: list[httpx.Request]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def deliver(self) -> list[dict[str, Any]]:
        answers = []
        for result in await self.sim.deliver_webhooks(self.sender):
            assert result.status == 200, result
            answers.append(orjson.loads(result.response_body or "{}"))
        return answers

    async def state(self, entry_id: str) -> dict[str, Any]:
        return await stored(self.redis, entry_id, self.sim.id)

    async def marker(self) -> dict[str, str]:
        return await marker(self.redis, self.sim.id)

    def entry(self, days_ago: float, hours: float = 1.0, *, user: SimUser | None = None) -> str:
        start = self.now() - timedelta(days=days_ago)
        return self.sim.add_manual_entry(
            user or self.user, start, start + timedelta(hours=hours), self.project, "Work"
        ).id


@contextlib.asynccontextmanager
async def open_rig(
    plan: str = "FREE", events: Sequence[str] = (NEW_TIME_ENTRY, BILLABLE, COST)
) -> AsyncIterator[Rig]:
    clock = ManualClock()  # Thursday 2026-01-01 10:00 UTC, 11:00 in Berlin
    sim = SimulatedWorkspace(plan=plan, clock=clock, rng=random.Random(11))
    user = sim.add_user("Ada Lovelace", time_zone=ZONE)
    acme = sim.add_client("Acme GmbH", "EUR")
    project = sim.add_project("Website", acme, hourly_rate_minor=9500)
    hooks = [sim.add_webhook(HOOK_URL, event) for event in events]
    settings = Settings(
        redis_url=redis_url(dbs.POLLER),
        workspace_ids=(sim.id,),
        webhook_tokens=tuple(WebhookToken(Secret(hook.auth_token)) for hook in hooks),
        api_key=Secret(sim.api_key),
        mode="hybrid",
        timezone=ZONE,
    )
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    async with wired(sim, settings, clock, redis_url(dbs.POLLER), record) as w:
        yield Rig(clock, sim, user, project, w.redis, w.store, w.poller, w.sender, requests)


async def test_a_billable_rate_re_applied_from_a_day_is_re_read_and_the_marker_cleared() -> None:
    async with open_rig() as rig:
        before = rig.entry(days_ago=12)  # 20 December
        after = [rig.entry(days_ago=5), rig.entry(days_ago=0.5)]
        await rig.deliver()
        assert (await rig.state(after[0]))["rate"] == 9500

        since = datetime(2025, 12, 24, tzinfo=UTC)
        changed = rig.sim.apply_rate("billable", 12000, project=rig.project, since=since)
        assert {e.id for e in changed} == set(after)
        [answer] = await rig.deliver()
        assert answer == {"outcome": "rates", "since": "2025-12-24"}
        assert (await rig.marker())["since"] == "2025-12-24"
        assert (await rig.state(after[0]))["rate"] == 9500  # stale until re-read

        await rig.poller.reread_rates()

        assert rig.sim.count("detailed_report") == 1 and rig.sim.count() == 1
        for entry_id in after:
            assert (await rig.state(entry_id))["rate"] == 12000
        assert (await rig.state(before))["rate"] == 9500
        assert await rig.marker() == {}
        await rig.poller.reread_rates()  # nothing marked: no request
        assert rig.sim.count() == 1
        # The one request read the marked day on, as wall-clock time in the zone.
        body = orjson.loads(rig.requests[0].content)
        assert body["dateRangeStart"] == "2025-12-24T00:00:00.000"
        assert body["timeZone"] == ZONE


async def test_a_cost_rate_re_applied_to_a_users_entries_reaches_their_states() -> None:
    async with open_rig() as rig:
        grace = rig.sim.add_user("Grace Hopper", time_zone=ZONE)
        ada = [rig.entry(days_ago=2), rig.entry(days_ago=1)]
        theirs = rig.entry(days_ago=1, user=grace)
        await rig.deliver()
        assert (await rig.state(ada[0]))["costRate"] is None

        rig.sim.apply_rate("cost", 3000, user=rig.user)  # all of Ada's past entries
        [answer] = await rig.deliver()
        # No day named: this month, from the week's Monday where the week began in December.
        assert answer["since"] == "2025-12-29"
        assert (await rig.marker())["since"] == "2025-12-29"

        await rig.poller.reread_rates()

        for entry_id in ada:
            state = await rig.state(entry_id)
            assert (state["costRate"], state["currency"], state["rate"]) == (3000, "EUR", 9500)
        assert (await rig.state(theirs))["costRate"] is None
        assert await rig.marker() == {}


async def test_a_rate_re_applied_45_days_back_on_free_is_re_read_a_month_a_request() -> None:
    async with open_rig() as rig:
        old = rig.entry(days_ago=40)
        recent = rig.entry(days_ago=3)
        await rig.deliver()
        rig.sim.apply_rate("billable", 11000, since=rig.now() - timedelta(days=45))
        await rig.deliver()

        await rig.poller.reread_rates()
        assert rig.sim.count("detailed_report") == 1
        assert (await rig.state(old))["rate"] == 11000
        assert (await rig.state(recent))["rate"] == 9500  # in the next window
        assert (await rig.marker())["since"] == "2025-12-18"  # 17 November + 31 days

        await rig.poller.reread_rates()
        assert rig.sim.count("detailed_report") == 2
        assert (await rig.state(recent))["rate"] == 11000
        assert await rig.marker() == {}
        windows = [orjson.loads(r.content) for r in rig.requests]
        assert [(w["dateRangeStart"], w["dateRangeEnd"]) for w in windows] == [
            ("2025-11-17T00:00:00.000", "2025-12-17T23:59:59.999"),
            ("2025-12-18T00:00:00.000", "2026-01-01T11:00:00.000"),
        ]


async def test_on_free_the_re_read_waits_for_the_budgets_spare_and_never_hits_the_limit() -> None:
    async with open_rig() as rig:
        entry = rig.entry(days_ago=2)
        await rig.deliver()
        await rig.poller.run_once()  # start-up: discovery, names, timers, changes, backfill
        for _ in range(5):  # the hour's other extras (webhook logs, a settings refresh)
            assert await rig.poller.budget.acquire()
        started = rig.sim.count()
        rig.sim.apply_rate("billable", 12500, project=rig.project)
        await rig.deliver()

        await rig.poller.run_once()
        # The spare of this hour is spent: the marker waits, the report is not read.
        assert rig.sim.count("detailed_report") == 1 and await rig.marker() != {}
        for _ in range(200):
            if await rig.marker() == {}:
                break
            rig.clock.advance(await rig.poller.run_once())
        else:
            raise AssertionError("the re-read never ran")
        assert (await rig.state(entry))["rate"] == 12500
        assert rig.sim.count(status=429) == 0
        assert rig.sim.count("detailed_report") == 2  # the backfill's and the re-read's
        assert rig.sim.count() > started
        stamps = sorted(r.at_s for r in rig.sim.requests)
        assert all(sum(1 for t in stamps if s <= t < s + 3600) <= 30 for s in stamps), (
            "more than the Free budget in an hour"
        )


async def test_a_rate_re_applied_further_back_than_a_year_is_re_read_for_the_last_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_rig(plan="PRO_2021") as rig:
        entry = rig.entry(days_ago=3)
        await rig.deliver()
        await rig.poller.run_once()  # learns the plan: one report for any range
        reports = rig.sim.count("detailed_report")
        rig.sim.apply_rate("billable", 9900, since=rig.now() - timedelta(days=800))
        await rig.deliver()
        with caplog.at_level(logging.WARNING, logger="app.poller"):
            await rig.poller.reread_rates()
        assert rig.sim.count("detailed_report") == reports + 1
        floor = date(2026, 1, 1) - timedelta(days=RATES_REREAD_MAX_DAYS)
        body = orjson.loads(
            next(r for r in reversed(rig.requests) if r.url.path.endswith("detailed")).content
        )
        assert body["dateRangeStart"] == f"{floor}T00:00:00.000"
        assert any(f"the last {RATES_REREAD_MAX_DAYS} days" in r.message for r in caplog.records)
        assert (await rig.state(entry))["rate"] == 9900 and await rig.marker() == {}


# TIME_ENTRY_RATE entity changes ------------------------------------------------------------------
async def test_a_time_entry_rate_change_is_applied_from_the_entity_changes_in_the_same_calls() -> (
    None
):
    async with open_rig() as rig:
        entry = rig.entry(days_ago=1)
        await rig.deliver()
        for _ in range(2):  # the second poll's window no longer holds the entry's creation
            await rig.poller.poll_changes()
            rig.clock.advance(600)
        rig.sim.apply_rate("billable", 13000, project=rig.project, notify=False)  # no webhook
        rig.clock.advance(60)

        await rig.poller.poll_changes()

        assert (await rig.state(entry))["rate"] == 13000
        assert await rig.marker() == {}  # applied as it came, nothing left to re-read
        calls = [rig.sim.count(f"entities_{w}") for w in ("created", "updated", "deleted")]
        assert calls == [3, 3, 3]
        asked = [r.url.params.get_list("type") for r in rig.requests if "entities" in r.url.path]
        assert asked[-3:] == [
            ["TIME_ENTRY", "TIME_ENTRY_RATE"],
            ["TIME_ENTRY", "TIME_ENTRY_RATE"],
            ["TIME_ENTRY"],
        ]


async def test_a_rate_change_for_an_entry_clockwall_does_not_hold_marks_its_day() -> None:
    async with open_rig() as rig:
        entry = rig.sim.add_manual_entry(
            rig.user, rig.now() - timedelta(days=20), rig.now() - timedelta(days=20, hours=-1)
        )
        rig.clock.advance(7 * 86400)  # made the week before: outside the changes window
        rig.sim.apply_rate("billable", 8000, user=rig.user, notify=False)

        await rig.poller.poll_changes()

        assert await rig.redis.hget(keys.entry_states(rig.sim.id), entry.id) is None
        day = entry.start.astimezone(ZoneInfo(ZONE)).date()
        assert (await rig.marker())["since"] == day.isoformat()
        await rig.poller.reread_rates()
        assert (await rig.state(entry.id))["rate"] == 8000


async def test_when_clockify_refuses_rate_changes_the_poller_asks_for_entries_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_rig() as rig:
        entry = rig.entry(days_ago=1)
        rig.sim.fail_next(1, 400, path_contains="/entities/created")
        with caplog.at_level(logging.WARNING, logger="app.poller"):
            await rig.poller.poll_changes()
        assert any("refused TIME_ENTRY_RATE" in r.message for r in caplog.records)
        assert rig.poller.rate_changes is False

        await rig.poller.poll_changes()

        assert (await rig.state(entry))["rate"] == 9500
        created = [r for r in rig.requests if r.url.path.endswith("/entities/created")]
        assert created[-1].url.params.get_list("type") == ["TIME_ENTRY"]


# The simulator sends the name events -------------------------------------------------------------
async def test_the_simulators_deletions_and_tasks_reach_the_name_records() -> None:
    events = ("PROJECT_DELETED", "CLIENT_DELETED", "TAG_DELETED", "NEW_TASK", "TASK_DELETED")
    async with open_rig(plan="PRO_2021", events=events) as rig:
        ws = rig.sim.id
        tag = rig.sim.add_tag("urgent")
        entry = rig.entry(days_ago=1)
        rig.sim.update_entry(entry, tags=[tag])
        task = rig.sim.add_task(rig.project, "Wireframes")
        rig.sim.delete_task(task.id)
        rig.sim.delete_tag(tag)
        rig.sim.delete_project(rig.project)
        client_id = rig.project.client_id
        assert client_id is not None
        rig.sim.delete_client(client_id)

        answers = await rig.deliver()

        assert [a["outcome"] for a in answers] == ["names"] * 5
        assert await name_record(rig.redis, "task", task.id, ws) == {
            "id": task.id,
            "name": "Wireframes",
            "projectId": rig.project.id,
            "deleted": True,
        }
        for kind, ident in (("tag", tag.id), ("project", rig.project.id), ("client", client_id)):
            assert (await name_record(rig.redis, kind, ident, ws))["deleted"] is True
        # Clockify took the project and the tag off the entry; its time and rate stay.
        row = rig.sim.entry_json(rig.sim.entries[entry])
        assert (row["projectId"], row["tagIds"], row["hourlyRate"]["amount"]) == (None, None, 9500)
