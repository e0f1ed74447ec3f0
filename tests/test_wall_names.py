"""The wall groups its totals by what the names say now (issue 10), in a real headless Chromium
against the real app and Redis: a project moved to another client moves its hours, a deleted
project's hours show under "No project" (a deleted client's under no client), live, without a
reload; and every figure the wall shows equals /api/summary's for the same range.

The wall's totals are cells (user x project x ... ) summed in the browser; names resolve at
render time, as the server's reports resolve them at answer time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests import dbs
from tests.browser import (
    CHROMIUM,
    CLIENTS,
    LiveServer,
    entry_body,
    flushed_db,
    local_midnight,
    midday_zone,
    new_entry_id,
    project_body,
    start_live,
    week_days_so_far,
)
from tests.conftest import WS, redis_url
from tests.test_pages import page, wait_live  # noqa: F401 (fixtures)

# Shared with test_pages and the other Chromium suites: one test at a time.
DB = dbs.PAGES
NO_PROJECT = "No project"  # the wall's label for time without a (live) project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not __import__("os").path.exists(CHROMIUM), reason="Debian chromium is not installed"
    ),
]


@pytest.fixture
def flushed_redis() -> Iterator[None]:
    with flushed_db(redis_url(DB)):
        yield


def serve(report_rounding: str | None = None) -> LiveServer:
    return start_live(
        redis_url(DB), timezone=midday_zone(datetime.now(UTC)), report_rounding=report_rounding
    )


@pytest.fixture
def midday(flushed_redis: None) -> Iterator[LiveServer]:
    """A server whose reporting zone has midday now: 'today' cannot roll over mid-test."""
    server = serve()
    yield server
    server.stop()


# What the wall shows, read back ----------------------------------------------------------------
ROWS = """rows => rows.map((row) => {
  const client = row.querySelector(".client");
  return [row.querySelector(".name").textContent, client.hidden ? "" : client.textContent,
          row.querySelector(".hours").textContent];
})"""


def seconds_of(text: str) -> int:
    """ "2 h 05 m" -> 7500."""
    found = re.fullmatch(r"(\d+) h (\d+) m", text.strip())
    assert found, f"not an h/m total: {text!r}"
    return int(found[1]) * 3600 + int(found[2]) * 60


def shown(seconds: int) -> str:
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} m"


def project_rows(tab: Page) -> list[tuple[str, str, int]]:
    """(project name, client name or "", seconds) of each project row, in order."""
    rows: list[list[str]] = tab.locator("#projects .bar-row").evaluate_all(ROWS)
    return [(name, client, seconds_of(hours)) for name, client, hours in rows]


def wall_clients(tab: Page) -> dict[str, int]:
    """The wall's hours per client: its project rows summed by the client each shows."""
    out: dict[str, int] = {}
    for _, client, seconds in project_rows(tab):
        out[client] = out.get(client, 0) + seconds
    return out


def api_groups(server: LiveServer, group_by: str, **query: str) -> dict[str, int]:
    """/api/summary's seconds per group name (the wall's labels for none)."""
    answer = server.api("/api/summary", groupBy=group_by, **query)
    none = {"(Without project)": NO_PROJECT, "(Without client)": ""}
    return {none.get(g["name"], g["name"]): g["totalSeconds"] for g in answer["groups"]}


def post_entry(
    server: LiveServer,
    user: str,
    project: str | None,
    start: datetime,
    minutes: int,
    rate: tuple[int, str] | None = None,
    hydrated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A stopped entry; `hydrated`: the project as the body carries it, when it changed."""
    body = entry_body(
        new_entry_id(), user, project, start, start + timedelta(minutes=minutes), rate=rate
    )
    if hydrated is not None:
        body["project"] = hydrated
    assert server.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"
    return body


def today_at(hour: int) -> datetime:
    now = datetime.now(UTC)
    return local_midnight(now, midday_zone(now)) + timedelta(hours=hour)


def moved(project: str, client: str) -> dict[str, Any]:
    """A PROJECT_UPDATED body: `project` now belongs to `client`."""
    client_id, client_name = CLIENTS[client]
    return {**project_body(project), "clientId": client_id, "clientName": client_name}


# (a) a project moved to another client -----------------------------------------------------------
def test_a_project_moved_to_another_client_moves_its_hours_there_without_a_reload(
    midday: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    for project in ("web", "support"):
        midday.webhook("NEW_PROJECT", project_body(project))
    post_entry(midday, "ana", "web", today_at(6), 120)
    post_entry(midday, "ben", "support", today_at(7), 60)

    page.goto(midday.url + "/")
    wait_live(page)
    page.evaluate("window.notReloaded = true")
    rows = page.locator("#projects .bar-row")
    expect(rows.locator(".name")).to_have_text(["Website redesign", "Support"])
    expect(rows.locator(".client")).to_have_text(["Acme", "Globex"])
    assert wall_clients(page) == {"Acme": 7200, "Globex": 3600} == api_groups(midday, "CLIENT")

    assert midday.webhook("PROJECT_UPDATED", moved("web", "globex"))["outcome"] == "names"
    expect(rows.locator(".client")).to_have_text(["Globex", "Globex"])
    assert wall_clients(page) == {"Globex": 10800} == api_groups(midday, "CLIENT")
    assert project_rows(page) == [
        ("Website redesign", "Globex", 7200),
        ("Support", "Globex", 3600),
    ]
    # Entries applied after the move count under the new client too, as before it.
    post_entry(midday, "cleo", "web", today_at(8), 30, hydrated=moved("web", "globex"))
    expect(rows.locator(".hours")).to_have_text(["2 h 30 m", "1 h 00 m"])
    assert wall_clients(page) == {"Globex": 12600} == api_groups(midday, "CLIENT")
    assert page.evaluate("window.notReloaded") is True


# (b) deleted names -------------------------------------------------------------------------------
def test_a_deleted_project_shows_its_hours_under_no_project_and_a_deleted_client_under_none(
    midday: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    for project in ("web", "support"):
        midday.webhook("NEW_PROJECT", project_body(project))
    post_entry(midday, "ana", "web", today_at(6), 120)
    post_entry(midday, "ben", "support", today_at(7), 60)
    post_entry(midday, "dev", None, today_at(8), 30)

    page.goto(midday.url + "/")
    wait_live(page)
    page.evaluate("window.notReloaded = true")
    rows = page.locator("#projects .bar-row")
    expect(rows.locator(".name")).to_have_text(["Website redesign", "Support", NO_PROJECT])

    assert midday.webhook("PROJECT_DELETED", project_body("support"))["outcome"] == "names"
    expect(rows.locator(".name")).to_have_text(["Website redesign", NO_PROJECT])
    assert project_rows(page) == [("Website redesign", "Acme", 7200), (NO_PROJECT, "", 5400)]
    assert api_groups(midday, "PROJECT") == {"Website redesign": 7200, NO_PROJECT: 5400}
    assert wall_clients(page) == {"Acme": 7200, "": 5400} == api_groups(midday, "CLIENT")

    acme_id, acme_name = CLIENTS["acme"]
    deleted_client = {"id": acme_id, "name": acme_name, "workspaceId": WS}
    assert midday.webhook("CLIENT_DELETED", deleted_client)["outcome"] == "names"
    expect(rows.locator(".client")).to_have_count(2)
    expect(rows.first.locator(".client")).to_be_hidden()
    assert project_rows(page) == [("Website redesign", "", 7200), (NO_PROJECT, "", 5400)]
    assert wall_clients(page) == {"": 12600} == api_groups(midday, "CLIENT")
    # The people keep their time: only projects, clients, tags and tasks fall away.
    expect(page.locator("#people .person .week")).to_have_text(["2 h 00 m", "1 h 00 m", "0 h 30 m"])
    assert page.evaluate("window.notReloaded") is True


def test_a_timer_running_on_a_deleted_project_shows_no_project(
    midday: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    midday.webhook("NEW_PROJECT", project_body("support"))
    entry_id = new_entry_id()
    body = entry_body(entry_id, "cleo", "support", datetime.now(UTC) - timedelta(minutes=5), None)
    assert midday.webhook("NEW_TIMER_STARTED", body)["outcome"] == "started"

    page.goto(midday.url + "/")
    wait_live(page)
    timer = page.locator(f'li.timer[data-entry="{entry_id}"]')
    expect(timer.locator(".project")).to_have_text("Support")
    expect(timer.locator(".client")).to_have_text("Globex")

    assert midday.webhook("PROJECT_DELETED", project_body("support"))["outcome"] == "names"
    expect(timer.locator(".project")).to_have_text(NO_PROJECT)
    expect(timer.locator(".client")).to_be_hidden()
    expect(page.locator("#projects .bar-row .name")).to_have_text([NO_PROJECT])


# (c) the wall's figures are the API's -----------------------------------------------------------
def fill_week(server: LiveServer) -> None:
    """Stopped entries on every day of the week so far (whole minutes, so the wall's h/m texts
    are exact), several users, projects, clients, rates and two currencies."""
    for project in ("web", "support", "app", "ops"):
        server.webhook("NEW_PROJECT", project_body(project))
    now = datetime.now(UTC)
    for i, midnight in enumerate(week_days_so_far(now, midday_zone(now))):
        at = midnight + timedelta(hours=5)
        post_entry(server, "ana", "web", at, 130 + i, rate=(4500, "EUR"))
        post_entry(server, "ben", "support", at, 85 + 2 * i, rate=(3333, "EUR"))
        post_entry(server, "cleo", "app", at, 50 + i)
        post_entry(server, "dev", None, at, 40 + 3 * i)
        post_entry(server, "ana", "ops", at + timedelta(hours=3), 67 + i, rate=(1999, "USD"))
        post_entry(server, "ben", "web", at + timedelta(hours=3), 7 + i, rate=(1001, "EUR"))


def money(amounts: list[dict[str, Any]]) -> list[str]:
    symbols = {"EUR": "€", "USD": "$"}
    return sorted(f"{symbols[a['currency']]}{a['amount']:,.2f}" for a in amounts)


def assert_wall_is_the_api(server: LiveServer, tab: Page, today: str) -> None:
    week = server.api("/api/summary", groupBy="PROJECT")
    expect(tab.locator("#week .big")).to_have_text(shown(week["totalSeconds"]))
    share = round(week["billableSeconds"] * 100 / week["totalSeconds"])
    expect(tab.locator("#week .share")).to_have_text(f"{share}% billable")
    assert sorted(tab.locator("#week .money span").all_text_contents()) == money(week["amounts"])
    day = server.api("/api/summary", groupBy="PROJECT", start=today, end=today)
    expect(tab.locator("#today .big")).to_have_text(shown(day["totalSeconds"]))
    assert sorted(tab.locator("#today .money span").all_text_contents()) == money(day["amounts"])

    by_project: dict[str, int] = {}
    for name, _, seconds in project_rows(tab):
        by_project[name] = by_project.get(name, 0) + seconds
    assert by_project == api_groups(server, "PROJECT")
    assert wall_clients(tab) == api_groups(server, "CLIENT")
    people = tab.locator("#people .person").evaluate_all(
        "rows => rows.map((r) => [r.querySelector('.name').textContent,"
        " r.querySelector('.today').textContent, r.querySelector('.week').textContent])"
    )
    users_today = api_groups(server, "USER", start=today, end=today)
    assert {name: seconds_of(w) for name, _, w in people} == api_groups(server, "USER")
    assert {name: seconds_of(t) for name, t, _ in people if seconds_of(t)} == users_today


@pytest.mark.parametrize("report_rounding", [None, "up:15"], ids=["exact", "rounded-up-15"])
def test_every_total_on_the_wall_equals_the_summary_api_before_and_after_live_changes(
    flushed_redis: None,
    page: Page,  # noqa: F811
    report_rounding: str | None,
) -> None:
    server = serve(report_rounding)
    try:
        fill_week(server)
        if report_rounding:
            # The server counts each entry rounded up to 15 minutes; the wall must too.
            assert server.api("/api/summary", groupBy="USER")["totalSeconds"] % 900 == 0
        now = datetime.now(UTC)
        today = local_midnight(now, midday_zone(now)).date().isoformat()
        page.goto(server.url + "/")
        wait_live(page)
        assert_wall_is_the_api(server, page, today)

        # Live: a new entry, a move, a deletion and an edit, applied by the page itself. The
        # edit comes last and changes the week's total: once the wall shows that total, it has
        # applied every change before it (one stream, in order).
        body = post_entry(server, "cleo", "support", today_at(9), 23, rate=(2500, "EUR"))
        assert server.webhook("PROJECT_UPDATED", moved("app", "globex"))["outcome"] == "names"
        assert server.webhook("PROJECT_DELETED", project_body("ops"))["outcome"] == "names"
        start = today_at(9)
        edited = entry_body(
            body["id"], "cleo", "web", start, start + timedelta(minutes=47), rate=(2500, "EUR")
        )
        assert server.webhook("TIME_ENTRY_UPDATED", edited)["outcome"] == "updated"
        assert_wall_is_the_api(server, page, today)
    finally:
        server.stop()


# Progress from the change events' project fields -------------------------------------------------
def test_a_money_budget_moves_live_by_the_exact_amounts_of_later_entries(
    midday: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    budgeted = {
        **project_body("web"),
        "timeEstimate": {"estimate": "PT0S", "active": False},
        "budgetEstimate": {"estimate": 100_000, "type": "MANUAL", "active": True},
        "activeEstimate": "BUDGET",
    }
    midday.webhook("NEW_PROJECT", budgeted)
    post_entry(midday, "ana", "web", today_at(6), 120, rate=(4500, "EUR"), hydrated=budgeted)
    page.goto(midday.url + "/")
    wait_live(page)
    budget = page.locator("#projects .budget-text")
    expect(budget).to_have_text(["9% of €1,000.00 budget"])  # 90.00 of 1000.00

    # 100 minutes at 33.33: 55.55, 145.55 in all (14.6%).
    post_entry(midday, "ben", "web", today_at(8), 100, rate=(3333, "EUR"), hydrated=budgeted)
    expect(budget).to_have_text(["15% of €1,000.00 budget"])
    post_entry(midday, "cleo", "web", today_at(9), 30, hydrated=budgeted)  # not billable
    expect(page.locator("#projects .hours")).to_have_text(["4 h 10 m"])
    expect(budget).to_have_text(["15% of €1,000.00 budget"])
    assert midday.api("/api/summary", groupBy="PROJECT")["billableAmount"] == 145.55
