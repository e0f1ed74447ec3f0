"""Project progress as Clockify shows it (issue 10, item 6): tracked over the project's life, or
since the last reset for an estimate that resets, against its time estimate or its money
budget; Clockify's own `duration` when the poller has read it, else what clockwall holds, and
then the page says so. Over the estimate is red on the wall and on the heatmap.

The store tests run in-process on the CORE database with an injected clock (Wednesday
2026-03-25, Europe/Berlin, weeks from Monday); the page tests in Chromium on PAGES.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis as sync_redis
from playwright.sync_api import Page, expect
from redis.asyncio import Redis

from app import keys
from app.budget import RequestBudget
from app.metrics import Metrics
from app.models import Named, parse_named, parse_time_entry
from app.poller import Poller
from app.snapshot import read_snapshot
from app.store import TotalsStore
from tests.browser import CHROMIUM, LiveServer, entry_body, new_entry_id
from tests.conftest import WS, FixedClock
from tests.test_wall_room import (  # noqa: F401  (fixtures)
    flushed_redis,
    midday,
    page,
    wait_live,
)

PROJECT = "5b00000000000000000000a1"
OTHER = "5b00000000000000000000a2"
ANA = "5a00000000000000000000a1"
H = 3600
_ids = iter(range(1, 1_000_000))


def store_for(redis: Redis, clock: FixedClock) -> TotalsStore:
    return TotalsStore(redis, ZoneInfo("Europe/Berlin"), 0, 1000, clock=clock)


def project(**fields: Any) -> dict[str, Any]:
    """A project as Clockify's REST API and webhooks send it."""
    return {
        "id": PROJECT,
        "name": "Website",
        "color": "#E91E63",
        "workspaceId": WS,
        "archived": False,
        "duration": "PT0S",
        "hourlyRate": {"amount": 5000, "currency": "EUR"},
        **fields,
    }


# A budget of 1000.00 in the project's currency, the bar it is measured against.
MONEY_BUDGET = {
    "budgetEstimate": {"estimate": 100_000, "type": "MANUAL", "active": True},
    "timeEstimate": {"estimate": "PT0S", "active": False},
    "activeEstimate": "BUDGET",
}


def time_estimate(estimate: str, reset: str | None = None) -> dict[str, Any]:
    return {
        "timeEstimate": {
            "estimate": estimate,
            "type": "MANUAL",
            "resetOption": reset,
            "active": True,
            "includeNonBillable": True,
        },
        "activeEstimate": "TIME",
    }


async def track(
    store: TotalsStore,
    start: str,
    hours: float,
    *,
    project_id: str = PROJECT,
    billable: bool = False,
    running: bool = False,
) -> None:
    begin = datetime.fromisoformat(start)
    body = {
        "id": f"5e{next(_ids):022x}",
        "workspaceId": WS,
        "userId": ANA,
        "projectId": project_id,
        "billable": billable,
        "hourlyRate": {"amount": 5000, "currency": "EUR"} if billable else None,
        "timeInterval": {
            "start": start,
            "end": None if running else (begin + timedelta(hours=hours)).isoformat(),
        },
        "type": "REGULAR",
    }
    await store.apply_entry(parse_time_entry(body), "create")


async def name_project(store: TotalsStore, body: dict[str, Any]) -> None:
    named = parse_named("project", body, "project")
    assert named is not None
    await store.apply_names(WS, [named])


async def three_hundred_hours_before_this_week_and_five_in_it(store: TotalsStore) -> None:
    await track(store, "2025-11-03T09:00:00Z", 100)
    await track(store, "2026-01-12T09:00:00Z", 100)
    await track(store, "2026-02-09T09:00:00Z", 100)
    await track(store, "2026-03-24T08:00:00Z", 5)


async def estimated_store(redis: Redis, clock: FixedClock) -> TotalsStore:
    """A store holding 305 hours on a project estimated at 160."""
    store = store_for(redis, clock)
    await name_project(store, project(**time_estimate("PT160H")))
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    return store


class FakeClockify:
    """The four name lists the poller reads; only projects matter here."""

    def __init__(self, projects: list[dict[str, Any]]) -> None:
        self.projects = projects
        self.on_status: Any = None

    async def list_users(self, ws: str) -> list[dict[str, Any]]:
        return []

    async def list_projects(self, ws: str) -> list[dict[str, Any]]:
        return self.projects

    async def list_clients(self, ws: str) -> list[dict[str, Any]]:
        return []

    async def list_tags(self, ws: str) -> list[dict[str, Any]]:
        return []


def poller_for(redis: Redis, store: TotalsStore, clockify: FakeClockify) -> Poller:
    return Poller(
        WS,
        clockify,  # type: ignore[arg-type]
        store,
        redis,
        Metrics(),
        mode="poll",
        budget=RequestBudget(redis, WS, 1000),
        clock=store.clock,
    )


# Over the project's life ------------------------------------------------------------------------
async def test_progress_counts_the_whole_life_of_the_project_not_this_weeks_hours(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await name_project(store, project(**time_estimate("PT160H")))
    await three_hundred_hours_before_this_week_and_five_in_it(store)

    week = await store.read_summary(WS, date(2026, 3, 23), date(2026, 3, 29), "PROJECT")
    assert week["groups"][0]["totalSeconds"] == 5 * H  # what the old bar compared: 3%
    progress = await store.read_progress(WS)
    assert progress["projects"][PROJECT] == {
        "kind": "time",
        "estimate": 160 * H,
        "tracked": 305 * H,
        "percent": 191,
        "over": True,
        "field": "s",
        "currency": None,
        "reset": None,
        "basis": "seen",
        "since": None,
        "until": None,
    }
    # Without Clockify's figure the page says what the bar is based on: from the first day held.
    assert progress["since"] == "2025-11-03"


async def test_the_snapshot_carries_the_same_progress_without_running_timers_which_the_wall_adds(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await name_project(store, project(**time_estimate("PT160H")))
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    await track(store, "2026-03-25T10:00:00Z", 0, running=True)  # two hours by the clock

    snapshot = orjson.loads(
        (await read_snapshot(store, WS, date(2026, 3, 23), date(2026, 3, 29), {})).data
    )
    assert snapshot["progress"]["projects"][PROJECT]["tracked"] == 305 * H
    assert snapshot["progress"]["since"] == "2025-11-03"
    # The JSON API has no live deltas to add, so it counts the running timer itself.
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 307 * H


async def test_with_an_api_key_progress_is_clockifys_own_duration_as_the_poller_last_read_it(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    clockify = FakeClockify([project(duration="PT412H7M", **time_estimate("PT160H"))])
    poller = poller_for(redis, store, clockify)
    await poller.refresh_names()

    progress = (await store.read_progress(WS))["projects"][PROJECT]
    assert progress["basis"] == "clockify"
    assert progress["tracked"] == 412 * H + 7 * 60  # Clockify's figure, nothing added
    assert progress["percent"] == 258

    # A webhook's embedded project (duration "PT0S" in a new project) never overwrites it.
    body = {
        "id": f"5e{next(_ids):022x}",
        "workspaceId": WS,
        "userId": ANA,
        "project": project(**time_estimate("PT160H")),
        "timeInterval": {"start": "2026-03-25T08:00:00Z", "end": "2026-03-25T09:00:00Z"},
    }
    await store.apply_entry(parse_time_entry(body), "create")
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 412 * H + 7 * 60

    # The next read replaces the figures whole: a project gone from Clockify loses its own.
    clockify.projects = []
    await poller.refresh_names()
    assert await redis.exists(keys.project_tracked(WS)) == 0
    assert (await store.read_progress(WS))["projects"][PROJECT]["basis"] == "seen"


# Summed from the days, each month kept while its version stays --------------------------------
async def test_a_change_to_a_past_month_shows_in_the_next_read_and_in_other_processes(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await name_project(store, project(**time_estimate("PT160H")))
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 305 * H
    # Another process edits January: this one's sums of January are at an older version.
    other = store_for(redis, clock)
    await track(other, "2026-01-20T09:00:00Z", 7)
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 312 * H
    # A month with totals and no sums yet (first read of a new process) is read too.
    fresh = store_for(redis, clock)
    assert (await fresh.read_progress(WS))["projects"][PROJECT]["tracked"] == 312 * H
    snapshot = orjson.loads(
        (await read_snapshot(fresh, WS, date(2026, 3, 23), date(2026, 3, 29), {})).data
    )
    assert snapshot["progress"]["projects"][PROJECT]["tracked"] == 312 * H


@pytest.mark.parametrize("rounding", [None, ("UP", 15)], ids=["raw", "rounded-reports"])
async def test_months_a_report_has_read_are_summed_from_its_cells_without_reading_them_again(
    redis: Redis, clock: FixedClock, rounding: tuple[str, int] | None
) -> None:
    from app.projection import Basis
    from app.rebuild import request_rebuild, run_rebuild

    store = store_for(redis, clock)
    await name_project(store, project(**MONEY_BUDGET))
    await track(store, "2026-01-12T09:00:00Z", 20.5 / 60, billable=True)  # 20 m 30 s
    await track(store, "2026-02-09T09:00:00Z", 1)
    basis = Basis(ZoneInfo("Europe/Berlin"), rounding)
    assert await request_rebuild(redis, WS, basis, "test", force=True)
    assert await run_rebuild(store, WS, grace_s=0)
    reader = store_for(redis, clock)
    # A year's report reads (and keeps) every month's cells.
    await reader.read_summary(WS, date(2025, 3, 1), date(2026, 3, 25), "PROJECT")

    async def no_fill(ws: str, missing: Any) -> None:
        raise AssertionError(f"read again: {missing}")

    reader.progress.fill = no_fill  # type: ignore[method-assign]
    progress = (await reader.read_progress(WS))["projects"][PROJECT]
    # A budget counts money at the time reports count (rounded up to 30 minutes with rounding
    # on: 25.00 EUR at 50.00/h; else 17.08), as a fresh process summing the days does.
    assert progress["tracked"] == (2500 if rounding else 1708)
    assert (await store_for(redis, clock).read_progress(WS))["projects"][PROJECT] == progress
    time_bar = store_for(redis, clock)
    await name_project(time_bar, project(**time_estimate("PT10H")))
    await time_bar.read_summary(WS, date(2025, 3, 1), date(2026, 3, 25), "PROJECT")
    time_bar.progress.fill = no_fill  # type: ignore[method-assign]
    # Time is counted as tracked, not rounded: 1 h 20 m 30 s.
    assert (await time_bar.read_progress(WS))["projects"][PROJECT]["tracked"] == H + 1230


async def test_a_month_changing_under_every_read_is_read_inside_the_read(
    redis: Redis, clock: FixedClock
) -> None:
    # An import writing January while progress is read: January's sums are never at the
    # version the next read sees, until the read takes January's days in its own transaction.
    store = await estimated_store(redis, clock)
    progress = store.progress
    real_fill = progress.fill
    insides: list[tuple[str, ...]] = []

    async def fill_then_change(ws: str, missing: Any) -> None:
        await real_fill(ws, missing)
        await track(store_for(redis, clock), "2026-01-21T09:00:00Z", 1)

    progress.fill = fill_then_change  # type: ignore[method-assign]
    real_plan = progress.plan

    def plan(ws: str, gens: Any, weekly: bool = True, inside: Any = ()) -> Any:
        insides.append(tuple(inside))
        return real_plan(ws, gens, weekly, inside)

    progress.plan = plan  # type: ignore[method-assign]
    found = (await store.read_progress(WS))["projects"][PROJECT]["tracked"]
    assert found == 306 * H  # one hour added by the one fill
    assert insides == [(), (), ("2026-01-21",)]  # the day that kept changing


async def test_under_a_live_feed_only_the_days_that_changed_are_read_again(
    redis: Redis, clock: FixedClock
) -> None:
    store = await estimated_store(redis, clock)
    progress = store.progress
    real_fill = progress.fill
    filled: list[list[str]] = []

    async def fill(ws: str, missing: Any) -> None:
        filled.append(sorted(missing.versions))
        await real_fill(ws, missing)

    progress.fill = fill  # type: ignore[method-assign]
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 305 * H
    # Every day holding time, once (an entry counts on the day it starts).
    assert filled == [["2025-11-03", "2026-01-12", "2026-02-09", "2026-03-24"]]
    # Today's entries are read with the answer itself; an edit of another day reads that day.
    await track(store, "2026-03-25T07:00:00Z", 1)  # Wednesday: today
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 306 * H
    await track(store, "2026-03-24T12:00:00Z", 1)
    assert (await store.read_progress(WS))["projects"][PROJECT]["tracked"] == 307 * H
    assert filled[1:] == [["2026-03-24"]]


async def test_a_read_that_never_settles_says_so() -> None:
    from app.progress import ATTEMPTS, Missing, ProjectProgress

    progress = ProjectProgress(None)  # type: ignore[arg-type]
    fills: list[dict[str, str]] = []

    async def fill(ws: str, missing: Missing) -> None:
        fills.append(missing.versions)

    progress.fill = fill  # type: ignore[method-assign]
    seen: list[tuple[str, ...]] = []

    async def attempt(inside: tuple[str, ...]) -> Missing:
        seen.append(inside)
        return Missing("0", False, {f"2025-{len(seen):02d}": "1"})

    with pytest.raises(TimeoutError, match="kept changing"):
        await progress.settled(WS, attempt)
    assert len(seen) == ATTEMPTS
    # The first miss is summed outside the read, later ones are read inside it.
    assert seen[:3] == [(), (), ("2025-02",)] and len(fills) == 1


async def test_progress_after_a_rebuild_and_after_an_upgrade_from_the_month_rollups(
    redis: Redis, clock: FixedClock
) -> None:
    from app.projection import Basis
    from app.rebuild import ensure_projection, request_rebuild, run_rebuild

    store = store_for(redis, clock)
    await name_project(store, project(**time_estimate("PT160H")))
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    before = await store.read_progress(WS)
    # A rebuild writes the months' versions too (progress finds months by them).
    basis = Basis(ZoneInfo("Europe/Berlin"))
    assert await request_rebuild(redis, WS, basis, "test", force=True) == "1"
    assert await run_rebuild(store, WS, grace_s=0)
    assert await store_for(redis, clock).read_progress(WS) == before

    # What an older clockwall left (cell layout 1): month rollups, versions per month, none
    # per day. Until the rebuild into the current layout is done, the start-up check gives its
    # days versions (progress finds days by them) and deletes the rollups.
    versions = keys.day_versions(WS, "1")
    await redis.delete(versions)
    await redis.hset(versions, mapping={"2025-11": 3, "2026-01": 1})
    for month in ("2025-11", "2026-01", "2026-02"):
        await redis.hset(f"{keys.generation_prefix(WS, '1')}pm:{month}", f"{PROJECT}|s", 1)
    await redis.hset(keys.projection(WS), "basis", Basis(basis.zone, None, 1).to_json())
    assert (await store_for(redis, clock).read_progress(WS))["projects"][PROJECT]["tracked"] == 0
    await ensure_projection(store_for(redis, clock), WS, basis)
    assert await redis.keys(f"{keys.generation_prefix(WS, '1')}pm:*") == []
    assert await store_for(redis, clock).read_progress(WS) == before
    assert await redis.hget(keys.projection(WS), "next") == b"2"  # the rebuild is asked for


# Since the last reset ---------------------------------------------------------------------------
async def test_a_weekly_estimate_counts_this_week_only_even_with_clockifys_life_total(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    clockify = FakeClockify([project(duration="PT305H", **time_estimate("PT10H", "WEEKLY"))])
    await poller_for(redis, store, clockify).refresh_names()

    progress = (await store.read_progress(WS))["projects"][PROJECT]
    assert (progress["tracked"], progress["percent"], progress["over"]) == (5 * H, 50, False)
    assert (progress["basis"], progress["reset"]) == ("period", "WEEKLY")
    assert (progress["since"], progress["until"]) == ("2026-03-23", "2026-03-29")


async def test_monthly_and_yearly_estimates_count_since_the_month_and_the_year_began(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await three_hundred_hours_before_this_week_and_five_in_it(store)
    await track(store, "2026-03-02T08:00:00Z", 3)
    await name_project(store, project(**time_estimate("PT20H", "MONTHLY")))
    monthly = (await store.read_progress(WS))["projects"][PROJECT]
    assert (monthly["tracked"], monthly["percent"]) == (8 * H, 40)
    assert (monthly["since"], monthly["until"]) == ("2026-03-01", "2026-03-31")

    await name_project(store, project(**time_estimate("PT400H", "YEARLY")))
    yearly = (await store.read_progress(WS))["projects"][PROJECT]
    assert (yearly["tracked"], yearly["percent"]) == (208 * H, 52)  # Nov 2025 is last year
    assert (yearly["since"], yearly["until"]) == ("2026-01-01", "2026-12-31")


# A money budget ---------------------------------------------------------------------------------
async def test_a_budget_estimate_is_measured_against_the_billable_amount(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await name_project(store, project(**MONEY_BUDGET))
    await track(store, "2026-01-12T09:00:00Z", 20, billable=True)  # 1000.00 EUR
    await track(store, "2026-03-24T08:00:00Z", 10, billable=True)  # 500.00 EUR
    await track(store, "2026-03-24T19:00:00Z", 10)  # not billable: no money

    progress = (await store.read_progress(WS))["projects"][PROJECT]
    assert progress["kind"] == "budget"
    assert (progress["estimate"], progress["tracked"]) == (100_000, 150_000)
    assert (progress["percent"], progress["over"], progress["currency"]) == (150, True, "EUR")
    assert progress["field"] == "a|EUR"

    # The heatmap's project columns carry it too.
    team = await store.read_team(WS, date(2026, 3, 23), date(2026, 3, 29))
    column = next(p for p in team["projects"] if p["id"] == PROJECT)
    assert column["progress"]["over"] is True
    assert team["progressSince"] == "2026-01-12"


async def test_a_project_without_an_estimate_has_no_progress_and_costs_no_extra_read(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    await name_project(store, project(id=OTHER))
    await track(store, "2026-03-24T08:00:00Z", 5, project_id=OTHER)
    assert await store.read_progress(WS) == {
        "projects": {},
        "since": "2026-03-01",  # no page shows it: no bar is based on it
        "clockifyReadAt": None,
    }


# Parsing the project ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (time_estimate("PT160H"), {"estimate_s": 160 * H}),
        (time_estimate("PT10H", "WEEKLY"), {"estimate_s": 10 * H, "estimate_reset": "WEEKLY"}),
        (time_estimate("PT10H", "FORTNIGHTLY"), {"estimate_s": 10 * H}),
        (
            {**time_estimate("PT10H"), "estimateReset": {"interval": "MONTHLY"}},
            {"estimate_s": 10 * H, "estimate_reset": "MONTHLY"},
        ),
        (
            {"timeEstimate": {"estimate": "PT8H", "active": True, "includeNonBillable": False}},
            {"estimate_s": 8 * H, "billable_only": True},
        ),
        ({**time_estimate("PT10H"), "activeEstimate": "NONE"}, {}),
        ({"timeEstimate": {"estimate": "PT10H", "active": False}}, {}),
        ({"estimate": {"estimate": "PT3H", "type": "AUTO"}}, {"estimate_s": 3 * H}),
        # Clockify's OpenAPI describes a bare number as milliseconds.
        ({"timeEstimate": {"estimate": "36000000", "active": True}}, {"estimate_s": 10 * H}),
        (
            {"budgetEstimate": {"estimate": 50_000, "active": True, "resetOption": "YEARLY"}},
            {"budget_minor": 50_000, "estimate_reset": "YEARLY"},
        ),
        ({"budgetEstimate": {"estimate": 50_000, "active": False}}, {}),
        ({"budgetEstimate": {"estimate": True, "active": True}}, {}),
        ({"budgetEstimate": {"estimate": "lots", "active": True}, "activeEstimate": "BUDGET"}, {}),
    ],
)
def test_a_projects_estimate_reset_and_budget_are_read_as_clockify_sends_them(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    named = parse_named("project", project(**fields), "project")
    assert named is not None
    defaults = {"estimate_s": None, "estimate_reset": None, "billable_only": False}
    got = {key: getattr(named, key) for key in [*defaults, "budget_minor"]}
    assert got == {**defaults, "budget_minor": None, **expected}


def test_a_projects_life_total_may_exceed_the_ten_years_one_entry_may_span() -> None:
    named = parse_named("project", project(duration="PT200000H"), "project")
    assert named is not None and named.tracked_s == 200_000 * H
    assert parse_named("project", project(duration="60000"), "project").tracked_s == 60  # type: ignore[union-attr]
    assert parse_named("project", project(duration="soon"), "project").tracked_s is None  # type: ignore[union-attr]


def test_the_name_record_keeps_the_estimate_but_never_the_duration() -> None:
    named = parse_named(
        "project",
        project(duration="PT5H", currency={"code": "eur"}, **time_estimate("PT9H", "WEEKLY")),
        "project",
    )
    assert named is not None
    record = named.to_dict()
    assert "duration" not in orjson.dumps(record).decode()
    assert record["estimateReset"] == "WEEKLY" and record["currency"] == "EUR"
    # A plain project's record stays as small as before.
    assert set(Named("project", PROJECT, "Plain").to_dict()) == {
        "id",
        "name",
        "clientId",
        "estimateSeconds",
        "archived",
    }


# Chromium tests are slow (marked so), and skipped where Debian's Chromium is not installed.
no_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"
)


# The pages --------------------------------------------------------------------------------------
def post(server: LiveServer, start: datetime, hours: float, estimate: str = "PT160H") -> None:
    body = entry_body(new_entry_id(), "ana", "web", start, start + timedelta(hours=hours))
    body["project"]["timeEstimate"] = {"estimate": estimate, "active": True}
    assert server.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"


@pytest.mark.slow
@no_chromium
def test_the_wall_shows_life_progress_in_red_past_the_estimate_says_its_basis_and_stays_live(
    midday: LiveServer,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    long_ago = now - timedelta(days=60)
    post(midday, long_ago, 300)
    post(midday, now - timedelta(hours=5), 5)
    page.goto(midday.url + "/")
    wait_live(page)

    budget = page.locator("#projects .budget").first
    expect(budget.locator(".budget-text")).to_have_text("191% of 160h estimate")
    expect(budget).to_have_class(re.compile(r"\bover\b"))
    expect(budget.locator(".budget-text")).to_have_css("color", "rgb(255, 92, 92)")
    expect(budget.locator(".fill")).to_have_css("background-color", "rgb(255, 92, 92)")
    shown = date.fromisoformat(midday.api("/api/team")["progressSince"])
    assert abs((shown - long_ago.date()).days) <= 1  # that day in the server's zone
    expect(page.locator("#progress-basis")).to_have_text(
        f"Progress based on hours clockwall has seen since {shown:%b} {shown.day}, {shown.year}"
    )
    # A new entry moves the bar live, through its change event.
    post(midday, now - timedelta(hours=4), 4)
    expect(budget.locator(".budget-text")).to_have_text("193% of 160h estimate")


@pytest.mark.slow
@no_chromium
def test_the_heatmap_marks_a_project_past_its_estimate_in_red_and_no_other(
    midday: LiveServer,  # noqa: F811
    page: Page,  # noqa: F811
    flushed_redis: sync_redis.Redis,  # noqa: F811
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    post(midday, now - timedelta(hours=5), 5)
    body = entry_body(new_entry_id(), "ben", "app", now - timedelta(hours=3), now)
    assert midday.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"  # 3 of 6 h: 50%
    # What the poller keeps from Clockify: the web project's own life total, 412 h.
    flushed_redis.hset(keys.project_tracked(WS), mapping={"5b0000000000000000000001": 412 * H})

    page.goto(midday.url + "/team")
    over = page.locator("#heatmap th.project.over")
    expect(over).to_have_count(1)
    expect(over).to_contain_text("Website redesign")
    expect(over).to_contain_text("258%")
    expect(over).to_have_attribute("title", "Website redesign: 258% of 160h estimate")
    expect(over).to_have_css("color", "rgb(255, 92, 92)")
    app = page.locator("#heatmap th.project", has_text="Mobile app")
    expect(app).not_to_have_class(re.compile(r"\bover\b"))
    expect(app).to_have_attribute("title", "Mobile app: 50% of 6h estimate")
    # One project's figure is Clockify's, the other's clockwall's own: the note says so.
    expect(page.locator("#note")).to_contain_text("Project progress is based on what clockwall")
