"""The wall seen from across the room (issue 12), in a real headless Chromium against the real app
and Redis: legible at 5 m, every person shown on a big team, cheap on a TV stick, honest about
its status, money in a fixed order or not at all.

Time in the page is Playwright's injected clock (page.clock): ticks, page turns, midnight and
staleness are driven by it, never by sleeping. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from redis.asyncio import Redis

from app.snapshot import SnapshotCache
from app.store import TotalsStore
from app.stream import ChangeHub
from tests import dbs
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    LiveServer,
    entry_body,
    flushed_db,
    midday_zone,
    new_entry_id,
    start_live,
    watched_tab,
)
from tests.conftest import WS, FixedClock, redis_url

# Shared with test_pages and test_browser_ids: the same pages in Chromium, one suite at a time.
DB = dbs.PAGES
Test = TypeVar("Test", bound=Callable[..., None])


def browser_only(test: Test) -> Test:
    """A slow test in Chromium, skipped where Debian's Chromium is not installed."""
    missing = not os.path.exists(CHROMIUM)
    skip = pytest.mark.skipif(missing, reason="Debian chromium is not installed")
    marked: Test = pytest.mark.slow(skip(test))
    return marked


# A 55-inch 16:9 panel seen from 5 m (see test_key_figures_subtend...).
PANEL_WIDTH_MM = 55 * 25.4 * 16 / math.hypot(16, 9)  # 1217.6 mm
DISTANCE_MM = 5000.0


def arcminutes(css_px: float, viewport_width: int = 1920) -> float:
    """The angle a height of `css_px` subtends at 5 m when the viewport fills the panel."""
    mm = css_px * PANEL_WIDTH_MM / viewport_width
    return math.degrees(2 * math.atan(mm / 2 / DISTANCE_MM)) * 60


# Fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def flushed_redis() -> Iterator[redis.Redis]:
    with flushed_db(redis_url(DB)) as client:
        yield client


def serve(timezone: str, clock: FixedClock | None = None) -> LiveServer:
    return start_live(redis_url(DB), clock, timezone=timezone)


@pytest.fixture
def midday(flushed_redis: redis.Redis) -> Iterator[LiveServer]:
    """A server whose reporting zone has midday now: 'today' cannot roll over mid-test."""
    server = serve(midday_zone(datetime.now(UTC)))
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with watched_tab(browser) as tab:
        yield tab


def wait_live(page: Page) -> None:
    expect(page.locator("#conn-text")).to_have_text(re.compile(r"^Live"))


def pause_clock(page: Page, ahead_ms: int = 500) -> None:
    """Stop the page's time a moment from now: from here on only the test moves it."""
    now_ms = page.evaluate("Date.now()")
    page.clock.pause_at(datetime.fromtimestamp((now_ms + ahead_ms) / 1000, UTC))


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# A big team ------------------------------------------------------------------------------------
def person(i: int) -> tuple[str, str]:
    return f"5a{i:022x}", f"Person {i:02d}"


def as_person(body: dict[str, Any], i: int) -> dict[str, Any]:
    user_id, name = person(i)
    body["userId"] = user_id
    body["user"] = {"id": user_id, "name": name, "status": "ACTIVE"}
    return body


def post_team(server: LiveServer, people: int, running: int) -> list[str]:
    """`people` people with time earlier today, the first `running` of them with a timer on."""
    now = datetime.now(UTC).replace(microsecond=0)
    projects = ["web", "support", "app", "ops"]
    for i in range(people):
        start = now - timedelta(hours=2, minutes=i)
        body = entry_body(new_entry_id(), "ana", projects[i % 4], start, start + timedelta(hours=1))
        assert server.webhook("NEW_TIME_ENTRY", as_person(body, i))["outcome"] == "created"
    for i in range(running):
        body = entry_body(new_entry_id(), "ana", projects[i % 4], now - timedelta(minutes=50), None)
        assert server.webhook("NEW_TIMER_STARTED", as_person(body, i))["outcome"] == "started"
    return [person(i)[1] for i in range(people)]


def visible_names(page: Page, selector: str) -> list[str]:
    """Names of the rows on the current page, each checked to lie inside its list's box."""
    names: list[str] = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => el.checkVisibility())
            .map((el) => {
              const list = el.closest('.pages').getBoundingClientRect();
              const box = el.getBoundingClientRect();
              if (box.bottom > list.bottom + 1 || box.top < list.top - 1) return '(clipped)';
              return el.textContent;
            })""",
        selector,
    )
    return names


# Legibility ------------------------------------------------------------------------------------
@browser_only
def test_key_figures_subtend_16_arcminutes_and_everything_else_12_at_5_metres_on_a_55_inch_tv(
    midday: LiveServer, page: Page
) -> None:
    """Convention: the angle subtended at 5 m by a text's CSS font-size (its em box), on a 55-inch
    16:9 panel (1217.6 mm wide) showing the 1920 px wide viewport, so 1 CSS px = 0.634 mm.
    16' needs 36.7 px, 12' needs 27.5 px. Key figures: who works now and for how long (timer
    card name and clock), today and this week (their digits)."""
    post_team(midday, people=3, running=2)
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("li.timer")).to_have_count(2)
    screenshot(page, "wall-room-1080p")

    def font_px(selector: str) -> float:
        size: str = page.locator(selector).first.evaluate("el => getComputedStyle(el).fontSize")
        return float(size.removesuffix("px"))

    for key in ("li.timer .who", "li.timer .elapsed", "#today .big .n", "#week .big .n"):
        assert arcminutes(font_px(key)) >= 16, (key, font_px(key))
    texts: list[list[Any]] = page.evaluate(
        """() => {
          const out = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          while (walker.nextNode()) {
            const el = walker.currentNode.parentElement;
            if (!walker.currentNode.textContent.trim() || el.closest('.sr-only')) continue;
            if (!el.checkVisibility()) continue;
            const px = parseFloat(getComputedStyle(el).fontSize);
            out.push([walker.currentNode.textContent.trim(), px]);
          }
          return out;
        }"""
    )
    assert len(texts) > 20
    small = [(text, px) for text, px in texts if arcminutes(px) < 12]
    assert small == []

    # Totals can't be read as a time of day.
    expect(page.locator("#today .big")).to_have_text(re.compile(r"^\d+ h \d\d m$"))
    expect(page.locator("#people .person .week").first).to_have_text(re.compile(r"^\d+ h \d\d m$"))

    # 4K: the same layout at twice the pixels.
    before = page.locator("#week .big").bounding_box()
    big_1080 = font_px("#today .big .n")
    page.set_viewport_size({"width": 3840, "height": 2160})
    expect(page.locator("#today .big .n").first).to_have_css("font-size", f"{big_1080 * 2:g}px")
    after = page.locator("#week .big").bounding_box()
    assert before is not None and after is not None
    assert abs(after["x"] - 2 * before["x"]) <= 2 and abs(after["y"] - 2 * before["y"]) <= 2

    # A smaller room: ?distance=3 scales every size to 3/5.
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(midday.url + "/?distance=3")
    wait_live(page)
    expect(page.locator("#today .big .n").first).to_have_css("font-size", f"{big_1080 * 3 / 5:g}px")

    # A phone: no sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(midday.url + "/")
    wait_live(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


# A big team ------------------------------------------------------------------------------------
@browser_only
def test_forty_running_timers_and_sixty_people_all_appear_within_one_rotation_cycle(
    midday: LiveServer, page: Page
) -> None:
    names = post_team(midday, people=60, running=40)
    page.clock.install()
    page.goto(midday.url + "/?rotate=10")
    wait_live(page)
    expect(page.locator("li.timer")).to_have_count(40)
    expect(page.locator("#people .person")).to_have_count(60)
    pause_clock(page)
    pagers = [page.locator(f"#{p}").inner_text() for p in ("now-pager", "people-pager")]
    counts = [int(re.fullmatch(r"\d+ / (\d+)", text)[1]) for text in pagers]  # type: ignore[index]
    assert counts[1] > 1, "60 people fit one page: the test shows nothing"
    screenshot(page, "wall-room-big-team")

    timers: set[str] = set()
    people: set[str] = set()
    # One cycle shows every panel's pages once. A live re-render may page a list anew midway (a
    # status line coming or going changes its height; it happened once on a loaded machine), so
    # the cycle may be seen up to three times, and the look stops when everyone has been shown.
    for _ in range(3 * max(counts)):
        timers.update(visible_names(page, "li.timer .who"))
        people.update(visible_names(page, "#people .person .name"))
        if timers == set(names[:40]) and people == set(names):
            break
        page.clock.run_for(10_000)
    assert timers == set(names[:40])
    assert people == set(names)


@browser_only
def test_an_idle_wall_with_forty_people_lays_out_at_most_once_a_second_and_keeps_its_nodes(
    midday: LiveServer, page: Page
) -> None:
    """Ten one-second ticks of the injected clock; after each, whatever layout the tick made
    pending is forced (so each counts once, as the next frame would). Chromium's own counters
    (CDP Performance.getMetrics) say how many layouts ran and how long the main thread worked."""
    post_team(midday, people=40, running=40)
    page.clock.install()
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("li.timer")).to_have_count(40)
    pause_clock(page)
    page.evaluate(
        """() => {
          window.keptNodes = [...document.querySelectorAll('li.timer, li.person, #today .n')];
          window.firstClock = document.querySelector('li.timer .elapsed').textContent;
          window.announcements = 0;
          new MutationObserver(() => window.announcements++).observe(
            document.getElementById('announce'),
            {childList: true, characterData: true, subtree: true});
        }"""
    )
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def metrics() -> dict[str, float]:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

    page.evaluate("document.body.offsetHeight")
    before = metrics()
    seconds = 10
    for _ in range(seconds):
        page.clock.run_for(1000)
        page.evaluate("document.body.offsetHeight")
    after = metrics()

    layouts_per_s = (after["LayoutCount"] - before["LayoutCount"]) / seconds
    styles_per_s = (after["RecalcStyleCount"] - before["RecalcStyleCount"]) / seconds
    cpu = (after["TaskDuration"] - before["TaskDuration"]) / seconds * 100
    print(
        f"\nidle wall, 40 people and 40 timers: {layouts_per_s:.1f} layouts/s, "
        f"{styles_per_s:.1f} style recalcs/s, main thread {cpu:.2f} % of a core "
        "(including the test's own calls)"
    )
    assert layouts_per_s <= 1
    kept = page.evaluate(
        """() => {
          const now = [...document.querySelectorAll('li.timer, li.person, #today .n')];
          return now.length === keptNodes.length && now.every((node, i) => node === keptNodes[i]);
        }"""
    )
    assert kept, "a tick replaced nodes instead of updating their text"
    assert page.evaluate("document.querySelector('li.timer .elapsed').textContent") != (
        page.evaluate("window.firstClock")
    )
    # The live region is quiet while only times tick; the shared header's line is not live here.
    assert page.evaluate("window.announcements") == 0
    assert page.locator("#conn").get_attribute("aria-live") is None
    expect(page.locator("#announce")).to_have_text("Live")


# Honest status ---------------------------------------------------------------------------------
@browser_only
def test_a_timer_that_crossed_midnight_is_not_forgotten_until_it_passes_the_long_timer_threshold(
    flushed_redis: redis.Redis, page: Page
) -> None:
    half_past_midnight = datetime(2026, 3, 24, 23, 30, tzinfo=UTC)  # 00:30 on Wednesday in Berlin
    server = serve("Europe/Berlin", FixedClock(half_past_midnight))
    try:
        start = datetime(2026, 3, 24, 21, 53, tzinfo=UTC)  # 22:53 on Tuesday in Berlin
        body = entry_body(new_entry_id(), "ana", "web", start, None)
        assert server.webhook("NEW_TIMER_STARTED", body)["outcome"] == "started"
        page.clock.install(time=half_past_midnight)
        page.goto(server.url + "/")
        wait_live(page)
        timer = page.locator("li.timer")
        expect(timer.locator(".elapsed")).to_have_text(re.compile(r"^1:3\d:\d\d$"))
        pause_clock(page)
        expect(timer).not_to_have_class(re.compile(r"\bwarn\b"))
        expect(page.locator("#alerts .alert")).to_have_count(0)

        # Eight hours (CLOCKWALL_LONG_TIMER_HOURS) after it started, it is.
        page.clock.fast_forward(
            int((start + timedelta(hours=8, minutes=1) - half_past_midnight).total_seconds() * 1000)
            - 500
        )
        page.clock.run_for(1000)
        expect(timer).to_have_class(re.compile(r"\bwarn\b"))
        expect(page.locator("#alerts .alert")).to_have_text(
            ["Ana Lima's timer is still running since Tuesday, Mar 24"]
        )
    finally:
        server.stop()


@browser_only
def test_a_fresh_install_says_no_webhook_received_yet_and_what_to_do(
    midday: LiveServer, page: Page
) -> None:
    page.goto(midday.url + "/")
    wait_live(page)
    expect(page.locator("#data-age")).to_have_text("no webhook received yet")
    onboarding = page.locator("#onboarding")
    expect(onboarding).to_be_visible()
    expect(onboarding).to_contain_text(f"{midday.url}/webhooks/clockify")
    expect(onboarding).to_contain_text("CLOCKIFY_WEBHOOK_TOKENS")
    expect(page.locator("#conn")).not_to_have_class(re.compile(r"\bok\b"))  # no green dot yet
    expect(page.locator("#announce")).to_have_text("Live: no webhook received yet")
    screenshot(page, "wall-room-fresh-install")

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    body = entry_body(new_entry_id(), "ben", "support", start, start + timedelta(hours=1))
    assert midday.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"
    expect(onboarding).to_be_hidden()
    expect(page.locator("#data-age")).to_have_text("last change just now")
    expect(page.locator("#conn")).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#announce")).to_have_text("Live")
    # Nobody is tracking: yesterday's and this week's highlights, not an empty panel.
    expect(page.locator("#highlights")).to_contain_text("Top project this week")
    expect(page.locator("#highlights")).to_contain_text("Support · 1 h 00 m")


@browser_only
def test_a_wall_that_lost_its_stream_for_a_minute_greys_out_and_says_its_numbers_are_stale(
    midday: LiveServer, page: Page
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    body = entry_body(new_entry_id(), "ben", "support", start, start + timedelta(hours=1))
    midday.webhook("NEW_TIME_ENTRY", body)
    page.clock.install()
    page.goto(midday.url + "/")
    wait_live(page)
    pause_clock(page)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))

    midday.stop()
    expect(page.locator("#conn-text")).to_have_text("Reconnecting…")
    page.clock.run_for(30_000)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))  # not yet
    page.clock.run_for(31_000)
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#problem-text")).to_contain_text("these numbers are stale")
    expect(page.locator("#wall")).to_have_css("filter", "grayscale(1)")
    expect(page.locator("#announce")).to_have_text("Reconnecting: the numbers shown are stale")
    screenshot(page, "wall-room-stale")

    midday.start()
    page.clock.resume()
    wait_live(page)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"), timeout=15_000)


# Money -----------------------------------------------------------------------------------------
def post_money(server: LiveServer) -> None:
    """$100 earned an hour ago and a EUR timer at 120/h running for 30 min (EUR 60 so far)."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    done = entry_body(
        new_entry_id(), "ben", "support", start, start + timedelta(hours=1), rate=(10000, "USD")
    )
    assert server.webhook("NEW_TIME_ENTRY", done)["outcome"] == "created"
    timer = entry_body(
        new_entry_id(), "ana", "web", now - timedelta(minutes=30), None, rate=(12000, "EUR")
    )
    assert server.webhook("NEW_TIMER_STARTED", timer)["outcome"] == "started"


@browser_only
def test_currencies_keep_their_order_while_the_amounts_tick_past_each_other(
    midday: LiveServer, page: Page
) -> None:
    post_money(midday)
    page.clock.install()
    page.goto(midday.url + "/")
    wait_live(page)
    money = page.locator("#week .money span")
    expect(money).to_have_text(["$100.00", re.compile(r"^€6\d\.\d\d$")])
    pause_clock(page)
    page.clock.run_for(60 * 60 * 1000)  # an hour on: EUR 180 now passes USD 100
    expect(money).to_have_text(["$100.00", re.compile(r"^€18\d\.\d\d$")])


@browser_only
def test_hide_money_leaves_no_currency_figure_on_the_wall(midday: LiveServer, page: Page) -> None:
    post_money(midday)
    page.goto(midday.url + "/?hide=money")
    wait_live(page)
    expect(page.locator("li.timer")).to_have_count(1)
    expect(page.locator("#today .big")).to_have_text(re.compile(r"^1 h [23]\d m$"))
    text = page.locator("body").inner_text()
    assert not re.search(r"[€$£¥]|\b(EUR|USD)\b", text), text
    expect(page.locator(".money")).to_have_count(0)


# The server's part -------------------------------------------------------------------------
def test_the_snapshot_cache_is_dropped_when_the_store_goes_away_and_comes_back(
    flushed_redis: redis.Redis,
) -> None:
    async def scenario() -> None:
        client = Redis.from_url(redis_url(DB))
        clock = FixedClock()
        store = TotalsStore(client, ZoneInfo("Europe/Berlin"), 0, 1000, clock=clock)
        hub = ChangeHub(client, (WS,))
        cache = SnapshotCache(hub)
        day = clock().date()
        try:
            await cache.get(store, WS, day, day, {})
            assert len(cache) == 1
            hub._set_store_ok(False)  # what the change reader reports when Redis stops answering
            assert len(cache) == 0 and cache.bytes == 0
            await cache.get(store, WS, day, day, {})
            hub._set_store_ok(True)  # back, maybe empty: what was read before must not be served
            assert len(cache) == 0
        finally:
            await client.aclose()

    # Its own loop in its own thread: this module's browser keeps one running in this thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
