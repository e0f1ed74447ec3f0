"""Under load and faults, against real `clockwall serve` processes: a thousand SSE clients
under sustained webhooks, Redis restarted mid-load, the app SIGKILLed mid-load. Each checks
that every acknowledged (2xx) delivery is in the totals, that every total agrees with the
entries it is made of, and that SSE clients saw the change stream without gaps.

The shared Redis (dbs.FAULTS) for the load test; our own redis-server for the two that stop things.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app.stream import parse_stream_id
from tests import dbs
from tests.conftest import redis_db, redis_url, wait_until
from tests.consistency import (
    assert_contributions_agree,
    assert_matches_model,
    assert_views_agree,
    read_ids_until,
    read_views,
    stream_ids,
)
from tests.processes import AppProcess, RedisProcess, serve_env
from tests.raw_sse import RawSSE, check_clients, open_raw_clients
from tests.sse_client import SSEClient, StreamEndedError
from tests.webhook_load import WebhookLoad, build_scripts

DB = dbs.FAULTS

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def running_app(env: dict[str, str], log: Path) -> AsyncIterator[AppProcess]:
    app = await AppProcess(env, log).astart()
    try:
        yield app
    finally:
        await app.astop()


async def wait_delivered(clients: list[RawSSE], last_id: str, timeout_s: float) -> None:
    """Until every client still connected has read up to `last_id`."""
    ms, _, seq = last_id.partition("-")
    final = (int(ms), int(seq))

    async def caught_up() -> bool:
        return all(c.ended is not None or c.last_id >= final for c in clients)

    await wait_until(caught_up, timeout_s, f"every SSE client to reach {last_id}", 0.1)


async def read_until_unreachable(client: SSEClient) -> None:
    """Events until a `status` saying the store is unreachable (the stream may end after it,
    or go on from a cached snapshot); AssertionError if the stream ends without one."""
    deadline = time.monotonic() + 10
    with contextlib.suppress(StreamEndedError):
        while time.monotonic() < deadline:
            message = await client.next_event(max(0.1, deadline - time.monotonic()))
            if message.event == "status" and orjson.loads(message.data)["store"] == "unreachable":
                return
    raise AssertionError("no status event saying the store is unreachable")


async def assert_consistent(base_url: str, redis: Redis, load: WebhookLoad, exact: bool) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        entries = assert_views_agree(await read_views(http))
    assert_matches_model(entries, load.scripts, exact=exact)
    await assert_contributions_agree(redis)
    if exact:
        assert set(entries) == set(load.model())


async def test_a_thousand_sse_clients_under_sustained_webhooks(tmp_path: Path) -> None:
    """About 1,000 webhooks in 20 s (50/s) into one process with 1,000 SSE clients connected:
    every delivery is acknowledged and in the totals, and every client that stayed connected
    got exactly the stream's ids after its snapshot, in order."""
    async with (
        redis_db(redis_url(DB)) as redis,
        running_app(serve_env(redis_url(DB)), tmp_path / "app.log") as app,
    ):
        clients = await open_raw_clients(app.port, 1000)
        try:
            assert all(c.status == 200 for c in clients)
            # A generous timeout: on 2 shared cores the fan-out to 1,000 clients can hold an
            # answer for seconds; a timeout would make the delivery's outcome unknown.
            load = WebhookLoad(app.base_url, build_scripts(500, seed=1), timeout_s=30)
            started = time.monotonic()
            try:
                await load.run(rate_per_s=25)  # 500 entries, ~1.55 deliveries each: ~39/s
            finally:
                await load.aclose()
            sending_s = time.monotonic() - started
            assert load.outcomes.by_status.keys() == {200}, load.outcomes
            assert load.outcomes.errors == 0
            ids = await stream_ids(redis)
            assert ids == sorted(load.change_ids, key=lambda i: tuple(map(int, i.split("-"))))
            await wait_delivered(clients, ids[-1], 60)
            assert not check_clients(clients, ids)
            dropped = [c for c in clients if c.ended is not None]
            assert not dropped, f"{len(dropped)} clients were dropped"
            await assert_consistent(app.base_url, redis, load, exact=True)
            print(
                f"{load.outcomes.acked} webhooks in {sending_s:.1f} s, {len(ids)} changes, "
                + load.latency_text()
            )
        finally:
            for client in clients:
                client.close()


async def test_redis_restart_mid_load(tmp_path: Path) -> None:
    """Redis (AOF on) stops and restarts while webhooks arrive and SSE clients listen: while it
    is down deliveries get 503, clients get a `status` event saying the store is unreachable,
    then ok; no acknowledged delivery is lost; clients resume with no gap; once the 503s are
    resent the totals are exactly the model."""
    server = RedisProcess(tmp_path / "redis", appendonly=True)
    await server.start()
    try:
        redis = Redis.from_url(server.url(0))
        env = serve_env(server.url(0))
        async with running_app(env, tmp_path / "app.log") as app:
            clients = await open_raw_clients(app.port, 50)
            load = WebhookLoad(app.base_url, build_scripts(300, seed=3, prefix=3))
            try:
                sending = asyncio.create_task(load.run(rate_per_s=30))

                async def some_acked() -> bool:
                    return load.outcomes.acked >= 60

                await wait_until(some_acked, 20, "60 acknowledged deliveries")
                mark = (await stream_ids(redis))[-1]  # a browser that goes away here
                await server.stop()

                async def some_refused() -> bool:
                    return load.outcomes.count(503, 504) >= 20

                await wait_until(some_refused, 20, "deliveries refused with 503")
                # A screen that connects during the outage is told the store is unreachable.
                async with await SSEClient.connect(app.port) as during:
                    await read_until_unreachable(during)
                refused_at = load.outcomes.count(503, 504)
                await server.start()
                await redis.connection_pool.disconnect()  # ours: its connection died too

                async def acked_again() -> bool:
                    return load.outcomes.acked >= 60 + refused_at + 30

                await wait_until(acked_again, 30, "deliveries acknowledged after the restart")
                await sending
                assert load.outcomes.errors == 0, load.outcomes
                assert load.outcomes.count(500, 600) == load.outcomes.count(503, 504)
                assert load.outcomes.count(400, 500) == 0, load.outcomes
                # Before any resend: every acknowledged life is in, nothing half-applied.
                await assert_consistent(app.base_url, redis, load, exact=False)
                await load.resend()
                assert all(s.acked == len(s.steps) for s in load.scripts)
                ids = await stream_ids(redis)
                await wait_delivered(clients, ids[-1], 30)
                assert not check_clients(clients, ids)
                assert all(c.ended is None for c in clients)
                for client in clients:
                    assert "unreachable" in client.stores, client.stores
                    down = client.stores.index("unreachable")
                    assert "ok" in client.stores[down:], client.stores
                await assert_consistent(app.base_url, redis, load, exact=True)
                print(f"restart: {load.outcomes}, {len(ids)} changes")
                # The browser that left before the outage resumes with no gap.
                headers = {"Last-Event-ID": mark}
                async with await SSEClient.connect(app.port, headers=headers) as resumed:
                    final = parse_stream_id(ids[-1])
                    assert final is not None
                    got = await read_ids_until(resumed, final, 10)
                    assert got == ids[ids.index(mark) + 1 :]
            finally:
                await load.aclose()
                for client in clients:
                    client.close()
        await redis.aclose()
    finally:
        server.kill()


async def test_app_sigkilled_mid_load(tmp_path: Path) -> None:
    """The app process is SIGKILLed while deliveries arrive and restarted on the same port:
    every acknowledged life is in the totals, every entry's state agrees with its contribution
    to every total, and once unanswered deliveries are resent the totals are the model."""
    server = RedisProcess(tmp_path / "redis", appendonly=True)
    await server.start()
    try:
        redis = Redis.from_url(server.url(0))
        env = serve_env(server.url(0))
        app = await AppProcess(env, tmp_path / "app.log").astart()
        load = WebhookLoad(app.base_url, build_scripts(300, seed=4, prefix=4), timeout_s=3)
        try:
            sending = asyncio.create_task(load.run(rate_per_s=40, stop=250))

            async def some_acked() -> bool:
                return load.outcomes.acked >= 80

            await wait_until(some_acked, 20, "80 acknowledged deliveries")
            # A burst, and the kill while eight deliveries are in flight: some were applied
            # and never answered, some never reached the store. Redis is paused meanwhile,
            # so deliveries pile up in the app (a fast server would otherwise answer each
            # before the next is sent); the scripts the app had written before it died run
            # when Redis resumes, with nobody left to answer.
            load.busy_at = 8
            server.pause()
            burst = asyncio.create_task(load.run(rate_per_s=2000, start=250))
            await asyncio.wait_for(load.busy.wait(), 10)
            app.kill()
            server.resume()
            acked_at_kill = load.outcomes.acked

            async def some_failed() -> bool:
                return load.outcomes.errors >= 10

            await wait_until(some_failed, 20, "deliveries with no answer")
            await app.astart()

            async def acked_again() -> bool:
                return load.outcomes.acked >= acked_at_kill + 40

            await wait_until(acked_again, 30, "deliveries acknowledged after the restart")
            await sending
            await burst
            assert load.outcomes.count(400, 600) == 0, load.outcomes
            unanswered = load.outcomes.errors - load.outcomes.error_kinds.get("ConnectError", 0)
            assert unanswered >= 1, load.outcomes  # requests the kill cut off mid-flight
            await assert_consistent(app.base_url, redis, load, exact=False)
            await load.resend()
            assert all(s.acked == len(s.steps) for s in load.scripts)
            await assert_consistent(app.base_url, redis, load, exact=True)
            print(f"kill: {load.outcomes}")
        finally:
            await load.aclose()
            await app.astop()
            await redis.aclose()
    finally:
        server.kill()
