"""The wall's snapshot: every total of a date range, running timers, names and the recent feed,
read in ONE Redis transaction together with the id of the newest change it includes, so the
browser can apply later change events on top without a gap or a double count.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from app import keys
from app.store import TotalsStore, parse_field
from app.stream import ChangeHub, _decode_change, _text

NAME_KINDS = ("user", "project", "client", "tag")
FEED_LENGTH = 30


@dataclass(frozen=True)
class Snapshot:
    stream_id: str
    data: bytes


def _fold_day(dim: str, fields: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for raw_field, raw_value in fields.items():
        value = int(raw_value)
        if dim == keys.DIM_TEAM:
            out[_text(raw_field)] = {"s": value}
            continue
        ident, kind, currency = parse_field(_text(raw_field))
        bucket = out.setdefault(ident, {})
        if kind == "a" and currency:
            bucket.setdefault("a", {})[currency] = value
        else:
            bucket[kind] = value
    return out


async def read_snapshot(
    store: TotalsStore, ws: str, start: date, end: date, extra: dict[str, Any]
) -> Snapshot:
    days = store.days(start, end)
    async with store.redis.pipeline(transaction=True) as pipe:
        for day in days:
            for dim in keys.DIMENSIONS:
                pipe.hgetall(keys.day_totals(ws, day, dim))
        pipe.hvals(keys.running(ws))
        for kind in NAME_KINDS:
            pipe.hgetall(keys.names(ws, kind))
        pipe.xrevrange(keys.changes(ws), count=FEED_LENGTH)
        results = await pipe.execute()
    per_day = len(keys.DIMENSIONS)
    totals: dict[str, dict[str, Any]] = {}
    for i, day in enumerate(days):
        chunk = results[i * per_day : (i + 1) * per_day]
        totals[day] = {
            dim: _fold_day(dim, fields)
            for dim, fields in zip(keys.DIMENSIONS, chunk, strict=True)
            if fields
        }
    rest = results[len(days) * per_day :]
    running = sorted((orjson.loads(v) for v in rest[0]), key=lambda e: (e["start"], e["id"]))
    names = {
        kind: {_text(k): orjson.loads(v) for k, v in raw.items()}
        for kind, raw in zip(NAME_KINDS, rest[1 : 1 + len(NAME_KINDS)], strict=True)
    }
    recent = rest[1 + len(NAME_KINDS)]
    feed = []
    for raw_id, fields in reversed(recent):
        change = _decode_change(ws, raw_id, fields)
        if change is not None and change.data.get("type") == "entry":
            feed.append({"id": change.id_text, **change.data})
    stream_id = _text(recent[0][0]) if recent else "0-0"
    payload = {
        "workspace": ws,
        "asOf": store.clock().isoformat(),
        "today": store.today().isoformat(),
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        "days": totals,
        "running": running,
        "names": names,
        "feed": feed,
        **extra,
    }
    return Snapshot(stream_id, orjson.dumps(payload))


class SnapshotCache:
    """Shares one snapshot among clients connecting at the same moment (a TV fleet after a
    deploy): a cached snapshot is reused only while no change has been dispatched since it was
    read, which keeps the "no gap, no double count" rule of `read_snapshot`."""

    def __init__(self, hub: ChangeHub) -> None:
        self.hub = hub
        self._cache: dict[tuple[str, date, date], tuple[int, Snapshot]] = {}
        self._locks: dict[tuple[str, date, date], asyncio.Lock] = {}

    async def get(
        self, store: TotalsStore, ws: str, start: date, end: date, extra: dict[str, Any]
    ) -> Snapshot:
        key = (ws, start, end)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            version = self.hub.versions.get(ws, 0)
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            snapshot = await read_snapshot(store, ws, start, end, extra)
            self._cache[key] = (version, snapshot)
            return snapshot
