"""The wall's snapshot: every total of a date range, running timers, names, the recent feed and
the projects' progress, read in ONE Redis transaction together with the id of the newest change
it includes, so the browser can apply later change events on top without a gap or a double count.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from app.store import TotalsStore
from app.stream import ChangeHub

CacheKey = tuple[str, date, date]


@dataclass(frozen=True)
class Snapshot:
    stream_id: str
    data: bytes


async def read_snapshot(
    store: TotalsStore, ws: str, start: date, end: date, extra: dict[str, Any]
) -> Snapshot:
    """The wall's snapshot of [start, end] (shaped by app/reports.py `Reports.wall`)."""
    stream_id, payload = await store.reports.wall(ws, start, end)
    return Snapshot(stream_id, orjson.dumps({**payload, **extra}))


class SnapshotCache:
    """Shares one snapshot among clients connecting at the same moment (a TV fleet after a
    deploy): a cached snapshot is reused only while no change has been dispatched since it was
    read, which keeps the "no gap, no double count" rule of `read_snapshot`.

    What it holds is bounded, whatever callers ask for: at most `max_entries` snapshots and
    `max_bytes` in all, each at most `max_age_s` old (least recently used go first), and a
    snapshot larger than `max_entry_bytes` is never kept. A caller asking for many distinct
    ranges (a year each) can make the server read them, not hold them. Locks exist only while
    someone waits on them."""

    def __init__(
        self,
        hub: ChangeHub,
        *,
        max_entries: int = 64,
        max_bytes: int = 16 * 1024 * 1024,
        max_entry_bytes: int = 2 * 1024 * 1024,
        max_age_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.max_age_s = max_age_s
        self.monotonic = monotonic
        self.bytes = 0
        # key -> (hub version, read at (monotonic s), snapshot), least recently used first
        self._cache: OrderedDict[CacheKey, tuple[int, float, Snapshot]] = OrderedDict()
        # key -> (lock, number of callers holding or waiting for it)
        self._locks: dict[CacheKey, tuple[asyncio.Lock, int]] = {}
        # A store that went away may come back empty (a Redis restarted without its data) while
        # no change is dispatched: nothing cached before may be served after.
        hub.status_listeners.append(self._store_changed)

    def _store_changed(self, ok: bool) -> None:
        self.clear()

    def clear(self) -> None:
        self._cache.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._cache)

    async def get(
        self, store: TotalsStore, ws: str, start: date, end: date, extra: dict[str, Any]
    ) -> Snapshot:
        key = (ws, start, end)
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                version = self.hub.versions.get(ws, 0)
                now = self.monotonic()
                cached = self._cache.get(key)
                if cached is not None and cached[0] == version and now - cached[1] < self.max_age_s:
                    self._cache.move_to_end(key)
                    return cached[2]
                snapshot = await read_snapshot(store, ws, start, end, extra)
                self._put(key, (version, self.monotonic(), snapshot))
                return snapshot
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def _put(self, key: CacheKey, item: tuple[int, float, Snapshot]) -> None:
        self._discard(key)
        size = len(item[2].data)
        if size > self.max_entry_bytes:
            return
        now = item[1]
        # Old snapshots go first (they are stale for every workspace that changed since), then
        # the least recently used until the new one fits.
        for old_key, (_, read_at, _) in list(self._cache.items()):
            if now - read_at >= self.max_age_s:
                self._discard(old_key)
        while self._cache and (
            len(self._cache) >= self.max_entries or self.bytes + size > self.max_bytes
        ):
            self._discard(next(iter(self._cache)))
        self._cache[key] = item
        self.bytes += size

    def _discard(self, key: CacheKey) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self.bytes -= len(old[2].data)
