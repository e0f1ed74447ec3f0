"""The contract with other libraries' internals (app/compat.py and the few public shapes the
live path leans on), checked against the installed releases. A failure names the library, its
version and what changed: adapt app/compat.py, or keep the dependency's cap in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import tomllib
from collections.abc import AsyncIterator
from importlib import import_module
from importlib.metadata import version
from typing import Any

import hiredis
import pytest
import uvicorn
from packaging.requirements import Requirement
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from app import compat
from app.child_server import ROOT
from app.compat import ClockwallServer, HeaderDeadlineProtocol, header_deadline_protocol
from tests.conftest import wait_until
from tests.sse_client import WAIT_S, AppServer


def lib(name: str) -> str:
    return f"{name} {version(name)}"


# Versions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["uvicorn", "sse-starlette", "hiredis"])
def test_installed_releases_are_within_the_tested_bounds(name: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = (
        Requirement(r) for r in project["dependencies"] if Requirement(r).name == name
    )
    assert requirement.specifier.contains(version(name)), (
        f"{lib(name)} is outside pyproject's {requirement}: run tests/test_compat.py on it, "
        "then move the bound"
    )
    assert any(s.operator == "<" for s in requirement.specifier), (
        f"{name} has no upper bound in pyproject.toml; cap it below the first untested release"
    )


# uvicorn: the httptools protocol -----------------------------------------------------------
def test_uvicorn_httptools_protocol_has_what_compat_extends() -> None:
    module = import_module(compat.HTTPTOOLS_MODULE)
    protocol = getattr(module, "HttpToolsProtocol", None)
    assert protocol is not None, f"{lib('uvicorn')}: {compat.HTTPTOOLS_MODULE} has moved"
    for hook in compat.PROTOCOL_HOOKS:
        assert callable(getattr(protocol, hook, None)), (
            f"{lib('uvicorn')}: HttpToolsProtocol.{hook} is gone; HeaderDeadlineProtocol "
            "in app/compat.py extends it"
        )
    params = list(inspect.signature(protocol.__init__).parameters)
    assert params[:4] == ["self", "config", "server_state", "app_state"], (
        f"{lib('uvicorn')}: HttpToolsProtocol's constructor changed: {params}"
    )
    assert "RequestResponseCycle" in vars(module), (
        f"{lib('uvicorn')}: RequestResponseCycle is gone from {compat.HTTPTOOLS_MODULE}"
    )


def test_uvicorn_takes_a_protocol_class_as_http() -> None:
    protocol = header_deadline_protocol(0.5)
    config = uvicorn.Config(_app_reporting_the_transport({}), http=protocol)
    config.load()
    assert config.http_protocol_class is protocol, (
        f"{lib('uvicorn')}: Config(http=<class>) no longer uses the class given"
    )
    assert issubclass(protocol, HeaderDeadlineProtocol) and protocol.header_timeout_s == 0.5


def _app_reporting_the_transport(seen: dict[str, Any]) -> Any:
    """An ASGI app whose chunked response says whether writable_transport found the
    connection behind its `send`, and which fields of the response cycle it saw."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        cycle = getattr(send, "__self__", None)
        seen["cycle"] = f"{type(cycle).__module__}.{type(cycle).__name__}"
        seen["fields"] = {f: hasattr(cycle, f) for f in compat.CYCLE_FIELDS}
        seen["transport"] = compat.writable_transport(send)
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


@contextlib.asynccontextmanager
async def serving(app: Any, http: Any) -> AsyncIterator[tuple[ClockwallServer, int]]:
    """`app` under ClockwallServer (as AppServer runs it: no signal handlers), `http` the
    protocol's name or class."""
    async with AppServer(app, http=http) as running:
        assert isinstance(running.server, ClockwallServer)
        yield running.server, running.port


async def get(port: int, path: str = "/") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_writable_transport_finds_the_connection_under_httptools_only(http: str) -> None:
    seen: dict[str, Any] = {}
    async with serving(_app_reporting_the_transport(seen), http) as (_, port):
        assert b"ok" in await get(port)
    if http == "h11":
        assert seen["transport"] is None
        return
    assert seen["cycle"] == f"{compat.HTTPTOOLS_MODULE}.RequestResponseCycle", (
        f"{lib('uvicorn')}: the ASGI send is no longer a RequestResponseCycle method"
    )
    assert all(seen["fields"].values()), (
        f"{lib('uvicorn')}: RequestResponseCycle lacks {seen['fields']}; writable_transport "
        "reads them"
    )
    assert seen["transport"] is not None, (
        f"{lib('uvicorn')}: writable_transport no longer finds the connection of a chunked "
        "response (live screens would stop being written directly)"
    )


def _app_reporting_body_is_in(seen: list[bool]) -> Any:
    """An ASGI app that notes, before reading, whether body_is_in says the body is all there."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen.append(compat.body_is_in(receive))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_body_is_in_only_where_httptools_already_holds_the_whole_body(http: str) -> None:
    """The webhook reads a body that came with its headers without arming a deadline; one still
    on its way (or any other server) must be read with one."""
    seen: list[bool] = []
    async with serving(_app_reporting_body_is_in(seen), http) as (_, port):
        head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode() + b"body")  # whole, in one write
        assert b"ok" in await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode())  # the headers now, the body once the app is reading

        async def reading() -> bool:
            return len(seen) == 2

        await wait_until(reading, WAIT_S, "the app to start reading the body")
        writer.write(b"body")
        assert b"ok" in await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()
    if http == "h11":
        assert seen == [False, False]
        return
    assert seen == [True, False], (
        f"{lib('uvicorn')}: body_is_in no longer sees a body that came with its headers "
        "(RequestResponseCycle's more_body / message_event changed)"
    )


# uvicorn: the header deadline --------------------------------------------------------------
async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), WAIT_S)


async def test_half_a_request_is_answered_408_and_closed_at_the_header_deadline() -> None:
    seen: dict[str, Any] = {}
    async with serving(_app_reporting_the_transport(seen), header_deadline_protocol(0.3)) as (
        _,
        port,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /half-a-requ")
        started = asyncio.get_running_loop().time()
        answer = await read_until_closed(reader)
        took = asyncio.get_running_loop().time() - started
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"did not arrive within 0.3 s" in answer
        assert took < 0.3 + 2.0

        # A connection that never sends a byte is closed too, without an answer.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await read_until_closed(reader) == b""
        writer.close()

        # Whole requests are untouched, and a response that outlives the deadline is not cut.
        assert b"ok" in await get(port)
        assert seen["transport"] is not None  # still the httptools path for direct writes


async def test_the_header_deadline_does_not_cut_a_long_response() -> None:
    release = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"last", "more_body": False})

    async with serving(slow, header_deadline_protocol(0.2)) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"first"), WAIT_S)
        assert head.startswith(b"HTTP/1.1 200")
        # The headers are in: the connection holds no deadline (and no timer) any more.
        (protocol,) = server.server_state.connections
        assert isinstance(protocol, HeaderDeadlineProtocol)
        assert protocol.header_deadline is None
        release.set()
        rest = await read_until_closed(reader)
        writer.close()
        assert b"last" in rest


# uvicorn: the shutdown signal --------------------------------------------------------------
def test_uvicorn_server_has_what_clockwall_server_overrides() -> None:
    for member in compat.SERVER_MEMBERS:
        assert hasattr(uvicorn.Server, member) or member == "should_exit", (
            f"{lib('uvicorn')}: Server.{member} is gone; ClockwallServer relies on it"
        )
    assert inspect.iscoroutinefunction(uvicorn.Server.shutdown), (
        f"{lib('uvicorn')}: Server.shutdown is no longer a coroutine"
    )
    assert "sockets" in inspect.signature(uvicorn.Server.shutdown).parameters
    server = uvicorn.Server(uvicorn.Config(_app_reporting_the_transport({})))
    assert server.should_exit is False, f"{lib('uvicorn')}: Server.should_exit is gone"


async def test_a_termination_signal_sets_exiting_at_once_and_the_server_exits() -> None:
    # sse-starlette replaces Server.handle_exit when imported (and calls uvicorn's own): what
    # matters is that a call as the signal handler makes it still stops the server.
    async with serving(_app_reporting_the_transport({}), "httptools") as (server, _):
        assert not server.exiting.is_set()
        server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
        await asyncio.wait_for(server.exiting.wait(), WAIT_S)
        assert server.should_exit


async def test_an_exit_asked_for_by_code_sets_exiting_too() -> None:
    async with serving(_app_reporting_the_transport({}), "httptools") as (server, _):
        exiting = server.exiting
    assert exiting.is_set()  # serving() stops it with should_exit, no signal


# sse-starlette: the headers of every event stream ------------------------------------------
def test_sse_starlette_builds_the_stream_headers() -> None:
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""

    headers = dict(
        EventSourceResponse(
            nothing(), ping=0, headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"}
        ).raw_headers
    )
    assert headers.get(b"content-type", b"").startswith(b"text/event-stream"), (
        f"{lib('sse-starlette')}: EventSourceResponse's content type changed: {headers}"
    )
    assert headers.get(b"x-accel-buffering") == b"no", f"{lib('sse-starlette')}: {headers}"
    assert headers.get(b"cache-control") == b"no-store", f"{lib('sse-starlette')}: {headers}"


# hiredis: what app/pipe.py uses ------------------------------------------------------------
def test_hiredis_reads_and_packs_as_the_script_pipe_expects() -> None:
    packed = hiredis.pack_command(("EVALSHA", "abc", 1, "k", b"v"))
    assert packed == b"*5\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\nv\r\n", (
        f"{lib('hiredis')}: pack_command's output changed"
    )
    reader = hiredis.Reader()
    reader.feed(b"*2\r\n$1\r\na\r\n:3\r\n-ERR no\r\n$3\r\nab")
    assert reader.gets() == [b"a", 3]
    error = reader.gets()
    assert isinstance(error, hiredis.ReplyError) and "no" in str(error), f"{lib('hiredis')}"
    assert reader.gets() is False, f"{lib('hiredis')}: an incomplete reply is no longer False"
    reader = hiredis.Reader()
    reader.feed(b"?x\r\n")
    with pytest.raises(hiredis.ProtocolError):
        reader.gets()


# redis-py: a command cancelled mid-read leaves its connection closed -----------------------
async def test_a_redis_command_cancelled_at_its_deadline_drops_its_connection() -> None:
    """ChangeHub.run abandons a stuck XREAD at its deadline. If redis-py put that connection
    back in the pool still open, the reply still due on it would answer the next command."""
    opened: list[asyncio.StreamReader] = []
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(reader)
        while await reader.read(4096):
            pass  # never answers
        closed.set()
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.xread({"s": "0-0"}, block=100)
        await asyncio.wait_for(closed.wait(), WAIT_S)
        assert len(opened) == 1, f"{lib('redis')}"
        closed.clear()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.ping()
        assert len(opened) == 2, f"{lib('redis')}: the abandoned connection was used again"
    finally:
        await client.aclose()
        listener.close()
        await listener.wait_closed()
