"""The Summary page in a real headless Chromium against the real app and Redis: filters kept in
the URL, one- and two-level grouping checked against /api/summary, charts that follow live
changes, the coverage banner, the CSV download, the loading/empty/error states and paper.

Each test waits for what the page shows (Playwright's expect); a held request (page.route)
stands in for a slow server, never a sleep. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest
import redis
from playwright.sync_api import Browser, Page, Route, expect

from app import keys
from tests import dbs
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    USERS,
    LiveServer,
    entry_body,
    flushed_db,
    new_entry_id,
    project_body,
    start_live,
    watched_tab,
)
from tests.conftest import WS, redis_url
from tests.payloads import utc
from tests.test_pages import post_report_week

# The Chromium page tests share one database, one test at a time (tests/dbs.py).
DB = dbs.PAGES
WEEK = ("2026-03-23", "2026-03-29")  # Monday to Sunday, Europe/Berlin
MARCH = ("2026-03-01", "2026-03-31")
ND = "\N{EN DASH}"
ANA, BEN = USERS["ana"][0], USERS["ben"][0]
WEB = "5b0000000000000000000001"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not __import__("os").path.exists(CHROMIUM), reason="Debian chromium is not installed"
    ),
]


# Fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def db() -> Iterator[redis.Redis]:
    with flushed_db(redis_url(DB)) as client:
        yield client


@pytest.fixture
def server(db: redis.Redis) -> Iterator[LiveServer]:
    live = start_live(redis_url(DB), timezone="Europe/Berlin")
    yield live
    live.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with watched_tab(browser) as tab:
        tab.set_viewport_size({"width": 1440, "height": 1000})
        yield tab


# Helpers -------------------------------------------------------------------------------------
def summary_url(server: LiveServer, start: str, end: str, **query: str) -> str:
    return f"{server.url}/summary?" + urlencode(
        {"range": "custom", "start": start, "end": end, **query}
    )


def hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def seconds_of(text: str) -> int:
    h, m, s = (int(p) for p in text.split(":"))
    return h * 3600 + m * 60 + s


def money(items: list[dict[str, Any]]) -> str:
    symbols = {"EUR": "€", "USD": "$"}
    return " + ".join(f"{symbols[a['currency']]}{a['amount']:,.2f}" for a in items) or ND


def page_rows(page: Page) -> list[list[str]]:
    """Each body and footer row of the table: its kind (group, parent, child, total), then its
    cells' text."""
    rows: list[list[str]] = page.locator("#summary tbody tr, #summary tfoot tr").evaluate_all(
        """rows => rows.map(r => [
            r.closest('tfoot') ? 'total' : (r.classList.contains('child') ? 'child'
                : r.classList.contains('parent') ? 'parent' : 'group'),
            ...[...r.cells].map(c => c.textContent.trim())])"""
    )
    return rows


def api_rows(answer: dict[str, Any]) -> list[list[str]]:
    """What the page must show for an answer, in h:mm:ss (exact, so no rounding in between)."""
    two = len(answer["groupBy"]) == 2

    def cells(bucket: dict[str, Any]) -> list[str]:
        return [
            hms(bucket["totalSeconds"]),
            hms(bucket["billableSeconds"]),
            money(bucket["amounts"]),
        ]

    out = []
    for group in answer["groups"]:
        out.append(["parent" if two else "group", group["name"], *cells(group)])
        out += [["child", child["name"], *cells(child)] for child in group.get("children", [])]
    return [*out, ["total", "Total", *cells(answer)]]


def url_query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def wait_live(page: Page) -> None:
    expect(page.locator("#conn-text")).to_have_text(re.compile(r"^Live"))


def pump_until(page: Page, check: Callable[[], bool], what: str, timeout_ms: int = 10_000) -> None:
    """Let Playwright deliver events (route handlers run then) until `check` holds."""
    waited = 0
    while not check():
        if waited > timeout_ms:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(20)
        waited += 20


class HeldRequests:
    """Holds the page's /api/summary requests (a slow server) until released."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.routes: list[Route] = []
        self.pattern = re.compile(r"/api/summary\?")
        page.route(self.pattern, self.hold)

    def hold(self, route: Route) -> None:
        self.routes.append(route)

    def wait(self, count: int) -> None:
        pump_until(self.page, lambda: len(self.routes) >= count, f"{count} held requests")

    def release(self) -> None:
        for route in self.routes:
            route.continue_()
        self.routes.clear()
        self.page.unroute(self.pattern)


def post(
    server: LiveServer, user: str, project: str | None, start: datetime, seconds: int, **extra: Any
) -> None:
    body = entry_body(new_entry_id(), user, project, start, start + timedelta(seconds=seconds))
    body.update(extra)
    assert server.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"


# Filters and the URL ---------------------------------------------------------------------------
def test_filters_change_the_numbers_and_the_url_and_work_from_the_keyboard(
    server: LiveServer, page: Page
) -> None:
    post_report_week(server)
    page.goto(summary_url(server, *WEEK))
    expect(page.locator("#total")).to_contain_text("7:05:30")

    # The person picker, by keyboard only: open, search, tick the one match, close.
    button = page.locator('.picker-button[data-param="users"]')
    button.focus()
    page.keyboard.press("Enter")
    search = page.locator('.picker[data-param="users"] .picker-search')
    expect(search).to_be_focused()
    expect(page.locator('.picker[data-param="users"] .picker-count')).to_have_text("3 people")
    page.keyboard.type("lima")
    expect(page.locator('.picker[data-param="users"] .picker-count')).to_have_text("1 of 3 people")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    expect(page.locator("#total")).to_contain_text("3:15:00")  # Ana: 2:30 + 0:45
    assert url_query(page)["users"] == [ANA]
    page.keyboard.press("Escape")
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_text("PersonAna Lima")
    answer = server.api("/api/summary", start=WEEK[0], end=WEEK[1], users=ANA)
    assert page_rows(page) == api_rows(answer)

    # Billable only: Ana's web hours; non-billable: her support ticket.
    page.select_option(".filter-billable", "false")
    expect(page.locator("#total")).to_contain_text("0:45:00")
    assert url_query(page)["billable"] == ["false"]
    answer = server.api("/api/summary", start=WEEK[0], end=WEEK[1], users=ANA, billable="false")
    assert page_rows(page) == api_rows(answer)

    # "Without project" is a choice of its own: Ana has none, so the period is empty.
    page.click('.picker-button[data-param="projects"]')
    page.locator('.picker[data-param="projects"] li[data-id="none"] input').check()
    expect(page.locator("#summary tbody")).to_have_text(
        "No time tracked for this period with these filters."
    )
    assert url_query(page)["projects"] == ["none"]
    expect(page.locator(".charts")).to_be_hidden()

    # The open picker covers the bar: Escape in it closes it (pressed on its search box, so
    # the key reaches the picker whatever the refetch did with the focus).
    page.locator('.picker[data-param="projects"] .picker-search').press("Escape")
    expect(page.locator('.picker[data-param="projects"].open')).to_have_count(0)
    page.click(".clear-filters")
    expect(page.locator("#total")).to_contain_text("7:05:30")
    assert not {"users", "projects", "billable"} & set(url_query(page))
    expect(page.locator(".clear-filters")).to_be_hidden()

    # Description text, after a pause in typing.
    page.fill(".filter-description", "ticket")
    expect(page.locator("#total")).to_contain_text("0:45:00")
    assert url_query(page)["description"] == ["ticket"]


def test_pickers_narrow_two_hundred_people_and_fall_back_to_the_stream_s_names(
    server: LiveServer, page: Page
) -> None:
    people = [{"id": f"5a{i:022x}", "name": f"Person {i:03d}"} for i in range(1, 201)]
    names = {"users": people, "projects": [], "clients": [], "tags": [], "tasks": []}
    page.route(re.compile(r"/api/names"), lambda route: route.fulfill(json=names))
    page.goto(summary_url(server, *WEEK, users=people[116]["id"]))
    button = page.locator('.picker-button[data-param="users"]')
    expect(button).to_have_text("PersonPerson 117")  # a bookmarked id gets its name
    button.click()
    picker = page.locator('.picker[data-param="users"]')
    expect(picker.locator(".picker-count")).to_have_text("200 people")
    expect(picker.locator("li").first).to_have_attribute("data-id", people[116]["id"])  # ticked
    list_box = picker.locator(".picker-list")
    assert list_box.evaluate("el => el.scrollHeight > el.clientHeight + 100")  # it scrolls
    picker.locator(".picker-search").fill("person 15")
    expect(picker.locator(".picker-count")).to_have_text("10 of 200 people")
    picker.locator(".picker-tool", has_text="Select shown").click()
    expect(button).to_have_text("Person11 selected")
    assert len(url_query(page)["users"][0].split(",")) == 11
    page.unroute(re.compile(r"/api/names"))

    # Without /api/names (an older server), the names come from the live stream's snapshot.
    post_report_week(server)
    page.route(re.compile(r"/api/names"), lambda route: route.fulfill(status=404, json={}))
    page.goto(summary_url(server, *WEEK))
    page.click('.picker-button[data-param="users"]')
    expect(page.locator('.picker[data-param="users"] .picker-name')).to_have_text(
        ["Ana Lima", "Ben Ito", "Cleo Park"]
    )


def test_every_row_lists_currencies_in_the_total_s_order(server: LiveServer, page: Page) -> None:
    post_report_week(server)  # EUR 460 and USD 180 in all
    body = entry_body(
        new_entry_id(),
        "cleo",
        "support",
        utc(2026, 3, 27, 8),
        utc(2026, 3, 27, 8, 30),
        rate=(1000, "EUR"),
    )
    server.webhook("NEW_TIME_ENTRY", body)
    answer = server.api("/api/summary", start=WEEK[0], end=WEEK[1])
    support = next(g for g in answer["groups"] if g["id"] == "5b0000000000000000000002")
    assert [a["currency"] for a in support["amounts"]] == ["USD", "EUR"]  # its own largest first
    page.goto(summary_url(server, *WEEK))
    row = page.locator("#summary tbody tr", has_text="Support")
    expect(row.locator(".amount")).to_have_text("€5.00 + $180.00")
    expect(page.locator("#total .amount")).to_have_text("€465.00 + $180.00")


def test_a_bookmarked_url_restores_filters_grouping_format_and_range(
    server: LiveServer, page: Page
) -> None:
    post_report_week(server)
    query = {
        "groupBy": "CLIENT,PROJECT",
        "users": f"{ANA},{BEN}",
        "billable": "true",
        "type": "REGULAR",
        "duration": "DECIMAL",
    }
    page.goto(summary_url(server, *WEEK, **query))
    expect(page.locator("#range-label")).to_have_text(f"Mar 23 {ND} Mar 29, 2026")
    expect(page.locator("#preset")).to_have_value("custom")
    expect(page.locator("#start")).to_have_value(WEEK[0])
    expect(page.locator("#end")).to_have_value(WEEK[1])
    expect(page.locator("#group")).to_have_value("CLIENT")
    expect(page.locator("#group2")).to_have_value("PROJECT")
    expect(page.locator('.picker-button[data-param="users"]')).to_have_text("Person2 selected")
    expect(page.locator(".filter-billable")).to_have_value("true")
    expect(page.locator('.picker-button[data-param="type"]')).to_have_text("TypeRegular")
    expect(page.locator('#duration-format input[value="DECIMAL"]')).to_be_checked()
    expect(page.locator("#group-label")).to_have_text("Client / Project")
    # Ana's 2:30 and Ben's 1:20 on the website, all billable, in decimal hours.
    expect(page.locator("#total")).to_contain_text("3.83")
    assert page_rows(page) == [
        ["parent", "Acme", "3.83", "3.83", "€460.00"],
        ["child", "Website redesign", "3.83", "3.83", "€460.00"],
        ["total", "Total", "3.83", "3.83", "€460.00"],
    ]
    kept = url_query(page)
    for name, value in query.items():
        assert kept[name] == [value], name
    expect(page.locator("#filter-summary")).to_have_text(
        "Filtered: Person: Ana Lima, Ben Ito · Billable · Type: Regular"
    )


# Grouping ----------------------------------------------------------------------------------------
def test_two_level_grouping_shows_subtotals_equal_to_the_api_and_folds_them(
    server: LiveServer, page: Page
) -> None:
    post_report_week(server)
    page.goto(summary_url(server, *WEEK, groupBy="PROJECT,USER"))
    expect(page.locator("#group-label")).to_have_text("Project / Person")
    answer = server.api("/api/summary", start=WEEK[0], end=WEEK[1], groupBy="PROJECT,USER")
    expect(page.locator("#summary tbody tr.child")).to_have_count(5)
    rows = page_rows(page)
    assert rows == api_rows(answer)
    # Each subtotal is the sum of the rows under it, on the page as in the API.
    parents = [i for i, row in enumerate(rows) if row[0] == "parent"] + [len(rows) - 1]
    for at, end in itertools.pairwise(parents):
        children = rows[at + 1 : end]
        assert seconds_of(rows[at][2]) == sum(seconds_of(c[2]) for c in children)

    twisty = page.locator("#summary tr.parent").first.locator(".twisty")
    expect(twisty).to_have_attribute("aria-expanded", "true")
    twisty.click()
    expect(twisty).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#summary tbody tr.child:visible")).to_have_count(3)
    twisty.press("Enter")
    expect(page.locator("#summary tbody tr.child:visible")).to_have_count(5)

    # The selects: the second level never repeats the first.
    page.select_option("#group", "CLIENT")
    page.select_option("#group2", "PROJECT")
    expect(page.locator("#group-label")).to_have_text("Client / Project")
    assert url_query(page)["groupBy"] == ["CLIENT,PROJECT"]
    answer = server.api("/api/summary", start=WEEK[0], end=WEEK[1], groupBy="CLIENT,PROJECT")
    expect(page.locator("#summary tbody tr.parent").first).to_contain_text("Acme")
    assert page_rows(page) == api_rows(answer)
    assert page.locator('#group2 option[value="CLIENT"]').is_disabled()
    page.select_option("#group2", "")
    expect(page.locator("#summary tbody tr.child")).to_have_count(0)
    assert url_query(page)["groupBy"] == ["CLIENT"]


def test_tag_task_and_type_groups_are_labelled_as_on_every_page(
    server: LiveServer, page: Page
) -> None:
    tags = [
        {"id": "5d0000000000000000000001", "name": "design"},
        {"id": "5d0000000000000000000002", "name": "urgent"},
    ]
    task = {"id": "5f0000000000000000000001", "name": "Layout", "projectId": WEB}
    post(server, "ana", "web", utc(2026, 3, 23, 8), 3600, tags=tags, task=task, taskId=task["id"])
    post(server, "ben", "web", utc(2026, 3, 24, 8), 1800, tags=tags[1:])
    post(server, "cleo", None, utc(2026, 3, 25, 8), 900, type="BREAK")
    page.goto(summary_url(server, *WEEK, groupBy="TAG"))
    expect(page.locator("#group-label")).to_have_text("Tag")
    assert [row[1:3] for row in page_rows(page)] == [
        ["urgent", "1:30:00"],
        ["design", "1:00:00"],
        ["(Without tag)", "0:15:00"],
        ["Total", "1:45:00"],
    ]
    expect(page.locator("#note")).to_contain_text(
        "An entry with two tags counts under each of them"
    )
    page.select_option("#group", "TASK")
    expect(page.locator("#group-label")).to_have_text("Task")
    expect(page.locator("#summary tbody tr", has_text="(Without task)")).to_have_count(1)
    expect(page.locator("#summary tbody tr", has_text="Layout")).to_contain_text(
        "LayoutWebsite redesign"
    )  # a task with its project
    expect(page.locator("#note")).not_to_contain_text("two tags")
    page.select_option("#group", "TYPE")
    expect(page.locator("#group-label")).to_have_text("Type")
    assert [row[1:3] for row in page_rows(page)] == [
        ["Regular", "1:30:00"],
        ["Break", "0:15:00"],
        ["Total", "1:45:00"],
    ]


def test_rows_add_up_to_the_total_in_minutes_and_in_decimal_hours(
    server: LiveServer, page: Page
) -> None:
    # Eight people with 20:31 each: minutes truncated row by row would be 4 minutes short.
    people = ["ana", "ben", "cleo", "dev"]
    for i in range(8):
        post(server, people[i % 4], ["web", "support"][i // 4], utc(2026, 3, 23, 8 + i), 1231)
    page.goto(summary_url(server, *WEEK, groupBy="PROJECT,USER"))
    expect(page.locator("#total")).to_contain_text("2:44:08")
    page.locator('#duration-format label:has-text("h:mm") >> nth=1').click()
    expect(page.locator('#duration-format input[value="COMPACT"]')).to_be_checked()
    assert url_query(page)["duration"] == ["COMPACT"]
    expect(page.locator("#total")).to_contain_text("2:44")

    def minutes(text: str) -> int:
        h, m = text.split(":")
        return int(h) * 60 + int(m)

    rows = page_rows(page)
    total = minutes(rows[-1][2])
    assert total == 164  # 9848 s to the nearest minute
    parents = [r for r in rows if r[0] == "parent"]
    assert sum(minutes(r[2]) for r in parents) == total
    for at, row in enumerate(rows):
        if row[0] != "parent":
            continue
        children = [r for r in rows[at + 1 :] if r[0] == "child"][:4]
        assert sum(minutes(c[2]) for c in children) == minutes(row[2])
        assert all(abs(minutes(c[2]) * 60 - 1231) < 60 for c in children)
    expect(page.locator("#note")).to_contain_text("rounded to whole minutes")

    page.locator('#duration-format label:has-text("decimal")').click()
    expect(page.locator("#total")).to_contain_text("2.74")
    rows = page_rows(page)
    hundredths = [round(float(r[2]) * 100) for r in rows]
    assert sum(h for r, h in zip(rows, hundredths, strict=True) if r[0] == "parent") == 274
    assert sum(h for r, h in zip(rows, hundredths, strict=True) if r[0] == "child") == 274


# Charts ------------------------------------------------------------------------------------------
def test_charts_draw_a_bar_per_day_and_the_share_and_follow_a_live_change(
    server: LiveServer, page: Page
) -> None:
    for project in ("web", "support"):
        server.webhook("NEW_PROJECT", project_body(project))
    post_report_week(server)
    page.goto(summary_url(server, *MARCH))
    wait_live(page)
    chart = page.locator("#chart-days svg.chart-svg")
    expect(chart).to_have_attribute("role", "img")
    expect(chart).to_have_attribute("aria-label", re.compile(r"^Hours per day: 31 days, 5 with"))
    assert chart.locator("title").first.text_content() == "Hours per day"
    bars = page.locator("#chart-days g.bar")
    expect(bars).to_have_count(31)
    expect(page.locator('#chart-days g.bar[data-day="2026-03-23"]')).to_have_attribute(
        "data-seconds", "9000"
    )
    # Billable (solid) under non-billable (hatched): each a series of its own, with a legend.
    expect(page.locator('#chart-days g.bar[data-day="2026-03-24"] rect.segment')).to_have_count(2)
    expect(page.locator("#chart-days .chart-legend li")).to_have_text(
        [re.compile("^Billable"), re.compile("^Non-billable")]
    )
    share = page.locator("#chart-share")
    expect(share.locator("svg.chart-svg")).to_have_attribute("role", "img")
    expect(share.locator("g.segment")).to_have_count(3)
    expect(share.locator(".chart-legend li").first).to_contain_text("Website redesign")
    expect(page.locator("#share-title")).to_have_text("Share by project")

    # Stacked by project instead: one series per project, and the URL keeps the choice.
    page.check('input[name="stack"][value="group"]')
    expect(page.locator('#chart-days rect.segment[data-series="' + WEB + '"]')).to_have_count(3)
    assert url_query(page)["stack"] == ["group"]

    # Live: a new entry moves its day's bar, the share and the total without a reload.
    before = page.locator("#total").inner_text()
    post(server, "dev", "support", utc(2026, 3, 27, 10), 3600)
    expect(page.locator('#chart-days g.bar[data-day="2026-03-27"]')).to_have_attribute(
        "data-seconds", "3600"
    )
    expect(page.locator("#total")).not_to_have_text(before)
    expect(page.locator("#total")).to_contain_text("9:05:30")
    expect(share.locator(".chart-legend li", has_text="Support")).to_contain_text("3:45:00")


# Coverage ----------------------------------------------------------------------------------------
def test_the_coverage_banner_marks_a_range_reaching_before_the_imported_history(
    server: LiveServer, page: Page, db: redis.Redis
) -> None:
    post_report_week(server)
    db.hset(keys.coverage(WS), "from", "2026-03-25")
    page.goto(summary_url(server, *WEEK))
    banner = page.locator("#coverage")
    expect(banner).to_contain_text("Hours before Mar 25, 2026 are not imported")
    expect(banner.locator("code")).to_have_text("clockwall import --since 2026-03-01")
    expect(page.locator("#total")).to_contain_text("7:05:30")  # what there is, and the caveat

    page.fill("#start", "2026-03-25")
    expect(page.locator("#range-label")).to_have_text(f"Mar 25 {ND} Mar 29, 2026")
    expect(banner).to_be_hidden()

    progress = {"since": "2026-02-01", "next": "2026-02-10", "until": "2026-03-25"}
    db.hset(
        keys.coverage(WS), "import", orjson.dumps({**progress, "state": "running", "rows": 120})
    )
    page.goto(summary_url(server, "2026-02-02", "2026-02-08"))
    expect(banner).to_contain_text(
        "Importing history… (now at Feb 10, 2026, 120 entries so far). "
        "Hours before Mar 25, 2026 are not all here yet."
    )


# Export ------------------------------------------------------------------------------------------
def test_download_csv_gives_the_rows_of_the_page_summing_to_its_total(
    server: LiveServer, page: Page
) -> None:
    post_report_week(server)
    page.goto(summary_url(server, *WEEK, groupBy="PROJECT,USER", users=f"{ANA},{BEN}"))
    expect(page.locator("#download-csv")).to_be_enabled()
    page_total = page.locator("#total td.hours").inner_text()
    with page.expect_download() as info:
        page.click("#download-csv")
    download = info.value
    assert download.suggested_filename == f"clockwall-summary-{WEEK[0]}-{WEEK[1]}.csv"
    path = download.path()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header, body = rows[0], rows[1:]
    at = header.index("Duration (h:mm:ss)")
    decimal = header.index("Hours (decimal)")
    children = [r for r in body if r[1] not in ("Subtotal", "")]
    total_row = body[-1]
    assert total_row[0] == "Total"
    assert total_row[at] == page_total == "5:05:30"  # the filters went along
    assert sum(seconds_of(r[at]) for r in children) == seconds_of(page_total)
    assert abs(sum(float(r[decimal]) for r in children) - float(total_row[decimal])) < 0.01 * len(
        children
    )
    subtotals = [r[at] for r in body if r[1] == "Subtotal"]
    assert subtotals == [r[2] for r in page_rows(page) if r[0] == "parent"]


# States ------------------------------------------------------------------------------------------
def test_a_skeleton_first_then_old_rows_dimmed_never_relabelled_while_a_range_loads(
    server: LiveServer, page: Page
) -> None:
    post_report_week(server)
    page.clock.set_fixed_time(utc(2026, 3, 25, 12, 0))  # "This week" is the report week
    held = HeldRequests(page)
    page.goto(server.url + "/summary")
    held.wait(2)  # the table's query and the daily chart's
    expect(page.locator("#summary tr.skeleton")).to_have_count(3)
    expect(page.locator("body")).to_have_class(re.compile(r"\bfirst-load\b"))
    expect(page.locator("#range-label")).to_have_text("")
    expect(page.locator("#range-status")).to_have_text(f"Loading Mar 23 {ND} Mar 29, 2026…")
    held.release()
    expect(page.locator("#total")).to_contain_text("7:05:30")
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bfirst-load\b"))
    expect(page.locator("#report")).not_to_have_attribute("aria-busy", "true")

    held = HeldRequests(page)
    page.select_option("#preset", "last-week")
    held.wait(2)
    expect(page.locator("#range-status")).to_have_text(f"Loading Mar 16 {ND} Mar 22, 2026…")
    expect(page.locator("body")).to_have_class(re.compile(r"\bloading\b"))
    # The old rows stay under their own label, dimmed, until the new range's data is there.
    expect(page.locator("#range-label")).to_have_text(f"Mar 23 {ND} Mar 29, 2026")
    expect(page.locator("#total")).to_contain_text("7:05:30")
    assert float(page.locator("#report").evaluate("el => getComputedStyle(el).opacity")) < 1
    held.release()
    expect(page.locator("#range-label")).to_have_text(f"Mar 16 {ND} Mar 22, 2026")
    expect(page.locator("#summary tbody")).to_have_text("No time tracked for this period.")
    expect(page.locator(".charts")).to_be_hidden()
    expect(page.locator("#range-status")).to_have_text("")


def test_errors_offer_retry_only_when_a_retry_can_help(server: LiveServer, page: Page) -> None:
    post_report_week(server)
    unavailable = {"error": "the store (Redis) is unavailable", "hint": "retry shortly"}
    page.route(
        re.compile(r"/api/summary\?"),
        lambda route: route.fulfill(status=503, json=unavailable, headers={"Retry-After": "5"}),
    )
    page.goto(summary_url(server, *WEEK))
    problem = page.locator("#problem")
    expect(problem).to_contain_text("Could not load the report: the store (Redis) is unavailable")
    expect(page.locator("#retry")).to_be_visible()
    page.unroute(re.compile(r"/api/summary\?"))
    page.click("#retry")
    expect(page.locator("#total")).to_contain_text("7:05:30")
    expect(problem).to_be_hidden()

    refused = {
        "error": "billable='maybe' is not true or false",
        "hint": "give billable=true or billable=false",
    }
    page.route(re.compile(r"/api/summary\?"), lambda route: route.fulfill(status=400, json=refused))
    page.select_option(".filter-billable", "true")
    expect(problem).to_contain_text(
        "This report cannot be shown: billable='maybe' is not true or false. "
        "Give billable=true or billable=false."
    )
    expect(page.locator("#retry")).to_be_hidden()


def test_custom_dates_are_checked_in_words_before_anything_is_fetched(
    server: LiveServer, page: Page
) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/summary?" in r.url else None)
    page.goto(summary_url(server, *WEEK))
    expect(page.locator("#range-label")).to_have_text(f"Mar 23 {ND} Mar 29, 2026")
    error = page.locator("#range-error")
    expect(error).to_be_hidden()

    page.fill("#end", "2026-03-20")
    expect(error).to_have_text(
        "The end (Mar 20, 2026) is before the start (Mar 23, 2026): "
        "pick an end on or after the start."
    )
    expect(page.locator("#end")).to_have_attribute("aria-invalid", "true")
    page.fill("#start", "2025-01-01")
    page.fill("#end", "2026-03-29")
    expect(error).to_have_text(
        "That is 453 days; a report covers at most 366 days. Pick a later start or an earlier end."
    )
    expect(page.locator("#range-label")).to_have_text(f"Mar 23 {ND} Mar 29, 2026")

    page.fill("#start", "2026-03-01")
    expect(page.locator("#range-label")).to_have_text(f"Mar 1 {ND} Mar 29, 2026")
    expect(error).to_be_hidden()
    expect(page.locator("#end")).not_to_have_attribute("aria-invalid", "true")
    ranges = {(q["start"][0], q["end"][0]) for q in (parse_qs(urlsplit(u).query) for u in asked)}
    assert ranges == {WEEK, ("2026-03-01", "2026-03-29")}


# Paper and screens -------------------------------------------------------------------------------
def test_print_keeps_the_charts_and_totals_without_the_controls(
    server: LiveServer, page: Page
) -> None:
    from pypdf import PdfReader

    post_report_week(server)
    page.goto(summary_url(server, *WEEK, groupBy="PROJECT,USER", users=ANA))
    expect(page.locator("#total")).to_contain_text("3:15:00")
    page.set_viewport_size({"width": 390, "height": 844})  # the phone layout never prints
    page.emulate_media(media="print")
    for hidden in ("nav.nav", "#range", "#filters", "#download-csv", "#print", "#conn"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator(".charts")).to_be_visible()
    expect(page.locator("#filter-summary")).to_have_text("Filtered: Person: Ana Lima")
    row = page.locator("#summary tbody tr").first
    assert row.evaluate("el => getComputedStyle(el).breakInside") == "avoid"
    assert row.evaluate("el => getComputedStyle(el).display") == "table-row"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "summary-print.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    text = "\n".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    for words in ("Summary", "HOURS PER DAY", "SHARE BY PROJECT", "Filtered: Person: Ana Lima"):
        assert words in text, words
    assert re.search(r"Total\s*3:15:00\s*2:30:00\s*€300\.00", text), text


def test_the_page_fits_a_desk_and_a_phone_screen(server: LiveServer, page: Page) -> None:
    for project in ("web", "support", "app", "ops"):
        server.webhook("NEW_PROJECT", project_body(project))
    post_report_week(server)
    page.goto(summary_url(server, *WEEK, groupBy="PROJECT,USER"))
    expect(page.locator("#chart-days g.bar")).to_have_count(7)
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height, name in ((1440, 1000, "summary-desk"), (390, 844, "summary-phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(  # the charts redraw at their container's new width
            """() => { const el = document.querySelector('#chart-days');
                const svg = el.querySelector('svg.chart-svg');
                return Number(svg.getAttribute('width')) <= el.clientWidth; }"""
        )
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
