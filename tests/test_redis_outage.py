"""A Redis outage: a private redis-server is stopped under a running app. Webhooks answer 503
(so the delivery can be resent and nothing acknowledged is lost), /readyz says why without
leaking the URL or password, and once Redis is back the same delivery counts exactly once."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app import keys
from app.main import create_app
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import client_for, close_app, entry_2024, post_webhook, rate
from tests.processes import RedisProcess

PASSWORD = "hunter2-redis-password"
E1 = "65f0f0f0f0f0f0f0f0f0f0e1"
E2 = "65f0f0f0f0f0f0f0f0f0f0e2"
WEEK = {"start": "2026-03-23", "end": "2026-03-29"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs the redis-server binary"
    ),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A throwaway redis-server on loopback, with a password, no persistence."""
    instance = RedisProcess(tmp_path, appendonly=False, password=PASSWORD)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


def assert_no_secret(response: httpx.Response, port: int) -> None:
    text = response.text
    assert PASSWORD not in text
    assert "redis://" not in text
    assert f":{port}" not in text


async def test_outage_answers_503_then_the_same_delivery_counts_once(
    server: RedisProcess, clock: FixedClock
) -> None:
    settings = make_settings(redis_url=server.url(0))
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

            await server.stop()
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

            await server.start()  # same port, empty (no persistence)
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
    server: RedisProcess, clock: FixedClock
) -> None:
    """Every connection the pool held died with Redis; the first reads once it is back must
    still answer (each is retried on a fresh connection), not fail once per dead one."""
    settings = make_settings(redis_url=server.url(0))
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

            await server.stop()
            await server.start()
            for _ in range(pooled + 5):
                response = await client.get("/api/summary", params=params)
                assert response.status_code == 200, response.text
            delivery = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
            response = await post_webhook(client, "NEW_TIME_ENTRY", delivery)
            assert response.status_code == 200, response.text
    finally:
        await close_app(app)
        await service.redis.aclose()
