"""Online rebuilds of the totals from the stored entries.

The totals are kept per *generation* (app/keys.py `generation_prefix`), each built with one
`Basis` (zone and report rounding). When the basis changes (a setting changed in Clockify or in
the environment, an upgrade from the old layout, `clockwall rebuild`), a new generation is
requested: from then on every apply writes to both (apply_entry.lua), while the rebuilder adds
every stored entry the new generation does not hold yet (rebuild_batch.lua, idempotent, so a
rebuild interrupted by a restart resumes by starting over). When it is complete, one script makes
it the generation answers read (rebuild_switch.lua) and announces it on the change stream;
answers read the generation with their totals in one transaction, so none mixes two. The old
generation's keys are deleted after a grace period.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from app import keys
from app.models import parse_instant
from app.projection import CELL_LAYOUT, Basis, contribution
from app.store import TotalsStore, parse_generations

log = logging.getLogger(__name__)

BATCH = 500  # entries a script adds at once: about 10 ms of Redis time
LEASE_S = 30  # a rebuilder that stops renewing loses its lease after this
GRACE_S = 30.0  # an old generation's keys outlive the switch by this much (readers finishing)
Progress = Callable[[int, int], None]


def _script(name: str) -> str:
    return resources.files("app").joinpath("lua", name).read_text(encoding="utf-8")


async def request_rebuild(
    redis: Redis, ws: str, basis: Basis, reason: str, force: bool = False
) -> str | None:
    """Ask for a generation built with `basis`. Nothing happens when the generation answers
    read, or the one being built, already has that basis (unless `force`). Returns the
    generation number being built, or None."""
    key = keys.projection(ws)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                gens = parse_generations(await pipe.hgetall(key))
                building = gens and gens.next and gens.next_basis
                if not force and gens is not None:
                    if building and gens.next_basis and gens.next_basis.key() == basis.key():
                        return gens.next
                    if not building and gens.basis.key() == basis.key():
                        return None
                total = await pipe.hlen(keys.entry_states(ws))
                current = await pipe.hget(key, "max")
                new = str(int(current or 0) + 1)
                pipe.multi()  # type: ignore[no-untyped-call]
                if gens is None:
                    # A workspace without totals: an empty generation 0 serves until the new
                    # one is complete.
                    pipe.hset(key, mapping={"gen": "0", "basis": basis.to_json()})
                pipe.hset(
                    key,
                    mapping={
                        "max": new,
                        "next": new,
                        "nextBasis": basis.to_json(),
                        "done": 0,
                        "total": total,
                    },
                )
                # From now on applies write to both generations (apply_entry.lua).
                pipe.hdel(keys.entry_meta(ws), keys.GENS_FIELD)
                await pipe.execute()
                break
            except Exception as exc:  # WatchError: someone changed the hash; look again
                if type(exc).__name__ != "WatchError":
                    raise
    log.info(
        "rebuilding the totals of workspace %s as generation %s (%s; %s, %d stored entries)",
        ws,
        new,
        reason,
        basis.key(),
        total,
    )
    return new


async def ensure_projection(store: TotalsStore, ws: str, basis: Basis) -> None:
    """At start-up, once the settings are settled: a workspace whose totals are missing (an
    upgrade from the old layout keeps entries but no generations) or built with another basis
    gets a rebuild."""
    raw = await store.redis.hgetall(keys.projection(ws))
    gens = parse_generations(raw)
    if gens is None:
        if await store.redis.hlen(keys.entry_states(ws)):
            await request_rebuild(store.redis, ws, basis, "no totals for the stored entries")
        else:
            await store.init_generations(ws, basis)
    else:
        for gen, built in ((gens.gen, gens.basis), (gens.next, gens.next_basis)):
            if gen is not None and built is not None and built.layout < CELL_LAYOUT:
                await upgrade_generation(store.redis, ws, gen)
        await request_rebuild(store.redis, ws, basis, "a reporting setting changed")
    await store.generations(ws, fresh=True)


async def upgrade_generation(redis: Redis, ws: str, gen: str) -> int:
    """A generation built before 2026-12 keeps answering until the rebuild into the current
    layout replaces it; meanwhile its days need versions (it kept them per month; readers find
    days by their versions now), and its per-project month rollups go (progress is summed from
    the days). Returns the days given a version."""
    prefix = keys.cells_day(ws, gen, "")
    versions = keys.day_versions(ws, gen)
    days = [_text(k)[len(prefix) :] async for k in redis.scan_iter(match=prefix + "*", count=1000)]
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hsetnx(versions, day, 1)
        await pipe.execute()
    rollups = [k async for k in redis.scan_iter(match=keys.project_months(ws, gen), count=1000)]
    for at in range(0, len(rollups), 500):
        await redis.unlink(*rollups[at : at + 500])
    log.info(
        "workspace %s: generation %s from before 2026-12: %d days given versions, %d month "
        "rollups deleted; it answers until its rebuild is done",
        ws,
        gen,
        len(days),
        len(rollups),
    )
    return len(days)


async def run_rebuild(
    store: TotalsStore,
    ws: str,
    progress: Progress | None = None,
    grace_s: float = GRACE_S,
    batch: int = BATCH,
) -> bool:
    """Build the requested generation of `ws` from every stored entry and switch to it.
    False when none is requested or another request replaced it meanwhile."""
    redis = store.redis
    gens = await store.generations(ws, fresh=True)
    if gens.next is None or gens.next_basis is None:
        return False
    gen, basis = gens.next, gens.next_basis
    prefix = keys.generation_prefix(ws, gen)
    add = redis.register_script(_script("rebuild_batch.lua"))
    switch = redis.register_script(_script("rebuild_switch.lua"))
    total = int(await redis.hlen(keys.entry_states(ws)))
    started = time.monotonic()
    done = 0
    logged = 0
    cursor = 0
    while True:
        cursor, found_chunk = await redis.hscan(keys.entry_states(ws), cursor, count=batch)
        chunk: dict[bytes, bytes] = found_chunk  # type: ignore[assignment]
        args: list[Any] = [prefix, gen]
        for raw_id, raw_state in chunk.items():
            state = orjson.loads(raw_state)
            fingerprint = hashlib.blake2b(raw_state, digest_size=10).hexdigest()
            try:
                found = contribution(state, basis)
                start = int(_epoch(state["start"]))
            except (KeyError, TypeError, ValueError):
                continue  # a tombstone without a state ({id} only) adds nothing
            args += [raw_id, f"{fingerprint}|{start}|".encode() + orjson.dumps(found)]
        if len(args) > 2:
            added, _skipped = await add(keys=[keys.entry_meta(ws), keys.projection(ws)], args=args)
            if int(added) < 0:
                log.info("the rebuild of generation %s of workspace %s was replaced", gen, ws)
                return False
        done += len(chunk)
        await redis.hset(keys.projection(ws), mapping={"done": done, "total": max(total, done)})
        if progress is not None:
            progress(done, max(total, done))
        if total and done * 10 // total > logged:
            logged = done * 10 // total
            log.info("rebuild of workspace %s: %d of %d entries", ws, done, total)
        if cursor == 0:
            break
    old = await switch(
        keys=[keys.projection(ws), keys.changes(ws), keys.entry_meta(ws)],
        args=[gen, store.stream_maxlen],
    )
    if not old:
        return False
    old_gen = old.decode() if isinstance(old, bytes) else str(old)
    log.info(
        "workspace %s answers from generation %s (%s) after a rebuild of %d entries in %.1f s",
        ws,
        gen,
        basis.key(),
        done,
        time.monotonic() - started,
    )
    await store.generations(ws, fresh=True)
    if grace_s > 0:
        await asyncio.sleep(grace_s)
    await drop_generation(redis, ws, old_gen)
    return True


async def drop_generation(redis: Redis, ws: str, gen: str) -> None:
    """Delete every key of an old generation (and of the layout before generations)."""
    patterns = [f"{keys.generation_prefix(ws, gen)}*"]
    prefix = keys.workspace_prefix(ws)
    patterns += [f"{prefix}d:*", f"{prefix}m:*", f"{prefix}ix:*", f"{prefix}contrib"]
    for pattern in patterns:
        batch: list[Any] = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await redis.unlink(*batch)
                batch = []
        if batch:
            await redis.unlink(*batch)
    if await redis.hget(keys.projection(ws), "garbage") in (gen.encode(), gen):
        await redis.hdel(keys.projection(ws), "garbage")


def _epoch(instant: str) -> float:
    moment = parse_instant(instant, "start")
    if moment is None:
        raise ValueError("no start")
    return moment.timestamp()


async def rebuild_state(redis: Redis, ws: str) -> dict[str, Any]:
    """The generations of `ws` for /readyz and `clockwall check`."""
    raw = await redis.hgetall(keys.projection(ws))
    gens = parse_generations(raw)
    if gens is None:
        return {"generation": None}
    fields = {_text(k): _text(v) for k, v in raw.items()}
    out: dict[str, Any] = {"generation": gens.gen, "basis": gens.basis.key()}
    if gens.next:
        out["rebuilding"] = {
            "generation": gens.next,
            "basis": gens.next_basis.key() if gens.next_basis else None,
            "done": int(fields.get("done", 0)),
            "total": int(fields.get("total", 0)),
        }
    return out


class Rebuilder:
    """Runs requested rebuilds in one process at a time (a lease in Redis), for the service's
    workspaces; looks every `every_s` seconds."""

    def __init__(
        self, store: TotalsStore, workspaces: tuple[str, ...], every_s: float = 2.0
    ) -> None:
        self.store = store
        self.workspaces = workspaces
        self.every_s = every_s
        self.token = f"{os.getpid()}-{id(self)}"

    async def run(self) -> None:
        while True:
            for ws in self.workspaces:
                try:
                    await self.once(ws)
                except Exception:
                    log.exception("the rebuild of workspace %s failed; retrying", ws)
            await asyncio.sleep(self.every_s)

    async def once(self, ws: str) -> bool:
        redis = self.store.redis
        if not await redis.hexists(keys.projection(ws), "next"):
            garbage = await redis.hget(keys.projection(ws), "garbage")
            if garbage is not None:
                await drop_generation(redis, ws, _text(garbage))
            return False
        lease = f"{keys.workspace_prefix(ws)}rebuild:lease"
        if not await redis.set(lease, self.token, nx=True, ex=LEASE_S):
            return False
        renew = asyncio.create_task(self._renew(lease))
        try:
            return await run_rebuild(self.store, ws)
        finally:
            renew.cancel()
            if await redis.get(lease) == self.token.encode():
                await redis.delete(lease)

    async def _renew(self, lease: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            await self.store.redis.expire(lease, LEASE_S)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
