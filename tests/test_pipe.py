"""ScriptPipe against a real Redis (dbs.PIPE): replies reach their own callers, NOSCRIPT is
recovered, errors and lost or silent connections fail the calls in flight (never a wrong
answer, never a hang), and the next call opens a new connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import fakeredis
import hiredis
import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

from app.pipe import ScriptPipe
from tests import dbs
from tests.conftest import redis_db, redis_url

DB = dbs.PIPE
ECHO = "redis.call('RPUSH', KEYS[1], ARGV[1]); return {ARGV[1], redis.call('LLEN', KEYS[1])}"


@pytest.fixture
async def redis3() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(DB)) as client:
        yield client


@pytest.fixture
async def pipe(redis3: Redis) -> AsyncIterator[ScriptPipe]:
    made = ScriptPipe.for_client(redis3, stall_s=5.0)
    assert made is not None
    yield made
    await made.aclose()


async def test_concurrent_calls_each_get_their_own_reply_in_order(
    redis3: Redis, pipe: ScriptPipe
) -> None:
    script = redis3.register_script(ECHO)
    # The first calls race to open the connection: each still gets its own reply.
    replies = await asyncio.gather(
        *(pipe.evalsha(script, ["log"], [f"call-{i}"]) for i in range(100))
    )
    assert [r[0] for r in replies] == [f"call-{i}".encode() for i in range(100)]
    assert sorted(r[1] for r in replies) == list(range(1, 101))
    # Once connected, commands are written in call order: each saw the list one longer.
    replies = await asyncio.gather(
        *(pipe.evalsha(script, ["log"], [f"more-{i}"]) for i in range(300))
    )
    assert [r[0] for r in replies] == [f"more-{i}".encode() for i in range(300)]
    assert [r[1] for r in replies] == list(range(101, 401))
    assert await redis3.llen("log") == 400  # the pipe selected the client's database


async def test_a_script_redis_does_not_know_is_loaded_once(redis3: Redis, pipe: ScriptPipe) -> None:
    script = redis3.register_script(ECHO)
    await redis3.script_flush()
    assert await pipe.evalsha(script, ["log"], ["a"]) == [b"a", 1]
    assert (await redis3.script_exists(script.sha)) == [True]
    assert await pipe.evalsha(script, ["log"], ["b"]) == [b"b", 2]


async def test_an_error_reply_fails_only_its_own_call(redis3: Redis, pipe: ScriptPipe) -> None:
    failing = redis3.register_script("return redis.error_reply('ERR nope')")
    script = redis3.register_script(ECHO)
    results = await asyncio.gather(
        pipe.evalsha(script, ["log"], ["before"]),
        pipe.evalsha(failing, [], []),
        pipe.evalsha(script, ["log"], ["after"]),
        return_exceptions=True,
    )
    assert results[0] == [b"before", 1]
    assert isinstance(results[1], ResponseError) and "nope" in str(results[1])
    assert results[2] == [b"after", 2]


async def test_a_caller_that_gives_up_does_not_shift_the_replies(
    redis3: Redis, pipe: ScriptPipe
) -> None:
    script = redis3.register_script(ECHO)
    await pipe.call("PING")  # connected, so each call below is written when its task starts
    blocked = asyncio.ensure_future(pipe.call("BLPOP", "queue", 0))
    behind = asyncio.ensure_future(pipe.evalsha(script, ["log"], ["behind"]))
    await asyncio.sleep(0)  # both tasks run their first step: both commands are written
    blocked.cancel()
    await redis3.lpush("queue", "late")  # the cancelled call's reply arrives, and is dropped
    assert await behind == [b"behind", 1]
    assert await pipe.evalsha(script, ["log"], ["next"]) == [b"next", 2]


async def test_a_lost_connection_fails_the_calls_in_flight_then_reconnects(
    redis3: Redis, pipe: ScriptPipe
) -> None:
    script = redis3.register_script(ECHO)
    assert await pipe.evalsha(script, ["log"], ["a"]) == [b"a", 1]
    in_flight = asyncio.ensure_future(pipe.call("BLPOP", "queue", 0))
    await asyncio.sleep(0)  # written: Redis now holds it blocked
    conn = pipe._conn
    assert conn is not None and conn.transport is not None
    host, port = conn.transport.get_extra_info("sockname")[:2]
    assert await redis3.client_kill(f"{host}:{port}")
    with pytest.raises(ConnectionError, match="lost"):
        await in_flight
    assert await pipe.evalsha(script, ["log"], ["b"]) == [b"b", 2]


async def test_a_silent_server_fails_the_call_after_the_stall_limit() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = ScriptPipe("127.0.0.1", port, stall_s=0.2)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionError, match="did not answer"):
            await pipe.call("PING")
        assert loop.time() - started < 2.0
        assert accepted
    finally:
        await pipe.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_nothing_listening_is_a_connection_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pipe = ScriptPipe("127.0.0.1", port)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        await pipe.call("PING")


async def test_set_up_errors_say_what_was_refused() -> None:
    url = redis_url(DB)  # only reads the server's config
    client = Redis.from_url(url)
    try:
        if await client.config_get("requirepass") != {"requirepass": ""}:
            pytest.skip("this Redis has a password")
        host_port = client.connection_pool.connection_kwargs
        wrong_password = ScriptPipe(host_port["host"], host_port["port"], password="nope")
        with pytest.raises(AuthenticationError, match="refused the password"):
            await wrong_password.call("PING")
        no_such_db = ScriptPipe(host_port["host"], host_port["port"], db=100_000)
        with pytest.raises(ConnectionError, match="SELECT 100000"):
            await no_such_db.call("PING")
    finally:
        await client.aclose()


async def test_for_client_follows_the_client_or_declines() -> None:
    tcp = ScriptPipe.for_client(Redis.from_url("redis://user:secret@10.0.0.5:6380/7"))
    assert tcp is not None
    assert (tcp.host, tcp.port, tcp.db, tcp.username, tcp.password) == (
        "10.0.0.5",
        6380,
        7,
        "user",
        "secret",
    )
    unix = ScriptPipe.for_client(Redis.from_url("unix:///run/redis.sock?db=2"))
    assert unix is not None and (unix.path, unix.db) == ("/run/redis.sock", 2)
    assert ScriptPipe.for_client(Redis.from_url("rediss://10.0.0.5:6380/0")) is None
    assert ScriptPipe.for_client(fakeredis.FakeAsyncRedis()) is None


async def test_a_caller_cancelled_during_set_up_leaves_no_half_open_connection() -> None:
    connected = asyncio.Event()
    seen: list[bytes] = []
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        seen.append(await reader.readuntil(b"SELECT\r\n$1\r\n1\r\n"))  # never answered
        seen.append(await reader.read())  # b"" once the pipe lets the connection go
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = ScriptPipe("127.0.0.1", port, db=1)
    try:
        opening = asyncio.ensure_future(pipe.call("PING"))
        await connected.wait()
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert pipe._conn is None
        await asyncio.wait_for(closed.wait(), 5)
        assert seen[-1] == b""
    finally:
        await pipe.aclose()
        server.close()
        await server.wait_closed()


async def test_after_a_quiet_spell_a_connection_dropped_silently_is_replaced() -> None:
    """A firewall that forgets an idle connection answers nothing: the pipe checks a quiet
    connection with a PING first and, getting no PONG, sends the command on a new one."""
    connections: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(connections) + 1
        connections.append(number)
        writers.append(writer)
        parser = hiredis.Reader()
        answered = 0
        while data := await reader.read(65536):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                if number == 1 and answered == 1:
                    continue  # the first connection goes silent after one answer
                writer.write(b"+PONG\r\n" if command[0] == b"PING" else b"+OK\r\n")
                answered += 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = ScriptPipe("127.0.0.1", port, idle_s=0.0)  # every quiet connection is checked
    try:
        assert await pipe.call("SET", "k", "v") == b"OK"  # connection 1, its one answer
        both = await asyncio.gather(pipe.call("SET", "k", "v"), pipe.call("SET", "k", "w"))
        assert both == [b"OK", b"OK"]  # one PING went unanswered; both went out on connection 2
        assert connections == [1, 2]
    finally:
        await pipe.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
