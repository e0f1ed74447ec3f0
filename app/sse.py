"""GET /events: `snapshot` first (or the missed changes after Last-Event-ID), then `change`
events as the hub reads them, `status` events when the store or data freshness changes, and
heartbeat comments. Every data event carries its Redis Stream id.

A share link's stream is scoped: its snapshot is the scope's metadata (the page fetches its
own report), its changes say only which days to refetch, and its status only whether the
store answers. Streams are capped per process and per share link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import date
from typing import Any

import orjson
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api import Api, parse_range
from app.compat import writable_transport
from app.config import WEEKDAYS, Settings
from app.errors import error_response
from app.metrics import Metrics
from app.snapshot import SnapshotCache
from app.stream import (
    Change,
    ChangeHub,
    StreamId,
    Subscriber,
    encode_sse,
    format_stream_id,
    parse_stream_id,
)

log = logging.getLogger(__name__)
RETRY_MS = 2000
RETRY_AFTER_S = 30  # a refused stream: when the browser should try again
ChangeFilter = Callable[[Change], bytes | None]


STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-store"}
RAW_SEND_KEY = "clockwall.send"  # the server's own `send`, put in the scope by ClockwallApp


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


# Every event stream answers with the same headers; sse-starlette builds them once, here.
_RAW_HEADERS = EventSourceResponse(_nothing(), ping=0, headers=STREAM_HEADERS).raw_headers


class HubEventSourceResponse:
    """One client's event stream, with sse-starlette's headers and framing but a leaner life.

    sse-starlette's EventSourceResponse runs five tasks per client (the stream, a ping timer, a
    shutdown listener, a disconnect listener and a supervisor) and a lock. Here the ChangeHub
    does heartbeats and shutdown for all clients at once, so each client costs its handler, a
    small object and, only where the hub cannot see the connection (h11, other servers,
    share-scoped streams), a disconnect watcher. Where it can, the hub notices a closed
    connection on its next write or heartbeat (ChangeHub.sweep), which spares every screen a
    task (1.5 KiB): what lets one process hold ten thousand idle screens (bench/fanout.py).

    Its subscription, the `sse_clients` gauge and the stream caps are taken and given back in
    one place, `__call__`: a response created and never run (the client left first) holds
    nothing. HEAD never gets here (EventsEndpoint answers it)."""

    __slots__ = ("change_filter", "end", "endpoint", "last", "share", "start", "ws")

    def __init__(
        self,
        endpoint: EventsEndpoint,
        ws: str,
        start: date,
        end: date,
        last: StreamId | None,
        share: Any,
        change_filter: ChangeFilter | None,
    ) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.start = start
        self.end = end
        self.last = last
        self.share = share
        self.change_filter = change_filter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoint
        refusal = endpoint.refusal(self.share)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        sub = endpoint.acquire(self.ws, self.share, scoped=self.change_filter is not None)
        body: AsyncGenerator[bytes, None] | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _RAW_HEADERS})
            if not sub.scoped:  # scoped streams filter per client: the hub never writes them
                sub.writable = writable_transport(scope.get(RAW_SEND_KEY))
            if sub.writable is None:
                watcher = asyncio.create_task(self._watch_disconnect(receive, sub))
            body = endpoint.stream(sub, self)
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            endpoint.release(sub, self.share)
            if watcher is not None:
                watcher.cancel()
            if body is not None:
                await body.aclose()

    async def _watch_disconnect(self, receive: Receive, sub: Subscriber) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.endpoint.hub.end(sub)
                return


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
        hub.status_listeners.append(self._store_changed)
        # Streams running now: in all, and per share link (by its scope, which names the link).
        self.open_streams = 0
        self.share_streams: dict[Any, int] = {}
        self._full = False

    def status_event(self) -> bytes:
        return encode_sse("status", orjson.dumps(self.status()))

    @staticmethod
    def scoped_status_event(store_ok: bool) -> bytes:
        """What a share page may know of the server's state: whether the store answers. Never
        the mode, the poller, the plan, the request budget or their errors."""
        return encode_sse("status", orjson.dumps({"store": "ok" if store_ok else "unreachable"}))

    def _store_changed(self, ok: bool) -> None:
        self.hub.broadcast(None, self.status_event(), self.scoped_status_event(ok))

    async def handle(self, request: Request) -> Response | HubEventSourceResponse:
        share = getattr(request.state, "share", None)
        # A malformed query raises QueryError: a 400 (app.api.EXCEPTION_HANDLERS).
        ws = share.workspace if share is not None else self.api.workspace(request)
        start, end = parse_range(dict(request.query_params), self.store)
        if request.method == "HEAD":  # the headers of a stream, and no subscription to leak
            return Response(status_code=200, headers=STREAM_HEADERS, media_type="text/event-stream")
        raw_last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
        # An id that is no stream id, or one Redis cannot hold, is as good as none.
        last = parse_stream_id(raw_last) if raw_last else None
        change_filter: ChangeFilter | None = getattr(request.state, "change_filter", None)
        return HubEventSourceResponse(self, ws, start, end, last, share, change_filter)

    # Stream slots --------------------------------------------------------------------------
    def refusal(self, share: Any) -> Response | None:
        """A 503 when one more stream would pass a cap; None when it may start."""
        settings = self.settings
        if self.open_streams >= settings.max_streams:
            if not self._full:
                self._full = True
                log.warning(
                    "SSE: %d event streams open, CLOCKWALL_MAX_STREAMS; refusing new ones until "
                    "some close (raise it, or run more processes, if this server can hold more)",
                    self.open_streams,
                )
            return error_response(
                503,
                f"this server has as many live streams open as it may ({settings.max_streams})",
                "the page retries by itself; if this lasts, the operator can raise "
                "CLOCKWALL_MAX_STREAMS or run more processes",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        if share is not None and self.share_streams.get(share, 0) >= settings.max_share_streams:
            return error_response(
                503,
                f"this share link has {settings.max_share_streams} live views open already, "
                "the most one link may have",
                "close the link in another tab or window; the page retries by itself",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        return None

    def acquire(self, ws: str, share: Any, scoped: bool) -> Subscriber:
        """Subscribe and count one stream; `release` gives back exactly this."""
        sub = self.hub.subscribe(ws, scoped=scoped)
        self.metrics.sse_clients.inc()
        self.open_streams += 1
        if share is not None:
            self.share_streams[share] = self.share_streams.get(share, 0) + 1
        return sub

    def release(self, sub: Subscriber, share: Any) -> None:
        self.hub.unsubscribe(sub)
        self.metrics.sse_clients.dec()
        self.open_streams -= 1
        if self.open_streams < self.settings.max_streams:
            self._full = False
        if share is not None:
            left = self.share_streams.get(share, 0) - 1
            if left > 0:
                self.share_streams[share] = left
            else:
                self.share_streams.pop(share, None)

    # The stream ---------------------------------------------------------------------------
    async def stream(
        self, sub: Subscriber, request: HubEventSourceResponse
    ) -> AsyncGenerator[bytes, None]:
        ws, change_filter = request.ws, request.change_filter
        yield f"retry: {RETRY_MS}\n\n".encode()
        if sub.scoped:
            # The share page fetches its report when the snapshot arrives and on every
            # `refresh`: it needs the scope's metadata and where the stream stands, nothing
            # that costs a Redis read. Subscribed first, so no change after that point is lost.
            position = self.hub.position(ws)
            yield encode_sse(
                "snapshot",
                self._share_snapshot(request),
                format_stream_id(position) if position is not None else None,
            )
            sent = position or (0, 0)
            yield self.scoped_status_event(self.hub.store_ok)
        else:
            opened = await self._open(request)
            if opened is None:  # the store did not answer: say so; the browser retries
                yield encode_sse("status", orjson.dumps({**self.status(), "store": "unreachable"}))
                return
            sent, opening = opened
            del opened
            if opening:
                yield opening
            # A stream may live for hours (or, its client gone, until the next heartbeat finds
            # it): it must not hold on to the snapshot it began with.
            del opening
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

    async def _open(self, request: HubEventSourceResponse) -> tuple[StreamId, bytes] | None:
        """How an unscoped stream begins: the snapshot, or the changes missed since its
        Last-Event-ID, as one chunk, with the id of the newest change it covers. None when the
        store did not answer (logged)."""
        ws, last = request.ws, request.last
        position = self.hub.position(ws)
        if last is not None and position is not None and last > position:
            last = None  # an id from the future: a resume would skip every change until it
        try:
            async with asyncio.timeout(10):
                missed = await self.hub.read_since(ws, last) if last is not None else None
                if missed is None:
                    snapshot = await self.snapshots.get(
                        self.store, ws, request.start, request.end, self._snapshot_extra()
                    )
                    sent = parse_stream_id(snapshot.stream_id) or (0, 0)
                    return sent, encode_sse("snapshot", snapshot.data, snapshot.stream_id)
        except (RedisError, OSError) as exc:
            log.warning("SSE: store unavailable for a new stream (%s)", type(exc).__name__)
            return None
        sent = last or (0, 0)
        parts: list[bytes] = []
        for change in missed:
            encoded = self._encode(change, None)
            if encoded:
                parts.append(encoded)
            sent = change.id
        return sent, b"".join(parts)

    def encode_batch(self, batch: tuple[Change, ...]) -> bytes:
        """A batch's SSE bytes for every unscoped client, encoded once."""
        return b"".join(filter(None, (self._encode(change, None) for change in batch)))

    def _encode(self, change: Change, change_filter: ChangeFilter | None) -> bytes | None:
        if change.data.get("type") == "poll":
            if change_filter is not None:
                return None  # the poller's state is the operator's business
            status = {**self.status(), "poll": change.data}
            return encode_sse("status", orjson.dumps(status), change.id_text)
        return change_filter(change) if change_filter else change.encoded

    def _snapshot_extra(self) -> dict[str, Any]:
        return {
            "timezone": self.store.zone.key,
            "weekStart": WEEKDAYS[self.store.week_start_index],
            "longTimerHours": self.settings.long_timer_hours,
        }

    def _share_snapshot(self, request: HubEventSourceResponse) -> bytes:
        store = self.store
        return orjson.dumps(
            {
                "scope": getattr(request.share, "kind", None),
                "range": {"start": request.start.isoformat(), "end": request.end.isoformat()},
                "today": store.today().isoformat(),
                "timezone": store.zone.key,
                "weekStart": WEEKDAYS[store.week_start_index],
                "asOf": store.clock().isoformat(),
            }
        )
