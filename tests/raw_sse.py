"""A thousand cheap SSE clients on bare sockets, and the check that each saw exactly the change
stream after its snapshot, in order (no gap, no duplicate, no extra).
"""

from __future__ import annotations

import asyncio
import hashlib
from bisect import bisect_right

import orjson

from app.stream import parse_stream_id

StreamId = tuple[int, int]


class RawSSE(asyncio.Protocol):
    """One /events client on a bare socket: decodes the chunked body and the SSE lines, and keeps
    only what the checks need (snapshot id, a running digest of the event ids in order, store
    status values), so a thousand of them cost little CPU and memory."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.status: int | None = None
        self.snapshot_id: StreamId | None = None
        self.last_id: StreamId = (0, 0)
        self.count = 0
        self.digest = hashlib.blake2b(digest_size=16)
        self.disorder: list[tuple[StreamId, StreamId]] = []  # (previous, received) pairs
        self.stores: list[str] = []  # "store" of every status event, in order
        self.ended: str | None = None  # "clean" | "lost"
        self._raw = bytearray()
        self._head_done = False
        self._text = b""
        self._fields: dict[bytes, bytes] = {}
        self._data: list[bytes] = []
        self.got_snapshot = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._raw += data
        if not self._head_done:
            end = self._raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._raw[:end]).decode("latin-1")
            del self._raw[: end + 4]
            self.status = int(head.split(" ", 2)[1])
            if "transfer-encoding: chunked" not in head.lower():
                raise AssertionError(f"expected a chunked SSE body, got: {head}")
            self._head_done = True
        while True:  # de-chunk: `<hex size>\r\n<data>\r\n`, a zero size ends the body
            line_end = self._raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(self._raw[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                self.ended = "clean"
                self._raw.clear()
                return
            if len(self._raw) < line_end + 2 + size + 2:
                return
            self._lines(bytes(self._raw[line_end + 2 : line_end + 2 + size]))
            del self._raw[: line_end + 2 + size + 2]

    def _lines(self, chunk: bytes) -> None:
        if not self._text and not self._fields and chunk.startswith(b"id: ") and b"\r" not in chunk:
            # The common case, a write of whole `change` events: take each id without splitting
            # the (large) data lines.
            blocks = chunk.split(b"\n\n")
            if blocks[-1] == b"" and all(b.startswith(b"id: ") for b in blocks[:-1]):
                for block in blocks[:-1]:
                    _head, _, rest = block.partition(b"\n")
                    if not rest.startswith(b"event: change\n"):
                        break
                else:
                    for block in blocks[:-1]:
                        self._change(block[4 : block.index(b"\n")])
                    return
        text = (self._text + chunk).replace(b"\r\n", b"\n")
        lines = text.split(b"\n")
        self._text = lines.pop()
        for line in lines:
            if not line:
                self._dispatch()
            elif line.startswith(b":"):
                continue
            else:
                name, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if name == b"data":
                    self._data.append(value)
                else:
                    self._fields[name] = value

    def _dispatch(self) -> None:
        fields, self._fields = self._fields, {}
        data, self._data = self._data, []
        event = fields.get(b"event")
        raw_id = fields.get(b"id")
        if event == b"snapshot":
            assert raw_id is not None, "a snapshot without an id"
            self.snapshot_id = parse_stream_id(raw_id.decode())
            assert self.snapshot_id is not None
            self.last_id = self.snapshot_id
            self.got_snapshot.set()
            return
        if event == b"status":
            self.stores.append(str(orjson.loads(b"\n".join(data)).get("store")))
        if raw_id is None:
            return
        self._change(raw_id)  # a change, or a status with an id (the poller's freshness)

    def _change(self, raw_id: bytes) -> None:
        sid = parse_stream_id(raw_id.decode())
        assert sid is not None, f"an unparsable event id {raw_id!r}"
        if sid <= self.last_id:
            self.disorder.append((self.last_id, sid))
        self.last_id = sid
        self.count += 1
        self.digest.update(raw_id + b",")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is None:
            self.ended = "lost"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_raw_clients(
    port: int,
    count: int,
    path: str = "/events",
    parallel: int = 50,
    timeout_s: float = 60.0,
    headers: dict[str, str] | None = None,
) -> list[RawSSE]:
    """`count` SSE clients, each past its snapshot; at most `parallel` connecting at once."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    clients: list[RawSSE] = []

    async def one() -> None:
        async with gate:
            _, client = await loop.create_connection(lambda: RawSSE(request), "127.0.0.1", port)
            clients.append(client)
            await asyncio.wait_for(client.got_snapshot.wait(), 20)

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout_s)
    return clients


def expected_digest(ids: list[str], after: StreamId) -> tuple[int, str]:
    """Count and digest of the stream ids after `after`, as a gapless client would hold them."""
    parsed = [parse_stream_id(i) or (0, 0) for i in ids]
    digest = hashlib.blake2b(digest_size=16)
    tail = ids[bisect_right(parsed, after) :]
    for raw_id in tail:
        digest.update(raw_id.encode() + b",")
    return len(tail), digest.hexdigest()


def check_clients(clients: list[RawSSE], ids: list[str]) -> list[str]:
    """Problems of every client still connected: disorder, or not exactly the stream after its
    snapshot (a gap, a duplicate, an extra)."""
    problems: list[str] = []
    cache: dict[StreamId, tuple[int, str]] = {}
    for index, client in enumerate(clients):
        if client.ended is not None:
            continue
        assert client.snapshot_id is not None
        if client.disorder:
            problems.append(f"client {index}: ids out of order {client.disorder[:3]}")
        if client.snapshot_id not in cache:
            cache[client.snapshot_id] = expected_digest(ids, client.snapshot_id)
        count, digest = cache[client.snapshot_id]
        if (client.count, client.digest.hexdigest()) != (count, digest):
            problems.append(
                f"client {index}: {client.count} events after snapshot "
                f"{client.snapshot_id}, the stream holds {count} (or other ids)"
            )
    return problems
