"""The read side: every report answer shaped from the cells of a generation of totals
(app/projection.py), with the filters and grouping of Clockify's Summary report.

What Clockify can change after an entry was applied is resolved here, at answer time, from the
name hashes: a project's current client; a deleted project, client, tag or task reads as
"Without ..." (its time stays). Totals are read with the generation hash in one transaction, so
an answer never mixes two generations (two settings).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import orjson

from app import keys
from app.models import parse_instant
from app.progress import Missing
from app.projection import (
    NONE,
    TYPE_CODES,
    Basis,
    Cell,
    amount_minor,
    cell_rates,
    contribution,
    fold_cells,
    minor_of_exact,
    month_days,
    month_end,
    month_versions,
    split_field,
    type_name,
)
from app.stream import decode_change

if TYPE_CHECKING:
    from app.progress import ProgressPlan
    from app.store import Generations, TotalsStore

DIMENSIONS = ("PROJECT", "USER", "CLIENT", "TAG", "TASK", "DATE", "TYPE")
NAME_KINDS = {
    "PROJECT": "project",
    "USER": "user",
    "CLIENT": "client",
    "TAG": "tag",
    "TASK": "task",
}
NO_NAME = {
    "PROJECT": "(Without project)",
    "USER": "(Unknown user)",
    "CLIENT": "(Without client)",
    "TAG": "(Without tag)",
    "TASK": "(Without task)",
    "TYPE": "(Unknown type)",
}
ALL_KINDS = ("user", "project", "client", "tag", "task")
WALL_NAME_KINDS = ALL_KINDS
FEED_LENGTH = 30  # recent changes in the wall's snapshot
MAX_PARSED_CELLS = 200_000  # parsed cell keys kept per process
MONTH_CACHE_SIZE = 512  # grouped answers of whole months kept per process
CELL_MONTHS = 36  # months of cells kept per process (a new filter groups them in memory)
DESCRIBED_MONTHS = 24  # months of entries' descriptions kept per process (description filter)
ENTRY_READ_CHUNK = 1000  # entries read per HMGET


class QueryError(ValueError):
    """A query parameter is wrong; the message names it and says what is expected."""


@dataclass(frozen=True)
class Filters:
    """What a report keeps. A set holds ids, and `NONE` ("-") for "without"; None: no filter."""

    users: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    clients: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    tasks: frozenset[str] | None = None
    billable: bool | None = None
    types: frozenset[str] | None = None  # type codes (projection.TYPE_CODES)
    description: str | None = None  # case-insensitive substring

    @property
    def empty(self) -> bool:
        return self == Filters()


def _ids(raw: str | None, name: str) -> frozenset[str] | None:
    if raw is None:
        return None
    out = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if len(part) > 64:
            raise QueryError(
                f"{name}: an id is at most 64 characters; give ids separated by commas"
            )
        out.add(NONE if part.lower() == "none" else part)
    return frozenset(out)


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of a query string (DESIGN.md section 3); a malformed value is a QueryError
    saying what is allowed. Unknown ids are not errors: they match nothing."""
    billable = params.get("billable")
    if billable is not None and billable.lower() not in ("true", "false"):
        raise QueryError(f"billable={billable[:20]!r} is not true or false")
    types = None
    if params.get("type") is not None:
        names = [t.strip().upper() for t in params["type"].split(",") if t.strip()]
        wrong = [t for t in names if t not in TYPE_CODES]
        if wrong:
            raise QueryError(
                f"type={wrong[0][:20]!r} is not one of {', '.join(TYPE_CODES)} (comma-separated)"
            )
        types = frozenset(TYPE_CODES[t] for t in names)
    description = params.get("description")
    if description is not None and len(description) > 200:
        raise QueryError("description: give at most 200 characters of text to look for")
    return Filters(
        users=_ids(params.get("users"), "users"),
        projects=_ids(params.get("projects"), "projects"),
        clients=_ids(params.get("clients"), "clients"),
        tags=_ids(params.get("tags"), "tags"),
        tasks=_ids(params.get("tasks"), "tasks"),
        billable=None if billable is None else billable.lower() == "true",
        types=types,
        description=description.strip().lower() or None if description is not None else None,
    )


def parse_group_by(raw: str | None, default: str = "PROJECT") -> tuple[str, ...]:
    levels = tuple(p.strip().upper() for p in (raw or default).split(",") if p.strip())
    if not levels or len(levels) > 2:
        raise QueryError(
            "groupBy takes one or two of " + ", ".join(DIMENSIONS) + " (e.g. PROJECT,USER)"
        )
    for level in levels:
        if level not in DIMENSIONS:
            raise QueryError(f"groupBy={level[:40]!r} is not one of {', '.join(DIMENSIONS)}")
    if len(levels) == 2 and levels[0] == levels[1]:
        raise QueryError("groupBy: the two levels must differ (e.g. PROJECT,USER)")
    return levels


@dataclass(slots=True)
class Bucket:
    """One group's totals: seconds as reports count them, billable seconds, earned and cost
    amounts per currency (exact: rate_minor x seconds, rounded once when answered)."""

    seconds: int = 0
    billable_s: int = 0
    earned: dict[str, int] = field(default_factory=dict)
    cost: dict[str, int] = field(default_factory=dict)
    running_s: int = 0
    children: dict[str, Bucket] | None = None

    def add(self, values: list[int], cell: Cell, running: bool) -> None:
        seconds = values[0]
        self.seconds += seconds
        if cell.billable:
            self.billable_s += seconds
        if values[1]:
            self.earned[cell.currency] = self.earned.get(cell.currency, 0) + values[1]
        if values[2]:
            self.cost[cell.currency] = self.cost.get(cell.currency, 0) + values[2]
        if running:
            self.running_s += seconds

    def empty(self) -> bool:
        return not (self.seconds or self.running_s or self.earned or self.cost)


def _amounts(exact: dict[str, int]) -> list[tuple[str, int]]:
    """(currency, minor units) of each exact amount, largest first, rounded once."""
    if len(exact) == 1:  # the common case, without a sort
        for currency, value in exact.items():
            one = (value + 1800) // 3600
            return [(currency, one)] if one and currency != NONE else []
    minor = [(c, minor_of_exact(v)) for c, v in exact.items() if c != NONE]
    return sorted(((c, v) for c, v in minor if v), key=lambda cv: (-cv[1], cv[0]))


def money_fields(bucket: Bucket) -> dict[str, Any]:
    earned = _amounts(bucket.earned) if bucket.earned else []
    cost = _amounts(bucket.cost) if bucket.cost else []
    primary = earned[0] if earned else (None, 0)
    out: dict[str, Any] = {
        "totalSeconds": bucket.seconds,
        "totalHours": hours(bucket.seconds),
        "billableSeconds": bucket.billable_s,
        "billableAmount": primary[1] / 100,
        "currency": primary[0],
        "amounts": [{"currency": c, "amount": v / 100} for c, v in earned],
        "costAmounts": [{"currency": c, "amount": v / 100} for c, v in cost],
        "runningSeconds": bucket.running_s,
    }
    if cost:
        earned_by = dict(earned)
        cost_by = dict(cost)
        currencies = sorted(set(earned_by) | set(cost_by))
        out["profitAmounts"] = [
            {"currency": c, "amount": (earned_by.get(c, 0) - cost_by.get(c, 0)) / 100}
            for c in currencies
        ]
    return out


def hours(seconds: int) -> float:
    return round(seconds / 3600, 2)


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Names:
    """The name hashes of a workspace, read at answer time, and what Clockify shows for an id:
    a deleted project, client, tag or task is "Without ..." (its time stays)."""

    def __init__(self, raw: dict[str, dict[str, dict[str, Any]]], fingerprint: int = 0) -> None:
        self.raw = raw
        # Equal within a process for equal name hashes: part of the month cache's key, since
        # grouping resolves names.
        self.fingerprint = fingerprint

    def record(self, kind: str, ident: str) -> dict[str, Any]:
        return self.raw.get(kind, {}).get(ident) or {}

    def live(self, kind: str, ident: str) -> str:
        """`ident`, or NONE when it is none or was deleted in Clockify."""
        if ident == NONE or self.record(kind, ident).get("deleted"):
            return NONE
        return ident

    def project(self, ident: str) -> str:
        return self.live("project", ident)

    def client_of(self, project: str) -> str:
        project = self.project(project)
        if project == NONE:
            return NONE
        return self.live("client", self.record("project", project).get("clientId") or NONE)

    def task(self, project: str, task: str) -> str:
        return NONE if self.project(project) == NONE else self.live("task", task)

    def tags(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in tags if self.live("tag", t) != NONE)


_parsed: dict[str, Cell] = {}


def parse_cell(key: str) -> Cell:
    cell = _parsed.get(key)
    if cell is None:
        if len(_parsed) >= MAX_PARSED_CELLS:
            _parsed.clear()
        cell = _parsed[key] = Cell.parse(key)
    return cell


def _running_cells(
    running: Iterable[dict[str, Any]], basis: Basis, days: set[str], now: datetime
) -> list[tuple[str, str, list[int], dict[str, Any]]]:
    """(day, cell, values, state) of each running timer started on one of `days`, as if it
    stopped now."""
    out = []
    for state in running:
        start = parse_instant(state["start"], "start")
        assert start is not None
        if start > now:
            continue
        stopped = contribution(state, basis, start, now)
        if stopped["day"] not in days:
            continue
        values = [0, 0, 0]
        kinds = {"r" if basis.rounding else "s": 0, "e": 1, "c": 2}
        cell = ""
        for raw, delta in stopped["f"]:
            cell, kind = split_field(raw)
            if kind in kinds:
                values[kinds[kind]] += delta
        if cell:
            out.append((stopped["day"], cell, values, state))
    return out


class Read(NamedTuple):
    """What `Reports.read` read in one transaction."""

    gens: Generations
    body: list[Any]  # the planned hashes' contents, then what `extra` queued
    names: Names
    running: list[dict[str, Any]]
    coverage: dict[str, str]  # the coverage hash (keys.coverage)


def coverage_of(raw: dict[str, str], start: date) -> dict[str, Any]:
    """An answer's `coverage`: from which local day clockwall's data is complete, whether the
    range starts on or after it, and the history import while one runs."""
    first = raw.get("from") or None
    complete = first is not None and start.isoformat() >= first
    out: dict[str, Any] = {"from": first, "complete": complete}
    if raw.get("import"):
        try:
            progress = orjson.loads(raw["import"])
        except orjson.JSONDecodeError:
            progress = None
        if isinstance(progress, dict) and progress.get("state") in ("running", "paused"):
            out["importing"] = {
                k: progress.get(k) for k in ("since", "next", "until", "state", "rows", "message")
            }
    return out


class Reports:
    """Answers for one store (its Redis, clock and reporting zone)."""

    def __init__(self, store: TotalsStore, cache_size: int = MONTH_CACHE_SIZE) -> None:
        self.store = store
        self._cache: MonthCache[Grouped] = MonthCache(cache_size)
        # Whole months' cells (a new query groups them without Redis), by version.
        self._cells: MonthCache[MonthCells] = MonthCache(CELL_MONTHS)
        # Whole months' entries for the description filter, by version.
        self._described: MonthCache[Descriptions] = MonthCache(DESCRIBED_MONTHS)

    @property
    def redis(self) -> Any:
        return self.store.redis

    def cached_cells(self, ws: str, gen: str, month: str, version: str) -> MonthCells | None:
        """A whole month's cells as this process last read them at `version`, if it has."""
        return self._cells.get((ws, gen, month, version, False))

    async def read(
        self,
        ws: str,
        plan: Callable[[Generations], list[str]],
        extra: Callable[[Any], None] | None = None,
    ) -> Read:
        """HGETALL of the hashes `plan(gens)` names, the names, the running timers, the
        coverage and the generation hash, in one transaction; again when a rebuild switched
        generations between this process's look and the read. `extra(pipe)` may queue more
        reads, whose results follow the hashes'."""
        gens = await self.store.generations(ws, create=False)
        for _ in range(5):
            hashes = plan(gens)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.projection(ws), "gen")
                for key in hashes:
                    pipe.hgetall(key)
                if extra is not None:
                    extra(pipe)
                for kind in ALL_KINDS:
                    pipe.hgetall(keys.names(ws, kind))
                pipe.hvals(keys.running(ws))
                pipe.hgetall(keys.coverage(ws))
                results = await pipe.execute()
            # A workspace nothing was written to yet has no generation hash: generation 0.
            if _decode(results[0] if results[0] is not None else "0") == gens.gen:
                tail = len(ALL_KINDS) + 2
                body = results[1:-tail]
                raw_names = results[-tail:-2]
                names = Names(
                    {
                        kind: {_decode(k): orjson.loads(v) for k, v in raw.items()}
                        for kind, raw in zip(ALL_KINDS, raw_names, strict=True)
                    },
                    hash(tuple(frozenset(raw.items()) for raw in raw_names)),
                )
                running = sorted(
                    (orjson.loads(v) for v in results[-2]), key=lambda e: (e["start"], e["id"])
                )
                coverage = {_decode(k): _decode(v) for k, v in results[-1].items()}
                return Read(gens, body, names, running, coverage)
            gens = await self.store.generations(ws, fresh=True, create=False)
        raise TimeoutError("the totals' generation kept changing during the read")

    async def indexed(
        self, ws: str, gen: str, days: list[str]
    ) -> list[tuple[dict[str, Any], bytes | None]]:
        """(contribution, stored state) of every entry that starts on one of `days` in
        generation `gen`. The days' lists (keys.day_list: an id is appended when its entry
        comes to a day and never taken out) and the sorted sets of generations built before
        them name the candidates; an entry counts where its contribution, which names its
        one day, says."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.get(keys.day_list(ws, gen, day))
                pipe.zrange(keys.day_index(ws, gen, day), 0, -1)
            results = await pipe.execute()
        listed: dict[bytes, set[str]] = {}
        for day, appended, legacy in zip(days, results[::2], results[1::2], strict=True):
            for raw_id in (appended or b"").split() + legacy:
                listed.setdefault(raw_id, set()).add(day)
        ids = list(listed)
        out: list[tuple[dict[str, Any], bytes | None]] = []
        for offset in range(0, len(ids), ENTRY_READ_CHUNK):
            chunk = ids[offset : offset + ENTRY_READ_CHUNK]
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(keys.entry_contributions(ws, gen), chunk)
                pipe.hmget(keys.entry_states(ws), chunk)
                raw_contribs, raw_states = await pipe.execute()
            for raw_id, raw_contrib, raw_state in zip(chunk, raw_contribs, raw_states, strict=True):
                if raw_contrib is None:
                    continue  # deleted
                contrib = orjson.loads(raw_contrib)
                if contrib.get("day") in listed[raw_id]:
                    out.append((contrib, raw_state))
        return out

    async def _describe_days(self, ws: str, gens: Generations, days: list[str]) -> list[Described]:
        """(description in lower case, day, cell, [seconds, earned, cost]) of each stopped
        entry started on `days`, from its stored contribution in generation `gens`."""
        if not days:
            return []
        kinds = {"r" if gens.basis.rounding else "s": 0, "e": 1, "c": 2}
        out: list[Described] = []
        for contrib, raw_state in await self.indexed(ws, gens.gen, days):
            if raw_state is None or not contrib["f"]:
                continue  # running, or no time
            values = [0, 0, 0]
            cell = ""
            for raw, delta in contrib["f"]:
                cell, kind = split_field(raw)
                slot = kinds.get(kind)
                if slot is not None:
                    values[slot] += delta
            text = (orjson.loads(raw_state).get("description") or "").lower()
            out.append((text, contrib["day"], cell, values))
        return out

    async def entry_states(self, ws: str, gens: Generations, days: list[str]) -> list[Any]:
        found = await self.indexed(ws, gens.gen, days)
        return [orjson.loads(raw_state) for _, raw_state in found if raw_state is not None]

    async def entries(
        self,
        ws: str,
        start: date,
        end: date,
        limit: int = 5000,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        filters: Filters | None = None,
    ) -> dict[str, Any]:
        """The entries of [start, end], at most `limit`; `keep` (a test of an entry's stored
        state) scopes them before the limit, so a scoped reader never loses its own entries
        to the rest of the workspace. `truncated` says when the limit cut the list."""
        days = _days(start, end)
        gens, _, names, _running, coverage = await self.read(ws, lambda gens: [])
        states = await self.entry_states(ws, gens, days)
        wanted = entry_filter(filters, names) if filters is not None else None
        now = self.store.clock()
        rounding = gens.basis.rounding
        parsed: list[dict[str, Any]] = []
        truncated = False
        for state in states:
            if keep is not None and not keep(state):
                continue
            if wanted is not None and not wanted(state):
                continue
            if len(parsed) == limit:
                truncated = True
                break
            parsed.append(state)
        entries = []
        for state in parsed:
            start_at = parse_instant(state["start"], "start")
            assert start_at is not None
            running = state.get("end") is None
            end_at = parse_instant(state.get("end"), "end") or now
            raw_seconds = max(0, int((end_at - start_at).total_seconds()))
            seconds = gens.basis.counted(raw_seconds)
            project_id = names.project(state.get("projectId") or NONE)
            project = names.record("project", project_id)
            client_id = names.client_of(state.get("projectId") or NONE)
            amount = 0
            # Each entry's own amount, rounded on its own as an invoice line or Clockify's
            # Detailed report rounds it; group totals round once (`minor_of_exact`).
            if state.get("billable") and state.get("rate") and state.get("currency"):
                amount = amount_minor(seconds, int(state["rate"]))
            cost = 0
            if state.get("costRate") and state.get("currency"):
                cost = amount_minor(seconds, int(state["costRate"]))
            user = names.record("user", state["userId"])
            task_id = names.task(state.get("projectId") or NONE, state.get("taskId") or NONE)
            entries.append(
                {
                    "id": state["id"],
                    "day": gens.basis.day_of(start_at),
                    "start": state["start"],
                    "end": state.get("end"),
                    "running": running,
                    "durationSeconds": seconds,
                    **({"rawSeconds": raw_seconds} if rounding else {}),
                    "description": state.get("description", ""),
                    "billable": bool(state.get("billable")),
                    "type": state.get("type") or "REGULAR",
                    "billableAmount": amount / 100,
                    "costAmount": cost / 100,
                    "currency": state.get("currency") if amount or cost else None,
                    "user": {"id": state["userId"], "name": user.get("name") or state["userId"]},
                    "project": {
                        "id": project_id,
                        "name": project.get("name") or project_id,
                        "color": project.get("color"),
                    }
                    if project_id != NONE
                    else None,
                    "client": {
                        "id": client_id,
                        "name": names.record("client", client_id).get("name"),
                    }
                    if client_id != NONE
                    else None,
                    "task": {"id": task_id, "name": names.record("task", task_id).get("name")}
                    if task_id != NONE
                    else None,
                    "tags": [
                        {"id": t, "name": names.record("tag", t).get("name") or t}
                        for t in names.tags(tuple(state.get("tagIds") or ()))
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
            "coverage": coverage_of(coverage, start),
        }

    async def wall(self, ws: str, start: date, end: date) -> tuple[str, dict[str, Any]]:
        """The wall's snapshot: every cell of [start, end] by day, running timers, names, the
        recent feed and the projects' progress, read in ONE transaction together with the id
        of the newest change it includes (returned first), so the browser can apply later
        change events on top without a gap or a double count."""
        store = self.store
        days = _days(start, end)
        weekly = await store.progress.weekly_resets(ws)

        def feed_read(pipe: Any) -> None:
            pipe.xrevrange(keys.changes(ws), count=FEED_LENGTH)

        async def attempt(inside: tuple[str, ...]) -> dict[str, Any] | Missing:
            plans: list[ProgressPlan] = []

            def plan(gens: Generations) -> list[str]:
                plans.append(store.progress.plan(ws, gens, weekly, inside))
                return [keys.cells_day(ws, gens.gen, day) for day in days] + plans[-1].hashes

            read = await self.read(ws, plan, feed_read)
            progress_results = read.body[len(days) : len(days) + len(plans[-1].hashes)]
            # Without running timers: the wall adds their elapsed time, as it does to every total.
            progress = store.progress.fold(
                plans[-1], read.names.raw.get("project", {}), progress_results
            )
            if isinstance(progress, Missing):
                return progress
            return {"read": read, "progress": progress}

        done = await store.progress.settled(ws, attempt)
        gens, results, names, running, coverage = done["read"]
        # Every day of the range, those without totals too (later changes land on them).
        rounding = gens.basis.rounding
        totals = {
            day: _fold_day(fields, rounding is not None)
            for day, fields in zip(days, results, strict=False)
        }
        recent = results[-1]
        feed = []
        for raw_id, fields in reversed(recent):
            change = decode_change(ws, raw_id, fields)
            if change is not None and change.data.get("type") == "entry":
                feed.append({"id": change.id_text, **change.data})
        stream_id = _decode(recent[0][0]) if recent else "0-0"
        progress = await store.progress.finish(ws, done["progress"])
        return stream_id, {
            "workspace": ws,
            "asOf": store.clock().isoformat(),
            "today": store.today().isoformat(),
            "range": {"start": start.isoformat(), "end": end.isoformat()},
            "days": totals,
            "rounding": {"mode": rounding[0], "minutes": rounding[1]} if rounding else None,
            "coverage": coverage_of(coverage, start),
            "running": running,
            "names": {kind: names.raw.get(kind, {}) for kind in WALL_NAME_KINDS},
            "feed": feed,
            "progress": progress,
        }

    async def running(self, ws: str) -> dict[str, Any]:
        """The running timers, oldest first, with the names Clockify shows for them now."""
        entries = await self.store.read_running(ws)
        names = {
            kind: await self.store.read_names(ws, kind) for kind in ("user", "project", "client")
        }
        now = self.store.clock()
        out = []
        for entry in entries:
            project = names["project"].get(entry.get("projectId") or "")
            if project and project.get("deleted"):
                project = None  # deleted in Clockify: "Without project", as every report
            client_id = (project or {}).get("clientId") or ""
            client = names["client"].get(client_id)
            if client and client.get("deleted"):
                client = None
            start = datetime.fromisoformat(entry["start"])
            user = names["user"].get(entry["userId"], {})
            out.append(
                {
                    "id": entry["id"],
                    "user": {"id": entry["userId"], "name": user.get("name") or entry["userId"]},
                    "project": {
                        "id": entry["projectId"],
                        "name": project.get("name"),
                        "color": project.get("color"),
                    }
                    if project
                    else None,
                    "client": {"id": client_id, "name": client.get("name")} if client else None,
                    "description": entry.get("description", ""),
                    "start": entry["start"],
                    "elapsedSeconds": max(0, int((now - start).total_seconds())),
                    "billable": bool(entry.get("billable")),
                    "type": entry.get("type") or "REGULAR",
                    "tagIds": entry.get("tagIds", []),
                }
            )
        return {"running": out, "asOf": now.isoformat()}

    async def summary(
        self,
        ws: str,
        start: date,
        end: date,
        group_by: tuple[str, ...] | str = ("PROJECT",),
        filters: Filters | None = None,
        include_running: bool = True,
    ) -> dict[str, Any]:
        levels = (group_by,) if isinstance(group_by, str) else tuple(group_by)
        grouped, names, coverage = await self.grouped(
            ws, start, end, levels, filters or Filters(), include_running
        )
        total, groups, includes_running = grouped
        if levels[0] == "DATE":  # every day is listed (a copy: `groups` may be cached)
            groups = {day: groups.get(day) or Bucket() for day in _days(start, end)}
        rows = self._rows(levels, groups, names, start, end)
        result: dict[str, Any] = {"groups": rows}
        result.update(money_fields(total))
        result["includesRunning"] = includes_running
        result["groupBy"] = list(levels)
        result["dateRange"] = {"start": start.isoformat(), "end": end.isoformat()}
        result["coverage"] = coverage_of(coverage, start)
        return result

    async def grouped(
        self,
        ws: str,
        start: date,
        end: date,
        levels: tuple[str, ...],
        filters: Filters,
        include_running: bool = True,
    ) -> tuple[Grouped, Names, dict[str, str]]:
        """The groups of `levels` over [start, end] with `filters`, the names they were
        resolved with, and the coverage hash."""
        return await self._grouped(ws, start, end, levels, filters, include_running)

    async def _grouped(
        self,
        ws: str,
        start: date,
        end: date,
        levels: tuple[str, ...],
        filters: Filters,
        include_running: bool,
    ) -> tuple[Grouped, Names, dict[str, str]]:
        """The groups of [start, end]: each whole month's from this process's cache while the
        month's version (the sum of its days' versions) is unchanged, else from its days'
        totals; the days at the edges and running timers always fresh. Everything is read in
        transactions that check the generation."""
        by_day = "DATE" in levels
        months, edge_days = _split(start, end)
        used: list[Generations] = []  # the generation `read` planned for, last

        def plan(gens: Generations) -> list[str]:
            used.append(gens)
            return [keys.cells_day(ws, gens.gen, day) for day in edge_days]

        def extra(pipe: Any) -> None:
            pipe.hmget(
                keys.day_versions(ws, used[-1].gen), [d for m in months for d in month_days(m)]
            )

        for _ in range(5):
            read = await self.read(ws, plan, extra if months else None)
            gens = read.gens
            versions: list[str] = []
            if months:
                versions = month_versions(months, read.body[-1])
            names = read.names
            query = (levels, filters, names.fingerprint)
            rounding = gens.basis.rounding is not None
            keep = _keeper(filters, names)
            # The whole months together, then each on its own, as cached while unchanged.
            span_key = (ws, gens.gen, tuple(months), tuple(versions), by_day, query)
            span = self._cache.get(span_key) if len(months) > 1 else None
            if span is None:
                parts: list[Grouped] = []
                missing: list[str] = []
                for month, version in zip(months, versions, strict=True):
                    found = self._cache.get((ws, gens.gen, month, version, by_day, query))
                    if found is None:
                        missing.append(month)
                    else:
                        parts.append(found)
                known = dict(zip(months, versions, strict=True))
                if missing and not await self._fill(
                    ws, gens.gen, missing, known, by_day, query, rounding, keep, names, parts
                ):
                    continue  # the generation changed meanwhile: read again
                span = parts[0] if len(parts) == 1 else merge_grouped(parts)
                if len(months) > 1:
                    self._cache.put(span_key, span)
            edge_cells: list[tuple[str | None, str, list[int], bool]] = []
            needle = filters.description
            if needle:  # the totals do not know descriptions: the entries do
                sums: dict[tuple[str | None, str], list[int]] = {}
                edge = Descriptions(await self._describe_days(ws, gens, edge_days))
                edge.add_matches(needle, True, sums)
                edge_cells = [(day, cell, values, False) for (day, cell), values in sums.items()]
            else:
                for day, fields in zip(edge_days, read.body, strict=False):
                    for cell, values in fold_cells((fields,), rounding).items():
                        edge_cells.append((day, cell, values, False))
            if include_running:
                now = self.store.clock()
                days = set(_days(start, end))
                for day, cell, values, state in _running_cells(read.running, gens.basis, days, now):
                    if needle and needle not in (state.get("description") or "").lower():
                        continue
                    edge_cells.append((day, cell, values, True))
            edges = group_cells(edge_cells, levels, keep, names)
            if not months:
                return edges, names, read.coverage
            return overlay(span, edges), names, read.coverage
        raise TimeoutError("the totals' generation kept changing during the read")

    async def _fill(
        self,
        ws: str,
        gen: str,
        months: list[str],
        known: dict[str, str],
        by_day: bool,
        query: tuple[Any, ...],
        rounding: bool,
        keep: Callable[[Cell], bool],
        names: Names,
        parts: list[Grouped],
    ) -> bool:
        """Group the months whose answer to this query is not cached: from their cells when
        those are cached at the version `known` (read with the rest of the answer), else from
        their days' totals read with the months' versions in one transaction; cache both.
        False when the generation changed meanwhile."""
        levels = levels_of(query)
        needle = query[1].description
        if needle:
            # A month's entries (descriptions and cells), cached by version, not its totals.
            for month in months:
                found = self._described.get((ws, gen, month, known[month]))
                if found is None:
                    gens = await self.store.generations(ws, create=False)
                    if gens.gen != gen:
                        return False
                    found = Descriptions(await self._describe_days(ws, gens, month_days(month)))
                    self._described.put((ws, gen, month, known[month]), found)
                sums: dict[tuple[str | None, str], list[int]] = {}
                found.add_matches(needle, by_day, sums)
                grouped = group_cells(
                    [(day, cell, values, False) for (day, cell), values in sums.items()],
                    levels,
                    keep,
                    names,
                )
                self._cache.put((ws, gen, month, known[month], by_day, query), grouped)
                parts.append(grouped)
            return True
        unread = []
        for month in months:
            held = self._cells.get((ws, gen, month, known[month], by_day))
            if held is None:
                unread.append(month)
                continue
            grouped = group_cells(held.candidates(query[1], names), levels, keep, names)
            self._cache.put((ws, gen, month, known[month], by_day, query), grouped)
            parts.append(grouped)
        months = unread
        if not months:
            return True
        days_of = {m: month_days(m) for m in months}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(keys.projection(ws), "gen")
            pipe.hmget(keys.day_versions(ws, gen), [d for m in months for d in days_of[m]])
            for month in months:
                for day in days_of[month]:
                    pipe.hgetall(keys.cells_day(ws, gen, day))
            results = await pipe.execute()
        if _decode(results[0] if results[0] is not None else "0") != gen:
            return False
        versions = month_versions(months, results[1])
        body = iter(results[2:])
        for month, version in zip(months, versions, strict=True):
            cells: list[tuple[str | None, str, list[int], bool]] = []
            if by_day:
                for day in days_of[month]:
                    for cell, values in fold_cells((next(body),), rounding).items():
                        cells.append((day, cell, values, False))
            else:  # the month's days summed per cell first: fewer cells to group
                days_fields = [next(body) for _ in days_of[month]]
                for cell, values in fold_cells(days_fields, rounding).items():
                    cells.append((None, cell, values, False))
            parsed = MonthCells(cells)
            self._cells.put((ws, gen, month, version, by_day), parsed)
            grouped = group_cells(parsed.candidates(query[1], names), levels, keep, names)
            self._cache.put((ws, gen, month, version, by_day, query), grouped)
            parts.append(grouped)
        return True

    def _rows(
        self,
        levels: tuple[str, ...],
        groups: dict[str, Bucket],
        names: Names,
        start: date,
        end: date,
    ) -> list[dict[str, Any]]:
        level = levels[0]
        rows = []
        for ident, bucket in groups.items():
            if bucket.empty() and level != "DATE":
                continue
            row = _describe(level, ident, names)
            row.update(money_fields(bucket))
            if bucket.children is not None and len(levels) == 2:
                row["children"] = self._rows(levels[1:], bucket.children, names, start, end)
            elif len(levels) == 2:
                row["children"] = []
            rows.append(row)
        if level == "DATE":
            rows.sort(key=lambda g: str(g["id"]))
        else:
            rows.sort(key=lambda g: (-int(g["totalSeconds"]), str(g["name"]).lower(), str(g["id"])))
        return rows

    async def team(
        self, ws: str, start: date, end: date, filters: Filters | None = None
    ) -> dict[str, Any]:
        """Users x projects seconds with row and column totals (the heatmap)."""
        grouped, names, coverage = await self.grouped(
            ws, start, end, ("USER", "PROJECT"), filters or Filters()
        )
        total, users, includes_running = grouped
        progress = await self.store.read_progress(ws)
        col_totals: dict[str, int] = {}
        rows = []
        for user_id, bucket in users.items():
            if not bucket.seconds and not bucket.running_s:
                continue
            row = _describe("USER", user_id, names)
            rows.append((str(row["name"]).lower(), user_id, row, bucket))
            for project_id, child in (bucket.children or {}).items():
                if child.seconds:
                    col_totals[project_id] = col_totals.get(project_id, 0) + child.seconds
        rows.sort(key=lambda r: (r[0], r[1]))
        columns = sorted(col_totals, key=lambda p: (-col_totals[p], p))
        projects = []
        for project_id in columns:
            head = _describe("PROJECT", project_id, names)
            projects.append(
                {
                    "id": head["id"],
                    "name": head["name"],
                    "color": head.get("color"),
                    "totalSeconds": col_totals[project_id],
                    "totalHours": hours(col_totals[project_id]),
                    "progress": progress["projects"].get(head["id"]) if head["id"] else None,
                }
            )
        return {
            "users": [
                {
                    "id": row["id"],
                    "name": row["name"],
                    "totalSeconds": bucket.seconds,
                    "totalHours": hours(bucket.seconds),
                }
                for _, _, row, bucket in rows
            ],
            "projects": projects,
            "progressSince": progress["since"],
            "cells": [_row_seconds(bucket, columns) for _, _, _, bucket in rows],
            "totalSeconds": total.seconds,
            "totalHours": hours(total.seconds),
            "includesRunning": includes_running,
            "dateRange": {"start": start.isoformat(), "end": end.isoformat()},
            "coverage": coverage_of(coverage, start),
        }


def _row_seconds(bucket: Bucket, columns: list[str]) -> list[int]:
    children = bucket.children or {}
    out = []
    for project in columns:
        child = children.get(project)
        out.append(child.seconds if child is not None else 0)
    return out


def _keeper(filters: Filters, names: Names) -> Callable[[Cell], bool]:
    if filters.empty or filters == Filters(description=filters.description):
        return lambda cell: True

    def keep(cell: Cell) -> bool:
        if filters.users is not None and cell.user not in filters.users:
            return False
        if filters.billable is not None and cell.billable != filters.billable:
            return False
        if filters.types is not None and cell.type not in filters.types:
            return False
        if filters.projects is not None and names.project(cell.project) not in filters.projects:
            return False
        if filters.clients is not None and names.client_of(cell.project) not in filters.clients:
            return False
        if filters.tasks is not None and names.task(cell.project, cell.task) not in filters.tasks:
            return False
        if filters.tags is not None:
            tags = names.tags(cell.tags) or (NONE,)
            if not any(t in filters.tags for t in tags):
                return False
        return True

    return keep


def _group_ids(level: str, cell: Cell, day: str | None, names: Names) -> Iterable[str]:
    if level == "PROJECT":
        return (names.project(cell.project),)
    if level == "USER":
        return (cell.user,)
    if level == "CLIENT":
        return (names.client_of(cell.project),)
    if level == "TAG":
        return names.tags(cell.tags) or (NONE,)
    if level == "TASK":
        return (names.task(cell.project, cell.task),)
    if level == "TYPE":
        return (cell.type,)
    return (day or "",)


def _describe(level: str, ident: str, names: Names) -> dict[str, Any]:
    if level == "DATE":
        return {"id": ident, "name": ident}
    if level == "TYPE":
        return {"id": type_name(ident), "name": type_name(ident)}
    if ident == NONE:
        return {"id": None, "name": NO_NAME[level]}
    record = names.record(NAME_KINDS[level], ident)
    row: dict[str, Any] = {"id": ident, "name": record.get("name") or ident}
    if record.get("color"):
        row["color"] = record["color"]
    if level == "PROJECT":
        if record.get("estimateSeconds"):
            row["estimateSeconds"] = record["estimateSeconds"]
        client = names.client_of(ident)
        if client != NONE:
            row["client"] = {"id": client, "name": names.record("client", client).get("name")}
    if record.get("archived"):
        row["archived"] = True
    return row


def _days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def entry_filter(filters: Filters, names: Names) -> Callable[[dict[str, Any]], bool]:
    """`filters` as a test of one stored entry state (the entries report)."""
    keep_cell = _keeper(filters, names)
    needle = filters.description

    def keep(state: dict[str, Any]) -> bool:
        if needle and needle not in (state.get("description") or "").lower():
            return False
        tags = state.get("tagIds") or ()
        cell = Cell(
            state["userId"],
            state.get("projectId") or NONE,
            state.get("taskId") or NONE,
            bool(state.get("billable")),
            TYPE_CODES.get((state.get("type") or "REGULAR").upper(), state.get("type") or "R"),
            state.get("currency") or NONE,
            tuple(sorted(tags)),
        )
        return keep_cell(cell)

    return keep


Grouped = tuple[Bucket, dict[str, Bucket], bool]  # total, groups (with children), any running
Described = tuple[str, str, str, list[int]]  # description (lower case), day, cell, values
CellRow = tuple[str | None, str, list[int], bool]  # day (None: a month's), cell, values, running
V = TypeVar("V")


def group_cells(
    cells: Iterable[tuple[str | None, str | Cell, list[int], bool]],
    levels: tuple[str, ...],
    keep: Callable[[Cell], bool],
    names: Names,
) -> Grouped:
    """Sum cells into the groups of `levels` (one or two), those `keep` lets through."""
    total = Bucket()
    groups: dict[str, Bucket] = {}
    includes_running = False
    for day, key, values, running in cells:
        cell = key if isinstance(key, Cell) else parse_cell(key)
        if not keep(cell):
            continue
        includes_running = includes_running or running
        total.add(values, cell, running)
        for first in _group_ids(levels[0], cell, day, names):
            bucket = groups.get(first)
            if bucket is None:
                bucket = groups[first] = Bucket()
            bucket.add(values, cell, running)
            if len(levels) == 2:
                if bucket.children is None:
                    bucket.children = {}
                for second in _group_ids(levels[1], cell, day, names):
                    child = bucket.children.get(second)
                    if child is None:
                        child = bucket.children[second] = Bucket()
                    child.add(values, cell, running)
    return total, groups, includes_running


def _merge_bucket(into: Bucket, part: Bucket) -> None:
    into.seconds += part.seconds
    into.billable_s += part.billable_s
    into.running_s += part.running_s
    for currency, value in part.earned.items():
        into.earned[currency] = into.earned.get(currency, 0) + value
    for currency, value in part.cost.items():
        into.cost[currency] = into.cost.get(currency, 0) + value
    if part.children is not None:
        if into.children is None:
            into.children = {}
        for ident, child in part.children.items():
            _merge_bucket(into.children.setdefault(ident, Bucket()), child)


def _copy(bucket: Bucket) -> Bucket:
    out = Bucket(
        bucket.seconds, bucket.billable_s, dict(bucket.earned), dict(bucket.cost), bucket.running_s
    )
    if bucket.children is not None:
        out.children = {ident: _copy(child) for ident, child in bucket.children.items()}
    return out


def overlay(base: Grouped, extra: Grouped) -> Grouped:
    """`base` (cached, never changed) plus `extra`: only the groups `extra` touches are
    copied, so a year's cached groups cost nothing to add a few days and timers to."""
    base_total, base_groups, base_running = base
    extra_total, extra_groups, extra_running = extra
    if not extra_groups and extra_total.empty():
        return base
    total = _copy(base_total)
    _merge_bucket(total, extra_total)
    groups = dict(base_groups)
    for ident, bucket in extra_groups.items():
        held = groups.get(ident)
        merged = _copy(held) if held is not None else Bucket()
        _merge_bucket(merged, bucket)
        groups[ident] = merged
    return total, groups, base_running or extra_running


def merge_grouped(parts: Iterable[Grouped]) -> Grouped:
    """The sum of several parts' groups (new buckets: cached parts are never changed)."""
    total = Bucket()
    groups: dict[str, Bucket] = {}
    includes_running = False
    for part_total, part_groups, part_running in parts:
        _merge_bucket(total, part_total)
        for ident, bucket in part_groups.items():
            _merge_bucket(groups.setdefault(ident, Bucket()), bucket)
        includes_running = includes_running or part_running
    return total, groups, includes_running


def levels_of(query: tuple[Any, ...]) -> tuple[str, ...]:
    levels: tuple[str, ...] = query[0]
    return levels


class Descriptions:
    """A month's stopped entries for the description filter: their descriptions (lower case)
    and each one's day, cell and values, in parallel lists scanned by one comprehension."""

    def __init__(self, rows: list[Described]) -> None:
        self.texts = [text for text, _day, _cell, _values in rows]
        self.days = [day for _text, day, _cell, _values in rows]
        self.cells = [cell for _text, _day, cell, _values in rows]
        self.values = [values for _text, _day, _cell, values in rows]

    def add_matches(
        self, needle: str, by_day: bool, sums: dict[tuple[str | None, str], list[int]]
    ) -> None:
        """Add each entry whose description holds `needle` to `sums`, keyed by (day, cell),
        or (None, cell) when the answer has no Date grouping (fewer keys to group)."""
        texts, days, cells, values = self.texts, self.days, self.cells, self.values
        for i in [i for i, text in enumerate(texts) if needle in text]:
            key = (days[i] if by_day else None, cells[i])
            held = sums.get(key)
            found = values[i]
            if held is None:
                sums[key] = list(found)
            else:
                held[0] += found[0]
                held[1] += found[1]
                held[2] += found[2]


class MonthCells:
    """A month's cells, parsed, with the rows of each person and each project: a filter on
    people, projects or clients looks at their rows only."""

    def __init__(self, rows: list[CellRow]) -> None:
        self.rows: list[tuple[str | None, Cell, list[int], bool]] = [
            (day, Cell.parse(key), values, running) for day, key, values, running in rows
        ]
        self.by_user: dict[str, list[int]] = {}
        self.by_project: dict[str, list[int]] = {}
        for index, (_day, cell, _values, _running) in enumerate(self.rows):
            self.by_user.setdefault(cell.user, []).append(index)
            self.by_project.setdefault(cell.project, []).append(index)

    def candidates(
        self, filters: Filters, names: Names
    ) -> Iterable[tuple[str | None, Cell, list[int], bool]]:
        """The rows a filter may keep (a superset: the caller still tests each)."""
        picked: list[int] | None = None
        if filters.users is not None:
            picked = [i for user in filters.users for i in self.by_user.get(user, ())]
        elif filters.projects is not None or filters.clients is not None:
            # The project as Clockify shows it now (a deleted one is "none"), or its client.
            resolve: Callable[[str], str]
            if filters.projects is not None:
                wanted, resolve = filters.projects, names.project
            else:
                assert filters.clients is not None
                wanted, resolve = filters.clients, names.client_of
            picked = [
                i
                for project, rows in self.by_project.items()
                if resolve(project) in wanted
                for i in rows
            ]
        if picked is None:
            return self.rows
        rows = self.rows
        return [rows[i] for i in sorted(set(picked))]


class MonthCache(Generic[V]):
    """What whole months answered, least recently used first out. A key holds the month's
    version, so a changed month is simply not found (its old answers age out)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], V] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> V | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[Any, ...], value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _split(start: date, end: date) -> tuple[list[str], list[str]]:
    """[start, end] as its whole months (YYYY-MM) and the days outside them."""
    months: list[str] = []
    days: list[str] = []
    cursor = start
    while cursor <= end:
        last = month_end(cursor)
        if cursor.day == 1 and last <= end:
            months.append(cursor.isoformat()[:7])
            if last == date.max:
                break
            cursor = last + timedelta(days=1)
        else:
            days.append(cursor.isoformat())
            if cursor == date.max:
                break
            cursor += timedelta(days=1)
    return months, days


def _fold_day(fields: dict[Any, Any], rounding: bool) -> dict[str, dict[str, int]]:
    """A day's cell hash as {cell: {s, r, e, c}} (app/projection.py); amounts stay exact, the
    browser rounds them once after summing a total. A layout 2 cell's amounts are worked out
    from its rates here, so the browser sees one shape."""
    out: dict[str, dict[str, int]] = {}
    for raw_field, raw_value in fields.items():
        cell, kind = split_field(_decode(raw_field))
        out.setdefault(cell, {})[kind] = int(raw_value)
    for cell, figures in out.items():
        rates = cell_rates(cell)
        if rates is None:
            continue
        counted = figures.get("r" if rounding else "s", 0)
        for kind, rate in zip(("e", "c"), rates, strict=True):
            if rate and counted:
                figures[kind] = rate * counted
    return out
