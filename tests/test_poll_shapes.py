"""Polling on Clockify's real shapes, against the simulator (through httpx.ASGITransport) and a
real Redis (dbs.POLLER): Detailed rows with flat `rate`/`amount`/`currency`, report windows
as wall-clock times plus `timeZone` in requests of at most 31 days on Free, and entity changes
through `/created`, `/updated` and `/deleted` (the entry read from `document`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.config import Secret, Settings, WebhookToken
from app.models import Rate, parse_time_entry
from app.poller import Poller, Schedule
from app.sim import (
    NEW_TIME_ENTRY,
    ManualClock,
    SimEntry,
    SimProject,
    SimulatedWorkspace,
    SimUser,
    WebhookSender,
)
from app.store import TotalsStore
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.sim_rig import wired

DB = dbs.POLLER
ZONE = "Europe/Berlin"
API = "http://clockify.test"
HOOK_URL = "http://clockwall.test/webhooks/clockify"
WALL_CLOCK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


class RowFaults(SimulatedWorkspace):
    """The simulator, but report rows of chosen entries lose keys or get bad values."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drop: dict[str, set[str]] = {}
        self.patch: dict[str, dict[str, Any]] = {}

    def report_row(self, entry: SimEntry) -> dict[str, Any]:
        row = super().report_row(entry)
        for key in self.drop.get(entry.id, ()):
            row.pop(key, None)
        return {**row, **self.patch.get(entry.id, {})}


@dataclass
class Rig:
    clock: ManualClock
    sim: RowFaults
    user: SimUser
    project: SimProject
    redis: Redis
    store: TotalsStore
    poller: Poller
    sender: WebhookSender
    report_bodies: list[dict[str, Any]]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def deliver(self) -> None:
        for result in await self.sim.deliver_webhooks(self.sender):
            assert result.status == 200, result

    async def state(self, entry_id: str) -> dict[str, Any]:
        raw = await self.redis.hget(keys.entry_states(self.sim.id), entry_id)
        assert raw is not None, f"entry {entry_id} is not stored"
        state: dict[str, Any] = orjson.loads(raw)
        return state

    async def amounts(self) -> dict[str, int]:
        today = self.store.today()
        summary = await self.store.read_summary(
            self.sim.id, today - timedelta(days=7), today, "DATE"
        )
        return {a["currency"]: round(a["amount"] * 100) for a in summary["amounts"]}


@contextlib.asynccontextmanager
async def open_rig(plan: str = "FREE") -> AsyncIterator[Rig]:
    clock = ManualClock()  # Thursday 2026-01-01 10:00 UTC, 11:00 in Berlin
    sim = RowFaults(plan=plan, clock=clock, rng=random.Random(1))
    user = sim.add_user("Ada Lovelace", time_zone=ZONE)
    acme = sim.add_client("Acme GmbH", "EUR")
    project = sim.add_project("Website", acme, hourly_rate_minor=9500)
    hook = sim.add_webhook(HOOK_URL, NEW_TIME_ENTRY)
    settings = Settings(
        redis_url=redis_url(DB),
        workspace_ids=(sim.id,),
        webhook_tokens=(WebhookToken(Secret(hook.auth_token)),),
        mode="hybrid",
        timezone=ZONE,
    )
    bodies: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/reports/detailed"):
            bodies.append(orjson.loads(request.content))

    async with wired(sim, settings, clock, redis_url(DB), record) as w:
        yield Rig(clock, sim, user, project, w.redis, w.store, w.poller, w.sender, bodies)


def hours_ago(rig: Rig, start_h: float, end_h: float) -> tuple[datetime, datetime]:
    now = rig.sim.now()
    return now - timedelta(hours=start_h), now - timedelta(hours=end_h)


# Amounts survive a poll ------------------------------------------------------------------------
async def test_amounts_a_webhook_stored_survive_backfill_and_reconcile() -> None:
    async with open_rig() as rig:
        hooked = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 3, 1), rig.project)
        await rig.deliver()
        assert await rig.amounts() == {"EUR": 19000}  # 2 h at 95.00
        # An entry only polling sees: its amount comes from the row's flat rate and currency.
        polled = rig.sim.add_manual_entry(
            rig.user, *hours_ago(rig, 5, 4), rig.project, notify=False
        )

        await rig.poller.run_once()  # discovery, names, timers, changes, the week's backfill
        await rig.poller.reconcile()

        assert rig.poller.state.backfilled and rig.poller.state.last_error is None
        assert await rig.amounts() == {"EUR": 19000 + 9500}
        for entry in (hooked, polled):
            state = await rig.state(entry.id)
            assert (state["rate"], state["currency"]) == (9500, "EUR")
    assert rig.report_bodies, "no report was read"


async def test_a_row_without_rate_currency_or_tags_keeps_what_clockwall_knew() -> None:
    async with open_rig() as rig:
        tag = rig.sim.add_tag("design")
        entry = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 3, 1), rig.project, tags=[tag])
        await rig.deliver()
        before = await rig.state(entry.id)
        rig.sim.drop[entry.id] = {"rate", "amount", "currency", "costRate", "costAmount", "tags"}

        await rig.poller.backfill()
        await rig.poller.reconcile()

        assert await rig.state(entry.id) == before
        assert before["rate"] == 9500 and before["tagIds"] == [tag.id]
        assert await rig.amounts() == {"EUR": 19000}
        assert rig.poller.state.repairs == 0  # the merged row equals what was stored


async def test_a_rows_flat_cost_rate_replaces_the_stored_one_and_a_row_without_it_keeps_it() -> (
    None
):
    async with open_rig() as rig:
        rig.sim.apply_rate("cost", 2000, project=rig.project, notify=False)  # new entries' too
        entry = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 3, 1), rig.project)
        await rig.deliver()
        assert (await rig.state(entry.id))["costRate"] == 2000
        rig.sim.drop[entry.id] = {"costRate", "costAmount"}
        await rig.poller.reconcile()
        assert (await rig.state(entry.id))["costRate"] == 2000
        assert rig.poller.state.repairs == 0

        rig.sim.drop.clear()
        rig.sim.apply_rate("cost", 2600, project=rig.project, notify=False)
        await rig.poller.reconcile()
        state = await rig.state(entry.id)
        assert (state["costRate"], state["rate"], state["currency"]) == (2600, 9500, "EUR")


async def test_a_row_with_a_rate_but_no_currency_takes_the_workspace_currency() -> None:
    async with open_rig() as rig:
        rig.sim.currency = "GBP"  # the workspace's; the project bills in EUR
        await rig.poller.run_once()
        entry = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 2, 1), rig.project, notify=False)
        rig.sim.drop[entry.id] = {"currency"}
        await rig.poller.reconcile()
        state = await rig.state(entry.id)
        assert (state["rate"], state["currency"]) == (9500, "GBP")
        assert await rig.amounts() == {"GBP": 9500}


async def test_a_malformed_row_is_skipped_logged_and_counted_never_half_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_rig() as rig:
        entry = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 3, 1), rig.project, "Before")
        await rig.deliver()
        before = await rig.state(entry.id)
        rig.sim.update_entry(entry.id, description="After")  # its webhook is lost
        rig.sim.drain_outbox()
        rig.sim.patch[entry.id] = {"rate": "95.00"}

        with caplog.at_level(logging.WARNING, logger="app.poller"):
            await rig.poller.reconcile()

        assert await rig.state(entry.id) == before  # neither the description nor a deletion
        assert await rig.amounts() == {"EUR": 19000}
        skipped = rig.poller.metrics.registry.get_sample_value(
            "clockwall_poll_rows_skipped_total", {"source": "report"}
        )
        assert skipped == 1
        (record,) = [r for r in caplog.records if "skipped a malformed entry" in r.message]
        assert entry.id in record.message and "rate must be" in record.message


# Report windows ---------------------------------------------------------------------------------
async def test_a_45_day_backfill_on_free_sends_two_wall_clock_windows_with_the_time_zone() -> None:
    async with open_rig() as rig:
        now = rig.sim.now()
        old = rig.sim.add_manual_entry(
            rig.user, now - timedelta(days=40), now - timedelta(days=40, hours=-1), notify=False
        )
        recent = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 2, 1), notify=False)

        await rig.poller.backfill(since=now - timedelta(days=45))

        windows = []
        for body in rig.report_bodies:
            assert body["timeZone"] == ZONE
            assert body["detailedFilter"]["page"] == 1
            assert 1 <= body["detailedFilter"]["pageSize"] <= 1000
            first, last = body["dateRangeStart"], body["dateRangeEnd"]
            assert WALL_CLOCK.fullmatch(first) and WALL_CLOCK.fullmatch(last), (first, last)
            windows.append((datetime.fromisoformat(first), datetime.fromisoformat(last)))
        assert len(windows) == 2
        assert all(last - first <= timedelta(days=31) for first, last in windows)
        berlin_now = datetime(2026, 1, 1, 11, 0)  # 10:00 UTC on the wall clock in Berlin
        assert windows[0][0] == berlin_now - timedelta(days=45)
        assert windows[1][0] - windows[0][1] == timedelta(milliseconds=1)
        assert windows[1][1] == berlin_now
        assert rig.sim.count("detailed_report", status=200) == 2
        for entry in (old, recent):
            await rig.state(entry.id)


async def test_an_entry_of_the_last_hour_is_in_the_backfill_of_a_zone_ahead_of_utc() -> None:
    # Sent as a UTC instant, "10:00Z" would be read as 10:00 in Berlin, 09:00 UTC: an entry
    # started in the last hour would fall outside the window.
    async with open_rig() as rig:
        entry = rig.sim.add_manual_entry(
            rig.user, *hours_ago(rig, 0.75, 0.25), rig.project, notify=False
        )
        await rig.poller.backfill()
        await rig.state(entry.id)


# Entity changes ---------------------------------------------------------------------------------
async def test_a_new_entry_seen_only_in_entities_created_is_applied() -> None:
    async with open_rig() as rig:
        await rig.poller.run_once()
        rig.clock.advance(600)
        entry = rig.sim.add_manual_entry(
            rig.user, *hours_ago(rig, 1, 0.5), rig.project, notify=False
        )
        rig.clock.advance(60)

        await rig.poller.poll_changes()

        assert (await rig.state(entry.id))["rate"] == 9500
        calls = [rig.sim.count(f"entities_{w}") for w in ("created", "updated", "deleted")]
        assert calls == [2, 2, 2]  # each poll asks all three


@pytest.mark.parametrize("wrapped", [False, True])
async def test_a_deleted_entry_is_read_from_its_document(wrapped: bool) -> None:
    async with open_rig() as rig:
        rig.sim.entities_wrapped = wrapped
        entry = rig.sim.add_manual_entry(rig.user, *hours_ago(rig, 3, 1), rig.project)
        await rig.deliver()
        rig.clock.advance(300)
        await rig.poller.poll_changes()
        rig.clock.advance(300)
        rig.sim.delete_entry(entry.id)
        rig.sim.drain_outbox()  # no webhook for it: only polling can tell
        rig.clock.advance(rig.sim.deleted_visibility_delay_s + 60)

        await rig.poller.poll_changes()

        assert await rig.amounts() == {}
        meta = await rig.redis.hget(keys.entry_meta(rig.sim.id), entry.id)
        assert meta is not None and meta.startswith(b"D|")


# Parsing and the schedule ---------------------------------------------------------------------
def test_a_detailed_row_parses_its_flat_rate_and_names_what_it_lacks() -> None:
    row = {
        "_id": "65a1b2c3d4e5f60718293a4b",
        "workspaceId": "5f0e1a2b3c4d5e6f7a8b9c0d",
        "userId": "65a1b2c3d4e5f60718293a4c",
        "billable": True,
        "type": "REGULAR",
        "timeInterval": {"start": "2026-01-01T08:00:00Z", "end": "2026-01-01T09:00:00Z"},
        "rate": 4500,
        "amount": 4500,
        "currency": "usd",
    }
    full = parse_time_entry(row)
    assert full.hourly_rate == Rate(4500, "USD")
    assert full.unknown == {"projectId", "taskId", "tagIds", "description", "costRate"}
    bare = parse_time_entry({k: v for k, v in row.items() if k not in ("rate", "currency")})
    assert bare.hourly_rate is None and {"rate", "currency"} <= bare.unknown
    filled = bare.fill_unknown({"rate": 9500, "currency": "EUR", "tagIds": ["x" * 24]})
    assert filled.hourly_rate == Rate(9500, "EUR") and filled.tag_ids == ("x" * 24,)
    assert parse_time_entry({**row, "rate": 0}).hourly_rate is None  # the reports' "no rate"


def test_the_free_schedule_fits_the_three_entity_change_calls_in_the_budget() -> None:
    schedule = Schedule.for_budget(30)
    per_hour = 3600 / schedule.running_s + 3 * 3600 / schedule.changes_s
    assert per_hour <= 30 - 8  # the spare pays for discovery, names, backfill and reconcile
    assert schedule.changes_s <= 20 * 60 * 1.001 and schedule.running_s <= 5 * 60


async def test_a_report_row_names_a_new_project_but_never_erases_a_known_projects_estimate() -> (
    None
):
    """Reports rows say a project's name, colour and client, not its estimate or budget: such a
    record fills a gap and never overwrites the fuller one a webhook or the project list gave."""
    from zoneinfo import ZoneInfo

    from app.models import Named
    from tests.conftest import WS
    from tests.payloads import MOBILE, WEBSITE, report_row

    async with redis_db(redis_url(DB)) as redis:
        store = TotalsStore(redis, ZoneInfo(ZONE))
        known = Named("project", WEBSITE.id, "Website relaunch", "#03A9F4", estimate_s=160 * 3600)
        ws = WS
        await store.apply_names(ws, [known])
        for n, project in enumerate((WEBSITE, MOBILE)):
            row = report_row(
                f"{0xABC0 + n:024x}",
                "2026-03-24T08:00:00Z",
                "2026-03-24T09:00:00Z",
                project=project,
            )
            assert (await store.apply_entry(parse_time_entry(row), "sync")).outcome == "created"
        website = orjson.loads(await redis.hget(keys.names(ws, "project"), WEBSITE.id))
        assert website["estimateSeconds"] == 160 * 3600
        mobile = orjson.loads(await redis.hget(keys.names(ws, "project"), MOBILE.id))
        assert mobile["name"] == MOBILE.name
