"""GET /events over a real socket (uvicorn in the test's loop) against a real Redis (dbs.SSE):
snapshot then changes, resume by Last-Event-ID, trimmed history, slow clients, shutdown,
heartbeats, headers, a store outage and two app processes sharing one Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.child_server import free_port
from app.main import create_app
from app.stream import ChangeHub, event_of, next_read_at, parse_stream_id
from tests import dbs
from tests.conftest import TOKEN, WS, make_settings, redis_db, redis_url, wait_until
from tests.sse_client import WAIT_S, AppServer, SSEClient, SSEMessage, stalled_connection

DB = dbs.SSE
CHANGES = keys.changes(WS)


@pytest.fixture
async def r10() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(DB)) as client:
        yield client


def app_for(**overrides: object) -> Any:
    return create_app(make_settings(**{"redis_url": redis_url(DB), **overrides}))


def entry_body(n: int, description: str = "") -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, minutes=n % 60)
    return {
        "id": f"{n:024x}",
        "workspaceId": WS,
        "userId": "aaaaaaaaaaaaaaaaaaaaaaaa",
        "description": description or f"entry {n}",
        "billable": False,
        "projectId": None,
        "timeInterval": {
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": "PT30M",
        },
    }


async def post(server: AppServer, body: Any, event: str = "NEW_TIME_ENTRY") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_S) as client:
        response = await client.post(
            "/webhooks/clockify",
            content=orjson.dumps(body),
            headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": event},
        )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def post_entries(server: AppServer, first: int, count: int) -> list[str]:
    """`count` new entries, one webhook each; their change ids in order."""
    return [(await post(server, entry_body(n)))["changeId"] for n in range(first, first + count)]


async def stream_ids(redis: Redis, after: str = "-") -> list[str]:
    rows = await redis.xrange(CHANGES, min=after if after == "-" else f"({after}")
    return [raw_id.decode() for raw_id, _ in rows]


async def metric(server: AppServer, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_S) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def opening(client: SSEClient) -> tuple[SSEMessage, SSEMessage]:
    """retry, then snapshot (or whatever replaces it), then status: return the middle two."""
    retry, first, status = await client.events(3)
    assert retry.retry_ms == 2000
    assert status.event == "status"
    return first, status


def assert_changes(events: list[SSEMessage], ids: list[str]) -> None:
    assert [e.event for e in events] == ["change"] * len(ids)
    assert [e.id for e in events] == ids


# (a) -----------------------------------------------------------------------------------------
async def test_snapshot_first_then_changes_in_order_with_stream_ids(r10: Redis) -> None:
    async with AppServer(app_for()) as server:
        seeded = await post_entries(server, 0, 2)
        async with await SSEClient.connect(server.port) as client:
            snapshot, status = await opening(client)
            assert snapshot.event == "snapshot"
            assert snapshot.id == seeded[-1]  # the newest change the snapshot includes
            assert [f["entry"]["id"] for f in orjson.loads(snapshot.data)["feed"]] == [
                f"{n:024x}" for n in range(2)
            ]
            assert orjson.loads(status.data)["store"] == "ok"

            posted = await post_entries(server, 2, 5)
            events = await client.events(5)
            assert_changes(events, posted)
            assert [e.id for e in events] == await stream_ids(r10, after=seeded[-1])
            stored = {
                raw_id.decode(): orjson.loads(event_of(fields) or b"null")
                for raw_id, fields in await r10.xrange(CHANGES)
            }
            for event in events:
                assert orjson.loads(event.data) == stored[event.id or ""]
            # How old the newest change was when this process read it (published on /metrics).
            assert 0 < await metric(server, "clockwall_change_stream_lag_seconds") < 30


# (b) -----------------------------------------------------------------------------------------
async def test_resume_with_last_event_id_sends_exactly_the_missed_changes_once(r10: Redis) -> None:
    async with AppServer(app_for()) as server:
        async with await SSEClient.connect(server.port) as client:
            await opening(client)
            first = await post_entries(server, 0, 1)
            assert_changes(await client.events(1), first)
            last_seen = client.last_event_id
        assert last_seen == first[0]

        missed = await post_entries(server, 1, 7)
        headers = {"Last-Event-ID": last_seen}
        async with await SSEClient.connect(server.port, headers=headers) as client:
            assert (await client.next_event()).retry_ms == 2000
            assert_changes(await client.events(7), missed)
            assert (await client.next_event()).event == "status"
            live = await post_entries(server, 8, 2)
            # Nothing between the missed changes and the live ones: no repeat, no gap.
            assert_changes(await client.events(2), live)
        assert await stream_ids(r10, after=last_seen) == missed + live

        # The query parameter form (for clients that cannot set the header) resumes too.
        path = f"/events?lastEventId={missed[-1]}"
        async with await SSEClient.connect(server.port, path=path) as client:
            assert (await client.next_event()).retry_ms == 2000
            assert_changes(await client.events(2), live)


# (c) -----------------------------------------------------------------------------------------
async def test_a_trimmed_last_event_id_gets_a_fresh_snapshot_not_a_gap(r10: Redis) -> None:
    async with AppServer(app_for(stream_maxlen=5)) as server:
        old = await post_entries(server, 0, 1)
        await post_entries(server, 1, 10)
        # MAXLEN ~ trims lazily, by whole radix-tree nodes: trim exactly to force the case.
        await r10.xtrim(CHANGES, maxlen=5, approximate=False)
        kept = await stream_ids(r10)
        assert len(kept) == 5 and old[0] not in kept

        async with await SSEClient.connect(server.port, headers={"Last-Event-ID": old[0]}) as c:
            snapshot, _ = await opening(c)
            assert snapshot.event == "snapshot"
            assert snapshot.id == kept[-1]
            assert len(orjson.loads(snapshot.data)["feed"]) == 5
            live = await post_entries(server, 11, 1)
            assert_changes(await c.events(1), live)


# (d) -----------------------------------------------------------------------------------------
async def stall_one_client_until_dropped(app: Any, r10: Redis, http: str) -> None:
    """A healthy client and a stalled one; batches of 40 large changes until the server drops
    the stalled one. The healthy client reads each batch before the next post, and still gets
    every change, in order, after the drop."""
    big = "x" * 2900  # near the description limit, so the stalled socket fills in a few posts
    async with (
        AppServer(app, http=http) as server,
        await SSEClient.connect(server.port) as healthy,
    ):
        await opening(healthy)
        async with stalled_connection(server.port):
            received: list[str] = []
            posted: list[str] = []
            n = 0
            for _ in range(60):
                await post(server, [entry_body(n + i, big) for i in range(40)])
                n += 40
                ids = await stream_ids(r10, after=posted[-1] if posted else "-")
                posted += ids
                received += [e.id or "" for e in await healthy.events(len(ids))]
                if await metric(server, "clockwall_sse_dropped_total") >= 1:
                    break
            assert await metric(server, "clockwall_sse_dropped_total") == 1
            assert len(app.state.service.hub.subscribers) == 1  # the healthy one
            posted += await post_entries(server, n, 3)
            received += [e.id or "" for e in await healthy.events(3)]
            assert received == posted
            assert await metric(server, "clockwall_sse_dropped_total") == 1


async def test_a_stalled_client_is_dropped_while_another_receives_everything(r10: Redis) -> None:
    """h11: every stream goes through its queue, and the stalled one's queue of 4 fills up."""
    app = app_for(webhook_max_bytes=4 * 1024 * 1024)
    app.state.service.hub.queue_size = 4
    await stall_one_client_until_dropped(app, r10, http="h11")


async def test_a_burst_longer_than_the_queue_drops_nobody(r10: Redis) -> None:
    """40 changes land in one transaction (a batch webhook applied by another process while
    this one's reader was busy): one XREAD reply, which must not overflow a queue of 4."""
    app = app_for()
    app.state.service.hub.queue_size = 4
    async with AppServer(app) as server, await SSEClient.connect(server.port) as client:
        await opening(client)
        first = await post_entries(server, 0, 1)
        assert_changes(await client.events(1), first)
        data = event_of((await r10.xrange(CHANGES))[0][1])
        assert data is not None
        async with r10.pipeline(transaction=True) as pipe:
            for _ in range(40):
                pipe.xadd(CHANGES, {"d": data})
            burst = [raw.decode() for raw in await pipe.execute()]
        assert_changes(await client.events(40), burst)
        assert await metric(server, "clockwall_sse_dropped_total") == 0


# (e) -----------------------------------------------------------------------------------------
async def test_shutdown_ends_open_streams_cleanly(r10: Redis) -> None:
    server = await AppServer(app_for()).start()
    async with await SSEClient.connect(server.port) as client:
        await opening(client)
        stopping = asyncio.create_task(server.stop())
        clean, events = await client.wait_end()
        await asyncio.wait_for(stopping, WAIT_S)
    assert clean, "the server closed the connection without ending the chunked body"
    assert events == []
    # Stopped means stopped: nothing listens any more.
    with pytest.raises(OSError):
        await SSEClient.connect(server.port, timeout_s=1.0)


# (f) -----------------------------------------------------------------------------------------
async def test_heartbeat_comments_arrive(r10: Redis) -> None:
    async with (
        AppServer(app_for(heartbeat_s=0.2)) as server,
        await SSEClient.connect(server.port) as client,
    ):
        await opening(client)
        beats = [await client.next(timeout_s=2.0) for _ in range(2)]
        assert all(b.is_comment and (b.comment or "").startswith("ping") for b in beats)


# (g) -----------------------------------------------------------------------------------------
async def test_headers_disable_buffering_and_compression(r10: Redis) -> None:
    headers = {"Accept-Encoding": "gzip, deflate, br"}
    async with (
        AppServer(app_for()) as server,
        await SSEClient.connect(server.port, headers=headers) as client,
    ):
        assert client.status == 200
        assert client.headers["content-type"].split(";")[0] == "text/event-stream"
        assert client.headers["x-accel-buffering"] == "no"
        assert "no-store" in client.headers["cache-control"]
        assert "content-encoding" not in client.headers
        await opening(client)


# (h) -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("resume", [False, True])
async def test_new_stream_while_redis_is_down_says_so_and_ends(resume: bool) -> None:
    app = app_for(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    headers = {"Last-Event-ID": "1700000000000-0"} if resume else {}
    async with (
        AppServer(app) as server,
        await SSEClient.connect(server.port, headers=headers) as client,
    ):
        assert (await client.next_event()).retry_ms == 2000
        status = await client.next_event()
        assert status.event == "status"
        assert orjson.loads(status.data)["store"] == "unreachable"
        clean, rest = await client.wait_end()
        assert clean and rest == []


async def test_a_quiet_stream_does_not_look_like_an_outage(r10: Redis) -> None:
    """XREAD BLOCK outlasting the client's socket timeout would raise TimeoutError on every
    quiet stretch: the hub must block for less than the timeout."""
    redis = Redis.from_url(redis_url(DB), socket_timeout=0.3)
    app = create_app(make_settings(redis_url=redis_url(DB), heartbeat_s=0.2), redis=redis)
    async with AppServer(app) as server, await SSEClient.connect(server.port) as client:
        await opening(client)
        # Five heartbeats (one second, several socket timeouts) and nothing else.
        messages = [await client.next(timeout_s=2.0) for _ in range(5)]
        assert [m.event for m in messages if not m.is_comment] == []
        assert app.state.service.hub.store_ok


# Direct writes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_live_streams_switch_to_direct_writes_only_where_the_server_allows(
    r10: Redis, http: str
) -> None:
    """Under httptools a live stream is written to its connection by the hub; under h11 it
    keeps to ASGI send. Either way: snapshot, then every change once and in order, including
    the ones that land while the stream switches over."""
    app = app_for()
    hub = app.state.service.hub
    async with AppServer(app, http=http) as server, await SSEClient.connect(server.port) as client:
        snapshot, _ = await opening(client)
        assert snapshot.event == "snapshot"
        posted = await post_entries(server, 0, 2)
        assert_changes(await client.events(2), posted)
        (sub,) = hub.subscribers
        assert (sub.transport is not None) == (http == "httptools")
        posted = await post(server, [entry_body(n) for n in range(2, 12)])  # one batch
        ids = await stream_ids(r10)
        assert_changes(await client.events(10), ids[2:])
        # Heartbeats and status events take the same path.
        hub.broadcast(None, b": ping\n\n")
        assert (await client.next()).is_comment


async def test_a_stalled_client_written_directly_is_dropped_by_its_unsent_bytes(
    r10: Redis,
) -> None:
    """httptools, and a queue long enough never to fill: what drops the stalled client is its
    connection's unsent bytes passing the limit (the hub aborts that connection)."""
    app = app_for(webhook_max_bytes=4 * 1024 * 1024)
    app.state.service.hub.queue_size = 100_000
    app.state.service.hub.max_buffered_bytes = 64 * 1024
    await stall_one_client_until_dropped(app, r10, http="httptools")


# (i) -----------------------------------------------------------------------------------------
async def test_a_webhook_into_one_process_reaches_clients_of_another(r10: Redis) -> None:
    async with (
        AppServer(app_for()) as first,
        AppServer(app_for()) as second,
        await SSEClient.connect(second.port) as client,
    ):
        await opening(client)
        posted = await post_entries(first, 0, 3)
        assert_changes(await client.events(3), posted)


def test_reads_are_spaced_by_the_window_or_by_what_writing_costs() -> None:
    # Few screens: a pass costs little, so batches go out every coalesce_s.
    assert next_read_at(100.0, 0.001, 0.015, 0.5) == pytest.approx(100.015)
    # 1,000 screens at ~13 ms a pass: reads 26 ms apart, writing takes half the process.
    assert next_read_at(100.0, 0.013, 0.015, 0.5) == pytest.approx(100.026)
    # 10,000 screens: the window grows with the pass, so writes never take it all.
    assert next_read_at(100.0, 0.130, 0.015, 0.5) == pytest.approx(100.260)


def test_an_entry_change_stored_as_parts_reads_as_one_json_event() -> None:
    # apply_entry.lua stores an entry's change as parts; other writers store "d" whole.
    parts = {
        b"a": b"stopped",
        b"e": b'{"id":"e1","description":"a \\"quoted\\" word"}',
        b"r": b"false",
        b"p": b'{"day":"2026-03-02","f":[],"p":[]}',
        b"n": b'{"day":"2026-03-02","f":[["u|p|s",60]],"p":[]}',
        b"m": b'{"user":"Ann"}',
    }
    event = event_of(parts)
    assert event is not None
    assert orjson.loads(event) == {
        "type": "entry",
        "action": "stopped",
        "entry": {"id": "e1", "description": 'a "quoted" word'},
        "running": False,
        "prev": {"day": "2026-03-02", "f": [], "p": []},
        "next": {"day": "2026-03-02", "f": [["u|p|s", 60]], "p": []},
        "names": {"user": "Ann"},
    }
    # Text keys (a client decoding replies) read the same; "d" passes through as stored.
    assert event_of({k.decode(): v.decode() for k, v in parts.items()}) == event
    assert event_of({b"d": b'{"type":"names"}'}) == b'{"type":"names"}'
    # A part missing (a writer this reader does not know) is no event, not a broken one.
    assert event_of({k: v for k, v in parts.items() if k != b"n"}) is None
    assert event_of([]) is None


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_a_screen_that_goes_away_is_let_go(r10: Redis, http: str) -> None:
    """Under h11 a watcher task sees the disconnect at once; under httptools the stream has no
    watcher (a task per screen saved) and the hub's heartbeat finds the closed connection."""
    app = app_for(heartbeat_s=0.2)
    hub = app.state.service.hub
    async with AppServer(app, http=http) as server:
        client = await SSEClient.connect(server.port)
        await opening(client)
        (sub,) = hub.subscribers
        assert (sub.writable is not None) == (http == "httptools")
        assert await metric(server, "clockwall_sse_clients") == 1
        await client.close()

        async def let_go() -> bool:
            return not hub.subscribers and await metric(server, "clockwall_sse_clients") == 0

        await wait_until(let_go, 5, "the closed stream to be let go")
        # The others keep streaming.
        async with await SSEClient.connect(server.port) as other:
            await opening(other)
            posted = await post_entries(server, 0, 1)
            assert_changes(await other.events(1), posted)


async def test_the_sweep_ends_streams_whose_connection_closed(r10: Redis) -> None:
    """A stream the hub may write to but has not switched over yet (its generator is waiting)
    is ended by the sweep once its connection closes; an open one is kept."""
    app = app_for()
    hub = app.state.service.hub
    async with AppServer(app) as server:
        gone = await SSEClient.connect(server.port)
        stays = await SSEClient.connect(server.port)
        await opening(gone)
        await opening(stays)
        subs = {id(s): s for s in hub.subscribers}
        assert len(subs) == 2 and all(s.writable is not None for s in subs.values())
        for sub in subs.values():
            sub.transport = None  # as before the switch: nothing is written to it directly
        await gone.close()

        async def closing() -> bool:
            return any(s.writable.is_closing() for s in subs.values())

        await wait_until(closing, 5, "the server to see the closed connection")
        hub.sweep()
        assert len(hub.subscribers) == 1
        (kept,) = hub.subscribers
        assert not kept.writable.is_closing()
        await stays.close()


# An idle process skims the change stream ------------------------------------------------------
async def add_change(redis: Redis, n: int) -> str:
    raw_id = await redis.xadd(CHANGES, {"d": orjson.dumps({"type": "test", "n": n})})
    return str(raw_id.decode())


async def received(sub: Any, count: int) -> list[str]:
    """The ids of the next `count` changes queued for `sub` (whole batches)."""
    ids: list[str] = []
    while len(ids) < count:
        item = await asyncio.wait_for(sub.queue.get(), WAIT_S)
        assert isinstance(item, tuple), item
        ids += [change.id_text for change in item]
    return ids


async def test_without_screens_the_reader_only_skims_and_a_new_screen_misses_nothing(
    r10: Redis,
) -> None:
    """No client listens: the reader follows where the stream ends (position, versions for the
    snapshot cache) without decoding or dispatching what it carries. A client subscribing
    wakes it (the skim interval here is far longer than the test's wait) and gets every
    change after that."""
    hub = ChangeHub(r10, (WS,), skim_s=60.0)
    dispatched: list[int] = []
    full_dispatch = hub.dispatch_batch

    def counting(workspace: str, changes: Any) -> None:
        dispatched.append(len(changes))
        full_dispatch(workspace, changes)

    hub.dispatch_batch = counting  # type: ignore[method-assign]
    await hub.prime()
    hub.start()
    try:
        skimmed = [await add_change(r10, n) for n in range(3)]

        async def followed() -> bool:
            return hub.position(WS) == parse_stream_id(skimmed[-1])

        await wait_until(followed, WAIT_S, "the idle reader to reach the newest change")
        assert hub.versions[WS] >= 1 and dispatched == []

        sub = hub.subscribe(WS)
        later = [await add_change(r10, n) for n in range(3, 6)]
        assert await received(sub, 3) == later
        assert sum(dispatched) == 3
    finally:
        await hub.stop()


async def test_a_screen_subscribing_during_a_skim_keeps_the_reader_where_it_was(
    r10: Redis,
) -> None:
    """The skim reads, then looks for clients: one that subscribed meanwhile may have read its
    snapshot before the newest change, so the position stays and the next read is a full one
    from there: the client gets the changes the skim saw, and nothing twice."""
    hub = ChangeHub(r10, (WS,), skim_s=60.0)
    await hub.prime()
    before = hub.position(WS)
    version = hub.versions.get(WS, 0)
    missed = [await add_change(r10, n) for n in range(2)]
    sub = hub.subscribe(WS)
    await hub._skim()
    assert hub.position(WS) == before and hub.versions.get(WS, 0) == version
    hub.start()
    try:
        assert await received(sub, 2) == missed
    finally:
        await hub.stop()
