"""Breaks apart from work (issue 10, item 5, the wall's part): a running BREAK timer shows under
"On a break", never in "Working now" nor its count; HOLIDAY and TIME_OFF timers show there too,
as away. The entry type travels from the payload to the running state the wall reads.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from playwright.sync_api import Page, expect
from redis.asyncio import Redis

from app.models import parse_time_entry
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

ANA = "5a00000000000000000000a1"


def running_body(entry_id: str, entry_type: object) -> dict[str, object]:
    return {
        "id": entry_id,
        "workspaceId": WS,
        "userId": ANA,
        "timeInterval": {"start": "2026-03-25T11:00:00Z", "end": None},
        "currentlyRunning": True,
        "type": entry_type,
    }


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("BREAK", "BREAK"), ("break", "BREAK"), (" Time_Off ", "TIME_OFF"), ("", "REGULAR")],
)
def test_an_entry_type_is_kept_in_one_spelling(sent: str, kept: str) -> None:
    assert parse_time_entry(running_body("5e00000000000000000000a1", sent)).entry_type == kept


async def test_a_running_breaks_type_reaches_the_running_state_and_the_snapshot(
    redis: Redis, clock: FixedClock
) -> None:
    store = TotalsStore(redis, ZoneInfo("Europe/Berlin"), 0, 1000, clock=clock)
    await store.apply_entry(
        parse_time_entry(running_body("5e00000000000000000000a1", "BREAK")), "create"
    )
    await store.apply_entry(
        parse_time_entry(running_body("5e00000000000000000000a2", "REGULAR")), "create"
    )
    assert {e["id"][-2:]: e["type"] for e in await store.read_running(WS)} == {
        "a1": "BREAK",
        "a2": "REGULAR",
    }
    snapshot = orjson.loads(
        (await read_snapshot(store, WS, date(2026, 3, 23), date(2026, 3, 29), {})).data
    )
    assert sorted(e["type"] for e in snapshot["running"]) == ["BREAK", "REGULAR"]


# Chromium tests are slow (marked so), and skipped where Debian's Chromium is not installed.
no_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"
)


# The wall --------------------------------------------------------------------------------------
def start(server: LiveServer, user: str, entry_type: str, minutes: int, project: str | None) -> str:
    entry_id = new_entry_id()
    now = datetime.now(UTC).replace(microsecond=0)
    body = entry_body(entry_id, user, project, now - timedelta(minutes=minutes), None)
    body["type"] = entry_type
    assert server.webhook("NEW_TIMER_STARTED", body)["outcome"] == "started"
    return entry_id


@pytest.mark.slow
@no_chromium
def test_a_break_timer_shows_under_on_a_break_and_not_in_the_working_count(
    midday: LiveServer,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    start(midday, "ana", "REGULAR", 50, "web")
    brk = start(midday, "ben", "BREAK", 12, None)
    start(midday, "cleo", "TIME_OFF", 120, None)
    page.goto(midday.url + "/")
    wait_live(page)

    expect(page.locator("li.timer")).to_have_count(1)
    expect(page.locator("li.timer .who")).to_have_text("Ana Lima")
    expect(page.locator("#now-count")).to_have_text("1")
    away = page.locator("#away")
    expect(away).to_be_visible()
    expect(away.locator(".away-title")).to_contain_text("On a break")
    expect(page.locator("#away-count")).to_have_text("2")
    expect(away.locator(".away-item", has_text="Ben Ito").locator(".what")).to_have_text(
        re.compile(r"^0:1[23]:\d\d$")
    )
    expect(away.locator(".away-item", has_text="Cleo Park").locator(".what")).to_have_text(
        "time off"
    )
    # Nor does a break make its person busy in the people list; the feed calls it a break.
    expect(page.locator("#people .person.busy")).to_have_count(1)
    expect(page.locator("#feed .feed-item", has_text="Ben Ito started a break")).to_have_count(1)

    # Ben's break ends and he gets back to work: he moves from the break line to the work.
    now = datetime.now(UTC).replace(microsecond=0)
    body = entry_body(brk, "ben", None, now - timedelta(minutes=12), now)
    body["type"] = "BREAK"
    assert midday.webhook("TIMER_STOPPED", body)["outcome"] == "stopped"
    start(midday, "ben", "REGULAR", 0, "support")
    expect(page.locator("#now-count")).to_have_text("2")
    expect(page.locator("#away-count")).to_have_text("1")
    expect(page.locator("li.timer .who")).to_have_text(["Ana Lima", "Ben Ito"])


@pytest.mark.slow
@no_chromium
def test_with_only_breaks_running_the_wall_says_no_one_is_tracking_and_lists_them(
    midday: LiveServer,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    start(midday, "ben", "BREAK", 5, None)
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#now-count")).to_have_text("")
    expect(page.locator("#away .away-item")).to_have_count(1)
