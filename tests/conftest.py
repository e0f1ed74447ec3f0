"""Shared fixtures: a real Redis (a dedicated database, flushed per test), settings, apps, and
the bounded wait every test polls with.

The Redis server is CLOCKWALL_TEST_REDIS (default redis://127.0.0.1:6379); each suite takes its
database number from tests/dbs.py, so none touches database 0 and no two share one by chance.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis

from app.config import Secret, Settings, WebhookToken
from tests import dbs

REDIS_BASE = os.environ.get("CLOCKWALL_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
WS = "5f0e1a2b3c4d5e6f7a8b9c0d"
OTHER_WS = "6a0e1a2b3c4d5e6f7a8b9c0e"
TOKEN = "Xq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u"
OTHER_TOKEN = "Bq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1v"

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def redis_url(db: int) -> str:
    return f"{REDIS_BASE}/{db}"


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll `check` until it is true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


class FixedClock:
    """An injectable clock the tests move by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 25, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@contextlib.asynccontextmanager
async def redis_db(url: str) -> AsyncIterator[Redis]:
    """A client of the Redis database at `url`, empty before and after."""
    client = Redis.from_url(url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(dbs.CORE)) as client:
        yield client


@pytest.fixture
async def client(redis: Redis, clock: FixedClock) -> AsyncIterator[Any]:
    """An in-process client of the app on `redis` (dbs.CORE) with the test clock."""
    from app.main import create_app
    from tests.payloads import client_for

    app = create_app(make_settings(), redis=redis, clock=clock)
    async with client_for(app) as http:
        yield http


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url(dbs.CORE),
        "workspace_ids": (WS, OTHER_WS),
        "webhook_tokens": (
            WebhookToken(Secret(TOKEN)),
            WebhookToken(Secret(OTHER_TOKEN), OTHER_WS),
        ),
        "timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's) per test module, for the page tests."""
    from tests.browser import launched_chromium

    with launched_chromium() as chromium:
        yield chromium
