"""A Redis outage: a private redis-server is stopped under a running app. Webhooks answer 503
(so the delivery can be resent and nothing acknowledged is lost), /readyz says why without
leaking the URL or password, and once Redis is back the same delivery counts exactly once."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from app import keys
from app.main import create_app
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import client_for, close_app, entry_2024, post_webhook, rate

PASSWORD = "hunter2-redis-password"
E1 = "65f0f0f0f0f0f0f0f0f0f0e1"
E2 = "65f0f0f0f0f0f0f0f0f0f0e2"
WEEK = {"start": "2026-03-23", "end": "2026-03-29"}

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server binary"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on loopback, with a password, no persistence."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                PASSWORD,
                "--dir",
                str(self.workdir),
                "--logfile",
                "",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Wait for the server's own "ready" line (EOF means it died), then prove it with a
        # bounded loop of pings; no fixed sleeps.
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "Ready to accept connections" in line:
                break
        else:
            raise AssertionError(f"redis-server on port {self.port} did not start")
        client = SyncRedis(port=self.port, password=PASSWORD, socket_connect_timeout=1)
        try:
            for _ in range(100):
                try:
                    if client.ping():
                        break
                except RedisConnectionError:
                    time.sleep(0)  # yield only; the ready line says it is about to answer
            else:
                raise AssertionError(f"redis-server on port {self.port} does not answer")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    instance = RedisServer(free_port(), tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def assert_no_secret(response: httpx.Response, port: int) -> None:
    text = response.text
    assert PASSWORD not in text
    assert "redis://" not in text
    assert f":{port}" not in text


async def test_outage_answers_503_then_the_same_delivery_counts_once(
    server: RedisServer, clock: FixedClock
) -> None:
    settings = make_settings(redis_url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
    app = create_app(settings, clock=clock)
    service = app.state.service
    first = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
    delivery = entry_2024(
        E2, "2026-03-24T10:00:00Z", "2026-03-24T11:30:00Z", hourly_rate=rate(10500)
    )
    try:
        async with client_for(app) as client:
            assert (await post_webhook(client, "NEW_TIME_ENTRY", first)).status_code == 200
            assert (await client.get("/readyz")).status_code == 200

            server.stop()
            response = await post_webhook(client, "NEW_TIME_ENTRY", delivery)
            assert response.status_code == 503, response.text
            assert "store (Redis) is unavailable" in response.json()["error"]
            assert "resend" in response.json()["hint"]
            assert response.headers["retry-after"] == "5"
            assert_no_secret(response, server.port)

            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert "unreachable" in ready.json()["store"]
            assert "Redis" in ready.json()["store"]
            assert_no_secret(ready, server.port)

            summary = await client.get("/api/summary", params={"groupBy": "USER", **WEEK})
            assert summary.status_code == 503
            assert_no_secret(summary, server.port)

            server.start()  # same port, empty (no persistence)
            response = await post_webhook(client, "NEW_TIME_ENTRY", delivery)
            assert response.status_code == 200, response.text
            assert response.json()["outcome"] == "created"
            again = await post_webhook(client, "NEW_TIME_ENTRY", delivery)
            assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
            assert (await client.get("/readyz")).status_code == 200

            assert await service.redis.xlen(keys.changes(WS)) == 1
            summary = await client.get("/api/summary", params={"groupBy": "USER", **WEEK})
            # Only the resent delivery (the first entry died with the old, unsaved server):
            # 1h30m at 105.00 EUR = 157.50 EUR, counted once.
            assert summary.json()["totalSeconds"] == 5400
            assert summary.json()["billableAmount"] == 157.5
    finally:
        await close_app(app)
        await service.redis.aclose()


async def test_reads_after_a_restart_do_not_trip_over_dead_pooled_connections(
    server: RedisServer, clock: FixedClock
) -> None:
    """Every connection the pool held died with Redis; the first reads once it is back must
    still answer (each is retried on a fresh connection), not fail once per dead one."""
    settings = make_settings(redis_url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
    app = create_app(settings, clock=clock)
    service = app.state.service
    params = {"groupBy": "PROJECT", **WEEK}
    try:
        async with client_for(app) as client:
            answers = await asyncio.gather(
                *(client.get("/api/summary", params=params) for _ in range(20))
            )
            assert {a.status_code for a in answers} == {200}
            pooled = len(service.redis.connection_pool._available_connections)
            assert pooled > 1

            server.stop()
            server.start()
            for _ in range(pooled + 5):
                response = await client.get("/api/summary", params=params)
                assert response.status_code == 200, response.text
            delivery = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
            response = await post_webhook(client, "NEW_TIME_ENTRY", delivery)
            assert response.status_code == 200, response.text
    finally:
        await close_app(app)
        await service.redis.aclose()
