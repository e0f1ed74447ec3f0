"""GET /events: `snapshot` first (or the missed changes after Last-Event-ID), then `change`
events as the hub reads them, `status` events when the store or data freshness changes, and
heartbeat comments. Every data event carries its Redis Stream id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api import Api, QueryError, parse_range
from app.config import WEEKDAYS, Settings
from app.errors import error_response
from app.metrics import Metrics
from app.snapshot import SnapshotCache
from app.stream import Change, ChangeHub, Subscriber, encode_sse, parse_stream_id

log = logging.getLogger(__name__)
RETRY_MS = 2000
ChangeFilter = Callable[[Change], bytes | None]


STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-store"}


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


# Every event stream answers with the same headers; sse-starlette builds them once, here.
_RAW_HEADERS = EventSourceResponse(_nothing(), ping=0, headers=STREAM_HEADERS).raw_headers


class HubEventSourceResponse:
    """An event stream with sse-starlette's headers and framing but a leaner life per client.

    sse-starlette's EventSourceResponse runs five tasks per client (the stream, a ping timer, a
    shutdown listener, a disconnect listener and a supervisor) and a lock. Here the ChangeHub
    does heartbeats and shutdown for all clients at once, so each client costs its handler, a
    three-slot object and, only where the hub cannot see the connection (h11, other servers,
    share-scoped streams), a disconnect watcher. Where it can, the hub notices a closed
    connection on its next write or heartbeat (ChangeHub.sweep), which spares every screen a
    task (1.5 KiB): what lets one process hold ten thousand idle screens (bench/fanout.py).
    HEAD never gets here (EventsEndpoint answers it)."""

    __slots__ = ("body_iterator", "on_disconnect", "sub")

    def __init__(
        self,
        content: AsyncIterator[bytes],
        on_disconnect: Callable[[], None],
        sub: Subscriber | None = None,
    ) -> None:
        self.body_iterator = content
        self.on_disconnect = on_disconnect
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _RAW_HEADERS})
            if self.sub is not None:
                self.sub.writable = writable_transport(scope.get(RAW_SEND_KEY))
            if self.sub is None or self.sub.writable is None:
                watcher = asyncio.create_task(self._watch_disconnect(receive))
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write; the generator's cleanup has run
        finally:
            if watcher is not None:
                watcher.cancel()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.on_disconnect()
                return


RAW_SEND_KEY = "clockwall.send"  # the server's own `send`, put in the scope by ClockwallApp


TRANSPORT_METHODS = ("write", "is_closing", "get_write_buffer_size", "abort")


def writable_transport(raw_send: Any) -> Any:
    """The connection's transport, when the body of this response may be written to it
    directly: uvicorn's httptools protocol, a chunked body under way, the client connected.
    Anything else (h11, another server, a middleware that rewrites bodies) gets None and the
    stream keeps to ASGI `send`."""
    cycle = getattr(raw_send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl":
        return None
    transport = getattr(cycle, "transport", None)
    if (
        getattr(cycle, "chunked_encoding", None) is not True
        or getattr(cycle, "disconnected", True)
        or getattr(cycle, "response_complete", True)
        # asyncio's or uvloop's (which does not subclass asyncio.Transport)
        or not all(hasattr(transport, m) for m in TRANSPORT_METHODS)
    ):
        return None
    return transport


class EventsEndpoint:
    def __init__(
        self,
        settings: Settings,
        api: Api,
        hub: ChangeHub,
        metrics: Metrics,
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = api.store
        self.hub = hub
        self.metrics = metrics
        self.status = status
        self.snapshots = SnapshotCache(hub)
        hub.encode_batch = self.encode_batch

    def status_event(self) -> bytes:
        return encode_sse("status", orjson.dumps(self.status()))

    async def handle(self, request: Request) -> Response | HubEventSourceResponse:
        share = getattr(request.state, "share", None)
        try:
            ws = share.workspace if share is not None else self.api.workspace(request)
            start, end = parse_range(dict(request.query_params), self.store)
        except QueryError as exc:
            return error_response(400, str(exc), "fix the query parameter and retry")
        if request.method == "HEAD":  # the headers of a stream, and no subscription to leak
            return Response(status_code=200, headers=STREAM_HEADERS, media_type="text/event-stream")
        raw_last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
        last = parse_stream_id(raw_last) if raw_last else None
        change_filter: ChangeFilter | None = getattr(request.state, "change_filter", None)
        sub = self.hub.subscribe(ws)
        self.metrics.sse_clients.inc()
        stream = self._stream(sub, ws, start, end, last, change_filter)
        return HubEventSourceResponse(
            stream,
            on_disconnect=lambda: self.hub.end(sub),
            sub=sub if change_filter is None else None,  # scoped streams filter per client
        )

    async def _stream(
        self,
        sub: Subscriber,
        ws: str,
        start: Any,
        end: Any,
        last: tuple[int, int] | None,
        change_filter: ChangeFilter | None,
    ) -> AsyncIterator[bytes]:
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            try:
                async with asyncio.timeout(10):
                    missed = await self.hub.read_since(ws, last) if last is not None else None
                    snapshot = None
                    if missed is None:
                        snapshot = await self.snapshots.get(
                            self.store, ws, start, end, self._snapshot_extra()
                        )
                if snapshot is not None:
                    data = snapshot.data
                    if change_filter is not None:
                        data = self._scoped_snapshot(data, change_filter)
                    yield encode_sse("snapshot", data, snapshot.stream_id)
                    sent = parse_stream_id(snapshot.stream_id) or (0, 0)
                else:
                    sent = last or (0, 0)
                    for change in missed or ():
                        chunk = self._encode(change, change_filter)
                        if chunk:
                            yield chunk
                        sent = change.id
            except (RedisError, OSError) as exc:
                log.warning("SSE: store unavailable for a new stream (%s)", type(exc).__name__)
                yield encode_sse("status", orjson.dumps({**self.status(), "store": "unreachable"}))
                return
            yield self.status_event()
            while True:
                # Every yield so far is written (this generator resumes only after the send);
                # once nothing is queued and the reader is past what this client has, the hub
                # can write to its connection directly, in order, with nothing sent twice.
                if sub.writable is not None and sub.transport is None and sub.queue.empty():
                    position = self.hub.position(ws)
                    if position is not None and position >= sent:
                        sub.transport = sub.writable
                # Everything queued goes out as one write: one send per wakeup, not per event,
                # so a client that fell behind catches up in a few large writes.
                parts: list[bytes] = []
                item = await sub.queue.get()
                while True:
                    if item == b"":
                        if parts:
                            yield b"".join(parts)
                        return  # dropped as too slow, or shutting down: the browser resumes
                    if isinstance(item, bytes):
                        parts.append(item)
                    else:
                        for change in item:
                            if change.id <= sent:
                                continue
                            sent = change.id
                            chunk = self._encode(change, change_filter)
                            if chunk:
                                parts.append(chunk)
                    if sub.queue.empty():
                        break
                    item = sub.queue.get_nowait()
                if parts:
                    yield b"".join(parts)
        finally:
            self.hub.unsubscribe(sub)
            self.metrics.sse_clients.dec()

    def encode_batch(self, batch: tuple[Change, ...]) -> bytes:
        """A batch's SSE bytes for every unscoped client, encoded once."""
        return b"".join(filter(None, (self._encode(change, None) for change in batch)))

    def _encode(self, change: Change, change_filter: ChangeFilter | None) -> bytes | None:
        if change.data.get("type") == "poll":
            status = {**self.status(), "poll": change.data}
            return encode_sse("status", orjson.dumps(status), change.id_text)
        return change_filter(change) if change_filter else change.encoded

    def _snapshot_extra(self) -> dict[str, Any]:
        return {
            "timezone": self.store.zone.key,
            "weekStart": WEEKDAYS[self.store.week_start_index],
            "longTimerHours": self.settings.long_timer_hours,
        }

    @staticmethod
    def _scoped_snapshot(data: bytes, change_filter: ChangeFilter) -> bytes:
        scoper = getattr(change_filter, "scope_snapshot", None)
        return scoper(data) if scoper else data
