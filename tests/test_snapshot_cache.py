"""What `/events` snapshots can make a server hold: the cache of shared snapshots is bounded in
count, bytes and age, its locks live only while used, and a thousand distinct year-long ranges
asked of a real `clockwall serve` leave its memory where it was (issue: unbounded memory
through /events).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Secret
from app.share import ShareScope, sign_scope
from app.snapshot import SnapshotCache
from app.store import TotalsStore
from app.stream import ChangeHub
from tests import dbs
from tests.conftest import TOKEN, WS, FixedClock, redis_db, redis_url
from tests.payloads import BEN, INTERNAL, MOBILE, WEBSITE, entry_2024
from tests.processes import AppProcess, serve_env

SECRET = "a-secret-key-long-enough-for-links"
YEAR_START = date(2025, 1, 1)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_for(redis: Redis, clock: FixedClock) -> TotalsStore:
    from zoneinfo import ZoneInfo

    return TotalsStore(redis, ZoneInfo("Europe/Berlin"), 0, 1000, clock=clock)


def ranges(count: int) -> list[tuple[date, date]]:
    return [
        (YEAR_START + timedelta(days=i), YEAR_START + timedelta(days=i + 365)) for i in range(count)
    ]


async def test_many_distinct_ranges_keep_at_most_the_configured_number_of_snapshots(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    cache = SnapshotCache(ChangeHub(redis, (WS,)), max_entries=8)
    for start, end in ranges(40):
        await cache.get(store, WS, start, end, {})
    assert len(cache) == 8
    assert cache.bytes == sum(len(item[2].data) for item in cache._cache.values())
    assert cache._locks == {}, "a lock outlived its callers"


async def test_the_cache_never_holds_more_bytes_than_its_bound(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    probe = SnapshotCache(ChangeHub(redis, (WS,)))
    one = len((await probe.get(store, WS, *ranges(1)[0], {})).data)
    cache = SnapshotCache(ChangeHub(redis, (WS,)), max_bytes=3 * one + one // 2)
    for start, end in ranges(20):
        await cache.get(store, WS, start, end, {})
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 3


async def test_a_snapshot_larger_than_the_entry_bound_is_served_but_not_kept(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    cache = SnapshotCache(ChangeHub(redis, (WS,)), max_entry_bytes=10)
    snapshot = await cache.get(store, WS, *ranges(1)[0], {})
    assert snapshot.data.startswith(b"{")
    assert len(cache) == 0 and cache.bytes == 0


async def test_a_snapshot_is_shared_while_fresh_and_read_again_once_old(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    ticker = Ticker()
    cache = SnapshotCache(ChangeHub(redis, (WS,)), max_age_s=30, monotonic=ticker)
    start, end = ranges(1)[0]
    first = await cache.get(store, WS, start, end, {})
    ticker.now += 29
    assert await cache.get(store, WS, start, end, {}) is first
    ticker.now += 2
    assert await cache.get(store, WS, start, end, {}) is not first


async def test_old_snapshots_are_let_go_when_a_new_one_is_kept(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    ticker = Ticker()
    cache = SnapshotCache(ChangeHub(redis, (WS,)), max_age_s=30, monotonic=ticker)
    for start, end in ranges(5):
        await cache.get(store, WS, start, end, {})
    ticker.now += 31
    await cache.get(store, WS, *ranges(6)[5], {})
    assert len(cache) == 1


async def test_clients_arriving_together_share_one_read_and_leave_no_lock(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    cache = SnapshotCache(ChangeHub(redis, (WS,)))
    start, end = ranges(1)[0]
    snapshots = await asyncio.gather(*(cache.get(store, WS, start, end, {}) for _ in range(20)))
    assert all(s is snapshots[0] for s in snapshots)
    assert cache._locks == {}


async def test_a_caller_cancelled_while_waiting_leaves_no_lock(
    redis: Redis, clock: FixedClock
) -> None:
    store = store_for(redis, clock)
    cache = SnapshotCache(ChangeHub(redis, (WS,)))
    start, end = ranges(1)[0]
    holder = asyncio.create_task(cache.get(store, WS, start, end, {}))
    waiter = asyncio.create_task(cache.get(store, WS, start, end, {}))
    await asyncio.sleep(0)  # both have taken their place at the lock
    waiter.cancel()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cache._locks == {}


# The figure: a real server asked for a thousand distinct year-long ranges ------------------
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def seed_a_year(http: httpx.AsyncClient) -> None:
    """Four entries a day for a year and a half, in three projects: year-long snapshots with
    every dimension filled."""
    bodies = []
    for day in range(550):
        on = YEAR_START + timedelta(days=day)
        for n, (project, user) in enumerate(((WEBSITE, BEN), (MOBILE, BEN), (INTERNAL, BEN))):
            start = f"{on.isoformat()}T{8 + n:02d}:00:00Z"
            end = f"{on.isoformat()}T{8 + n:02d}:45:00Z"
            bodies.append(entry_2024(f"{day * 4 + n:024x}", start, end, user=user, project=project))
    headers = {"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"}
    gate = asyncio.Semaphore(16)

    async def post(body: dict[str, object]) -> None:
        async with gate:
            response = await http.post("/webhooks/clockify", json=body, headers=headers)
            assert response.status_code == 200, response.text

    await asyncio.gather(*(post(b) for b in bodies))


async def open_first_event(http: httpx.AsyncClient, params: dict[str, str]) -> str:
    """Open /events, read up to the first data event, hang up."""
    async with http.stream("GET", "/events", params=params) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("the stream ended before its first event")


@pytest.mark.slow
@pytest.mark.parametrize("through", ["share link", "dashboard"])
async def test_a_thousand_distinct_year_long_ranges_leave_the_server_memory_bounded(
    tmp_path: Path, through: str
) -> None:
    async with redis_db(redis_url(dbs.SNAPSHOT_CACHE)):
        env = serve_env(redis_url(dbs.SNAPSHOT_CACHE), CLOCKWALL_SECRET_KEY=SECRET)
        server = await AppProcess(env, tmp_path / "serve.log").astart()
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                await seed_a_year(http)
                share = sign_scope(
                    Secret(SECRET),
                    ShareScope(WS, "project", WEBSITE.id, int(time.time()) + 3600),
                )
                extra = {"share": share} if through == "share link" else {}
                # Warm up: the first requests load modules and grow the allocator's pools.
                for start, end in ranges(20)[10:]:
                    await open_first_event(http, {"start": str(start), "end": str(end), **extra})
                before = rss_kib(server.pid)
                gate = asyncio.Semaphore(8)

                async def one(start: date, end: date) -> str:
                    async with gate:
                        return await open_first_event(
                            http, {"start": str(start), "end": str(end), **extra}
                        )

                firsts = await asyncio.gather(*(one(s, e) for s, e in ranges(1000)))
                assert set(firsts) == {"snapshot"}
                grown_mib = (rss_kib(server.pid) - before) / 1024
                print(f"{through}: RSS grew {grown_mib:.1f} MiB over 1,000 distinct ranges")
                assert grown_mib <= 50, f"RSS grew {grown_mib:.1f} MiB"
        finally:
            await server.astop()
