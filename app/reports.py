"""The read side: every report answer shaped from the cells of a generation of totals
(app/projection.py), with the filters and grouping of Clockify's Summary report.

What Clockify can change after an entry was applied is resolved here, at answer time, from the
name hashes: a project's current client; a deleted project, client, tag or task reads as
"Without ..." (its time stays). Totals are read with the generation hash in one transaction, so
an answer never mixes two generations (two settings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from app import keys
from app.models import parse_instant
from app.projection import (
    NONE,
    TYPE_CODES,
    Basis,
    Cell,
    contribution,
    minor_of_exact,
    split_field,
    type_name,
)

if TYPE_CHECKING:
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
MAX_PARSED_CELLS = 200_000  # parsed cell keys kept per process


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


@dataclass
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
    minor = [(c, minor_of_exact(v)) for c, v in exact.items() if c != NONE]
    return sorted(((c, v) for c, v in minor if v), key=lambda cv: (-cv[1], cv[0]))


def money_fields(bucket: Bucket) -> dict[str, Any]:
    earned = _amounts(bucket.earned)
    cost = _amounts(bucket.cost)
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

    def __init__(self, raw: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.raw = raw

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


def fold_cells(results: Iterable[dict[Any, Any]], rounding: bool) -> dict[str, list[int]]:
    """Sum cell hashes into cell -> [seconds counted, earned exact, cost exact]."""
    count_kind = "r" if rounding else "s"
    out: dict[str, list[int]] = {}
    index = {count_kind: 0, "e": 1, "c": 2}
    for fields in results:
        for raw_field, raw_value in fields.items():
            cell, kind = split_field(_decode(raw_field))
            slot = index.get(kind)
            if slot is None:
                continue
            values = out.get(cell)
            if values is None:
                values = out[cell] = [0, 0, 0]
            values[slot] += int(raw_value)
    return out


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


class Reports:
    """Answers for one store (its Redis, clock and reporting zone)."""

    def __init__(self, store: TotalsStore) -> None:
        self.store = store

    @property
    def redis(self) -> Any:
        return self.store.redis

    def range_keys(self, ws: str, gen: str, start: date, end: date) -> list[str]:
        """The cell hashes covering [start, end]: a month's for every whole month inside it,
        day hashes at the edges, so a year reads about a dozen hashes."""
        out: list[str] = []
        cursor = start
        while cursor <= end:
            month_end = _month_end(cursor)
            if cursor.day == 1 and month_end <= end:
                out.append(keys.cells_month(ws, gen, cursor.isoformat()[:7]))
                cursor = month_end + timedelta(days=1)
            else:
                out.append(keys.cells_day(ws, gen, cursor.isoformat()))
                cursor += timedelta(days=1)
        return out

    async def read(
        self,
        ws: str,
        plan: Callable[[Generations], list[str]],
        extra: Callable[[Any], None] | None = None,
    ) -> tuple[Generations, list[Any], Names, list[dict[str, Any]]]:
        """HGETALL of the hashes `plan(gens)` names, the names, the running timers and the
        generation hash, in one transaction; again when a rebuild switched generations
        between this process's look and the read. `extra(pipe)` may queue more reads, whose
        results follow the hashes'."""
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
                results = await pipe.execute()
            # A workspace nothing was written to yet has no generation hash: generation 0.
            if _decode(results[0] if results[0] is not None else "0") == gens.gen:
                body = results[1 : -len(ALL_KINDS) - 1]
                names = Names(
                    {
                        kind: {_decode(k): orjson.loads(v) for k, v in raw.items()}
                        for kind, raw in zip(
                            ALL_KINDS, results[-len(ALL_KINDS) - 1 : -1], strict=True
                        )
                    }
                )
                running = sorted(
                    (orjson.loads(v) for v in results[-1]), key=lambda e: (e["start"], e["id"])
                )
                return gens, body, names, running
            gens = await self.store.generations(ws, fresh=True, create=False)
        raise TimeoutError("the totals' generation kept changing during the read")

    async def cells(
        self,
        ws: str,
        start: date,
        end: date,
        by_day: bool,
        include_running: bool = True,
    ) -> tuple[Generations, Names, list[tuple[str | None, str, list[int], bool]]]:
        """(day or None, cell, [seconds, earned, cost], running) of [start, end], with running
        timers as if they stopped now."""
        days = _days(start, end)

        def plan(gens: Generations) -> list[str]:
            if by_day:
                return [keys.cells_day(ws, gens.gen, d) for d in days]
            return self.range_keys(ws, gens.gen, start, end)

        gens, body, names, running = await self.read(ws, plan)
        rounding = gens.basis.rounding is not None
        out: list[tuple[str | None, str, list[int], bool]] = []
        if by_day:
            for day, fields in zip(days, body, strict=True):
                for cell, values in fold_cells((fields,), rounding).items():
                    out.append((day, cell, values, False))
        else:
            for cell, values in fold_cells(body, rounding).items():
                out.append((None, cell, values, False))
        if include_running:
            now = self.store.clock()
            for day, cell, values, _state in _running_cells(running, gens.basis, set(days), now):
                out.append((day if by_day else None, cell, values, True))
        return gens, names, out

    async def description_cells(
        self, ws: str, start: date, end: date, filters: Filters, include_running: bool
    ) -> tuple[Generations, Names, list[tuple[str | None, str, list[int], bool]]]:
        """The cells of the entries whose description matches: built from the entries
        themselves (the totals do not know descriptions)."""
        days = _days(start, end)

        gens, _, names, running = await self.read(ws, lambda gens: [])
        states = await self.entry_states(ws, gens, days)
        needle = filters.description or ""
        now = self.store.clock()
        out: list[tuple[str | None, str, list[int], bool]] = []
        kinds = {"r" if gens.basis.rounding else "s": 0, "e": 1, "c": 2}
        for state in states:
            if state.get("end") is None or needle not in (state.get("description") or "").lower():
                continue
            contrib = contribution(state, gens.basis)
            values = [0, 0, 0]
            cell = ""
            for raw, delta in contrib["f"]:
                cell, kind = split_field(raw)
                if kind in kinds:
                    values[kinds[kind]] += delta
            if cell:
                out.append((contrib["day"], cell, values, False))
        if include_running:
            for day, cell, values, state in _running_cells(running, gens.basis, set(days), now):
                if needle in (state.get("description") or "").lower():
                    out.append((day, cell, values, True))
        return gens, names, out

    async def entry_states(self, ws: str, gens: Generations, days: list[str]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.zrange(keys.day_index(ws, gens.gen, day), 0, -1)
            results = await pipe.execute()
        ids = [i for day_ids in results for i in day_ids]
        states = []
        for offset in range(0, len(ids), 1000):
            for raw in await self.redis.hmget(keys.entry_states(ws), ids[offset : offset + 1000]):
                if raw is not None:
                    states.append(orjson.loads(raw))
        return states

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
        filters = filters or Filters()
        by_day = "DATE" in levels
        if filters.description:
            _gens, names, cells = await self.description_cells(
                ws, start, end, filters, include_running
            )
        else:
            _gens, names, cells = await self.cells(ws, start, end, by_day, include_running)
        total = Bucket()
        groups: dict[str, Bucket] = {}
        includes_running = False
        keep = _keeper(filters, names)
        for day, key, values, running in cells:
            cell = parse_cell(key)
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
        if levels[0] == "DATE":
            for day in _days(start, end):
                groups.setdefault(day, Bucket())
        rows = self._rows(levels, groups, names, start, end)
        result: dict[str, Any] = {"groups": rows}
        result.update(money_fields(total))
        result["includesRunning"] = includes_running
        result["groupBy"] = list(levels)
        result["dateRange"] = {"start": start.isoformat(), "end": end.isoformat()}
        return result

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
        answer = await self.summary(ws, start, end, ("USER", "PROJECT"), filters)
        progress = await self.store.read_progress(ws)
        col_totals: dict[str | None, int] = {}
        col_rows: dict[str | None, dict[str, Any]] = {}
        for user in answer["groups"]:
            for child in user["children"]:
                col_totals[child["id"]] = col_totals.get(child["id"], 0) + child["totalSeconds"]
                col_rows.setdefault(child["id"], child)
        users = sorted(answer["groups"], key=lambda u: (str(u["name"]).lower(), str(u["id"])))
        columns = sorted(col_totals, key=lambda p: (-col_totals[p], str(p)))
        return {
            "users": [
                {
                    "id": u["id"],
                    "name": u["name"],
                    "totalSeconds": u["totalSeconds"],
                    "totalHours": u["totalHours"],
                }
                for u in users
            ],
            "projects": [
                {
                    "id": p,
                    "name": col_rows[p]["name"],
                    "color": col_rows[p].get("color"),
                    "totalSeconds": col_totals[p],
                    "totalHours": hours(col_totals[p]),
                    "progress": progress["projects"].get(p) if p else None,
                }
                for p in columns
            ],
            "progressSince": progress["since"],
            "cells": [
                [
                    next((c["totalSeconds"] for c in u["children"] if c["id"] == p), 0)
                    for p in columns
                ]
                for u in users
            ],
            "totalSeconds": answer["totalSeconds"],
            "totalHours": answer["totalHours"],
            "includesRunning": answer["includesRunning"],
            "dateRange": answer["dateRange"],
        }


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


def _month_end(day: date) -> date:
    if day.year == date.max.year and day.month == 12:
        return date.max
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


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
