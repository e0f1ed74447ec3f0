"""Project progress as Clockify shows it: tracked over the project's life (or since the last
reset of an estimate that resets weekly, monthly or yearly) against its time estimate or money
budget, from the cells of every day clockwall holds (app/projection.py) and Clockify's own
figures.

Summing every day ever tracked on each read would be slow, so this process keeps each day's
sums per project (`<pid>|s`, `<pid>|b` billable seconds, `<pid>|m|<CUR>` exact earned) at the
day's version (`keys.day_versions`, raised by every change to the day's totals), and each
month's at the sum of its days' versions (or takes a month's from the cells a report read). A
read takes the versions in the same transaction as the rest of its answer; a day whose version
it has not summed is read and summed before the read is made again, so the answer never mixes
days read at different moments with the rest of the answer. Under a live feed only the days
that changed (today's) are read again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from app import keys
from app.models import RESET_OPTIONS, parse_instant
from app.projection import (
    Cell,
    fold_cells,
    minor_of_exact,
    month_days,
    month_end,
    month_versions,
)

if TYPE_CHECKING:
    from app.store import Generations, TotalsStore

# Progress over a project's life sums the days clockwall holds in this window.
PROGRESS_PAST_MONTHS = 240
PROGRESS_FUTURE_MONTHS = 12
FILL_DAYS = 31  # days read per transaction when they are summed outside a read
INSIDE_DAYS = 62  # days changing under reads are read inside the read itself, up to this many
ATTEMPTS = 6

Sums = dict[str, int]


@dataclass
class Missing:
    """A read that found days whose versions this process has not summed."""

    gen: str
    rounding: bool  # the generation's report rounding is on
    versions: dict[str, str]  # day -> the version the read saw


class ProjectProgress:
    """Progress answers for one store."""

    def __init__(self, store: TotalsStore) -> None:
        self.store = store
        # (ws, gen) -> day -> (version, sums per project): the days this process summed.
        self._days: dict[tuple[str, str], dict[str, tuple[str, Sums]]] = {}
        # (ws, gen) -> month -> (version, sums per project): their months, summed.
        self._months: dict[tuple[str, str], dict[str, tuple[str, Sums]]] = {}

    def plan(
        self, ws: str, gens: Generations, weekly: bool = True, inside: Iterable[str] = ()
    ) -> ProgressPlan:
        """The hashes a project progress is computed from, in generation `gens`: the days'
        versions, today's and the days `inside` (days changing under reads) and Clockify's
        tracked figures. Read them (HGETALL, in this order) and give the results to `fold`. The
        snapshot reads them in its transaction, so its progress and its totals include
        exactly the same changes. `weekly`: some project's estimate resets weekly (see
        `weekly_resets`), so the week's days are summed too."""
        today = self.store.today()
        week_start, week_end = self.store.current_week()
        week = self.store.days(week_start, week_end)
        # Today changes all day under a live feed: read inside every time, it never misses.
        days = sorted({*inside, today.isoformat()})
        hashes = [keys.day_versions(ws, gens.gen)]
        hashes += [keys.cells_day(ws, gens.gen, day) for day in days]
        hashes.append(keys.project_tracked(ws))
        rounding = gens.basis.rounding is not None
        return ProgressPlan(ws, today, week, days, hashes, gens.gen, rounding, weekly)

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
    ) -> dict[str, Any] | Missing:
        """Each estimated project's progress as Clockify shows it: tracked over the project's
        life (Clockify's own `duration` as the poller last read it; else every total clockwall
        holds), or since the last reset for an estimate that resets, against its time estimate
        or its money budget. `running`: timers whose elapsed time counts too (the wall adds its
        own, live). `since` is the first month clockwall holds totals of (`first_day` narrows
        it to a day). `Missing` when a day's version has not been summed here: `fill` it, then
        read again."""
        first, last = plan.first_month, plan.last_month
        versions: dict[str, str] = {}
        for raw_day, raw_version in results[0].items():
            day = _decode(raw_day)
            # Days only: a generation from before 2026-12 also holds month fields.
            if len(day) == 10 and first <= day[:7] <= last:
                versions[day] = _decode(raw_version)
        tracked = {_decode(k): _decode(v) for k, v in results[1 + len(plan.days)].items()}
        day_sums = self._days.setdefault((plan.ws, plan.gen), {})
        month_memo = self._months.setdefault((plan.ws, plan.gen), {})
        for day, fields in zip(plan.days, results[1 : 1 + len(plan.days)], strict=True):
            day_sums[day] = (versions.get(day, "0"), _project_fields(fields, plan.rounding))
        by_month: dict[str, list[str]] = {}
        for day in sorted(versions):
            by_month.setdefault(day[:7], []).append(day)
        stale: dict[str, str] = {}

        def summed(days: Iterable[str]) -> list[Sums]:
            out = []
            for day in days:
                held = day_sums.get(day)
                if held is not None and held[0] == versions[day]:
                    out.append(held[1])
                else:
                    stale[day] = versions[day]
            return out

        month_fields: dict[str, Sums] = {}
        for month, days in by_month.items():
            version = month_versions([month], (versions.get(d) for d in month_days(month)))[0]
            memo = month_memo.get(month)
            if memo is not None and memo[0] == version:
                month_fields[month] = memo[1]
                continue
            # The month's cells as a report read them at this version: no need to read it.
            cells = self.store.reports.cached_cells(plan.ws, plan.gen, month, version)
            if cells is not None:
                sums = _sums_of_rows(cells.rows)
            else:
                parts = summed(days)
                if len(parts) < len(days):
                    continue  # read again once the missing days are summed
                sums = _sum_dicts(parts)
            month_fields[month] = sums
            month_memo[month] = (version, sums)
        week_fields = summed(d for d in plan.week if d in versions) if plan.weekly else []
        if stale:
            return Missing(plan.gen, plan.rounding, stale)
        self._forget_other_generations(plan.ws, plan.gen)
        held = [m for m, fields in month_fields.items() if fields]
        this_month = plan.today.isoformat()[:7]
        # reset option -> (first day, last day, the project totals of that span)
        periods: dict[str | None, tuple[str | None, str | None, dict[str, int]]] = {
            None: (None, None, _sum_dicts(month_fields.values())),
            "WEEKLY": (plan.week[0], plan.week[-1], _sum_dicts(week_fields)),
            "MONTHLY": (
                f"{this_month}-01",
                month_end(plan.today.replace(day=1)).isoformat(),
                month_fields.get(this_month, {}),
            ),
            "YEARLY": (
                f"{plan.today.year:04d}-01-01",
                f"{plan.today.year:04d}-12-31",
                _sum_dicts(f for m, f in month_fields.items() if m[:4] == this_month[:4]),
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

    async def fill(self, ws: str, missing: Missing) -> None:
        """Sum the days a read found unsummed, a month's worth per transaction, each at the
        version read with it (maybe newer than the read's: the next read tells)."""
        days = sorted(missing.versions)
        summed = self._days.setdefault((ws, missing.gen), {})
        for at in range(0, len(days), FILL_DAYS):
            chunk = days[at : at + FILL_DAYS]
            async with self.store.redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.projection(ws), "gen")
                pipe.hmget(keys.day_versions(ws, missing.gen), chunk)
                for day in chunk:
                    pipe.hgetall(keys.cells_day(ws, missing.gen, day))
                results = await pipe.execute()
            if _decode(results[0] if results[0] is not None else "0") != missing.gen:
                return  # a rebuild switched generations: the next read plans anew
            for day, version, fields in zip(chunk, results[1], results[2:], strict=True):
                sums = _project_fields(fields, missing.rounding)
                summed[day] = (_decode(version) if version is not None else "0", sums)

    async def settled(
        self, ws: str, attempt: Callable[[tuple[str, ...]], Awaitable[dict[str, Any] | Missing]]
    ) -> dict[str, Any]:
        """Run `attempt(inside)` (a read that folds progress, reading the days `inside` in its
        transaction) until no day is missing. Missing days are summed outside the read the
        first time; days still missing after that are changing under the reads (a live feed,
        an import), so the next read takes them inside itself, where they cannot change
        between the two."""
        inside: set[str] = set()
        filled = False
        for _ in range(ATTEMPTS):
            found = await attempt(tuple(sorted(inside)))
            if not isinstance(found, Missing):
                return found
            if filled and len(inside) + len(found.versions) <= INSIDE_DAYS:
                inside |= set(found.versions)
            else:
                await self.fill(ws, found)
                filled = True
        raise TimeoutError("the days' totals kept changing during the progress read")

    async def read(self, ws: str, include_running: bool = True) -> dict[str, Any]:
        weekly = await self.weekly_resets(ws)

        async def attempt(inside: tuple[str, ...]) -> dict[str, Any] | Missing:
            plans: list[ProgressPlan] = []

            def plan_of(gens: Generations) -> list[str]:
                plans.append(self.plan(ws, gens, weekly, inside))
                return plans[-1].hashes

            _gens, results, names, running, _ = await self.store.reports.read(ws, plan_of)
            return self.fold(
                plans[-1],
                names.raw.get("project", {}),
                results,
                running if include_running else None,
            )

        return await self.finish(ws, await self.settled(ws, attempt))

    def _forget_other_generations(self, ws: str, gen: str) -> None:
        for cache in (self._days, self._months):
            for key in [k for k in cache if k[0] == ws and k[1] != gen]:
                del cache[key]


@dataclass(frozen=True)
class ProgressPlan:
    ws: str
    today: date
    week: list[str]  # the current week's days
    days: list[str]  # the day hashes among `hashes`, in order
    hashes: list[str]  # the days' versions, the days, then Clockify's figures
    gen: str  # the generation of totals they belong to
    rounding: bool  # its report rounding is on
    weekly: bool = True  # the week's days are read

    @property
    def first_month(self) -> str:
        return _month_shift(self.today, -PROGRESS_PAST_MONTHS)

    @property
    def last_month(self) -> str:
        return _month_shift(self.today, PROGRESS_FUTURE_MONTHS)


def _month_shift(today: date, months: int) -> str:
    index = min(max(today.year * 12 + today.month - 1 + months, 12), date.max.year * 12 + 11)
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


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


def _sums_of_rows(rows: Iterable[tuple[Any, Cell, list[int], bool]]) -> dict[str, int]:
    """A month's project sums from its cells as reports keep them (app/reports.py
    fold_cells: [counted, earned, cost, tracked seconds])."""
    out: dict[str, int] = {}
    for _day, cell, values, _running in rows:
        pid = cell.project
        out[f"{pid}|s"] = out.get(f"{pid}|s", 0) + values[3]
        if cell.billable:
            out[f"{pid}|b"] = out.get(f"{pid}|b", 0) + values[3]
        if values[1]:
            key = f"{pid}|m|{cell.currency}"
            out[key] = out.get(key, 0) + values[1]
    return out


def _project_fields(cells: dict[Any, Any], rounding: bool) -> dict[str, int]:
    """A day's cell hash as the project fields progress reads (`<pid>|s`, `|b`, `|m|CUR`)."""
    return _sums_of_rows(
        (None, Cell.parse(key), values, False)
        for key, values in fold_cells((cells,), rounding).items()
    )


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
