"""Test helpers for SSE over a real socket: a raw HTTP/1.1 SSE client that decodes the chunked
body itself (so a clean end of stream and a dropped connection look different), and the real
app served by uvicorn inside the test's event loop, stoppable and restartable on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from app.compat import ClockwallServer

WAIT_S = 5.0  # the default bound on any single wait; a test never hangs longer than this


class StreamEndedError(Exception):
    """The response body ended. `clean` is True when the server sent the terminating chunk
    (the stream was closed on purpose), False when the connection simply went away."""

    def __init__(self, clean: bool) -> None:
        super().__init__("stream ended cleanly" if clean else "connection closed mid-stream")
        self.clean = clean


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched event, or one comment line (`comment` set, the other fields empty)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry_ms: int | None = None
    comment: str | None = None

    @property
    def is_comment(self) -> bool:
        return self.comment is not None


class SSEClient:
    """`GET path` on host:port; `next()` returns the next event or comment within a bound."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.status = status
        self.headers: dict[str, str] = {}
        self.last_event_id: str | None = None
        self._chunked = False
        self._body_done = False
        self._buffer = b""
        self._pending: list[SSEMessage] = []
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/events",
        headers: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        timeout_s: float = WAIT_S,
    ) -> SSEClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        client = cls(reader, writer, int(status_line.split(" ", 2)[1]))
        for line in header_lines:
            name, _, value = line.partition(":")
            client.headers[name.strip().lower()] = value.strip()
        client._chunked = client.headers.get("transfer-encoding", "").lower() == "chunked"
        return client

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> SSEClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Reading --------------------------------------------------------------------------
    async def next(self, timeout_s: float = WAIT_S) -> SSEMessage:
        """The next event or comment; TimeoutError after `timeout_s`; StreamEndedError at the
        end of the body."""
        return await asyncio.wait_for(self._next(), timeout_s)

    async def next_event(self, timeout_s: float = WAIT_S) -> SSEMessage:
        """The next event, skipping comments (heartbeats)."""

        async def skip() -> SSEMessage:
            while True:
                message = await self._next()
                if not message.is_comment:
                    return message

        return await asyncio.wait_for(skip(), timeout_s)

    async def events(self, count: int, timeout_s: float = WAIT_S) -> list[SSEMessage]:
        """Exactly the next `count` events (comments skipped), all within `timeout_s`."""

        async def collect() -> list[SSEMessage]:
            out: list[SSEMessage] = []
            while len(out) < count:
                message = await self._next()
                if not message.is_comment:
                    out.append(message)
            return out

        return await asyncio.wait_for(collect(), timeout_s)

    async def wait_end(self, timeout_s: float = WAIT_S) -> tuple[bool, list[SSEMessage]]:
        """Read until the body ends; (clean, the events read on the way)."""

        async def drain() -> tuple[bool, list[SSEMessage]]:
            seen: list[SSEMessage] = []
            try:
                while True:
                    message = await self._next()
                    if not message.is_comment:
                        seen.append(message)
            except StreamEndedError as end:
                return end.clean, seen

        return await asyncio.wait_for(drain(), timeout_s)

    async def _next(self) -> SSEMessage:
        while not self._pending:
            self._parse(await self._read_body())
        return self._pending.pop(0)

    async def _read_body(self) -> bytes:
        if self._body_done:
            raise StreamEndedError(clean=True)
        try:
            if not self._chunked:
                data = await self.reader.read(65536)
                if not data:
                    self._body_done = True
                    raise StreamEndedError(clean=False)
                return data
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            data = await self.reader.readexactly(size + 2)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._body_done = True
            raise StreamEndedError(clean=False) from exc
        if size == 0:
            self._body_done = True
            raise StreamEndedError(clean=True)
        return data[:-2]

    def _parse(self, chunk: bytes) -> None:
        """The SSE line protocol (WHATWG HTML, 9.2.6): lines end in CRLF, LF or CR; a blank
        line dispatches the event; `:` starts a comment."""
        self._buffer += chunk
        text = self._buffer.decode("utf-8", "replace")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        # The last piece is an incomplete line (or "" after a final newline); keep it.
        self._buffer = lines.pop().encode()
        for line in lines:
            if not line:
                self._dispatch()
            elif line.startswith(":"):
                self._pending.append(SSEMessage(comment=line[1:].lstrip(" ")))
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    self._data.append(value)
                elif name in ("event", "id", "retry"):
                    self._fields[name] = value

    def _dispatch(self) -> None:
        fields, self._fields = self._fields, {}
        data, self._data = self._data, []
        if "id" in fields:
            self.last_event_id = fields["id"]
        retry = fields.get("retry", "")
        if not data and "event" not in fields:
            if retry.isdigit():  # a bare `retry:` block: report it as an event of its own
                self._pending.append(SSEMessage(event="retry", retry_ms=int(retry)))
            return
        self._pending.append(
            SSEMessage(
                event=fields.get("event") or "message",
                data="\n".join(data),
                id=fields.get("id"),
                retry_ms=int(retry) if retry.isdigit() else None,
            )
        )


@contextlib.asynccontextmanager
async def stalled_connection(
    port: int, path: str = "/events", host: str = "127.0.0.1"
) -> AsyncIterator[socket.socket]:
    """A client that sends its request and then never reads: a tiny receive buffer, so the
    server's writes back up quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), WAIT_S)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
        await asyncio.get_running_loop().sock_sendall(sock, request.encode())
        yield sock
    finally:
        sock.close()


# The server ----------------------------------------------------------------------------
class _QuietServer(ClockwallServer):
    """uvicorn without signal handlers: the test, not SIGINT/SIGTERM, decides when it stops
    (`install_signal_handlers=False` of older uvicorn releases)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


class AppServer:
    """The app on 127.0.0.1:<free port>, served by uvicorn as a task of the current loop."""

    def __init__(self, app: ASGIApp, http: str = "auto") -> None:
        self.app = app
        self.http = http  # "auto" is httptools when installed (it is here); or "h11"
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0  # chosen on the first start, kept across restarts

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = WAIT_S) -> AppServer:
        config = uvicorn.Config(
            self.app, lifespan="on", log_level="warning", access_log=False, http=self.http
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        # The app's own shutdown signal (create_app makes one), as `clockwall serve` wires it.
        exiting = getattr(getattr(self.app, "state", None), "exiting", None)
        self.server = _QuietServer(config, exiting or asyncio.Event())
        # uvicorn closes the socket when it shuts down.
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]))

        async def started() -> None:
            assert self.server is not None and self._task is not None
            while not self.server.started:
                if self._task.done():
                    self._task.result()  # raises what stopped the server
                    raise RuntimeError("uvicorn exited during startup")
                await asyncio.sleep(0.01)

        await asyncio.wait_for(started(), timeout_s)
        return self

    async def stop(self, timeout_s: float = WAIT_S) -> None:
        """What SIGTERM does under `clockwall serve`: uvicorn exits, and the app's `exiting`
        event (set by ClockwallServer as it shuts down) ends its event streams."""
        if self.server is None or self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self.server.force_exit = True
            await asyncio.wait_for(self._task, timeout_s)
            raise
        finally:
            self.server = None
            self._task = None

    async def __aenter__(self) -> AppServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
