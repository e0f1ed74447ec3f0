"""The totals as a projection of the stored entries: what one entry adds to them, under the
settings (`Basis`) a generation of totals is built with.

Each entry adds to one *cell* of its local day: user x project x task x billable x type x currency
x tag set, the finest grain Clockify cannot change under clockwall. Everything Clockify can change
later (a project's client, a deleted project, client or tag) is resolved when a report is answered
(app/reports.py), so the cells never go stale; what changes the cells themselves (the reporting
time zone, report rounding) builds a new generation of totals (app/rebuild.py).

A cell's fields, kept by the Lua script in the day's hash (`keys.cells_day`; a month's report
is summed from its days by the reader, cached while the month's version, the sum of its days'
versions, stays), all exact integers:
    <cell>|s  seconds
    <cell>|r  seconds as reports count them with rounding on (each entry rounded, then summed)
A cell of layout 2 (`CELL_LAYOUT`) ends with the rate and cost rate of its entries, and its
amounts are worked out when read (`fold_cells`):
    earned: rate_minor x counted seconds (billable entries with a rate)
    cost: cost_rate_minor x counted seconds (cost applies billable or not)
(a generation of layout 1 kept them as fields `<cell>|e` and `<cell>|c`). Amounts are rounded
to the cent once, when a group is answered (`minor_of_exact`).

Project progress over a project's life is summed from the same cells (app/progress.py): each
day's and month's sums per project are kept by the reader while their versions stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from app.models import parse_instant

NONE = "-"  # a cell part that is absent: no project, task, currency or tags
TYPE_CODES = {"REGULAR": "R", "BREAK": "B", "HOLIDAY": "H", "TIME_OFF": "O"}
TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
ROUNDING_MODES = ("UP", "DOWN", "NEAREST")


# How a generation lays out its cells (`cell_of`). 1, before 2026-12: seven parts, earned and
# cost kept as fields of their own. 2: nine, the entry's rate and cost rate (minor units an
# hour, 0 for none) closing the key, so a cell's earned and cost amounts are its rate times its
# counted seconds, worked out when read: an entry writes one total (two with rounding on)
# instead of up to four. A generation of layout 1 is rebuilt as 2 (`Basis.key` differs).
CELL_LAYOUT = 2


@dataclass(frozen=True)
class Basis:
    """The settings one generation of totals is built with: the zone that decides each entry's
    day, the report rounding (None: off) and the layout of its cells. Anything else (week
    start, duration format) only shapes answers and needs no rebuild."""

    zone: ZoneInfo
    rounding: tuple[str, int] | None = None  # (UP | DOWN | NEAREST, minutes)
    layout: int = CELL_LAYOUT

    def key(self) -> str:
        rounding = f"{self.rounding[0]}:{self.rounding[1]}" if self.rounding else "off"
        older = "" if self.layout == CELL_LAYOUT else f"|cell layout {self.layout}"
        return f"{self.zone.key}|{rounding}{older}"

    def to_json(self) -> bytes:
        rounding = (
            {"mode": self.rounding[0], "minutes": self.rounding[1]} if self.rounding else None
        )
        return orjson.dumps(
            {"timeZone": self.zone.key, "rounding": rounding, "cellLayout": self.layout}
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Basis:
        data = orjson.loads(raw)
        rounding = data.get("rounding")
        return cls(
            ZoneInfo(data["timeZone"]),
            (str(rounding["mode"]), int(rounding["minutes"])) if rounding else None,
            int(data.get("cellLayout") or 1),
        )

    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).date().isoformat()

    def counted(self, seconds: int) -> int:
        """An entry's seconds as reports count them: rounded on its own when rounding is on."""
        if self.rounding is None:
            return seconds
        return round_seconds(seconds, *self.rounding)


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


def round_seconds(seconds: int, mode: str, minutes: int) -> int:
    """Clockify's report rounding of one entry: up, down or to the nearest multiple of
    `minutes` (half way rounds up)."""
    step = minutes * 60
    if step <= 0:
        return seconds
    if mode == "UP":
        return -(-seconds // step) * step
    if mode == "DOWN":
        return seconds // step * step
    return (seconds + step // 2) // step * step


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    if day.year == date.max.year and day.month == 12:
        return date.max
    first_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


def month_days(month: str) -> list[str]:
    """The days (YYYY-MM-DD) of `month` (YYYY-MM)."""
    first = date.fromisoformat(f"{month}-01")
    return [f"{month}-{d:02d}" for d in range(1, month_end(first).day + 1)]


def month_versions(months: list[str], day_versions: Iterable[Any]) -> list[str]:
    """Each month's version from its days' (`keys.day_versions`, read with HMGET in the order of
    `month_days` of each month): their sum, which goes up with any change to any of its days."""
    found = iter(day_versions)
    return [
        str(sum(int(v) for v in (next(found) for _ in month_days(m)) if v is not None))
        for m in months
    ]


def type_code(entry_type: str | None) -> str:
    name = (entry_type or "REGULAR").upper()
    return TYPE_CODES.get(name, name)


def type_name(code: str) -> str:
    return TYPE_NAMES.get(code, code)


def rates_of(state: dict[str, Any]) -> tuple[int, int]:
    """(rate, cost rate) an entry's time earns and costs, minor units an hour: its rate only
    when billable, either only with a currency."""
    currency = state.get("currency")
    billable = bool(state.get("billable"))
    rate = int(state.get("rate") or 0) if billable and currency else 0
    cost = int(state.get("costRate") or 0) if currency else 0
    return rate, cost


def cell_of(state: dict[str, Any], layout: int = CELL_LAYOUT) -> str:
    """The cell an entry state counts in: `user|project|task|billable|type|currency|tags`, then
    (layout 2) `|rate|costRate`."""
    billable = bool(state.get("billable"))
    money = (billable and state.get("rate")) or state.get("costRate")
    currency = (state.get("currency") or NONE) if money else NONE
    tags = state.get("tagIds") or ()
    parts = [
        state["userId"],
        state.get("projectId") or NONE,
        state.get("taskId") or NONE,
        "1" if billable else "0",
        type_code(state.get("type")),
        currency,
        ",".join(sorted(tags)) if tags else NONE,
    ]
    if layout >= 2:
        rate, cost = rates_of(state)
        parts += (str(rate), str(cost))
    return "|".join(parts)


def cell_rates(cell: str) -> tuple[int, int] | None:
    """A layout 2 cell's (rate, cost rate); None for a layout 1 cell (its amounts are fields)."""
    if cell.count("|") != 8:
        return None
    _, rate, cost = cell.rsplit("|", 2)
    return int(rate), int(cost)


@dataclass(frozen=True)
class Cell:
    """A cell key read back: its parts, for filtering and grouping."""

    user: str
    project: str  # NONE for none
    task: str
    billable: bool
    type: str  # code (R, B, H, O or another type's name)
    currency: str
    tags: tuple[str, ...]  # () for none

    @classmethod
    def parse(cls, key: str) -> Cell:
        user, project, task, billable, code, currency, tags = key.split("|")[:7]
        return cls(
            user,
            project,
            task,
            billable == "1",
            code,
            currency,
            tuple(tags.split(",")) if tags != NONE else (),
        )


def contribution(
    state: dict[str, Any],
    basis: Basis,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """What one entry state adds to a generation's totals: `{"day": day, "f": [[field, delta]...],
    "n": count}` (its cell's fields). The first `n` fields are the totals kept (seconds, and
    rounded seconds with rounding on); the earned and cost amounts after them are what the
    cell's rates make of those, listed for readers of the change (the wall adds them up). A
    layout 1 generation keeps every field and has no `n`. A running timer or an entry of zero
    seconds adds nothing but is still indexed on its day. `start`/`end`: the state's instants
    when the caller has them parsed already."""
    if start is None:
        start = parse_instant(state["start"], "start")
        end = parse_instant(state.get("end"), "end")
    assert start is not None
    day = basis.day_of(start)
    seconds = max(0, int((end - start).total_seconds())) if end is not None else 0
    if end is None or seconds == 0:
        return {"day": day, "f": []}
    cell = cell_of(state, basis.layout)
    counted = basis.counted(seconds)
    rate, cost = rates_of(state)
    fields: list[list[Any]] = [[f"{cell}|s", seconds]]
    if basis.rounding is not None:
        fields.append([f"{cell}|r", counted])
    kept = len(fields)
    if rate and counted:
        fields.append([f"{cell}|e", rate * counted])
    if cost and counted:
        fields.append([f"{cell}|c", cost * counted])
    if basis.layout >= 2:
        return {"day": day, "f": fields, "n": kept}
    return {"day": day, "f": fields}


def fold_cells(results: Iterable[dict[Any, Any]], rounding: bool) -> dict[str, list[int]]:
    """Sum cell hashes into cell -> [seconds counted, earned exact, cost exact, seconds
    tracked] (the last, unrounded, is what project progress counts)."""
    out: dict[str, list[int]] = {}
    index = {"r": 0, "e": 1, "c": 2, "s": 3} if rounding else {"s": 0, "e": 1, "c": 2}
    for fields in results:
        for raw_field, raw_value in fields.items():
            cell, kind = split_field(
                raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            )
            slot = index.get(kind)
            if slot is None:
                continue
            values = out.get(cell)
            if values is None:
                values = out[cell] = [0, 0, 0, 0]
            values[slot] += int(raw_value)
    for cell, values in out.items():
        if not rounding:
            values[3] = values[0]
        rates = cell_rates(cell)
        if rates is not None:  # layout 2: the amounts are the cell's rates x counted seconds
            values[1], values[2] = rates[0] * values[0], rates[1] * values[0]
    return out


def split_field(raw: str) -> tuple[str, str]:
    """`<cell>|<kind>` -> (cell, kind)."""
    cell, _, kind = raw.rpartition("|")
    return cell, kind
