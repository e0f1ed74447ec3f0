"""The client page a freelancer sends (issue 12, item 6): the report behind a share link through
the real app on a real Redis (default range, weekly and task totals, running timers left out on
request, old links still valid), the friendly page for a link that does not open, and the page
itself in Chromium (a 390 px phone without horizontal scroll, a light theme, a custom range, and
a live view that ends when its link does)."""

from __future__ import annotations

import base64
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import redis as sync_redis
from playwright.sync_api import Browser, Request, expect
from redis.asyncio import Redis

from app import keys
from app.access import ShareRevocations
from app.config import Secret
from app.main import create_app
from app.share import ScopedChanges, ShareLinkError, ShareScope, sign_scope, verify_token
from app.stream import decode_change
from tests import dbs
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    PROJECTS,
    LiveServer,
    entry_body,
    midday_zone,
    new_entry_id,
)
from tests.conftest import WS, FixedClock, make_settings, redis_url
from tests.payloads import (
    INTERNAL,
    TASK_ID,
    WEBSITE,
    client_for,
    entry_2024,
    post_webhook,
    rate,
    running_timer,
    utc,
)

SECRET = "share-client-test-secret-key-0123"


def link(
    ident: str = WEBSITE.id,
    kind: str = "project",
    expires_in_s: int = 3600,
    **fields: object,
) -> str:
    scope = ShareScope(WS, kind, ident, int(time.time()) + expires_in_s, **fields)  # type: ignore[arg-type]
    return sign_scope(Secret(SECRET), scope)


@pytest.fixture
async def app_at(redis: Redis) -> AsyncIterator[tuple[FixedClock, httpx.AsyncClient]]:
    """The app on the core database with a clock the test sets; amounts in EUR."""
    clock = FixedClock(datetime(2026, 3, 25, 12, 0, tzinfo=UTC))
    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        yield clock, client


async def report(client: httpx.AsyncClient, token: str, **query: str) -> dict[str, object]:
    response = await client.get("/api/share/report", params={"share": token, **query})
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


# The default range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "preset", "start", "end"),
    [
        (datetime(2026, 3, 1, 9, tzinfo=UTC), "last-month", "2026-02-01", "2026-02-28"),
        (datetime(2026, 3, 3, 20, tzinfo=UTC), "last-month", "2026-02-01", "2026-02-28"),
        (datetime(2026, 3, 4, 9, tzinfo=UTC), "this-month", "2026-03-01", "2026-03-31"),
        (datetime(2026, 1, 2, 9, tzinfo=UTC), "last-month", "2025-12-01", "2025-12-31"),
    ],
)
async def test_a_link_opens_on_last_month_in_a_months_first_three_days_and_this_month_after(
    app_at: tuple[FixedClock, httpx.AsyncClient], today: datetime, preset: str, start: str, end: str
) -> None:
    clock, client = app_at
    clock.now = today
    data = await report(client, link())
    assert data["preset"] == preset
    assert data["dateRange"] == {"start": start, "end": end}


async def test_a_links_own_default_range_wins_and_an_asked_range_is_kept(
    app_at: tuple[FixedClock, httpx.AsyncClient],
) -> None:
    _, client = app_at  # Wednesday 25 March 2026; weeks start on Monday
    data = await report(client, link(default_range="last-week"))
    assert data["preset"] == "last-week"
    assert data["dateRange"] == {"start": "2026-03-16", "end": "2026-03-22"}
    data = await report(
        client, link(default_range="last-week"), start="2026-03-02", end="2026-03-05"
    )
    assert data["preset"] is None
    assert data["dateRange"] == {"start": "2026-03-02", "end": "2026-03-05"}


# Weekly totals and tasks ------------------------------------------------------------------


async def test_the_report_has_weekly_totals_and_a_task_breakdown(
    app_at: tuple[FixedClock, httpx.AsyncClient],
) -> None:
    _, client = app_at
    eur = rate(10000)
    for body in (
        # Week of 2 March: 2 h with the task, 1 h without.
        entry_2024(
            "e" * 23 + "1",
            "2026-03-03T08:00:00Z",
            "2026-03-03T10:00:00Z",
            hourly_rate=eur,
            with_task=True,
        ),
        entry_2024("e" * 23 + "2", "2026-03-04T08:00:00Z", "2026-03-04T09:00:00Z", hourly_rate=eur),
        # Week of 16 March: 30 min with the task; another project's hour is never counted.
        entry_2024(
            "e" * 23 + "3",
            "2026-03-17T08:00:00Z",
            "2026-03-17T08:30:00Z",
            hourly_rate=eur,
            with_task=True,
        ),
        entry_2024(
            "e" * 23 + "4",
            "2026-03-17T09:00:00Z",
            "2026-03-17T10:00:00Z",
            project=INTERNAL,
            hourly_rate=eur,
            with_task=True,
        ),
    ):
        assert (await post_webhook(client, "NEW_TIME_ENTRY", body)).is_success
    data = await report(client, link(), start="2026-03-01", end="2026-03-20")
    assert data["totalSeconds"] == 3.5 * 3600
    weeks = [(w["start"], w["end"], w["totalSeconds"], w["amounts"]) for w in data["weeks"]]  # type: ignore[attr-defined]
    assert weeks == [
        ("2026-03-01", "2026-03-01", 0, []),  # the range begins on a Sunday
        ("2026-03-02", "2026-03-08", 3 * 3600, [{"currency": "EUR", "amount": 300.0}]),
        ("2026-03-09", "2026-03-15", 0, []),
        ("2026-03-16", "2026-03-20", 1800, [{"currency": "EUR", "amount": 50.0}]),
    ]
    tasks = [(t["name"], t["totalSeconds"], t["amounts"]) for t in data["tasks"]]  # type: ignore[attr-defined]
    assert tasks == [
        ("Design review", 2.5 * 3600, [{"currency": "EUR", "amount": 250.0}]),
        ("(Without task)", 3600, [{"currency": "EUR", "amount": 100.0}]),
    ]
    hidden = await report(client, link(hide_amounts=True), start="2026-03-01", end="2026-03-20")
    text = orjson.dumps(hidden).decode()
    assert '"amounts"' not in text and "billableAmount" not in text and "EUR" not in text


# Running timers ---------------------------------------------------------------------------


async def test_a_no_running_link_leaves_a_forgotten_timer_out_of_every_number(
    app_at: tuple[FixedClock, httpx.AsyncClient], redis: Redis
) -> None:
    clock, client = app_at  # 12:00 on 25 March; the timer has run since 20:00 the day before
    eur = rate(10000)
    stopped = entry_2024(
        "f" * 23 + "1", "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", hourly_rate=eur
    )
    forgotten = running_timer("f" * 23 + "2", "2026-03-24T20:00:00Z", hourly_rate=eur)
    for event, body in (("NEW_TIME_ENTRY", stopped), ("NEW_TIMER_STARTED", forgotten)):
        assert (await post_webhook(client, event, body)).is_success
    week = {"start": "2026-03-23", "end": "2026-03-29"}

    shown = await report(client, link(), **week)
    assert shown["totalSeconds"] == 17 * 3600 and shown["runningSeconds"] == 16 * 3600
    assert shown["includesRunning"] is True
    assert [e["running"] for e in shown["entries"]] == [False, True]  # type: ignore[index]

    left_out = await report(client, link(no_running=True), **week)
    assert left_out["excludesRunning"] is True and left_out["includesRunning"] is False
    assert left_out["totalSeconds"] == 3600 and left_out["runningSeconds"] == 0
    assert left_out["amounts"] == [{"currency": "EUR", "amount": 100.0}]
    assert [e["running"] for e in left_out["entries"]] == [False]  # type: ignore[index]
    assert [w["totalSeconds"] for w in left_out["weeks"]] == [3600]  # type: ignore[index]
    assert [t["totalSeconds"] for t in left_out["tasks"]] == [3600]  # type: ignore[index]
    assert left_out["days"] == [{"day": "2026-03-24", "totalSeconds": 3600}]

    # Its stream is told nothing while the timer runs, and a refresh once it stops.
    no_running = ScopedChanges(verify_token(Secret(SECRET), link(no_running=True)))
    every = ScopedChanges(verify_token(Secret(SECRET), link()))
    clock.now = datetime(2026, 3, 25, 12, 5, tzinfo=UTC)
    stop = entry_2024(
        "f" * 23 + "2", "2026-03-24T20:00:00Z", "2026-03-25T12:05:00Z", hourly_rate=eur
    )
    assert (await post_webhook(client, "TIMER_STOPPED", stop)).is_success
    changes = [
        decode_change(WS, sid, fields) for sid, fields in await redis.xrange(keys.changes(WS))
    ]
    entries = [c for c in changes if c is not None and c.data.get("type") == "entry"]
    started, stopped_change = entries[1:]
    assert every(started) is not None and no_running(started) is None
    assert no_running(stopped_change) is not None


# Links signed before these options, and the options' bounds ---------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_link_signed_before_sender_range_and_no_running_opens_as_it_always_did() -> None:
    body = {
        "w": WS,
        "k": "project",
        "i": WEBSITE.id,
        "e": int(time.time()) + 60,
        "h": False,
        "n": "oldlink123",
    }
    payload = b64(orjson.dumps(body))
    token = payload + "." + b64(hmac.new(SECRET.encode(), payload.encode(), "sha256").digest())
    scope = verify_token(Secret(SECRET), token)
    assert (scope.sender, scope.no_running, scope.default_range) == ("", False, "")
    # They are written only when set, so a link without them is spelled as links always were.
    plain = link().split(".")[0]
    assert set(orjson.loads(base64.urlsafe_b64decode(plain + "=" * (-len(plain) % 4)))) == {
        "w",
        "k",
        "i",
        "e",
        "h",
        "n",
    }
    new = verify_token(
        Secret(SECRET), link(sender="Ana Lopez", no_running=True, default_range="last-month")
    )
    assert (new.sender, new.no_running, new.default_range) == ("Ana Lopez", True, "last-month")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sender": "x" * 81}, "--sender must be 1 to 80 characters"),
        ({"sender": "Ana\nLopez"}, "--sender must be 1 to 80 characters"),
        ({"default_range": "next-year"}, "--range 'next-year' is not one of"),
    ],
)
def test_a_link_refuses_a_sender_or_range_it_cannot_show(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ShareLinkError, match=message):
        link(**fields)


# The page for a link that does not open ---------------------------------------------------

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_opening_a_link_that_does_not_work_gets_a_page_saying_why(
    app_at: tuple[FixedClock, httpx.AsyncClient], redis: Redis
) -> None:
    _, client = app_at
    expired = link(expires_in_s=-60)
    altered = link().partition(".")[0] + "." + link(INTERNAL.id).partition(".")[2]
    revoked = link()
    scope = verify_token(Secret(SECRET), revoked)
    await ShareRevocations(redis).revoke(WS, scope.link_id, scope.expires_at, time.time())
    cases = [
        (expired, 410, "This link has expired", "It stopped working on "),
        (altered, 403, "This link does not work", "changed on the way"),
        (revoked, 410, "This link was withdrawn", "The sender has revoked this link."),
        (None, 403, "This page needs a share link", "Open the full link you were sent."),
    ]
    for token, status, title, detail in cases:
        params = {"share": token} if token else {}
        page = await client.get("/share", params=params, headers=HTML)
        assert page.status_code == status, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert f"<title>{title}</title>" in page.text and f"<h1>{title}</h1>" in page.text
        assert detail in page.text
        assert "{{" not in page.text and "<script" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        if token:
            assert token not in page.text and token.partition(".")[2] not in page.text
        # The API and the stream keep their JSON answers (and their status).
        for path, accept in (("/share", "application/json"), ("/api/share/report", HTML["accept"])):
            answer = await client.get(path, params=params, headers={"accept": accept})
            assert answer.status_code == 403
            assert answer.headers["content-type"] == "application/json"
            assert "ask" in answer.json()["hint"] or "open" in answer.json()["hint"]


# The page in Chromium ----------------------------------------------------------------------

chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Debian chromium")


@pytest.fixture
def serve() -> Iterator[Callable[[str], LiveServer]]:
    """Start the app in a reporting time zone. On tests/test_share_page.py's database: both
    suites start the same server the same way and run one after the other, each flushing
    before and after."""
    client = sync_redis.Redis.from_url(redis_url(dbs.SHARE_PAGE))
    client.flushdb()
    started: list[LiveServer] = []

    def start(timezone: str) -> LiveServer:
        settings = make_settings(
            redis_url=redis_url(dbs.SHARE_PAGE),
            timezone=timezone,
            secret_key=Secret(SECRET),
            heartbeat_s=5.0,
        )
        live = LiveServer(lambda: create_app(settings))
        live.start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
    client.flushdb()
    client.close()


def seed_client_work(server: LiveServer, now: datetime) -> None:
    """Acme's two projects today (the zone's midday, so all of it is today): long
    descriptions, large amounts in two currencies, and a timer running for five minutes."""
    for hours, project, who, currency, text in (
        (2, "web", "ana", "EUR", "Homepage layout with the extraordinarily long hero section copy"),
        (3, "app", "ben", "USD", "Offline synchronisation of the customer-relationship records"),
    ):
        start = now - timedelta(hours=hours + 1)
        server.webhook(
            "NEW_TIME_ENTRY",
            entry_body(
                new_entry_id(),
                who,
                project,
                start,
                start + timedelta(hours=hours),
                description=text,
                rate=(1_234_500, currency),
            ),
        )
    server.webhook(
        "NEW_TIMER_STARTED",
        entry_body(
            new_entry_id(),
            "cleo",
            "web",
            now - timedelta(minutes=5),
            None,
            description="Still going",
            rate=(9500, "EUR"),
        ),
    )


def client_link(expires_in_s: int = 3600, **fields: object) -> str:
    return link("5c0000000000000000000001", "client", expires_in_s, **fields)  # Acme


@chromium
@pytest.mark.slow
def test_the_share_page_fits_a_390_px_phone_with_every_column_and_a_light_theme(
    serve: Callable[[str], LiveServer], browser: Browser
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    server = serve(midday_zone(now))
    seed_client_work(server, now)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{server.url}/share?share={client_link(sender='Ana Lopez')}&range=this-week")
    expect(page.locator("#title")).to_have_text("Acme")
    expect(page.locator("#projects tr")).to_have_count(2)
    expect(page.locator("#entries .running-pill")).to_have_text("running")
    expect(page.locator("#running-note")).to_contain_text("timers still running")
    expect(page.locator("#meta")).to_contain_text("Sent by Ana Lopez · Link valid until")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Every amount is inside the screen, not cut off at its edge.
    for cell in page.locator("td.amount:visible").all():
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, cell.text_content()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 246, 248)"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "share-phone.png"), full_page=True)
    page.close()


@chromium
@pytest.mark.slow
def test_the_share_page_offers_a_custom_range_and_shows_weeks_and_tasks(
    serve: Callable[[str], LiveServer], browser: Browser
) -> None:
    server = serve("UTC")
    for day in (10, 17):
        body = entry_body(
            new_entry_id(),
            "ana",
            "web",
            utc(2026, 3, day, 9),
            utc(2026, 3, day, 10),
            rate=(9500, "EUR"),
        )
        if day == 10:
            body["taskId"] = TASK_ID
            body["task"] = {"id": TASK_ID, "name": "Wireframes", "projectId": body["projectId"]}
        server.webhook("NEW_TIME_ENTRY", body)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(
        f"{server.url}/share?share={link(PROJECTS['web']['id'], hide_amounts=True)}"
        "&start=2026-03-09&end=2026-03-22"
    )
    expect(page.locator("body")).to_have_attribute("data-loaded", "2026-03-09..2026-03-22")
    expect(page.locator("#preset")).to_have_value("custom")
    expect(page.locator("#weeks tr")).to_have_count(2)
    expect(page.locator("#weeks")).to_contain_text("Mar 9 \u2013 15")
    expect(page.locator("#total-hours")).to_have_text("2:00")
    expect(page.locator("#tasks")).to_contain_text("Wireframes")
    expect(page.locator("#tasks")).to_contain_text("(Without task)")
    page.fill("#start", "2026-03-16")
    page.dispatch_event("#start", "change")
    expect(page.locator("body")).to_have_attribute("data-loaded", "2026-03-16..2026-03-22")
    expect(page.locator("#total-hours")).to_have_text("1:00")
    assert "start=2026-03-16" in page.url and "share=" in page.url
    page.close()


@chromium
@pytest.mark.slow
def test_an_expired_link_opens_a_page_that_says_so_in_the_browser(
    serve: Callable[[str], LiveServer], browser: Browser
) -> None:
    server = serve("UTC")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    response = page.goto(f"{server.url}/share?share={link(expires_in_s=-60)}")
    assert response is not None and response.status == 410
    expect(page.locator("h1")).to_have_text("This link has expired")
    expect(page.locator("body")).to_contain_text("Ask the sender for a new link.")
    assert '"error"' not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()


@chromium
@pytest.mark.slow
def test_a_page_open_when_its_link_expires_closes_its_stream_and_says_so(
    serve: Callable[[str], LiveServer], browser: Browser
) -> None:
    server = serve("UTC")
    page = browser.new_page()
    # The page's own clock, moved by hand: the link expires 600 s after it was made.
    page.clock.install(time=datetime.now(UTC))
    page.goto(f"{server.url}/share?share={link(expires_in_s=600)}&range=this-month")
    expect(page.locator("#conn-text")).to_have_text("Live")
    page.clock.run_for(580_000)
    expect(page.locator("#conn-text")).to_have_text("Live")
    expect(page.locator("#expired")).to_be_hidden()

    def the_stream(request: Request) -> bool:
        return "/events" in request.url

    # Closing an EventSource aborts its request: that is how the stream is seen to end.
    with page.expect_event("requestfailed", the_stream, timeout=10_000):
        page.clock.run_for(30_000)
    expect(page.locator("#expired")).to_be_visible()
    expect(page.locator("#conn-text")).to_have_text("Link expired")
    expect(page.locator("#preset")).to_be_disabled()
    expect(page.locator("body")).to_have_attribute("data-expired", "1")
    page.close()
