"""TotalsStore: applies time entries atomically (one Lua call each) and reads precomputed totals.

Writes go through `apply_entry` / `delete_entry` / `apply_names`; reads never scan entries,
they sum the per-day total hashes of the range and add running timers' elapsed time.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
from app.models import RESET_OPTIONS, Named, TimeEntry, parse_instant
from app.pipe import ScriptPipe

Clock = Callable[[], datetime]
STORE_DEADLINE_S = 5.0  # the longest a write waits for Redis
NAME_RESEND_S = 60.0  # an unchanged name is written again at most once a minute per process
ENTRY_READ_CHUNK = 1000  # entry states read per HMGET
KINDS = ("create", "update", "delete", "restore", "sync")
GROUPS = {
    "PROJECT": keys.DIM_PROJECT,
    "USER": keys.DIM_USER,
    "CLIENT": keys.DIM_CLIENT,
    "TAG": keys.DIM_TAG,
    "DATE": keys.DIM_ALL,
}
NAME_KINDS = {"PROJECT": "project", "USER": "user", "CLIENT": "client", "TAG": "tag"}
# Progress over a project's life sums the month rollups clockwall holds in this window.
PROGRESS_PAST_MONTHS = 240
PROGRESS_FUTURE_MONTHS = 12
NO_NAME = {
    "PROJECT": "(Without project)",
    "USER": "(Unknown user)",
    "CLIENT": "(Without client)",
    "TAG": "(Without tag)",
}


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


def amount_minor(seconds: int, rate_minor: int) -> int:
    """One entry's billable amount in minor units, rounded half up on its own: what an invoice
    line and Clockify's Detailed report show. Totals never add these (see `minor_of_exact`)."""
    return (seconds * rate_minor + 1800) // 3600


def minor_of_exact(exact: int) -> int:
    """Minor units of an exact amount (rate_minor x seconds, i.e. 3600ths of a minor unit),
    rounded half up once: Clockify's reports multiply a group's total time by the rate and round
    the result, so three 10-second entries at 100.00/h make 0.83, not 3 x 0.28. Floor division
    keeps half up for the negative partial sums a delta can have."""
    return (exact + 1800) // 3600


@dataclass(frozen=True)
class ApplyResult:
    outcome: str  # started|stopped|created|updated|deleted|restored|duplicate|stale|...
    stream_id: str | None

    @property
    def changed(self) -> bool:
        return self.stream_id is not None


@dataclass
class Bucket:
    """Seconds, billable seconds and amounts per currency of one group. An amount is held in two
    parts: `amounts` in minor units (legacy `a` fields, rounded per entry when they were written)
    and `exact` in rate_minor x seconds (`m` fields), rounded once when answered."""

    seconds: int = 0
    billable_s: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    exact: dict[str, int] = field(default_factory=dict)
    running_s: int = 0

    def add_field(self, kind: str, currency: str | None, value: int) -> None:
        if kind == "s":
            self.seconds += value
        elif kind == "b":
            self.billable_s += value
        elif kind == "a" and currency is not None:
            self.amounts[currency] = self.amounts.get(currency, 0) + value
        elif kind == "m" and currency is not None:
            self.exact[currency] = self.exact.get(currency, 0) + value

    def amounts_minor(self) -> dict[str, int]:
        """Minor units per currency: the legacy part plus the exact part rounded once."""
        out = dict(self.amounts)
        for currency, exact in self.exact.items():
            out[currency] = out.get(currency, 0) + minor_of_exact(exact)
        return out


def contribution(entry: TimeEntry, client_id: str | None) -> list[list[Any]]:
    """What a stopped entry adds to its day's totals: [[dim, field, delta], ...]."""
    if entry.running:
        return []
    seconds = entry.duration_s
    if seconds == 0:
        return []
    billable_s = seconds if entry.billable else 0
    exact = 0  # rate_minor x seconds: rounded only when a group's total is answered
    currency = None
    if entry.billable and entry.hourly_rate and entry.hourly_rate.currency:
        exact = seconds * entry.hourly_rate.amount_minor
        currency = entry.hourly_rate.currency
    out: list[list[Any]] = []

    def add(dim: str, ident: str) -> None:
        out.append([dim, f"{ident}|s", seconds])
        if billable_s:
            out.append([dim, f"{ident}|b", billable_s])
        if exact and currency:
            out.append([dim, f"{ident}|m|{currency}", exact])

    add(keys.DIM_PROJECT, entry.project_id or keys.NONE_ID)
    add(keys.DIM_USER, entry.user_id)
    add(keys.DIM_CLIENT, client_id or keys.NONE_ID)
    for tag in entry.tag_ids or (keys.NONE_ID,):
        add(keys.DIM_TAG, tag)
    add(keys.DIM_ALL, "")
    out.append([keys.DIM_TEAM, f"{entry.user_id}|{entry.project_id or keys.NONE_ID}", seconds])
    return out


def parse_field(raw: str) -> tuple[str, str, str | None]:
    """`<id>|s`, `<id>|b`, `<id>|m|EUR`, `<id>|a|EUR` -> (id, kind, currency). Ids never contain
    `|`. `m` is rate_minor x seconds, exact; `a` (written before `m` existed) is minor units
    rounded per entry, still read: an entry's next edit or delete nets exactly what it added."""
    parts = raw.split("|")
    if len(parts) >= 3 and parts[-2] in ("a", "m"):
        return "|".join(parts[:-2]), parts[-2], parts[-1]
    return "|".join(parts[:-1]), parts[-1], None


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
    ) -> None:
        self.redis = redis
        self.pipe = pipe  # the hot path's pipelined connection; None: through redis-py
        self.zone = zone
        self.week_start_index = week_start_index
        # False until the reporting zone is settled (app/reporting.py): nothing is applied
        # before, since an entry bucketed in a provisional zone would stay on the wrong day.
        self.settled = settled
        self.stream_maxlen = stream_maxlen
        self.clock = clock
        self._apply = redis.register_script(_load_script("apply_entry.lua"))
        self._names = redis.register_script(_load_script("apply_names.lua"))
        self._project_clients: dict[tuple[str, str], str | None] = {}
        self._sent_names: dict[tuple[str, str, str], tuple[bytes, float]] = {}

    def settle(self, zone: ZoneInfo, week_start_index: int) -> None:
        """Take the settled reporting zone and week start; entries may be applied from now on."""
        self.zone = zone
        self.week_start_index = week_start_index
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
        client_id = await self._client_of(entry)
        state = entry.to_state()
        state["clientId"] = client_id
        state_json = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
        fingerprint = hashlib.blake2b(state_json, digest_size=10).hexdigest()
        status = "D" if kind == "delete" else ("R" if entry.running else "L")
        contrib = contribution(entry, client_id) if status == "L" else []
        display = self._display(entry, client_id)
        return await self._run(
            ws,
            entry.id,
            kind,
            status,
            fingerprint,
            self.day_of(entry.start),
            state_json,
            orjson.dumps(contrib),
            int(entry.start.timestamp()),
            display,
            entry.names,
        )

    async def delete_entry(self, ws: str, entry_id: str) -> ApplyResult:
        """A delete that carries only the id: the stored state becomes the tombstone."""
        return await self._run(ws, entry_id, "delete", "D", "", "", b"", b"[]", 0, b"{}", ())

    async def _run(
        self,
        ws: str,
        entry_id: str,
        kind: str,
        status: str,
        fingerprint: str,
        day: str,
        state_json: bytes,
        contrib_json: bytes,
        start_epoch: int,
        display: bytes,
        names: Iterable[Named],
    ) -> ApplyResult:
        # Names ride along with every entry; a record this process wrote recently and that has
        # not changed is left out, which spares Redis most of the HSETs of a busy webhook feed.
        name_args: list[Any] = []
        fresh: list[tuple[tuple[str, str, str], bytes]] = []
        now_s = time.monotonic()
        for named in names:
            record = orjson.dumps(named.to_dict())
            cache_key = (ws, named.kind, named.id)
            cached = self._sent_names.get(cache_key)
            if cached is not None and cached[0] == record and now_s - cached[1] < NAME_RESEND_S:
                continue
            # "project?": a partial record, written only where none is (see apply_entry.lua).
            name_args += [f"{named.kind}?" if named.partial else named.kind, named.id, record]
            fresh.append((cache_key, record))
        outcome, stream_id = await self._script(
            self._apply,
            [
                keys.entry_meta(ws),
                keys.entry_states(ws),
                keys.entry_contributions(ws),
                keys.running(ws),
                keys.changes(ws),
            ],
            [
                keys.workspace_prefix(ws),
                entry_id,
                kind,
                status,
                fingerprint,
                day,
                state_json,
                contrib_json,
                start_epoch,
                self.stream_maxlen,
                display,
                *name_args,
            ],
        )
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        text = outcome.decode() if isinstance(outcome, bytes) else outcome
        if text == "rejected":
            raise ApplyError(f"{sid}; nothing was recorded", written=False)
        for cache_key, record in fresh:
            self._sent_names[cache_key] = (record, now_s)
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
        return orjson.dumps(out)

    async def apply_names(self, ws: str, records: Iterable[Named]) -> ApplyResult:
        args: list[Any] = [keys.workspace_prefix(ws), self.stream_maxlen]
        for named in records:
            args += [named.kind, named.id, orjson.dumps(named.to_dict())]
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

    def range_keys(self, ws: str, start: date, end: date, dim: str) -> list[str]:
        """The total hashes covering [start, end]: a month's rollup for every whole month
        inside the range, day hashes for the edges, so a year reads about 12 hashes."""
        out: list[str] = []
        cursor = start
        while cursor <= end:
            month_end = _month_end(cursor)
            if cursor.day == 1 and month_end <= end:
                out.append(keys.month_totals(ws, cursor.isoformat()[:7], dim))
                cursor = month_end + timedelta(days=1)
            else:
                out.append(keys.day_totals(ws, cursor.isoformat(), dim))
                cursor += timedelta(days=1)
        return out

    async def _sum_fields(self, hashes: list[str]) -> dict[str, int]:
        """Field-wise sum of several total hashes (fields parsed once, not once per hash)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in hashes:
                pipe.hgetall(key)
            results = await pipe.execute()
        sums: dict[Any, int] = {}
        for fields in results:
            for raw_field, raw_value in fields.items():
                sums[raw_field] = sums.get(raw_field, 0) + int(raw_value)
        return {_decode(k): v for k, v in sums.items()}

    async def _read_dim(self, ws: str, start: date, end: date, dim: str) -> dict[str, Bucket]:
        buckets: dict[str, Bucket] = {}
        if dim == keys.DIM_ALL:  # grouped by date: one bucket per day
            days = self.days(start, end)
            async with self.redis.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.hgetall(keys.day_totals(ws, day, dim))
                results = await pipe.execute()
            for day, fields in zip(days, results, strict=True):
                for raw_field, raw_value in fields.items():
                    _ident, kind, currency = parse_field(_decode(raw_field))
                    buckets.setdefault(day, Bucket()).add_field(kind, currency, int(raw_value))
            return buckets
        for raw, value in (await self._sum_fields(self.range_keys(ws, start, end, dim))).items():
            ident, kind, currency = parse_field(raw)
            bucket = buckets.get(ident)
            if bucket is None:
                bucket = buckets[ident] = Bucket()
            bucket.add_field(kind, currency, value)
        return buckets

    def _running_in(
        self, running: list[dict[str, Any]], days: list[str], now: datetime
    ) -> list[tuple[dict[str, Any], str, int]]:
        wanted = set(days)
        out = []
        for entry in running:
            start = parse_instant(entry["start"], "start")
            assert start is not None
            day = self.day_of(start)
            if day in wanted:
                out.append((entry, day, max(0, int((now - start).total_seconds()))))
        return out

    async def read_summary(
        self, ws: str, start: date, end: date, group: str, include_running: bool = True
    ) -> dict[str, Any]:
        dim = GROUPS[group]
        days = self.days(start, end)
        now = self.clock()
        buckets = await self._read_dim(ws, start, end, dim)
        running = await self.read_running(ws) if include_running else []
        includes_running = False
        for entry, day, elapsed in self._running_in(running, days, now):
            includes_running = True
            idents = {
                "PROJECT": [entry.get("projectId") or keys.NONE_ID],
                "USER": [entry["userId"]],
                "CLIENT": [entry.get("clientId") or keys.NONE_ID],
                "TAG": entry.get("tagIds") or [keys.NONE_ID],
                "DATE": [day],
            }[group]
            for ident in idents:
                bucket = buckets.setdefault(ident, Bucket())
                _add_running(bucket, entry, elapsed)
        names = await self.read_names(ws, NAME_KINDS[group]) if group in NAME_KINDS else {}
        groups = []
        for ident, bucket in buckets.items():
            if (
                bucket.seconds == 0
                and bucket.running_s == 0
                and not (bucket.amounts or bucket.exact)
            ):
                continue
            record = names.get(ident, {})
            if group == "DATE":
                name = ident
            elif ident == keys.NONE_ID:
                name = NO_NAME[group]
            else:
                name = record.get("name") or ident
            out = {"id": None if ident == keys.NONE_ID else ident, "name": name}
            if record.get("color"):
                out["color"] = record["color"]
            if group == "PROJECT" and record.get("estimateSeconds"):
                out["estimateSeconds"] = record["estimateSeconds"]
            out.update(_money_fields(bucket))
            groups.append(out)
        if group == "DATE":
            groups.sort(key=lambda g: str(g["id"]))
        else:
            groups.sort(key=lambda g: (-int(str(g["totalSeconds"])), str(g["name"]).lower()))
        total = Bucket()
        if group == "TAG":  # an entry with two tags counts once in the total
            for bucket in (await self._read_dim(ws, start, end, keys.DIM_ALL)).values():
                _merge(total, bucket)
            for entry, _day, elapsed in self._running_in(running, days, now):
                _add_running(total, entry, elapsed)
        else:
            for bucket in buckets.values():
                _merge(total, bucket)
        result: dict[str, Any] = {"groups": groups}
        result.update(_money_fields(total))
        result["includesRunning"] = includes_running
        result["dateRange"] = {"start": start.isoformat(), "end": end.isoformat()}
        return result

    def progress_plan(self, ws: str) -> ProgressPlan:
        """The hashes a project progress is computed from; read them (HGETALL, in this order)
        and give the results to `fold_progress`. The snapshot reads them in its transaction,
        so its progress and its totals include exactly the same changes."""
        today = self.today()
        months = _months_around(today, PROGRESS_PAST_MONTHS, PROGRESS_FUTURE_MONTHS)
        week_start, week_end = self.current_week()
        week = self.days(week_start, week_end)
        hashes = [keys.month_totals(ws, m, keys.DIM_PROJECT) for m in months]
        hashes += [keys.day_totals(ws, d, keys.DIM_PROJECT) for d in week]
        hashes.append(keys.project_tracked(ws))
        return ProgressPlan(today, months, week, hashes)

    def fold_progress(
        self,
        plan: ProgressPlan,
        projects: dict[str, dict[str, Any]],
        results: list[dict[Any, Any]],
        running: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Each estimated project's progress as Clockify shows it: tracked over the project's
        life (Clockify's own `duration` as the poller last read it; else every total clockwall
        holds), or since the last reset for an estimate that resets, against its time estimate
        or its money budget. `running`: timers whose elapsed time counts too (the wall adds its
        own, live). `since` is the first month clockwall holds totals of (`first_day` narrows
        it to a day)."""
        n_months, n_week = len(plan.months), len(plan.week)
        month_fields = [_decoded_ints(r) for r in results[:n_months]]
        week_fields = [_decoded_ints(r) for r in results[n_months : n_months + n_week]]
        tracked = {_decode(k): _decode(v) for k, v in results[n_months + n_week].items()}
        held = [m for m, fields in zip(plan.months, month_fields, strict=True) if fields]
        this_month = plan.today.isoformat()[:7]
        # reset option -> (first day, last day, the project totals of that span)
        periods: dict[str | None, tuple[str | None, str | None, dict[str, int]]] = {
            None: (None, None, _sum_dicts(month_fields)),
            "WEEKLY": (plan.week[0], plan.week[-1], _sum_dicts(week_fields)),
            "MONTHLY": (
                f"{this_month}-01",
                _month_end(plan.today.replace(day=1)).isoformat(),
                month_fields[plan.months.index(this_month)],
            ),
            "YEARLY": (
                f"{plan.today.year:04d}-01-01",
                f"{plan.today.year:04d}-12-31",
                _sum_dicts(
                    f
                    for m, f in zip(plan.months, month_fields, strict=True)
                    if m[:4] == this_month[:4]
                ),
            ),
        }
        now = self.clock()
        out: dict[str, Any] = {}
        for pid, record in projects.items():
            budget = record.get("budgetMinor")
            estimate = budget or record.get("estimateSeconds")
            if not isinstance(estimate, int) or estimate <= 0:
                continue
            reset = record.get("estimateReset")
            reset = reset if reset in RESET_OPTIONS else None
            since, until, sums = periods[reset]
            if budget:
                currency = record.get("currency") or _largest_currency(sums, pid)
                field = f"a|{currency}" if currency else "a"
            else:
                field = "b" if record.get("billableOnly") else "s"
            if reset:
                basis = "period"
            elif field == "s" and tracked.get(pid, "").isdigit():
                basis = "clockify"  # Clockify's figure counts non-billable time too
            else:
                basis = "seen"
            value = int(tracked[pid]) if basis == "clockify" else sums.get(f"{pid}|{field}", 0)
            # A budget's amount: legacy `a` fields plus the exact `m` part, rounded once.
            exact = sums.get(f"{pid}|m|{field[2:]}", 0) if budget and field != "a" else 0
            for entry in running or ():
                if entry.get("projectId") != pid:
                    continue
                start = parse_instant(entry["start"], "start")
                assert start is not None
                day = self.day_of(start)
                if (since and day < since) or (until and day > until):
                    continue
                elapsed = max(0, int((now - start).total_seconds()))
                if budget:
                    exact += _running_part(entry, field, elapsed)
                else:
                    value += _running_part(entry, field, elapsed)
            value += minor_of_exact(exact)
            out[pid] = {
                "kind": "budget" if budget else "time",
                "estimate": estimate,
                "tracked": value,
                "percent": round(value * 100 / estimate),
                "over": value > estimate,
                "field": field,
                "currency": (field[2:] or None) if budget else None,
                "reset": reset,
                "basis": basis,
                "since": since,
                "until": until,
            }
            if budget:
                # The exact part (rate_minor x seconds) of `tracked`: the wall adds later
                # changes and running timers to it before rounding, as this does.
                out[pid]["trackedExact"] = exact
        return {
            "projects": out,
            "since": f"{held[0]}-01" if held else None,
            "clockifyReadAt": tracked.get("readAt"),
        }

    async def first_day(self, ws: str, month: str) -> str | None:
        """The first day of `month` (YYYY-MM) clockwall holds totals of."""
        first = date.fromisoformat(f"{month}-01")
        days = self.days(first, _month_end(first))
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.exists(keys.day_totals(ws, day, keys.DIM_PROJECT))
            found = await pipe.execute()
        return next((day for day, exists in zip(days, found, strict=True) if exists), None)

    async def finish_progress(self, ws: str, progress: dict[str, Any]) -> dict[str, Any]:
        """Narrow `since` from a month to the first day, where a page will say it."""
        if progress["since"] and any(p["basis"] == "seen" for p in progress["projects"].values()):
            progress["since"] = await self.first_day(ws, progress["since"][:7]) or progress["since"]
        return progress

    async def read_progress(self, ws: str, include_running: bool = True) -> dict[str, Any]:
        plan = self.progress_plan(ws)
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in plan.hashes:
                pipe.hgetall(key)
            pipe.hgetall(keys.names(ws, "project"))
            pipe.hvals(keys.running(ws))
            results = await pipe.execute()
        projects = {_decode(k): orjson.loads(v) for k, v in results[-2].items()}
        running = [orjson.loads(v) for v in results[-1]] if include_running else None
        progress = self.fold_progress(plan, projects, results[:-2], running)
        return await self.finish_progress(ws, progress)

    async def read_team(self, ws: str, start: date, end: date) -> dict[str, Any]:
        days = self.days(start, end)
        cells: dict[tuple[str, str], int] = {}
        team = await self._sum_fields(self.range_keys(ws, start, end, keys.DIM_TEAM))
        for raw_field, value in team.items():
            user_id, _, project_id = raw_field.partition("|")
            cells[(user_id, project_id)] = value
        running = await self.read_running(ws)
        includes_running = False
        for entry, _day, elapsed in self._running_in(running, days, self.clock()):
            includes_running = True
            cell = (entry["userId"], entry.get("projectId") or keys.NONE_ID)
            cells[cell] = cells.get(cell, 0) + elapsed
        users = await self.read_names(ws, "user")
        projects = await self.read_names(ws, "project")
        progress = await self.read_progress(ws)
        row_totals: dict[str, int] = {}
        col_totals: dict[str, int] = {}
        for (user_id, project_id), seconds in cells.items():
            row_totals[user_id] = row_totals.get(user_id, 0) + seconds
            col_totals[project_id] = col_totals.get(project_id, 0) + seconds
        user_rows = sorted(row_totals, key=lambda u: (users.get(u, {}).get("name") or u).lower())
        project_cols = sorted(col_totals, key=lambda p: (-col_totals[p], p))
        return {
            "users": [
                {
                    "id": u,
                    "name": users.get(u, {}).get("name") or u,
                    "totalSeconds": row_totals[u],
                    "totalHours": _hours(row_totals[u]),
                }
                for u in user_rows
            ],
            "projects": [
                {
                    "id": None if p == keys.NONE_ID else p,
                    "name": NO_NAME["PROJECT"]
                    if p == keys.NONE_ID
                    else projects.get(p, {}).get("name") or p,
                    "color": projects.get(p, {}).get("color"),
                    "totalSeconds": col_totals[p],
                    "totalHours": _hours(col_totals[p]),
                    "progress": progress["projects"].get(p),
                }
                for p in project_cols
            ],
            "progressSince": progress["since"],
            "cells": [[cells.get((u, p), 0) for p in project_cols] for u in user_rows],
            "totalSeconds": sum(row_totals.values()),
            "totalHours": _hours(sum(row_totals.values())),
            "includesRunning": includes_running,
            "dateRange": {"start": start.isoformat(), "end": end.isoformat()},
        }

    async def read_entries(
        self,
        ws: str,
        start: date,
        end: date,
        limit: int = 5000,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The entries of [start, end], at most `limit`; `keep` (a test of an entry's stored
        state) scopes them before the limit, so a scoped reader never loses its own entries
        to the rest of the workspace. `truncated` says when the limit cut the list."""
        days = self.days(start, end)
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.zrange(keys.day_index(ws, day), 0, -1)
            results = await pipe.execute()
        ids = [i for day_ids in results for i in day_ids]
        truncated = False
        if keep is None:
            truncated = len(ids) > limit
            ids = ids[:limit]
        parsed: list[dict[str, Any]] = []
        for offset in range(0, len(ids), ENTRY_READ_CHUNK):
            chunk = ids[offset : offset + ENTRY_READ_CHUNK]
            for raw in await self.redis.hmget(keys.entry_states(ws), chunk):
                if raw is None:
                    continue
                state = orjson.loads(raw)
                if keep is not None and not keep(state):
                    continue
                if len(parsed) == limit:
                    truncated = True
                    break
                parsed.append(state)
            if truncated:
                break
        users = await self.read_names(ws, "user")
        projects = await self.read_names(ws, "project")
        clients = await self.read_names(ws, "client")
        tags = await self.read_names(ws, "tag")
        now = self.clock()
        entries = []
        for state in parsed:
            start_at = parse_instant(state["start"], "start")
            assert start_at is not None
            running = state.get("end") is None
            end_at = parse_instant(state.get("end"), "end") or now
            seconds = max(0, int((end_at - start_at).total_seconds()))
            project = projects.get(state.get("projectId") or "", {})
            amount = 0
            # Each entry's own amount, rounded on its own as an invoice line or Clockify's
            # Detailed report rounds it; group totals round once (`minor_of_exact`).
            if state.get("billable") and state.get("rate") and state.get("currency"):
                amount = amount_minor(seconds, int(state["rate"]))
            entries.append(
                {
                    "id": state["id"],
                    "day": self.day_of(start_at),
                    "start": state["start"],
                    "end": state.get("end"),
                    "running": running,
                    "durationSeconds": seconds,
                    "description": state.get("description", ""),
                    "billable": bool(state.get("billable")),
                    "billableAmount": amount / 100,
                    "currency": state.get("currency") if amount else None,
                    "user": {
                        "id": state["userId"],
                        "name": users.get(state["userId"], {}).get("name") or state["userId"],
                    },
                    "project": {
                        "id": state.get("projectId"),
                        "name": project.get("name") or NO_NAME["PROJECT"],
                        "color": project.get("color"),
                    }
                    if state.get("projectId")
                    else None,
                    "client": {
                        "id": state.get("clientId"),
                        "name": clients.get(state.get("clientId") or "", {}).get("name"),
                    }
                    if state.get("clientId")
                    else None,
                    "tags": [
                        {"id": t, "name": tags.get(t, {}).get("name") or t}
                        for t in state.get("tagIds", [])
                    ],
                }
            )
        entries.sort(key=lambda e: (e["start"], e["id"]))
        return {
            "entries": entries,
            "truncated": truncated,
            "totalSeconds": sum(e["durationSeconds"] for e in entries),
            "includesRunning": any(e["running"] for e in entries),
            "dateRange": {"start": start.isoformat(), "end": end.isoformat()},
        }

    async def read_last_change_id(self, ws: str) -> str:
        info = await self.redis.xrevrange(keys.changes(ws), count=1)
        return _decode(info[0][0]) if info else "0-0"


@dataclass(frozen=True)
class ProgressPlan:
    today: date
    months: list[str]  # YYYY-MM, oldest first
    week: list[str]  # the current week's days
    hashes: list[str]  # month rollups, the week's day hashes, then Clockify's figures


def _months_around(today: date, past: int, future: int) -> list[str]:
    index = today.year * 12 + today.month - 1
    first = max(index - past, 0)
    last = min(index + future, date.max.year * 12 + 11)
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(first, last + 1) if i >= 12]


def _decoded_ints(fields: dict[Any, Any]) -> dict[str, int]:
    return {_decode(k): int(v) for k, v in fields.items()}


def _sum_dicts(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for fields in dicts:
        for name, value in fields.items():
            out[name] = out.get(name, 0) + value
    return out


def _largest_currency(sums: dict[str, int], pid: str) -> str | None:
    by_currency = Bucket()
    for name, value in sums.items():
        ident, kind, currency = parse_field(name)
        if ident == pid:
            by_currency.add_field(kind, currency, value)
    amounts = [(v, c) for c, v in by_currency.amounts_minor().items()]
    return max(amounts)[1] if amounts else None


def _running_part(entry: dict[str, Any], field: str, elapsed: int) -> int:
    """What a running timer adds to a progress figure of `field` (s, b or a|<currency>): seconds,
    or for an amount the exact rate_minor x seconds (rounded with the rest by the caller)."""
    if field == "s":
        return elapsed
    if not entry.get("billable"):
        return 0
    if field == "b":
        return elapsed
    currency = field[2:]
    if entry.get("rate") and entry.get("currency") and entry["currency"] == currency:
        return elapsed * int(entry["rate"])
    return 0


def _month_end(day: date) -> date:
    if day.year == date.max.year and day.month == 12:
        return date.max
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _hours(seconds: int) -> float:
    return round(seconds / 3600, 2)


def _add_running(bucket: Bucket, entry: dict[str, Any], elapsed: int) -> None:
    bucket.seconds += elapsed
    bucket.running_s += elapsed
    if entry.get("billable"):
        bucket.billable_s += elapsed
        if entry.get("rate") and entry.get("currency"):
            currency = entry["currency"]
            bucket.exact[currency] = bucket.exact.get(currency, 0) + elapsed * int(entry["rate"])


def _merge(total: Bucket, bucket: Bucket) -> None:
    total.seconds += bucket.seconds
    total.billable_s += bucket.billable_s
    total.running_s += bucket.running_s
    for currency, value in bucket.amounts.items():
        total.amounts[currency] = total.amounts.get(currency, 0) + value
    for currency, value in bucket.exact.items():
        total.exact[currency] = total.exact.get(currency, 0) + value


def _money_fields(bucket: Bucket) -> dict[str, Any]:
    amounts = sorted(
        ((c, v) for c, v in bucket.amounts_minor().items() if v), key=lambda cv: (-cv[1], cv[0])
    )
    primary = amounts[0] if amounts else (None, 0)
    return {
        "totalSeconds": bucket.seconds,
        "totalHours": _hours(bucket.seconds),
        "billableSeconds": bucket.billable_s,
        "billableAmount": primary[1] / 100,
        "currency": primary[0],
        "amounts": [{"currency": c, "amount": v / 100} for c, v in amounts],
        "runningSeconds": bucket.running_s,
    }
