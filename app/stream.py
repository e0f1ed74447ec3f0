"""ChangeHub: one reader of the Redis change streams per process, fanning out to local clients.

The reader XREADs (BLOCK) every configured workspace's stream and hands each reply, as one
batch of events encoded once as SSE bytes, to every subscriber's bounded queue. A subscriber
whose queue is full is dropped (its stream ends, the browser reconnects with Last-Event-ID and
resumes from Redis), so one slow screen never slows the others or grows memory. No Redis
connection per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys
from app.tasks import stop_tasks

log = logging.getLogger(__name__)

StreamId = tuple[int, int]
# Both halves of a Redis Stream id are unsigned 64-bit numbers; Redis refuses anything larger.
STREAM_ID_PART_LIMIT = 2**64


def parse_stream_id(raw: str) -> StreamId | None:
    """`1711111111111-3` -> (1711111111111, 3); None for anything else, including ids no
    Redis Stream can hold."""
    if len(raw) > 41:
        return None
    ms, sep, seq = raw.strip().partition("-")
    if not (ms.isascii() and ms.isdigit() and (not sep or (seq.isascii() and seq.isdigit()))):
        return None
    sid = int(ms), int(seq or 0)
    if sid[0] >= STREAM_ID_PART_LIMIT or sid[1] >= STREAM_ID_PART_LIMIT:
        return None
    return sid


def format_stream_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def encode_sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE message. `data` is compact JSON (no newlines), so one `data:` line suffices."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: ".encode() + data + b"\n\n"


@dataclass(eq=False)
class Change:
    """One change event as read from the stream: its id, its JSON (compact, one line, as the
    Lua script or the poller wrote it) and, on demand, the decoded payload and SSE bytes."""

    workspace: str
    id: StreamId
    raw: bytes

    @cached_property
    def data(self) -> dict[str, Any]:
        try:
            decoded = orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            log.warning("change stream: an undecodable event %s", self.id_text)
            return {}
        return decoded if isinstance(decoded, dict) else {}

    @property
    def id_text(self) -> str:
        return format_stream_id(self.id)

    @cached_property
    def encoded(self) -> bytes:
        """The SSE message, built once however many clients it goes to."""
        return encode_sse("change", self.raw, self.id_text)

    def sse(self) -> bytes:
        return self.encoded


# A queue item: the changes of one XREAD reply, a pre-encoded message (status), or b"" (end).
Batch = tuple[Change, ...]


class Mailbox:
    """A bounded queue for one reader, a tenth of asyncio.Queue's size per client (a list and
    one future instead of three deques and an Event): it is what each idle screen costs."""

    __slots__ = ("_items", "_waiter", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: list[Batch | bytes] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Batch | bytes) -> None:
        if len(self._items) >= self.limit:
            raise asyncio.QueueFull
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def get_nowait(self) -> Batch | bytes:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Batch | bytes:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self.limit

    def qsize(self) -> int:
        return len(self._items)


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connected client: a bounded queue of batches, and whether the hub dropped it.

    Once a client is live (its snapshot and everything queued before it are written), the hub
    may write to its connection directly: `writable` is the connection's transport when the
    server allows that (uvicorn's httptools protocol, chunked body), `transport` is set when
    the stream switches over. A batch then costs one write per client, framed once for all,
    instead of a queue item, a task wake-up and a trip through every ASGI layer.

    A `scoped` client (a share link's stream) filters every change for itself and is never
    written to directly; broadcasts give it their scoped form (see ChangeHub.broadcast)."""

    workspace: str
    queue: Mailbox = field(default_factory=lambda: Mailbox(256))
    dropped: bool = False
    writable: Any = None
    transport: Any = None
    scoped: bool = False


def chunk(body: bytes) -> bytes:
    """One HTTP/1.1 chunk, as uvicorn frames a body part (never the empty final chunk)."""
    return b"%x\r\n%b\r\n" % (len(body), body)


class ChangeHub:
    def __init__(
        self,
        redis: Redis,
        workspaces: tuple[str, ...],
        queue_size: int = 256,
        block_ms: int = 2000,  # below the Redis client's 5 s socket timeout
        on_drop: Callable[[], None] | None = None,
        on_lag: Callable[[float], None] | None = None,
        heartbeat_s: float = 15.0,
        coalesce_s: float = 0.015,
        write_share: float = 0.5,
        max_buffered_bytes: int = 1024 * 1024,
        exiting: asyncio.Event | None = None,
        read_margin_s: float = 3.0,
        skim_s: float = 0.1,
    ) -> None:
        self.redis = redis
        # Set when the server begins to exit (app.compat.ClockwallServer): every stream ends.
        self.exiting = exiting
        # A read that has not answered `read_margin_s` after its BLOCK time is stuck (a
        # connection a firewall dropped silently, a paused Redis): it is abandoned.
        self.read_margin_s = read_margin_s
        # A directly written client whose unsent bytes pass this is too slow: it is dropped.
        self.max_buffered_bytes = max_buffered_bytes
        # The SSE bytes of a batch for directly written clients (set by the events endpoint).
        self.encode_batch: Callable[[Batch], bytes] | None = None
        # Batches of changes are written at most every `coalesce_s`, and never so often that
        # writing them takes more than `write_share` of the process's time (see run()).
        self.coalesce_s = coalesce_s
        self.write_share = write_share
        self._next_read = 0.0
        # While no client listens, the reader only skims the streams (see _skim), every
        # `skim_s`; a client subscribing wakes it at once.
        self.skim_s = skim_s
        self._pause: asyncio.Future[None] | None = None
        self.workspaces = workspaces
        self.queue_size = queue_size
        # An XREAD BLOCK must return before the client's socket timeout fires, or every quiet
        # stretch reads as "Redis unavailable" (and flaps the status of every screen).
        pool_kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", {})
        socket_timeout_s = pool_kwargs.get("socket_timeout")
        if socket_timeout_s:
            block_ms = max(1, min(block_ms, int(socket_timeout_s * 1000 / 2)))
        self.block_ms = block_ms
        self.on_drop = on_drop
        self.on_lag = on_lag
        self.subscribers: set[Subscriber] = set()
        # Bumped on every dispatch, so a cached snapshot knows whether it is still exact.
        self.versions: dict[str, int] = {}
        self.last_ids: dict[str, str] = {}
        self.store_ok = True
        self.status_listeners: list[Callable[[bool], None]] = []
        self.heartbeat_s = heartbeat_s
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []

    # Subscribers ------------------------------------------------------------------------
    def subscribe(self, workspace: str, scoped: bool = False) -> Subscriber:
        sub = Subscriber(workspace, Mailbox(self.queue_size), scoped=scoped)
        self.subscribers.add(sub)
        if self._pause is not None and not self._pause.done():
            self._pause.set_result(None)  # the reader reads in full from now on
        if self.closing:
            self._close(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _offer(self, sub: Subscriber, item: Batch | bytes) -> None:
        if sub.dropped:
            return
        try:
            sub.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop(sub)

    def _write(self, sub: Subscriber, framed: bytes) -> None:
        """Write one framed chunk straight to a live client's connection."""
        if sub.dropped:
            return
        transport = sub.transport
        if transport.is_closing():  # gone: its stream ends
            self._close(sub)
        elif transport.get_write_buffer_size() > self.max_buffered_bytes:
            self._drop(sub)
            transport.abort()  # it reads nothing: the end of the stream could not reach it
        else:
            transport.write(framed)

    def _drop(self, sub: Subscriber) -> None:
        self._close(sub)
        if self.on_drop:
            self.on_drop()

    def position(self, workspace: str) -> StreamId | None:
        """The id of the newest change this process has read from the workspace's stream."""
        last = self.last_ids.get(keys.changes(workspace))
        return parse_stream_id(last) if last is not None else None

    def end(self, sub: Subscriber) -> None:
        """End one subscriber's stream (its generator returns once it reads the marker)."""
        if not sub.dropped:
            self._close(sub)

    def _close(self, sub: Subscriber) -> None:
        """End a subscriber's stream: empty its queue and leave the end marker `b""`."""
        sub.dropped = True
        self.subscribers.discard(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(b"")

    def broadcast(
        self, workspace: str | None, payload: bytes, scoped_payload: bytes | None = None
    ) -> None:
        """Send a pre-encoded message (e.g. a `status` event) to every local client; scoped
        clients get `scoped_payload` instead when one is given (what they may see of it)."""
        self._fan_out(workspace, payload, lambda: chunk(payload), scoped_payload)

    def dispatch(self, change: Change) -> None:
        self.dispatch_batch(change.workspace, (change,))

    def dispatch_batch(self, workspace: str, changes: Batch) -> None:
        """One queue item per client for a whole XREAD reply: a burst (a batch webhook, a
        backfill) costs one slot of the client's queue, not one per change, and the per-client
        cost of a busy moment shrinks as the replies grow."""
        self.versions[workspace] = self.versions.get(workspace, 0) + 1
        self._fan_out(workspace, changes, lambda: self._frame_batch(changes))

    def _fan_out(
        self,
        workspace: str | None,
        item: Batch | bytes,
        frame: Callable[[], bytes],
        scoped_item: Batch | bytes | None = None,
    ) -> None:
        """`item` to every client of `workspace` (None: all): queued for one still catching
        up, or written to a live one's connection as the chunk `frame()` builds, once.
        Scoped clients (always queued) get `scoped_item` when one is given."""
        framed: bytes | None = None
        for sub in list(self.subscribers):
            if workspace is not None and sub.workspace != workspace:
                continue
            if sub.transport is None:
                self._offer(sub, scoped_item if sub.scoped and scoped_item is not None else item)
                continue
            if framed is None:
                framed = frame()
            if framed:  # a batch with nothing to show (empty): no chunk, which would end it
                self._write(sub, framed)

    def _frame_batch(self, changes: Batch) -> bytes:
        assert self.encode_batch is not None  # set before any stream goes direct
        body = self.encode_batch(changes)
        return chunk(body) if body else b""

    # History ----------------------------------------------------------------------------
    async def read_since(self, workspace: str, after: StreamId) -> list[Change] | None:
        """Every change after `after`, in order; None when `after` has been trimmed away."""
        stream = keys.changes(workspace)
        first = await self.redis.xrange(stream, count=1)
        if not first:
            return None if after != (0, 0) else []
        oldest = parse_stream_id(_text(first[0][0]))
        # Ids only grow, so an id older than the oldest kept one may have lost its successors.
        if oldest is None or after < oldest:
            return None
        out: list[Change] = []
        cursor = "(" + format_stream_id(after)
        while True:
            batch: Any = await self.redis.xrange(stream, min=cursor, count=500)
            for raw_id, fields in batch:
                change = decode_change(workspace, raw_id, fields)
                if change is not None:
                    out.append(change)
            if len(batch) < 500:
                return out
            cursor = "(" + _text(batch[-1][0])

    # The reader -------------------------------------------------------------------------
    async def prime(self) -> None:
        """Note where every stream ends now, before any client subscribes, so the first
        XREAD starts exactly after the newest change a first snapshot can contain. All or
        nothing: a read that fails half way must not leave a workspace out of every XREAD.
        Bounded like every read (a silent Redis at start-up must not hold the server's start)."""
        newest_ids: dict[str, str] = {}
        async with asyncio.timeout(self.read_deadline_s):
            for ws in self.workspaces:
                newest = await self.redis.xrevrange(keys.changes(ws), count=1)
                newest_ids[keys.changes(ws)] = _text(newest[0][0]) if newest else "0-0"
        self.last_ids.update(newest_ids)

    def start(self) -> None:
        """Three tasks for the whole process, however many clients: the stream reader, the
        heartbeat and the shutdown watch (no per-client ping or exit-listener tasks)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self.run(), name="clockwall-change-reader"),
                asyncio.create_task(self._heartbeat(), name="clockwall-sse-heartbeat"),
            ]
            if self.exiting is not None:
                watch = asyncio.create_task(self._watch_shutdown(), name="clockwall-sse-shutdown")
                self._tasks.append(watch)

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        self.close_all()

    def close_all(self) -> None:
        """End every local stream cleanly (the browsers reconnect and resume)."""
        self.closing = True
        for sub in list(self.subscribers):
            self._close(sub)

    async def _heartbeat(self) -> None:
        # One comment line to every client keeps proxies from timing the stream out, and a
        # client too stalled to take even that is dropped like any other slow one.
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self.sweep()
            self.broadcast(None, b": ping\n\n")

    def sweep(self) -> None:
        """End the streams whose connection has closed. Streams the hub may write to have no
        disconnect watcher of their own (a task each); their closed connections are found here,
        at each heartbeat, or by the next write."""
        for sub in list(self.subscribers):
            if sub.writable is not None and sub.writable.is_closing():
                self._close(sub)

    async def _watch_shutdown(self) -> None:
        # uvicorn waits for open responses before it runs the lifespan shutdown, so streams
        # must end when the server starts to exit, which `exiting` says.
        assert self.exiting is not None
        await self.exiting.wait()
        log.info("shutting down: ending %d event streams", len(self.subscribers))
        self.close_all()

    def _set_store_ok(self, ok: bool) -> None:
        if ok != self.store_ok:
            self.store_ok = ok
            for listener in self.status_listeners:
                listener(ok)

    async def _check_not_trimmed(self) -> None:
        """After an outage, XREAD resumes from the last id read; if other processes wrote so
        much meanwhile that it was trimmed away, that would be a silent gap. End every local
        stream instead: each browser resumes by Last-Event-ID, or gets a fresh snapshot."""
        for stream, last in self.last_ids.items():
            first = await self.redis.xrange(stream, count=1)
            oldest = parse_stream_id(_text(first[0][0])) if first else None
            last_id = parse_stream_id(last) or (0, 0)
            if oldest is not None and last_id != (0, 0) and last_id < oldest:
                log.warning("change stream %s was trimmed past this process; resyncing", stream)
                self.last_ids[stream] = "$"
                for sub in list(self.subscribers):
                    self._close(sub)

    @property
    def read_deadline_s(self) -> float:
        """How long one read may take before it counts as stuck."""
        return self.block_ms / 1000 + self.read_margin_s

    async def run(self) -> None:
        """Read forever; on a Redis error or a read that does not answer in time, log once,
        report the store down (every screen shows it), back off and read again.

        Every read has a deadline: a connection a firewall dropped silently, or a Redis that
        stopped answering, would otherwise hold XREAD (and every screen of the process) until
        TCP gives up, hours later. A read cancelled at its deadline leaves its connection
        closed, never back in the pool with a reply still due (redis-py disconnects on
        cancellation; tests/test_compat.py checks it), so the next read opens a fresh one."""
        backoff_s = 0.2
        while True:
            try:
                # Under load, what arrives between two reads goes out as one batch: each client
                # gets one write per batch instead of one per change, which is what keeps 1,000
                # screens cheap at hundreds of changes/s. Reads are `coalesce_s` apart, or more
                # when writing a batch to every client is slow (many clients): a pass that took
                # 13 ms with write_share 0.5 spaces reads 26 ms apart, so the writes never take
                # the whole process. A change after a quiet spell goes out at once.
                wait_s = self._next_read - time.monotonic()
                if wait_s > 0:
                    await self._wait(wait_s)
                async with asyncio.timeout(self.read_deadline_s):
                    if not self.last_ids:
                        await self.prime()
                    streams: Any = self.last_ids
                    if not self.subscribers:
                        # No screen of this process listens: only where the streams end
                        # matters (versions, positions), not what they carry.
                        await self._skim()
                        reply: Any = None
                    else:
                        reply = await self.redis.xread(streams, block=self.block_ms, count=2000)
                self._set_store_ok(True)
                backoff_s = 0.2
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.store_ok:
                    if isinstance(exc, TimeoutError):
                        log.warning(
                            "change stream reader: Redis did not answer within %.1f s; reading "
                            "again on a new connection (check the network to Redis)",
                            self.read_deadline_s,
                        )
                    else:
                        log.warning(
                            "change stream reader: Redis unavailable (%s)", type(exc).__name__
                        )
                self._set_store_ok(False)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                with contextlib.suppress(RedisError, OSError):
                    async with asyncio.timeout(self.read_deadline_s):
                        await self._check_not_trimmed()
                continue
            for raw_stream, entries in reply or []:
                stream = _text(raw_stream)
                workspace = stream.split("{", 1)[1].split("}", 1)[0]
                batch: list[Change] = []
                for raw_id, fields in entries:
                    self.last_ids[stream] = _text(raw_id)
                    change = decode_change(workspace, raw_id, fields)
                    if change is not None:
                        batch.append(change)
                if not batch:
                    continue
                if self.on_lag:
                    self.on_lag(max(0.0, time.time() - batch[-1].id[0] / 1000))
                started = time.monotonic()
                self.dispatch_batch(workspace, tuple(batch))
                spent = time.monotonic() - started
                self._next_read = next_read_at(started, spent, self.coalesce_s, self.write_share)

    async def _skim(self) -> None:
        """One read while no client listens: wait for a change (XREAD BLOCK, one entry), then
        move each stream that has one to its newest id and count a change there, without
        reading, decoding or dispatching what the streams carry (under a webhook burst that
        was 150 events of 1-2 KB every 15 ms, in Redis's CPU and this process's).

        A client that subscribes while this read waits makes it keep the old position: the
        next read is a full one from there, so nothing after the client's snapshot is lost.
        One that subscribes after it reads its snapshot later, which is past the newest id.
        Skims are `skim_s` apart: a cached snapshot (app/snapshot.py) is checked against the
        versions counted here, and a new client wakes the reader, so only how soon an idle
        process's snapshot cache notices a change depends on it."""
        streams: Any = self.last_ids
        reply: Any = await self.redis.xread(streams, block=self.block_ms, count=1)
        if not reply:
            return
        started = time.monotonic()
        moved = [_text(raw_stream) for raw_stream, entries in reply if entries]
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in moved:
                pipe.xrevrange(stream, count=1)
            newest: Any = await pipe.execute()
        if self.subscribers:
            return
        for stream, found in zip(moved, newest, strict=True):
            if not found:  # the stream was deleted meanwhile (a flushed Redis)
                continue
            last = _text(found[0][0])
            self.last_ids[stream] = last
            workspace = stream.split("{", 1)[1].split("}", 1)[0]
            self.versions[workspace] = self.versions.get(workspace, 0) + 1
            if self.on_lag:
                sid = parse_stream_id(last)
                if sid is not None:
                    self.on_lag(max(0.0, time.time() - sid[0] / 1000))
        self._next_read = started + self.skim_s

    async def _wait(self, seconds: float) -> None:
        """Sleep until the next read is due, or until a client subscribes."""
        loop = asyncio.get_running_loop()
        self._pause = pause = loop.create_future()
        timer = loop.call_later(seconds, _settle, pause)
        try:
            await pause
        finally:
            timer.cancel()
            self._pause = None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def next_read_at(started: float, spent: float, coalesce_s: float, write_share: float) -> float:
    """When the hub reads the change stream again after a dispatch that began at `started`
    and took `spent` seconds: at least `coalesce_s` later, and late enough that dispatching
    takes at most `write_share` of the time."""
    return started + max(coalesce_s, spent / write_share)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _field(fields: dict[Any, Any], name: str) -> bytes | None:
    raw = fields.get(name.encode())
    if raw is None:
        raw = fields.get(name)
    if raw is None:
        return None
    return raw if isinstance(raw, bytes) else str(raw).encode()


# An entry's change comes as its parts (apply_entry.lua): joined here in the order of the one
# JSON object the other writers store whole in field "d".
_ENTRY_PARTS = (
    (b'{"type":"entry","action":"', "a"),
    (b'","entry":', "e"),
    (b',"running":', "r"),
    (b',"prev":', "p"),
    (b',"next":', "n"),
    (b',"names":', "m"),
)


def event_of(fields: Any) -> bytes | None:
    """The JSON event a change stream entry holds, or None when it holds none."""
    if not isinstance(fields, dict):
        return None
    raw = _field(fields, "d")
    if raw is not None:
        return raw
    out: list[bytes] = []
    for lead, name in _ENTRY_PARTS:
        part = _field(fields, name)
        if part is None:
            return None
        out += (lead, part)
    out.append(b"}")
    return b"".join(out)


def decode_change(workspace: str, raw_id: Any, fields: Any) -> Change | None:
    sid = parse_stream_id(_text(raw_id))
    raw_bytes = event_of(fields)
    if sid is None or raw_bytes is None:
        return None
    if b"\n" in raw_bytes or b"\r" in raw_bytes:  # never from our writers; keep SSE framing safe
        raw_bytes = raw_bytes.replace(b"\r", b"").replace(b"\n", b"")
    return Change(workspace, sid, raw_bytes)
