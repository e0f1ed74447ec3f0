"""TotalsStore: applies time entries atomically (one Lua call each) to the stored entries and
their projection (app/projection.py), keeps the generations of totals (app/rebuild.py).

Writes go through `apply_entry` / `delete_entry` / `apply_names`. Every answer is shaped on the
read side, app/reports.py (reports, entries, running timers, the wall's snapshot) and
app/progress.py (project progress); the `read_*` methods here forward to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from app import keys
from app.models import Named, TimeEntry, record
from app.pipe import ScriptPipe
from app.progress import ProjectProgress
from app.projection import Basis, contribution
from app.reports import Filters, Reports

Clock = Callable[[], datetime]
STORE_DEADLINE_S = 5.0  # the longest a write waits for Redis
NAME_RESEND_S = 60.0  # an unchanged name is written again at most once a minute per process
ENTRY_READ_CHUNK = 1000  # entry states read per HMGET
KINDS = ("create", "update", "delete", "restore", "sync")


# Error replies that mean Redis cannot take a write right now (loading, busy with a script, a
# replica, out of memory, failing over, refusing writes after a failed save): an outage, which
# the sender retries. redis-py strips some of these codes into the class; the pipe keeps them.
_UNAVAILABLE_ERRORS = (
    ClusterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
)
_UNAVAILABLE_REPLIES = (
    "BUSY",
    "CLUSTERDOWN",
    "LOADING",
    "MASTERDOWN",
    "MISCONF",
    "NOAUTH",
    "NOPERM",
    "NOREPLICAS",
    "OOM",
    "READONLY",
    "TRYAGAIN",
)


class ApplyError(Exception):
    """An entry the store could not apply for a reason other than an outage: the script refused
    it (a total would leave the exact range) or failed (an error reply that is not an outage).
    Resending does not help until the cause is fixed; the message says what it was."""

    def __init__(self, what: str, written: bool) -> None:
        super().__init__(what)
        self.what = what
        self.written = written  # False: the script checked and wrote nothing


def utc_now() -> datetime:
    return datetime.now(UTC)


def _load_script(name: str) -> str:
    return resources.files("app").joinpath("lua", name).read_text(encoding="utf-8")


@record
class ApplyResult:
    outcome: str  # started|stopped|created|updated|deleted|restored|duplicate|stale|...
    stream_id: str | None

    @property
    def changed(self) -> bool:
        return self.stream_id is not None


@dataclass(frozen=True)
class Generations:
    """The generations of totals a workspace keeps (app/rebuild.py): `gen`, the one answers
    read, built with `basis`; during a rebuild also `next`, built with `next_basis`."""

    gen: str
    basis: Basis
    next: str | None = None
    next_basis: Basis | None = None

    @property
    def label(self) -> str:
        """What apply_entry.lua compares with the projection hash: "<gen>" or "<gen>,<next>"."""
        return f"{self.gen},{self.next}" if self.next else self.gen

    def bases(self) -> list[Basis]:
        return [self.basis, self.next_basis] if self.next_basis is not None else [self.basis]


def parse_generations(fields: dict[Any, Any]) -> Generations | None:
    """A projection hash (HGETALL) read back; None when the workspace has none yet."""
    got = {_decode(k): _decode(v) for k, v in fields.items()}
    if "gen" not in got or "basis" not in got:
        return None
    nxt = got.get("next")
    return Generations(
        got["gen"],
        Basis.from_json(got["basis"]),
        nxt,
        Basis.from_json(got["nextBasis"]) if nxt and got.get("nextBasis") else None,
    )


class TotalsStore:
    def __init__(
        self,
        redis: Redis,
        zone: ZoneInfo,
        week_start_index: int = 0,
        stream_maxlen: int = 10_000,
        clock: Clock = utc_now,
        pipe: ScriptPipe | None = None,
        *,
        settled: bool = True,
        rounding: tuple[str, int] | None = None,
    ) -> None:
        self.redis = redis
        self.pipe = pipe  # the hot path's pipelined connection; None: through redis-py
        self.zone = zone
        self.week_start_index = week_start_index
        # False until the reporting zone is settled (app/reporting.py): nothing is applied
        # before, since an entry bucketed in a provisional zone would stay on the wrong day.
        self.settled = settled
        self.rounding = rounding  # the report rounding a workspace's first generation gets
        self.stream_maxlen = stream_maxlen
        self.clock = clock
        self._apply = redis.register_script(_load_script("apply_entry.lua"))
        self._names = redis.register_script(_load_script("apply_names.lua"))
        self._project_clients: dict[tuple[str, str], str | None] = {}
        self._gens: dict[str, Generations] = {}
        # The read side: every answer is shaped there, from what this store keeps.
        self.reports = Reports(self)
        self.progress = ProjectProgress(self)
        # (workspace, kind, id, partial) -> the record this process last wrote, and when: an
        # unchanged name is not sent again for NAME_RESEND_S (a Named compares by what its
        # record holds; parse_named hands out one object per record, so mostly by identity).
        self._sent_names: dict[tuple[str, str, str, bool], tuple[Named, float]] = {}
        self._apply_keys: dict[str, list[str]] = {}  # workspace -> apply_entry.lua's KEYS

    def settle(
        self, zone: ZoneInfo, week_start_index: int, rounding: tuple[str, int] | None = None
    ) -> None:
        """Take the settled reporting zone, week start and report rounding; entries may be
        applied from now on."""
        self.zone = zone
        self.week_start_index = week_start_index
        self.rounding = rounding
        self.settled = True

    # Writes ---------------------------------------------------------------------------
    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).date().isoformat()

    async def _client_of(self, entry: TimeEntry) -> str | None:
        if entry.project_id is None:
            return None
        for named in entry.names:
            if named.kind == "project" and named.id == entry.project_id:
                self._project_clients[(entry.workspace_id, named.id)] = named.client_id
                return named.client_id
        cache_key = (entry.workspace_id, entry.project_id)
        if cache_key not in self._project_clients:
            async with asyncio.timeout(STORE_DEADLINE_S):
                raw = await self.redis.hget(
                    keys.names(entry.workspace_id, "project"), entry.project_id
                )
            record = orjson.loads(raw) if raw else {}
            self._project_clients[cache_key] = record.get("clientId")
        return self._project_clients[cache_key]

    async def generations(self, ws: str, fresh: bool = False, create: bool = True) -> Generations:
        """The workspace's generations of totals, as this process last read them (`fresh`:
        read again). A workspace that has none yet gets generation 0, built with the settled
        zone and no rounding (app/rebuild.py builds a first generation from stored entries);
        a reader (`create=False`) sees that generation without writing it."""
        gens = None if fresh else self._gens.get(ws)
        if gens is None:
            async with asyncio.timeout(STORE_DEADLINE_S):
                gens = parse_generations(await self.redis.hgetall(keys.projection(ws)))
                if gens is None and not create:
                    return Generations("0", Basis(self.zone, self.rounding))
                if gens is None:
                    gens = await self.init_generations(ws, Basis(self.zone, self.rounding))
            self._gens[ws] = gens
        return gens

    async def init_generations(self, ws: str, basis: Basis) -> Generations:
        """Give a workspace without totals its generation 0 (fields set only where absent, in
        one transaction, so processes starting together agree)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.projection(ws), "gen", "0")
            pipe.hsetnx(keys.projection(ws), "basis", basis.to_json())
            pipe.hsetnx(keys.projection(ws), "max", "0")
            # A copy of generations from before (a projection hash deleted) would disagree.
            pipe.hdel(keys.entry_meta(ws), keys.GENS_FIELD)
            pipe.hgetall(keys.projection(ws))
            results = await pipe.execute()
        gens = parse_generations(results[-1])
        assert gens is not None
        return gens

    async def apply_entry(self, entry: TimeEntry, kind: str) -> ApplyResult:
        """Apply one entry state. `kind`: create (timer started, manual entry), update (stop,
        edit, split), restore, sync (the poller's authoritative view), delete."""
        if kind not in KINDS:
            raise ValueError(f"unknown apply kind {kind!r}")
        ws = entry.workspace_id
        if kind == "sync" and entry.unknown:
            # A poll row never erases what it does not carry (Reports rows may lack the rate,
            # currency or tags a webhook stored). A webhook landing between this read and the
            # script is overwritten, as any sync overwrites: the next poll sees its change.
            async with asyncio.timeout(STORE_DEADLINE_S):
                raw = await self.redis.hget(keys.entry_states(ws), entry.id)
            entry = entry.fill_unknown(orjson.loads(raw) if raw else None)
        # The client is resolved when answering (a project may move to another client); the
        # change feed names the one the delivery carried.
        client_id = await self._client_of(entry)
        state = entry.to_state()
        state_json = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
        fingerprint = hashlib.blake2b(state_json, digest_size=10).hexdigest()
        status = "D" if kind == "delete" else ("R" if entry.running else "L")
        display = self._display(entry, client_id)
        gens = await self.generations(ws)
        for _ in range(5):
            contribs = [
                b""
                if status == "D"
                else orjson.dumps(contribution(state, basis, entry.start, entry.end))
                for basis in gens.bases()
            ]
            result = await self._run(
                ws,
                gens,
                entry.id,
                kind,
                status,
                fingerprint,
                state_json,
                contribs,
                int(entry.start.timestamp()),
                display,
                entry.names,
            )
            if result.outcome != "resettle":
                return result
            # A rebuild began or ended since this process last looked: compute again.
            gens = await self.generations(ws, fresh=True)
        raise ApplyError("the totals' generations kept changing; nothing was recorded", False)

    async def delete_entry(self, ws: str, entry_id: str) -> ApplyResult:
        """A delete that carries only the id: the stored state becomes the tombstone."""
        gens = await self.generations(ws)
        for _ in range(5):
            result = await self._run(
                ws, gens, entry_id, "delete", "D", "", b"", [b""] * len(gens.bases()), 0, b"{}", ()
            )
            if result.outcome != "resettle":
                return result
            gens = await self.generations(ws, fresh=True)
        raise ApplyError("the totals' generations kept changing; nothing was recorded", False)

    async def _run(
        self,
        ws: str,
        gens: Generations,
        entry_id: str,
        kind: str,
        status: str,
        fingerprint: str,
        state_json: bytes,
        contribs: list[bytes],
        start_epoch: int,
        display: bytes,
        names: Iterable[Named],
    ) -> ApplyResult:
        # Names ride along with every entry; a record this process wrote recently and that has
        # not changed is left out, which spares Redis most of the HSETs of a busy webhook feed.
        name_args: list[Any] = []
        fresh: list[tuple[tuple[str, str, str, bool], Named]] = []
        now_s = time.monotonic()
        for named in names:
            cache_key = (ws, named.kind, named.id, named.partial)
            sent = self._sent_names.get(cache_key)
            if (
                sent is not None
                and (sent[0] is named or sent[0] == named)
                and now_s - sent[1] < NAME_RESEND_S
            ):
                continue
            record = orjson.dumps(named.to_dict())
            # "project?": a partial record, written only where none is (see apply_entry.lua).
            name_args += [f"{named.kind}?" if named.partial else named.kind, named.id, record]
            fresh.append((cache_key, named))
        script_keys = self._apply_keys.get(ws)
        if script_keys is None:
            if len(self._apply_keys) > 1000:
                self._apply_keys.clear()
            script_keys = self._apply_keys[ws] = [
                keys.entry_meta(ws),
                keys.entry_states(ws),
                keys.running(ws),
                keys.changes(ws),
                keys.projection(ws),
            ]
        outcome, stream_id = await self._script(
            self._apply,
            script_keys,
            [
                keys.workspace_prefix(ws),
                entry_id,
                kind,
                status,
                fingerprint,
                state_json,
                start_epoch,
                self.stream_maxlen,
                display,
                gens.label,
                contribs[0],
                contribs[1] if len(contribs) > 1 else b"",
                *name_args,
            ],
        )
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        text = outcome.decode() if isinstance(outcome, bytes) else outcome
        if text == "rejected":
            raise ApplyError(f"{sid}; nothing was recorded", written=False)
        if text == "resettle":
            return ApplyResult(text, None)
        for cache_key, named in fresh:
            self._sent_names[cache_key] = (named, now_s)
        if len(self._sent_names) > 50_000:
            self._sent_names.clear()
        return ApplyResult(text, sid or None)

    async def _script(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        # A Redis that stops answering fails the write (the webhook answers 503) rather than
        # hanging it: the pipe drops a connection silent for STORE_DEADLINE_S; redis-py calls
        # get a deadline of their own.
        try:
            if self.pipe is not None:
                return await self.pipe.evalsha(script, keys, args)
            async with asyncio.timeout(STORE_DEADLINE_S):
                return await script(keys=keys, args=args)
        except ResponseError as exc:
            if isinstance(exc, _UNAVAILABLE_ERRORS) or str(exc).startswith(_UNAVAILABLE_REPLIES):
                raise
            # Not an outage: the script itself failed, perhaps after some of its writes.
            raise ApplyError(f"the store's script failed ({exc})", written=True) from exc

    @staticmethod
    def _display(entry: TimeEntry, client_id: str | None) -> bytes:
        out: dict[str, Any] = {}
        for named in entry.names:
            if named.kind == "user" and named.id == entry.user_id:
                out["user"] = named.name
            elif named.kind == "project" and named.id == entry.project_id:
                out["project"] = named.name
                out["color"] = named.color
                if named.estimate_s:
                    out["estimateSeconds"] = named.estimate_s
            elif named.kind == "client" and named.id == client_id:
                out["client"] = named.name
        if client_id:
            out["clientId"] = client_id
        return orjson.dumps(out)

    async def apply_names(self, ws: str, records: Iterable[Named]) -> ApplyResult:
        args: list[Any] = [keys.workspace_prefix(ws), self.stream_maxlen]
        for named in records:
            kind = f"{named.kind}?" if named.partial else named.kind
            args += [kind, named.id, orjson.dumps(named.to_dict())]
            if named.kind == "project":
                self._project_clients[(ws, named.id)] = named.client_id
        if len(args) == 2:
            return ApplyResult("unchanged", None)
        changed, stream_id = await self._script(self._names, [keys.changes(ws)], args)
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        return ApplyResult("names" if changed else "unchanged", sid or None)

    # Reads ----------------------------------------------------------------------------
    def days(self, start: date, end: date) -> list[str]:
        return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]

    def current_week(self) -> tuple[date, date]:
        today = self.clock().astimezone(self.zone).date()
        first = today - timedelta(days=(today.weekday() - self.week_start_index) % 7)
        return first, first + timedelta(days=6)

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()

    async def read_names(self, ws: str, kind: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(keys.names(ws, kind))
        return {_decode(k): orjson.loads(v) for k, v in raw.items()}

    async def read_running(self, ws: str) -> list[dict[str, Any]]:
        raw = await self.redis.hvals(keys.running(ws))
        entries = [orjson.loads(v) for v in raw]
        entries.sort(key=lambda e: (e["start"], e["id"]))
        return entries

    async def read_summary(
        self,
        ws: str,
        start: date,
        end: date,
        group: str | tuple[str, ...] = "PROJECT",
        include_running: bool = True,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        """The Summary report of [start, end] (app/reports.py)."""
        return await self.reports.summary(ws, start, end, group, filters, include_running)

    async def read_progress(self, ws: str, include_running: bool = True) -> dict[str, Any]:
        """Each estimated project's progress (app/progress.py)."""
        return await self.progress.read(ws, include_running)

    async def read_team(
        self, ws: str, start: date, end: date, filters: Filters | None = None
    ) -> dict[str, Any]:
        return await self.reports.team(ws, start, end, filters)

    async def read_entries(
        self,
        ws: str,
        start: date,
        end: date,
        limit: int = 5000,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        """The entries of [start, end] (app/reports.py)."""
        return await self.reports.entries(ws, start, end, limit, keep, filters)

    async def read_last_change_id(self, ws: str) -> str:
        info = await self.redis.xrevrange(keys.changes(ws), count=1)
        return _decode(info[0][0]) if info else "0-0"


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
