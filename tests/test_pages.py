"""The wall and the report pages in a real headless Chromium against the real app and Redis.

Each test waits for what the page shows (Playwright's expect), never for a fixed time. Pages run
under a strict Content-Security-Policy; a CSP violation or an uncaught script error fails the test.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from app.main import PAGES, render_page
from tests import dbs
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    LiveServer,
    entry_body,
    flushed_db,
    midday_zone,
    new_entry_id,
    project_body,
    start_live,
    watched_tab,
    week_days_so_far,
)
from tests.conftest import redis_url
from tests.payloads import hm, utc

DB = dbs.PAGES
REPORT_WEEK = ("2026-03-23", "2026-03-29")  # Monday to Sunday, Europe/Berlin (UTC+1 then)
EUR, USD = "EUR", "USD"
ND = "\N{EN DASH}"  # the pages' ranges, time spans and empty cells

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists(CHROMIUM), reason="Debian chromium is not installed"
)


# Fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def flushed_redis() -> Iterator[None]:
    with flushed_db(redis_url(DB)):
        yield


def start_server(timezone: str) -> LiveServer:
    return start_live(redis_url(DB), timezone=timezone)


@pytest.fixture
def berlin(flushed_redis: None) -> Iterator[LiveServer]:
    server = start_server("Europe/Berlin")
    yield server
    server.stop()


@pytest.fixture
def midday(flushed_redis: None) -> Iterator[LiveServer]:
    """A server whose reporting zone has midday now: 'today' cannot roll over mid-test."""
    server = start_server(midday_zone(datetime.now(UTC)))
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with watched_tab(browser) as tab:
        yield tab


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def wait_live(page: Page) -> None:
    expect(page.locator("#conn-text")).to_have_text(re.compile(r"^Live"))


# The wall --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_wall_shows_a_started_timer_ticking_then_its_stopped_time_in_the_totals(
    midday: LiveServer, page: Page
) -> None:
    midday.webhook("NEW_PROJECT", project_body("web"))  # known before: its estimate is shown
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("#empty")).to_have_text("No one is tracking time right now…")
    expect(page.locator("#today .big")).to_have_text("0 h 00 m")

    entry_id = new_entry_id()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=90)
    body = entry_body(entry_id, "ana", "web", start, None, description="Homepage layout")
    assert midday.webhook("NEW_TIMER_STARTED", body)["outcome"] == "started"

    timer = page.locator(f'li.timer[data-entry="{entry_id}"]')
    feed = page.locator("#feed .feed-item")
    expect(timer).to_be_visible(timeout=1000)
    expect(timer.locator(".who")).to_have_text("Ana Lima")
    expect(timer.locator(".project")).to_have_text("Website redesign")
    expect(timer.locator(".client")).to_have_text("Acme")
    expect(timer.locator(".desc")).to_have_text("Homepage layout")
    elapsed = timer.locator(".elapsed")
    expect(elapsed).to_have_text(re.compile(r"^1:30:\d\d$"))
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=2500)  # it ticks by itself
    expect(page.locator("#empty")).to_be_hidden()
    expect(page.locator("#today .big")).to_have_text(re.compile(r"^1 h 3\d m$"))  # running counts
    expect(page.locator("#feed .feed-item").first).to_contain_text(
        "Ana Lima started Website redesign"
    )

    body = entry_body(
        entry_id, "ana", "web", start, start + timedelta(minutes=80), description="Homepage layout"
    )
    assert midday.webhook("TIMER_STOPPED", body)["outcome"] == "stopped"
    expect(timer).to_have_count(0, timeout=1000)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#today .big")).to_have_text("1 h 20 m")
    expect(page.locator("#week .big")).to_have_text("1 h 20 m")
    expect(page.locator("#feed .feed-item").first).to_contain_text(
        "Ana Lima stopped Website redesign · 1h 20m"
    )
    bar = page.locator("#projects .bar-row").first
    expect(bar.locator(".name")).to_have_text("Website redesign")
    expect(bar.locator(".hours")).to_have_text("1 h 20 m")
    expect(bar.locator(".budget-text")).to_have_text("7% of 20h estimate")
    person = page.locator("#people .person").first
    expect(person.locator(".name")).to_have_text("Ana Lima")
    expect(person.locator(".week")).to_have_text("1 h 20 m")

    # An edit replaces the entry's contribution; a delete removes it.
    body = entry_body(entry_id, "ana", "support", start, start + timedelta(hours=2))
    assert midday.webhook("TIME_ENTRY_UPDATED", body)["outcome"] == "updated"
    expect(page.locator("#today .big")).to_have_text("2 h 00 m")
    expect(feed.first).to_contain_text("Ana Lima edited an entry on Support · 2h")
    expect(page.locator("#projects .bar-row .name")).to_have_text(["Support"])
    assert midday.webhook("TIME_ENTRY_DELETED", body)["outcome"] == "deleted"
    expect(page.locator("#today .big")).to_have_text("0 h 00 m")
    expect(feed.first).to_contain_text("Ana Lima deleted 2h on Support")
    expect(page.locator("#projects .bar-row")).to_have_count(0)


@pytest.mark.slow
def test_wall_rounds_money_once_per_total_as_the_api_does(midday: LiveServer, page: Page) -> None:
    # Three 10-second entries at 100.00/h: 300000 / 3600 = 83.33 cents, so 0.83 (0.84 if each
    # entry were rounded). One is in the snapshot, two arrive as change events.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    bodies = [
        entry_body(new_entry_id(), "ana", "web", at, at + timedelta(seconds=10), rate=(10000, EUR))
        for at in (start, start + timedelta(minutes=1), start + timedelta(minutes=2))
    ]
    midday.webhook("NEW_TIME_ENTRY", bodies[0])
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("#today .money")).to_have_text("€0.28")
    for body in bodies[1:]:
        midday.webhook("NEW_TIME_ENTRY", body)
    expect(page.locator("#today .money")).to_have_text("€0.83")
    expect(page.locator("#week .money")).to_have_text("€0.83")
    assert midday.api("/api/summary", groupBy="PROJECT")["billableAmount"] == 0.83


@pytest.mark.slow
def test_wall_recovers_by_itself_after_a_server_restart(midday: LiveServer, page: Page) -> None:
    page.goto(midday.url + "/")
    wait_live(page)
    midday.stop()
    expect(page.locator("#conn-text")).to_have_text("Reconnecting…")

    midday.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    body = entry_body(new_entry_id(), "cleo", "support", start, start + timedelta(hours=2))
    assert midday.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"

    expect(page.locator("#feed .feed-item").first).to_contain_text(
        "Cleo Park added 2h on Support", timeout=15_000
    )
    expect(page.locator("#today .big")).to_have_text("2 h 00 m")
    wait_live(page)


@pytest.mark.slow
def test_wall_shows_an_error_state_with_retry_when_the_stream_is_refused(
    midday: LiveServer, page: Page
) -> None:
    page.goto(midday.url + "/?workspace=nope")
    problem = page.locator("#problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("workspace='nope' is not configured here")
    expect(page.locator("#conn-text")).to_have_text("Reconnecting…")
    expect(page.locator("#retry")).to_be_visible()
    page.goto(midday.url + "/?workspace=nope&kiosk=1")
    expect(problem).to_be_visible()
    expect(page.locator("#retry")).to_be_hidden()


@pytest.mark.slow
def test_wall_kiosk_mode_hides_controls_and_the_cursor(midday: LiveServer, page: Page) -> None:
    page.goto(midday.url + "/?kiosk=1")
    wait_live(page)
    expect(page.locator("nav.nav")).to_be_hidden()
    assert page.evaluate("getComputedStyle(document.body).cursor") == "none"
    page.goto(midday.url + "/summary?kiosk=1")
    expect(page.locator("#range")).to_be_hidden()
    expect(page.locator("nav.nav")).to_be_hidden()


@pytest.mark.slow
def test_wall_with_a_busy_team_fits_the_screen_and_raises_alerts(
    midday: LiveServer, page: Page
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    zone = midday_zone(now)
    days = week_days_so_far(now, zone)
    people = ["ana", "ben", "cleo", "dev"]
    projects = ["web", "support", "app", "ops"]
    for d, midnight in enumerate(days[:-1]):
        for i, user in enumerate(people):
            start = midnight + timedelta(hours=8 + i)
            end = start + timedelta(minutes=45 + 25 * ((d + i) % 4))
            rate = (12000, EUR) if i % 2 == 0 else ((9000, USD) if i == 1 else None)
            midday.webhook(
                "NEW_TIME_ENTRY",
                entry_body(new_entry_id(), user, projects[(d + i) % 4], start, end, rate=rate),
            )
    for project in projects:
        midday.webhook("NEW_PROJECT", project_body(project))
    today = days[-1]
    midday.webhook(
        "NEW_TIME_ENTRY",
        entry_body(
            new_entry_id(),
            "dev",
            "ops",
            today + timedelta(hours=7),
            today + timedelta(hours=8, minutes=15),
            description="Server updates",
        ),
    )
    running = [
        ("ana", "web", timedelta(minutes=42), "Homepage layout and navigation"),
        ("ben", "support", timedelta(hours=1, minutes=5), "Ticket #4812: invoices not sent"),
        ("cleo", "app", timedelta(hours=9, minutes=30), "Release 2.4 QA"),
        ("dev", None, timedelta(days=1, hours=2), ""),
    ]
    for user, project, ago, description in running:
        midday.webhook(
            "NEW_TIMER_STARTED",
            entry_body(
                new_entry_id(),
                user,
                project,
                now - ago,
                None,
                description=description,
                rate=(12000, EUR),
            ),
        )

    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("li.timer")).to_have_count(4)
    expect(page.locator("li.timer .who").first).to_have_text("Dev Rao")  # longest first
    alerts = page.locator("#alerts .alert")
    expect(alerts.filter(has_text="Cleo Park's timer has been running for 9h 30m")).to_have_count(1)
    expect(alerts.filter(has_text="Dev Rao's timer is still running since")).to_have_count(1)
    expect(page.locator("#week .money")).to_contain_text("€")
    screenshot(page, "wall")
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('.panel')]
            .filter((el) => el.scrollHeight > el.clientHeight + 1)
            .map((el) => el.className)"""
    )
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")


# The reports ----------------------------------------------------------------------------------
def post_report_week(server: LiveServer) -> None:
    """Known entries in the week of 2026-03-23 (Berlin, UTC+1) and one just after it."""
    entries: list[tuple[str, str | None, datetime, int, tuple[int, str] | None, str]] = [
        ("ana", "web", utc(2026, 3, 23, 8, 0), 9000, (12000, EUR), "Homepage layout"),
        ("ben", "web", utc(2026, 3, 24, 12, 0), 4800, (12000, EUR), "Navigation"),
        ("ana", "support", utc(2026, 3, 24, 14, 0), 2700, None, "Ticket #4812"),
        ("cleo", "support", utc(2026, 3, 25, 7, 0), 7200, (9000, USD), "On call"),
        ("ben", None, utc(2026, 3, 26, 9, 0), 1830, None, "Planning"),
        ("ana", "web", utc(2026, 3, 30, 8, 0), 3600, (12000, EUR), "Next week"),
    ]
    for user, project, start, seconds, rate, description in entries:
        body = entry_body(
            new_entry_id(),
            user,
            project,
            start,
            start + timedelta(seconds=seconds),
            description=description,
            rate=rate,
        )
        assert server.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"


def table_rows(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.locator(selector).evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    return rows


def api_rows(data: dict[str, Any]) -> list[list[str]]:
    def hms(seconds: int) -> str:
        return f"{hm(seconds)}:{seconds % 60:02d}"

    def amounts(items: list[dict[str, Any]]) -> str:
        symbols = {EUR: "€", USD: "$"}
        return " + ".join(f"{symbols[a['currency']]}{a['amount']:,.2f}" for a in items) or ND

    return [
        [g["name"], hms(g["totalSeconds"]), hms(g["billableSeconds"]), amounts(g["amounts"])]
        for g in data["groups"]
    ] + [
        ["Total", hms(data["totalSeconds"]), hms(data["billableSeconds"]), amounts(data["amounts"])]
    ]


@pytest.mark.slow
def test_summary_shows_exact_hours_and_amounts_and_refreshes_live(
    berlin: LiveServer, page: Page
) -> None:
    post_report_week(berlin)
    page.clock.set_fixed_time(utc(2026, 3, 25, 12, 0))  # "This week" is the report week
    page.goto(berlin.url + "/summary")  # in the workspace's duration format, h:mm:ss
    expect(page.locator("#range-label")).to_have_text(f"Mar 23 {ND} Mar 29, 2026")
    expect(page.locator("#total")).to_contain_text("7:05:30")
    expected = [
        ["Website redesign", "3:50:00", "3:50:00", "€460.00"],
        ["Support", "2:45:00", "2:00:00", "$180.00"],
        ["(Without project)", "0:30:30", "0:00:00", ND],
        ["Total", "7:05:30", "5:50:00", "€460.00 + $180.00"],
    ]
    assert table_rows(page, "#summary tbody tr, #summary tfoot tr") == expected
    api = berlin.api("/api/summary", start=REPORT_WEEK[0], end=REPORT_WEEK[1], groupBy="PROJECT")
    assert api_rows(api) == expected
    screenshot(page, "summary")

    page.select_option("#group", "CLIENT")
    expect(page.locator("#group-label")).to_have_text("Client")
    expect(page.locator("#summary tbody tr").first).to_contain_text("Acme")
    assert table_rows(page, "#summary tbody tr") == [
        ["Acme", "3:50:00", "3:50:00", "€460.00"],
        ["Globex", "2:45:00", "2:00:00", "$180.00"],
        ["(Without client)", "0:30:30", "0:00:00", ND],
    ]
    assert "groupBy=CLIENT" in page.url

    page.select_option("#preset", "last-week")
    expect(page.locator("#range-label")).to_have_text(f"Mar 16 {ND} Mar 22, 2026")
    expect(page.locator("#summary tbody")).to_have_text("No time tracked for this period.")
    page.select_option("#preset", "custom")
    page.fill("#start", "2026-03-23")
    page.fill("#end", "2026-03-30")
    expect(page.locator("#total")).to_contain_text("8:05")
    page.select_option("#preset", "this-week")
    expect(page.locator("#total")).to_contain_text("7:05")

    # Live: a new entry in the range shows up without a reload.
    body = entry_body(
        new_entry_id(), "dev", "support", utc(2026, 3, 27, 10, 0), utc(2026, 3, 27, 11, 0)
    )
    berlin.webhook("NEW_TIME_ENTRY", body)
    expect(page.locator("#total")).to_contain_text("8:05")
    expect(page.locator("#summary tbody tr").nth(1)).to_contain_text("Globex3:45")


@pytest.mark.slow
def test_team_heatmap_shows_people_by_projects_with_totals(berlin: LiveServer, page: Page) -> None:
    post_report_week(berlin)
    page.goto(berlin.url + f"/team?start={REPORT_WEEK[0]}&end={REPORT_WEEK[1]}&duration=COMPACT")
    # Minutes to the nearest (7:05:30 shows 7:06), each row's cells adding up to its total.
    expect(page.locator("#heatmap tfoot")).to_contain_text("7:06")
    assert table_rows(page, "#heatmap tr") == [
        ["Person", "Website redesign", "Support", "(Without project)", "Total"],
        ["Ana Lima", "2:30", "0:45", ND, "3:15"],
        ["Ben Ito", "1:20", ND, "0:31", "1:51"],
        ["Cleo Park", ND, "2:00", ND, "2:00"],
        ["Total", "3:50", "2:45", "0:31", "7:06"],
    ]
    api = berlin.api("/api/team", start=REPORT_WEEK[0], end=REPORT_WEEK[1])
    assert [hm(s) for s in api["cells"][0]] == ["2:30", "0:45", "0:00"]
    zero = page.locator("#heatmap td.cell.zero").first
    assert zero.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(30, 38, 51)"
    # Shades by rank (team.js): the largest cell the strongest, the smallest the lightest.
    shades = page.locator("#heatmap td.cell:not(.zero)").evaluate_all(
        "cells => cells.map(c => [c.textContent, Number(c.className.match(/shade-([0-9])/)[1])])"
    )
    assert dict(shades)["2:30"] == 5 and dict(shades)["0:31"] == 1
    screenshot(page, "team")


@pytest.mark.slow
def test_weekly_report_groups_by_day_copies_as_text_and_prints_clean(
    berlin: LiveServer, page: Page
) -> None:
    post_report_week(berlin)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(berlin.url + f"/weekly?start={REPORT_WEEK[0]}&end={REPORT_WEEK[1]}&duration=COMPACT")
    # Minutes to the nearest (7:05:30 shows 7:06); the half minute goes to the day that has it.
    expect(page.locator("#week-total")).to_have_text("Total 7:06 h")
    days = page.locator("section.day h3")
    expect(days).to_have_count(4)
    assert days.all_inner_texts() == [
        "Monday, March 23\n2:30",
        "Tuesday, March 24\n2:05",
        "Wednesday, March 25\n2:00",
        "Thursday, March 26\n0:31",
    ]
    first = page.locator("section.day").first.locator("li.entry").first
    expect(first.locator(".time")).to_have_text(f"09:00{ND}11:30")
    expect(first.locator(".duration")).to_have_text("2:30")
    expect(first.locator(".tag")).to_have_text("Website redesign (Acme)")
    expect(first.locator(".desc")).to_have_text("Homepage layout")
    dot_color = first.locator(".dot").evaluate("el => getComputedStyle(el).backgroundColor")
    assert dot_color == "rgb(233, 30, 99)"  # the project's #E91E63
    screenshot(page, "weekly", full_page=True)

    page.click("#copy")
    expect(page.locator("#copied")).to_have_text("Copied.")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.splitlines()[:6] == [
        f"Weekly report · Mar 23 {ND} Mar 29, 2026",
        "Total: 7:06 h",
        "",
        "Monday, March 23 — 2:30 h",
        f"  09:00{ND}11:30   2:30  Website redesign (Acme) — Homepage layout (Ana Lima)",
        "",
    ]
    assert f"  10:00{ND}10:30   0:31  (Without project) — Planning (Ben Ito)" in text
    assert "\nBy person\n  Ana Lima: 3:15 h\n  Cleo Park: 2:00 h\n  Ben Ito: 1:51 h\n" in text

    page.emulate_media(media="print")
    expect(page.locator("nav.nav")).to_be_hidden()
    expect(page.locator("#range")).to_be_hidden()
    expect(page.locator("#copy")).to_be_hidden()
    expect(page.locator("#conn")).to_be_hidden()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    assert page.evaluate("getComputedStyle(document.body).color") == "rgb(0, 0, 0)"
    # A day may break between its entries (a tall day must not leave page 1 blank); an entry not.
    first_day = page.locator("section.day").first
    assert first_day.evaluate("el => getComputedStyle(el).breakInside") == "auto"
    assert first_day.locator("li.entry").first.evaluate(
        "el => getComputedStyle(el).breakInside"
    ) == ("avoid")
    screenshot(page, "weekly-print", full_page=True)
    page.emulate_media(media="screen")
    expect(page.locator("nav.nav")).to_be_visible()


def test_every_page_is_served_whole_with_its_shared_parts_in_place() -> None:
    for name in PAGES.values():
        html = render_page(name)
        assert html is not None, name
        assert "<!--#include" not in html, name
        assert html.rstrip().endswith("</html>"), name
        assert 'id="conn"' in html, name  # every page says whether it is live
    for name in ("summary.html", "team.html", "weekly.html"):
        html = render_page(name) or ""
        assert 'id="preset"' in html and 'id="problem"' in html and 'data-page="/team"' in html
