"""The live path under abuse and faults: stream caps (per process, per share link), a header
deadline at the server, share streams that read nothing from Redis and learn nothing of the
operator's state, Last-Event-IDs no stream can hold, a Redis that goes silent under the change
reader, and stream slots that cannot leak. Real Redis (dbs.LIVE_HARDENING, or our own redis-server),
real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from app import keys
from app.config import Secret
from app.main import create_app
from app.share import ShareScope, sign_scope
from app.snapshot import Snapshot
from app.sse import EventsEndpoint, HubEventSourceResponse
from app.stream import STREAM_ID_PART_LIMIT, parse_stream_id
from tests import dbs
from tests.conftest import OTHER_WS, TOKEN, WS, make_settings, redis_db, redis_url, wait_until
from tests.payloads import MOBILE, WEBSITE, close_app, entry_2024
from tests.processes import AppProcess, RedisProcess, serve_env
from tests.sse_client import WAIT_S, AppServer, SSEClient, SSEMessage

DB = dbs.LIVE_HARDENING
SECRET = "live-hardening-secret-key-0123456789"
SHARE_SNAPSHOT_KEYS = {"scope", "range", "today", "timezone", "weekStart", "asOf"}


@pytest.fixture
async def r12() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(DB)) as client:
        yield client


def app_for(**overrides: object) -> Any:
    values: dict[str, object] = {"redis_url": redis_url(DB), "secret_key": Secret(SECRET)}
    return create_app(make_settings(**{**values, **overrides}))


def endpoint_of(app: Any) -> EventsEndpoint:
    (route,) = [r for r in app.router.routes if getattr(r, "path", "") == "/events"]
    endpoint: EventsEndpoint = route.endpoint.__self__
    return endpoint


def share_token(project_id: str = WEBSITE.id, link_id: str = "") -> str:
    scope = ShareScope(WS, "project", project_id, int(time.time()) + 3600)
    if link_id:
        scope = ShareScope(WS, "project", project_id, scope.expires_at, link_id=link_id)
    return sign_scope(Secret(SECRET), scope)


async def post(server: AppServer, body: Any) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_S) as http:
        response = await http.post(
            "/webhooks/clockify",
            content=orjson.dumps(body),
            headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["changeId"])


def entry(n: int, project: Any = WEBSITE) -> dict[str, Any]:
    return entry_2024(
        f"65f0d0d0d0d0d0d0d0d0{n:04x}",
        f"2026-03-{10 + n % 10}T08:00:00Z",
        f"2026-03-{10 + n % 10}T09:00:00Z",
        project=project,
    )


async def opening(client: SSEClient) -> tuple[SSEMessage, SSEMessage]:
    """retry, snapshot, status: the last two."""
    retry, snapshot, status = await client.events(3)
    assert retry.retry_ms == 2000
    assert (snapshot.event, status.event) == ("snapshot", "status")
    return snapshot, status


async def refused(client: SSEClient) -> dict[str, Any]:
    assert client.status == 503
    assert client.headers["content-type"] == "application/json"
    assert int(client.headers["retry-after"]) > 0
    size = int(client.headers["content-length"])
    body: dict[str, Any] = orjson.loads(await client.reader.readexactly(size))
    return body


async def reached(hub: Any, change_id: str) -> None:
    async def read() -> bool:
        return bool(hub.position(WS) == parse_stream_id(change_id))

    await wait_until(read, WAIT_S, f"the hub to read {change_id}")


def gauge(app: Any) -> float | None:
    value: float | None = app.state.service.metrics.registry.get_sample_value(
        "clockwall_sse_clients"
    )
    return value


# Stream caps (item 8) ---------------------------------------------------------------------
async def test_streams_beyond_the_process_cap_are_refused_with_a_503_that_says_why(
    r12: Redis,
) -> None:
    app = app_for(max_streams=2, heartbeat_s=0.2)  # a closed wall stream is found at a beat
    events = endpoint_of(app)
    async with AppServer(app) as server:
        first = await SSEClient.connect(server.port)
        second = await SSEClient.connect(server.port)
        await opening(first)
        await opening(second)
        async with await SSEClient.connect(server.port) as third:
            body = await refused(third)
        assert "as many live streams" in body["error"] and "(2)" in body["error"]
        assert "CLOCKWALL_MAX_STREAMS" in body["hint"]
        # A share link counts towards the process's cap as well.
        async with await SSEClient.connect(server.port, f"/events?share={share_token()}") as s:
            await refused(s)

        await first.close()

        async def freed() -> bool:
            return events.open_streams == 1

        await wait_until(freed, WAIT_S, "the closed stream to give back its slot")
        async with await SSEClient.connect(server.port) as again:
            await opening(again)
        await second.close()


async def test_a_share_link_holds_at_most_its_own_cap_of_streams(r12: Redis) -> None:
    app = app_for(max_share_streams=2, heartbeat_s=0.2)
    events = endpoint_of(app)
    link = f"/events?share={share_token(link_id='linkAAAAAAAA')}"
    async with AppServer(app) as server:
        views = [await SSEClient.connect(server.port, link) for _ in range(2)]
        for view in views:
            await opening(view)
        async with await SSEClient.connect(server.port, link) as third:
            body = await refused(third)
        assert "this share link has 2 live views open" in body["error"]
        assert "close the link in another tab" in body["hint"]
        assert SECRET not in str(body) and "linkAAAA" not in str(body)
        # Another link, and the dashboard, are not held back by it.
        other = f"/events?share={share_token(link_id='linkBBBBBBBB')}"
        async with await SSEClient.connect(server.port, other) as view:
            await opening(view)
        async with await SSEClient.connect(server.port) as wall:
            await opening(wall)
        for view in views:
            await view.close()

        async def freed() -> bool:
            return not events.share_streams and events.open_streams == 0

        await wait_until(freed, WAIT_S, "every share slot to be given back")
        async with await SSEClient.connect(server.port, link) as view:
            await opening(view)


# Stream slots cannot leak (item 13) ------------------------------------------------------
def events_request(app: Any, query: str = "") -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/events",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "app": app,
        "state": {},
    }
    return Request(scope)


async def test_a_stream_response_never_run_holds_no_slot(r12: Redis) -> None:
    app = app_for()
    events = endpoint_of(app)
    hub = app.state.service.hub
    try:
        response = await events.handle(events_request(app))
        assert isinstance(response, HubEventSourceResponse)
        # The client left before the body started: the response is dropped, never run.
        del response
        assert not hub.subscribers
        assert events.open_streams == 0 and gauge(app) == 0
    finally:
        await app.state.service.redis.aclose()


@pytest.mark.parametrize("failure", [OSError, RuntimeError])
async def test_a_stream_that_fails_before_its_first_event_gives_its_slot_back(
    r12: Redis, failure: type[Exception]
) -> None:
    app = app_for()
    events = endpoint_of(app)
    hub = app.state.service.hub
    seen: list[tuple[int, float | None]] = []

    async def send(message: Any) -> None:
        seen.append((len(hub.subscribers), gauge(app)))  # held while it runs
        raise failure("the connection broke")

    async def receive() -> Any:
        await asyncio.Event().wait()

    try:
        response = await events.handle(events_request(app))
        assert isinstance(response, HubEventSourceResponse)
        if failure is OSError:
            await response({"type": "http"}, receive, send)  # a write error ends it quietly
        else:
            with pytest.raises(RuntimeError):
                await response({"type": "http"}, receive, send)
        assert seen == [(1, 1.0)]
        assert not hub.subscribers
        assert events.open_streams == 0 and gauge(app) == 0
    finally:
        await app.state.service.redis.aclose()


async def test_an_open_stream_keeps_nothing_of_the_snapshot_it_began_with(r12: Redis) -> None:
    """A stream lives for hours, or, its client gone, until the next heartbeat finds it: a
    thousand of them must not each hold a year-long snapshot."""
    app = app_for()
    events = endpoint_of(app)
    try:
        response = await events.handle(events_request(app, "start=2025-01-01&end=2025-12-31"))
        assert isinstance(response, HubEventSourceResponse)
        sub = events.acquire(WS, None, scoped=False)
        body = events.stream(sub, response)
        _, snapshot, status = [await anext(body) for _ in range(3)]
        assert b"event: snapshot" in snapshot and status.startswith(b"event: status")
        assert len(snapshot) > 200 and body.ag_frame is not None
        held = [
            name
            for name, value in body.ag_frame.f_locals.items()
            if isinstance(value, Snapshot | list) or (isinstance(value, bytes) and len(value) > 64)
        ]
        assert held == []
        await body.aclose()
        events.release(sub, None)
    finally:
        await close_app(app)
        await app.state.service.redis.aclose()


# Last-Event-ID (item 10) ----------------------------------------------------------------
def test_stream_ids_redis_cannot_hold_are_no_ids() -> None:
    top = STREAM_ID_PART_LIMIT - 1
    assert parse_stream_id(f"{top}-{top}") == (top, top)
    assert parse_stream_id(f"{top + 1}-0") is None
    assert parse_stream_id(f"1-{top + 1}") is None
    assert parse_stream_id("99999999999999999999-1") is None
    assert parse_stream_id("١٢٣-0") is None  # digits, but not ASCII ones
    assert parse_stream_id("9" * 5000) is None  # too long to be read at all


@pytest.mark.parametrize(
    "last_id",
    ["99999999999999999999-1", "1-18446744073709551616", "9999999999999-0", "abc"],
    ids=["ms-past-64-bits", "seq-past-64-bits", "far-future", "no-id"],
)
async def test_an_absurd_last_event_id_gets_a_fresh_snapshot_and_no_warning(
    r12: Redis, caplog: pytest.LogCaptureFixture, last_id: str
) -> None:
    app = app_for()
    hub = app.state.service.hub
    async with AppServer(app) as server:
        first = await post(server, entry(0))
        await reached(hub, first)
        caplog.set_level(logging.WARNING)
        caplog.clear()
        headers = {"Last-Event-ID": last_id}
        async with await SSEClient.connect(server.port, headers=headers) as client:
            snapshot, status = await opening(client)
            assert orjson.loads(status.data)["store"] == "ok"
            assert snapshot.id == first
            # ...and the stream goes on: a change after it arrives (a future id would have
            # made it skip everything up to that id).
            change_id = await post(server, entry(1))
            change = await client.next_event()
            assert (change.event, change.id) == ("change", change_id)
        assert hub.store_ok
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# Share streams (items 1 and 9) -----------------------------------------------------------
async def test_a_share_stream_reads_no_snapshot_and_misses_no_change(r12: Redis) -> None:
    app = app_for()
    events = endpoint_of(app)
    hub = app.state.service.hub

    async def no_snapshot(*args: Any) -> Any:
        raise AssertionError("a share stream read the full snapshot")

    events.snapshots.get = no_snapshot  # type: ignore[method-assign]
    year = "start=2025-01-01&end=2025-12-31"
    async with AppServer(app) as server:
        first = await post(server, entry(0))
        await reached(hub, first)
        path = f"/events?share={share_token()}&{year}"
        # Its Last-Event-ID is not read either: a share page always starts from its report.
        headers = {"Last-Event-ID": "1-0"}
        async with await SSEClient.connect(server.port, path, headers) as client:
            snapshot, status = await opening(client)
            data = orjson.loads(snapshot.data)
            assert set(data) == SHARE_SNAPSHOT_KEYS
            assert data["scope"] == "project"
            assert data["range"] == {"start": "2025-01-01", "end": "2025-12-31"}
            assert (data["timezone"], data["weekStart"]) == ("Europe/Berlin", "MONDAY")
            assert snapshot.id == first  # where the hub stood
            assert orjson.loads(status.data) == {"store": "ok"}
            change_id = await post(server, entry(2))
            change = await client.next_event()
            assert (change.event, change.id) == ("change", change_id)
            assert orjson.loads(change.data) == {"type": "refresh", "days": ["2026-03-12"]}


async def test_a_share_stream_learns_only_whether_the_store_answers(r12: Redis) -> None:
    app = app_for()
    hub = app.state.service.hub
    async with AppServer(app) as server:
        share = await SSEClient.connect(server.port, f"/events?share={share_token()}")
        wall = await SSEClient.connect(server.port)
        try:
            await opening(share)
            await opening(wall)
            # The poller's state (plan, budget, requests left, its errors) goes to the wall only.
            poll = {"type": "poll", "role": "leader", "plan": "PRO", "lastError": "429 x"}
            await r12.xadd(keys.changes(WS), {"d": orjson.dumps(poll)})
            wall_status = await wall.next_event()
            assert wall_status.event == "status"
            assert orjson.loads(wall_status.data)["poll"]["plan"] == "PRO"
            # The store going down and coming back: the share page hears just that.
            hub._set_store_ok(False)
            hub._set_store_ok(True)
            assert "mode" in orjson.loads((await wall.next_event()).data)
            down, up = await share.events(2)
            assert (down.event, orjson.loads(down.data)) == ("status", {"store": "unreachable"})
            assert (up.event, orjson.loads(up.data)) == ("status", {"store": "ok"})
            # Nothing else came before the next change in scope (the poll event was withheld).
            await post(server, entry(3, project=MOBILE))  # out of scope: withheld too
            change_id = await post(server, entry(4))
            change = await share.next_event()
            assert (change.event, change.id) == ("change", change_id)
        finally:
            await share.close()
            await wall.close()


# A Redis that goes silent (item 12) -----------------------------------------------------
async def app_on_own_redis(tmp_path: Path) -> tuple[RedisProcess, Any, Any]:
    """A Redis of this test's own (so it can be paused) and the app on it, its change reader
    quick to notice a silence."""
    redis_server = RedisProcess(tmp_path / "redis", appendonly=False)
    await redis_server.start()
    app = create_app(make_settings(redis_url=redis_server.url(0)))
    hub = app.state.service.hub
    hub.block_ms = 200
    hub.read_margin_s = 0.5
    return redis_server, app, hub


@pytest.mark.slow
async def test_a_silent_redis_shows_as_unreachable_and_the_stream_goes_on_after(
    tmp_path: Path,
) -> None:
    redis_server, app, hub = await app_on_own_redis(tmp_path)
    try:
        async with AppServer(app) as server, await SSEClient.connect(server.port) as client:
            await opening(client)
            redis_server.pause()  # SIGSTOP: connections stay open, nothing is answered
            started = time.monotonic()
            status = await client.next_event(timeout_s=hub.read_deadline_s + 3)
            took = time.monotonic() - started
            assert status.event == "status"
            assert orjson.loads(status.data)["store"] == "unreachable"
            assert took < hub.read_deadline_s + 2
            assert not hub.store_ok

            redis_server.resume()
            status = await client.next_event(timeout_s=10)
            assert (status.event, orjson.loads(status.data)["store"]) == ("status", "ok")
            # The reader goes on with what is written after, on a connection with no stale
            # reply waiting on it.
            for n in range(3):
                change_id = await post(server, entry(n))
                change = await client.next_event()
                assert (change.event, change.id) == ("change", change_id)
    finally:
        redis_server.kill()


@pytest.mark.slow
async def test_a_server_starting_while_redis_is_silent_starts_and_reads_every_workspace(
    tmp_path: Path,
) -> None:
    redis_server, app, _hub = await app_on_own_redis(tmp_path)
    try:
        redis_server.pause()
        async with AppServer(app) as server:  # the start-up read gives up at its deadline
            redis_server.resume()
            for ws in (WS, OTHER_WS):
                path = f"/events?workspace={ws}"
                async with await SSEClient.connect(server.port, path) as client:
                    await opening(client)
                    change_id = await post(
                        server,
                        entry_2024(
                            f"65f0e0e0e0e0e0e0e0e0e0{ws[-1]}0",
                            "2026-03-10T08:00:00Z",
                            "2026-03-10T09:00:00Z",
                            ws=ws,
                            project=None,
                        ),
                    )
                    change = await client.next_event(timeout_s=10)
                    assert (change.event, change.id) == ("change", change_id)
    finally:
        redis_server.kill()


# The server: a header deadline and the shutdown signal (items 8 and 15) ------------------
@pytest.mark.slow
async def test_clockwall_serve_closes_a_connection_whose_headers_stall(
    r12: Redis, tmp_path: Path
) -> None:
    env = serve_env(redis_url(DB), CLOCKWALL_HEADER_TIMEOUT_S="1")
    app = await AppProcess(env, tmp_path / "app.log").astart()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/ev")
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), WAIT_S)
        took = time.monotonic() - started
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"did not arrive within 1 s" in answer
        assert took < 1 + 2.0
        # Everything else is served as before.
        async with httpx.AsyncClient(base_url=app.base_url, timeout=WAIT_S) as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await app.astop()


@pytest.mark.slow
async def test_sigterm_ends_the_open_streams_of_clockwall_serve_cleanly(
    r12: Redis, tmp_path: Path
) -> None:
    app = await AppProcess(serve_env(redis_url(DB)), tmp_path / "app.log").astart()
    try:
        clients = [await SSEClient.connect(app.port) for _ in range(3)]
        for client in clients:
            await opening(client)
        assert app.proc is not None
        started = time.monotonic()
        app.proc.terminate()
        ends = await asyncio.gather(*(c.wait_end() for c in clients))
        # Ended by the shutdown signal, before uvicorn's graceful timeout (5 s) would cut them.
        assert all(clean for clean, _ in ends), ends
        assert time.monotonic() - started < 4
        for client in clients:
            await client.close()
    finally:
        await app.astop()
