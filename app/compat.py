"""Every use of another library's internals, fenced in one module; tests/test_compat.py checks
each against the installed releases and fails naming the library, its version and the part.

- uvicorn's httptools protocol: the response cycle behind an ASGI `send` (`writable_transport`,
  what lets the change hub write to a live event stream's connection), and a deadline on a
  request's headers (`header_deadline_protocol`; uvicorn has none, so a client that sends half
  a request line would hold its connection for ever).
- uvicorn's Server: the moment the server begins to exit (`ClockwallServer`), which event
  streams must hear at once, since uvicorn waits for open responses before it shuts down.
"""

from __future__ import annotations

import asyncio
import socket
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import error_body

HTTPTOOLS_MODULE = "uvicorn.protocols.http.httptools_impl"
# What writable_transport reads from httptools' RequestResponseCycle (the `__self__` of `send`).
CYCLE_FIELDS = (
    "transport",
    "chunked_encoding",
    "disconnected",
    "response_complete",
    # body_is_in: the receive side (`message_event` is an asyncio.Event)
    "more_body",
    "message_event",
)
# What the hub calls on that transport (asyncio's or uvloop's, which is no asyncio.Transport).
TRANSPORT_METHODS = ("write", "is_closing", "get_write_buffer_size", "abort")
# The HttpToolsProtocol hooks HeaderDeadlineProtocol extends, and the fields it uses.
PROTOCOL_HOOKS = ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete")
PROTOCOL_FIELDS = ("transport", "loop")
# The uvicorn.Server members ClockwallServer relies on.
SERVER_MEMBERS = ("handle_exit", "shutdown", "serve", "should_exit", "capture_signals")


def writable_transport(raw_send: Any) -> Any:
    """The connection's transport, when the body of this response may be written to it
    directly: uvicorn's httptools protocol, a chunked body under way, the client connected.
    Anything else (h11, another server, a middleware that rewrites bodies) gets None and the
    stream keeps to ASGI `send`."""
    cycle = getattr(raw_send, "__self__", None)
    if type(cycle).__module__ != HTTPTOOLS_MODULE:
        return None
    transport = getattr(cycle, "transport", None)
    if (
        getattr(cycle, "chunked_encoding", None) is not True
        or getattr(cycle, "disconnected", True)
        or getattr(cycle, "response_complete", True)
        or not all(hasattr(transport, m) for m in TRANSPORT_METHODS)
    ):
        return None
    return transport


def body_is_in(receive: Any) -> bool:
    """True when uvicorn's httptools protocol already holds the request's whole body, so the
    next `receive()` returns all of it without waiting: a reader needs no deadline for it.
    Anything else (h11, another server, a test transport) is False: read with a deadline."""
    cycle = getattr(receive, "__self__", None)
    if type(cycle).__module__ != HTTPTOOLS_MODULE:
        return False
    event = getattr(cycle, "message_event", None)
    return getattr(cycle, "more_body", True) is False and event is not None and event.is_set()


# Headers -----------------------------------------------------------------------------------
REQUEST_TIMEOUT_HEAD = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n"
)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on how long a request's headers may take: from
    the connection's opening to its first byte, and from a request's first byte to the end of
    its headers, at most `header_timeout_s` each. A connection that misses it is closed (with
    a 408 when a request had begun). One timer per connection, only until its headers are in:
    an open event stream holds none. After a response, uvicorn's keep-alive timeout covers
    the wait for the next request's first byte."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline(began=False)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline(began=True)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self, began: bool) -> None:
        self._disarm_header_deadline()
        self.header_deadline = self.loop.call_later(
            self.header_timeout_s, self._headers_too_slow, began
        )

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self, began: bool) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if began:
            body = error_body(
                f"the request's headers did not arrive within {self.header_timeout_s:g} s",
                "send the whole request at once; a proxy in front must not hold it back",
            )
            self.transport.write(REQUEST_TIMEOUT_HEAD % len(body) + body)
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn's Config as `http=`, with this deadline."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": header_timeout_s, "__module__": __name__},
    )


# Shutdown ----------------------------------------------------------------------------------
class ClockwallServer(uvicorn.Server):
    """uvicorn's Server that sets `exiting` the moment it begins to exit: at once on SIGTERM or
    SIGINT (`handle_exit`, called from the signal handler, so the event is set through the
    loop), and at the latest when it starts to shut down for any other reason (`should_exit`
    set by code). The change hub ends every event stream when it is set; uvicorn would
    otherwise wait for them until its graceful timeout."""

    def __init__(self, config: uvicorn.Config, exiting: asyncio.Event) -> None:
        super().__init__(config)
        self.exiting = exiting
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await super().serve(sockets=sockets)
        finally:
            self._loop = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.exiting.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.exiting.set()
        await super().shutdown(sockets=sockets)
