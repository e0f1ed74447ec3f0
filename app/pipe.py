"""ScriptPipe: one pipelined Redis connection for the store's hot path (applying entries).

redis-py's asyncio client takes a pooled connection, wraps the command in its retry helper and
wakes the caller's task through a stream reader for every reply. Under a sustained webhook feed
that was the largest share of clockwall's CPU per delivery. Here every EVALSHA of the process
goes over one connection: a command is packed in C (hiredis) and written at once, and the
protocol's callback matches replies to their callers in order as they arrive (Redis answers a
connection's commands in the order it received them). Each script still runs atomically in
Redis; pipelining changes only how commands travel.

Failures look like redis-py's: a refused or lost connection raises `ConnectionError`, an error
reply `ResponseError`, so callers handle both paths alike. A command in flight when the
connection drops fails (its script may or may not have run; every apply is idempotent, so the
sender's retry is safe). A connection with commands unanswered for `stall_s` is dropped and a
new one opened, so a silently dead peer cannot hold the store hostage; one that has been quiet
for `idle_s` is checked with a PING before it carries a write again.

Plain TCP and Unix-socket Redis take this path; with TLS (`rediss://`) or the embedded
emulation the store keeps to redis-py (see `ScriptPipe.for_client`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoScriptError,
    ResponseError,
)

CONNECT_TIMEOUT_S = 2.0
STALL_S = 5.0
IDLE_S = 30.0  # a connection quiet this long is checked with a PING before it is used again
PING_TIMEOUT_S = 1.0


class _Connection(asyncio.Protocol):
    """One connection: commands written as they come (so Redis starts on each at once rather
    than on a batch whose replies all wait for its last script), and the callers' futures in
    the order their commands were written. One timer per busy spell, not one per command,
    drops the connection when Redis stops answering."""

    def __init__(self, stall_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.stall_s = stall_s
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.closed = False
        self.progress_at = time.monotonic()  # last reply, or when the queue last became busy
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(ConnectionError(f"Redis sent a malformed reply ({exc})"))
                return
            if reply is False:
                break
            self.progress_at = time.monotonic()
            if not pending:  # a reply nobody asked for: the stream is out of step
                self.abort(ConnectionError("Redis sent a reply to no command"))
                return
            future = pending.popleft()
            if future.done():  # the caller gave up (deadline, cancel); the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                error = NoScriptError if message.startswith("NOSCRIPT") else ResponseError
                future.set_exception(error(message))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("the connection to Redis was lost"))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(ConnectionError("the connection to Redis was lost"))
            return future
        if not self.pending:
            self.progress_at = time.monotonic()
            if self.watchdog is None:
                self.watchdog = self.loop.call_later(self.stall_s, self._check)
        self.pending.append(future)
        self.transport.write(packed)
        return future

    def _check(self) -> None:
        self.watchdog = None
        if self.closed or not self.pending:
            return
        due = self.progress_at + self.stall_s
        if time.monotonic() >= due:
            self.abort(ConnectionError(f"Redis did not answer for {self.stall_s:g} s"))
        else:
            self.watchdog = self.loop.call_at(due, self._check)

    def abort(self, error: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)
                future.exception()  # marked retrieved: a caller that gave up never reads it


class ScriptPipe:
    """EVALSHA over one pipelined connection, opened on first use and reopened after a loss."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        stall_s: float = STALL_S,
        idle_s: float = IDLE_S,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.db, self.username, self.password = db, username, password
        self.stall_s = stall_s
        self.idle_s = idle_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._checking: asyncio.Future[_Connection] | None = None

    @classmethod
    def for_client(cls, redis: Redis, stall_s: float = STALL_S) -> ScriptPipe | None:
        """A pipe to the same Redis (address, database, credentials) as a redis-py client
        on a plain TCP or Unix socket; None for anything else (TLS, an emulation such as
        fakeredis), which stays on redis-py."""
        pool = redis.connection_pool
        kwargs = pool.connection_kwargs
        db = int(kwargs.get("db") or 0)
        username, password = kwargs.get("username"), kwargs.get("password")
        if pool.connection_class is Connection:
            host, port = kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))
            return cls(host, port, db=db, username=username, password=password, stall_s=stall_s)
        if pool.connection_class is UnixDomainSocketConnection:
            path = kwargs["path"]
            return cls(path=path, db=db, username=username, password=password, stall_s=stall_s)
        return None

    async def evalsha(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered redis-py script: EVALSHA, or EVAL once when Redis lacks it."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.call("EVAL", script.script, len(keys), *keys, *args)

    async def call(self, *command: Any) -> Any:
        conn = self._conn
        if conn is None or conn.closed or self._checking is not None:
            conn = await self._usable(None)
        elif not conn.pending and time.monotonic() - conn.progress_at > self.idle_s:
            conn = await self._usable(conn)
        return await conn.send(hiredis.pack_command(command))

    async def _usable(self, idle: _Connection | None) -> _Connection:
        """The connection to write to: a new one when there is none, or, after a quiet spell,
        the old one once it has answered a PING (a firewall may have dropped it without a
        word; the delivery then goes out on a new one instead of waiting out the stall).
        Callers arriving meanwhile wait for the same check."""
        if idle is not None and self._checking is None:
            self._checking = asyncio.ensure_future(self._check(idle))
            # Read here too, so a check whose callers all gave up leaves no unread error.
            self._checking.add_done_callback(lambda done: done.cancelled() or done.exception())
        if self._checking is not None:
            return await asyncio.shield(self._checking)
        return await self._open()

    async def _check(self, conn: _Connection) -> _Connection:
        try:
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await conn.send(hiredis.pack_command(("PING",)))
                return conn
            except (TimeoutError, ConnectionError):
                conn.abort(ConnectionError(f"Redis did not answer a PING in {PING_TIMEOUT_S:g} s"))
                return await self._open()
        finally:
            self._checking = None

    async def _open(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            self._conn = None
            conn = await self._connect()
            self._conn = conn
            return conn

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        where = self.path or f"{self.host}:{self.port}"

        def factory() -> _Connection:
            return _Connection(self.stall_s)

        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                if self.path:
                    _, conn = await loop.create_unix_connection(factory, self.path)
                else:
                    _, conn = await loop.create_connection(factory, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to Redis at {where} ({exc})") from None
        setup: list[tuple[Any, ...]] = []
        if self.password:
            user = (self.username,) if self.username else ()
            setup.append(("AUTH", *user, self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        replies = [conn.send(hiredis.pack_command(command)) for command in setup]
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                for reply in replies:
                    await reply
        except ResponseError as exc:
            conn.abort(ConnectionError("set-up failed"))
            if "SELECT" in str(exc) or "DB index" in str(exc):
                raise ConnectionError(f"Redis at {where} refused SELECT {self.db}") from None
            raise AuthenticationError(f"Redis at {where} refused the password") from None
        except TimeoutError:
            conn.abort(ConnectionError("set-up timed out"))
            raise ConnectionError(f"Redis at {where} did not answer the set-up") from None
        except BaseException:  # cancelled mid set-up: the half-made connection is not kept
            conn.abort(ConnectionError("set-up was cancelled"))
            raise
        return conn

    async def aclose(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        if self._conn is not None:
            self._conn.abort(ConnectionError("the pipe was closed"))
            self._conn = None
