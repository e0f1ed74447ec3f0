"""A share link in a real Chromium and on the raw stream: only its project's data, ever."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.config import Secret
from app.share import ShareScope, sign_scope
from tests import dbs
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    PROJECTS,
    LiveServer,
    entry_body,
    flushed_db,
    new_entry_id,
    start_live,
)
from tests.conftest import WS, redis_url
from tests.payloads import utc

DB = dbs.SHARE_PAGE
SECRET = "share-page-test-secret-key"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Debian chromium")


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with flushed_db(redis_url(DB)):
        live = start_live(redis_url(DB), timezone="UTC", secret_key=Secret(SECRET))
        yield live
        live.stop()


def share_link(project: str, hide_amounts: bool = False) -> str:
    scope = ShareScope(
        WS, "project", PROJECTS[project]["id"], int(time.time()) + 3600, hide_amounts
    )
    return sign_scope(Secret(SECRET), scope)


def seed(server: LiveServer) -> None:
    web = entry_body(
        new_entry_id(),
        "ana",
        "web",
        utc(2026, 3, 10, 9),
        utc(2026, 3, 10, 11, 30),
        description="Homepage layout",
        rate=(9500, "EUR"),
    )
    support = entry_body(
        new_entry_id(),
        "ben",
        "support",
        utc(2026, 3, 11, 9),
        utc(2026, 3, 11, 12),
        description="SECRET-OTHER-CLIENT ticket",
        rate=(8000, "USD"),
    )
    server.webhook("NEW_TIME_ENTRY", web)
    server.webhook("NEW_TIME_ENTRY", support)


@pytest.mark.slow
def test_share_page_shows_only_its_project_and_updates_live(
    server: LiveServer, browser: Browser
) -> None:
    seed(server)
    page: Page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.clock.set_fixed_time(utc(2026, 3, 25, 12, 0))  # "This month" is March 2026
    # The range is named: without one the server picks the link's default by its own clock.
    page.goto(f"{server.url}/share?share={share_link('web')}&range=this-month")
    expect(page.locator("#title")).to_have_text("Website redesign")
    expect(page.locator("#total-hours")).to_have_text("2:30")
    expect(page.locator("#total-amount")).to_have_text("€237.50")  # 2.5 h x 95.00
    expect(page.locator("#entries")).to_contain_text("Homepage layout")
    body = page.content()
    assert "Support" not in body and "SECRET-OTHER-CLIENT" not in body and "$" not in body
    # Live: another entry on the shared project appears; one on another project never does.
    server.webhook(
        "NEW_TIME_ENTRY",
        entry_body(new_entry_id(), "cleo", "support", utc(2026, 3, 12, 9), utc(2026, 3, 12, 10)),
    )
    server.webhook(
        "NEW_TIME_ENTRY",
        entry_body(
            new_entry_id(),
            "cleo",
            "web",
            utc(2026, 3, 12, 13),
            utc(2026, 3, 12, 14),
            rate=(9500, "EUR"),
        ),
    )
    expect(page.locator("#total-hours")).to_have_text("3:30")
    assert "Support" not in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "share.png"))
    page.close()


@pytest.mark.slow
def test_share_page_hides_amounts(server: LiveServer, browser: Browser) -> None:
    seed(server)
    page = browser.new_page()
    page.clock.set_fixed_time(utc(2026, 3, 25, 12, 0))
    page.goto(f"{server.url}/share?share={share_link('web', hide_amounts=True)}&range=this-month")
    expect(page.locator("#total-hours")).to_have_text("2:30")
    expect(page.locator("#amount-box")).to_be_hidden()
    assert "€" not in page.content()
    page.close()


@pytest.mark.slow
def test_a_truncated_entry_list_says_so_on_the_page(server: LiveServer, browser: Browser) -> None:
    """The server lists at most 5,000 entries of a scope (the totals are never cut); the page
    must say when the list it shows is not all of them. The answer is the server's own, marked
    truncated on the way, so the page is tested without seeding 5,001 entries."""
    import json

    from playwright.sync_api import Route

    seed(server)
    page = browser.new_page()
    page.clock.set_fixed_time(utc(2026, 3, 25, 12, 0))

    def mark_truncated(route: Route) -> None:
        answer = route.fetch()
        data = answer.json()
        data["truncated"] = True
        route.fulfill(response=answer, body=json.dumps(data))

    page.route("**/api/share/report*", mark_truncated)
    page.goto(f"{server.url}/share?share={share_link('web')}&range=this-month")
    expect(page.locator("#total-hours")).to_have_text("2:30")
    expect(page.locator("#note")).to_contain_text(
        "The list is cut at 1 entries; the totals above include every entry."
    )
    page.close()


def read_events(lines: Iterator[str], count: int) -> list[tuple[str, str]]:
    """Read `count` data events (event name, data) from an open SSE response's lines."""
    events: list[tuple[str, str]] = []
    name, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            events.append((name, data))
            name, data = "message", ""
            if len(events) == count:
                return events
    return events


def test_shared_stream_carries_nothing_outside_the_scope(server: LiveServer) -> None:
    seed(server)
    url = f"{server.url}/events?share={share_link('web')}"
    with httpx.stream("GET", url, timeout=httpx.Timeout(10.0)) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = read_events(lines, 2)  # the scoped snapshot and the status
        assert first[0][0] == "snapshot"
        assert "Support" not in first[0][1] and "Ana" not in first[0][1]
        server.webhook(
            "NEW_TIME_ENTRY",
            entry_body(
                new_entry_id(),
                "ben",
                "support",
                utc(2026, 3, 13, 9),
                utc(2026, 3, 13, 10),
                description="SECRET-OTHER-CLIENT",
            ),
        )
        server.webhook(
            "NEW_TIME_ENTRY",
            entry_body(new_entry_id(), "ana", "web", utc(2026, 3, 14, 9), utc(2026, 3, 14, 10)),
        )
        (name, data), *_ = read_events(lines, 1)
    assert name == "change"
    assert data == '{"type":"refresh","days":["2026-03-14"]}'


def test_tampered_and_expired_links_are_refused_for_page_and_stream(server: LiveServer) -> None:
    expired = sign_scope(
        Secret(SECRET), ShareScope(WS, "project", PROJECTS["web"]["id"], int(time.time()) - 5)
    )
    good = share_link("web")
    tampered = share_link("support").split(".")[0] + "." + good.split(".")[1]
    for token in (expired, tampered):
        for path in ("/share", "/events", "/api/share/report"):
            response = httpx.get(f"{server.url}{path}?share={token}", timeout=5)
            assert response.status_code == 403, (path, response.text)
            assert "ask" in response.json()["hint"]
