"""Project progress as Clockify shows it: tracked over the project's life (or since the last
reset of an estimate that resets weekly, monthly or yearly) against its time estimate or money
budget, from the per-project month totals (app/projection.py) and Clockify's own figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from app import keys
from app.models import RESET_OPTIONS, parse_instant
from app.projection import minor_of_exact, month_end, split_field

if TYPE_CHECKING:
    from app.store import Generations, TotalsStore

# Progress over a project's life sums the month totals clockwall holds in this window.
PROGRESS_PAST_MONTHS = 240
PROGRESS_FUTURE_MONTHS = 12


class ProjectProgress:
    """Progress answers for one store."""

    def __init__(self, store: TotalsStore) -> None:
        self.store = store

    def plan(self, ws: str, gen: str, weekly: bool = True) -> ProgressPlan:
        """The hashes a project progress is computed from, in generation `gen`; read them
        (HGETALL, in this order) and give the results to `fold`. The snapshot reads
        them in its transaction, so its progress and its totals include exactly the same
        changes. `weekly`: some project's estimate resets weekly, so the week's days are read
        too (the costly part: see `weekly_resets`)."""
        today = self.store.today()
        months = _months_around(today, PROGRESS_PAST_MONTHS, PROGRESS_FUTURE_MONTHS)
        week_start, week_end = self.store.current_week()
        week = self.store.days(week_start, week_end)
        hashes = [keys.project_month(ws, gen, m) for m in months]
        if weekly:
            hashes += [keys.cells_day(ws, gen, d) for d in week]
        hashes.append(keys.project_tracked(ws))
        return ProgressPlan(today, months, week, hashes, gen, weekly)

    async def weekly_resets(self, ws: str) -> bool:
        """Whether some project's estimate resets weekly (its progress needs this week's
        totals per project, summed from the week's cells)."""
        projects = await self.store.read_names(ws, "project")
        return any(record.get("estimateReset") == "WEEKLY" for record in projects.values())

    def fold(
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
        n_months, n_week = len(plan.months), len(plan.week) if plan.weekly else 0
        month_fields = [_decoded_ints(r) for r in results[:n_months]]
        week_fields = [_project_fields(r) for r in results[n_months : n_months + n_week]]
        tracked = {_decode(k): _decode(v) for k, v in results[n_months + n_week].items()}
        held = [m for m, fields in zip(plan.months, month_fields, strict=True) if fields]
        this_month = plan.today.isoformat()[:7]
        # reset option -> (first day, last day, the project totals of that span)
        periods: dict[str | None, tuple[str | None, str | None, dict[str, int]]] = {
            None: (None, None, _sum_dicts(month_fields)),
            "WEEKLY": (plan.week[0], plan.week[-1], _sum_dicts(week_fields)),
            "MONTHLY": (
                f"{this_month}-01",
                month_end(plan.today.replace(day=1)).isoformat(),
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
        now = self.store.clock()
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
                day = self.store.day_of(start)
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
        days = self.store.days(first, month_end(first))
        gen = (await self.store.generations(ws, create=False)).gen
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.exists(keys.cells_day(ws, gen, day))
            found = await pipe.execute()
        return next((day for day, exists in zip(days, found, strict=True) if exists), None)

    async def finish(self, ws: str, progress: dict[str, Any]) -> dict[str, Any]:
        """Narrow `since` from a month to the first day, where a page will say it."""
        if progress["since"] and any(p["basis"] == "seen" for p in progress["projects"].values()):
            progress["since"] = await self.first_day(ws, progress["since"][:7]) or progress["since"]
        return progress

    async def read(self, ws: str, include_running: bool = True) -> dict[str, Any]:
        plans: list[ProgressPlan] = []
        weekly = await self.weekly_resets(ws)

        def plan_of(gens: Generations) -> list[str]:
            plans.append(self.plan(ws, gens.gen, weekly))
            return plans[-1].hashes

        _gens, results, names, running, _ = await self.store.reports.read(ws, plan_of)
        progress = self.fold(
            plans[-1],
            names.raw.get("project", {}),
            results,
            running if include_running else None,
        )
        return await self.finish(ws, progress)


@dataclass(frozen=True)
class ProgressPlan:
    today: date
    months: list[str]  # YYYY-MM, oldest first
    week: list[str]  # the current week's days
    hashes: list[str]  # month rollups, the week's day hashes, then Clockify's figures
    gen: str  # the generation of totals they belong to
    weekly: bool = True  # the week's day hashes are among `hashes`


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
    """The currency a project has earned most in (a budget without a currency of its own)."""
    exact: dict[str, int] = {}
    prefix = f"{pid}|m|"
    for name, value in sums.items():
        if name.startswith(prefix):
            exact[name[len(prefix) :]] = value
    amounts = [(minor_of_exact(v), c) for c, v in exact.items() if minor_of_exact(v)]
    return max(amounts)[1] if amounts else None


def _project_fields(cells: dict[Any, Any]) -> dict[str, int]:
    """A day's cell hash as the project fields progress reads (`<pid>|s`, `|b`, `|m|CUR`)."""
    out: dict[str, int] = {}
    for raw_field, raw_value in cells.items():
        key, kind = split_field(_decode(raw_field))
        if kind not in ("s", "e"):
            continue
        parts = key.split("|")
        pid, billable, currency = parts[1], parts[3] == "1", parts[5]
        value = int(raw_value)
        if kind == "s":
            out[f"{pid}|s"] = out.get(f"{pid}|s", 0) + value
            if billable:
                out[f"{pid}|b"] = out.get(f"{pid}|b", 0) + value
        else:
            out[f"{pid}|m|{currency}"] = out.get(f"{pid}|m|{currency}", 0) + value
    return out


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


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
