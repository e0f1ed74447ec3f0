"""The totals as a projection of the stored entries: what one entry adds to them, under the
settings (`Basis`) a generation of totals is built with.

Each entry adds to one *cell* of its local day: user x project x task x billable x type x currency
x tag set, the finest grain Clockify cannot change under clockwall. Everything Clockify can change
later (a project's client, a deleted project, client or tag) is resolved when a report is answered
(app/reports.py), so the cells never go stale; what changes the cells themselves (the reporting
time zone, report rounding) builds a new generation of totals (app/rebuild.py).

A cell's fields, kept by the Lua script in the day's hash (`keys.cells_day`; a month's report
is summed from its days by the reader, cached while the month's version stays), all exact integers:
    <cell>|s  seconds
    <cell>|r  seconds as reports count them with rounding on (each entry rounded, then summed)
    <cell>|e  earned: rate_minor x counted seconds (billable entries with a rate)
    <cell>|c  cost: cost_rate_minor x counted seconds (cost applies billable or not)
Amounts are rounded to the cent once, when a group is answered (`minor_of_exact`).

Project progress over a project's life is summed from the same cells (app/progress.py): each
month's sums per project are kept by the reader while the month's version stays.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Basis:
    """The settings one generation of totals is built with: the zone that decides each entry's
    day and the report rounding (None: off). Anything else (week start, duration format) only
    shapes answers and needs no rebuild."""

    zone: ZoneInfo
    rounding: tuple[str, int] | None = None  # (UP | DOWN | NEAREST, minutes)

    def key(self) -> str:
        rounding = f"{self.rounding[0]}:{self.rounding[1]}" if self.rounding else "off"
        return f"{self.zone.key}|{rounding}"

    def to_json(self) -> bytes:
        rounding = (
            {"mode": self.rounding[0], "minutes": self.rounding[1]} if self.rounding else None
        )
        return orjson.dumps({"timeZone": self.zone.key, "rounding": rounding})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Basis:
        data = orjson.loads(raw)
        rounding = data.get("rounding")
        return cls(
            ZoneInfo(data["timeZone"]),
            (str(rounding["mode"]), int(rounding["minutes"])) if rounding else None,
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


def type_code(entry_type: str | None) -> str:
    name = (entry_type or "REGULAR").upper()
    return TYPE_CODES.get(name, name)


def type_name(code: str) -> str:
    return TYPE_NAMES.get(code, code)


def cell_of(state: dict[str, Any]) -> str:
    """The cell an entry state counts in: `user|project|task|billable|type|currency|tags`."""
    billable = bool(state.get("billable"))
    money = (billable and state.get("rate")) or state.get("costRate")
    currency = (state.get("currency") or NONE) if money else NONE
    tags = state.get("tagIds") or ()
    return "|".join(
        (
            state["userId"],
            state.get("projectId") or NONE,
            state.get("taskId") or NONE,
            "1" if billable else "0",
            type_code(state.get("type")),
            currency,
            ",".join(sorted(tags)) if tags else NONE,
        )
    )


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
        user, project, task, billable, code, currency, tags = key.split("|")
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
    """What one entry state adds to a generation's totals: `{"day": day, "f": [[field, delta]...]}`
    (its cell's fields). A running timer or an entry of zero seconds adds nothing but is still
    indexed on its day. `start`/`end`: the state's instants when the caller has them parsed
    already."""
    if start is None:
        start = parse_instant(state["start"], "start")
        end = parse_instant(state.get("end"), "end")
    assert start is not None
    day = basis.day_of(start)
    seconds = max(0, int((end - start).total_seconds())) if end is not None else 0
    if end is None or seconds == 0:
        return {"day": day, "f": []}
    cell = cell_of(state)
    counted = basis.counted(seconds)
    billable = bool(state.get("billable"))
    currency = state.get("currency")
    rate = int(state.get("rate") or 0) if billable and currency else 0
    cost = int(state.get("costRate") or 0) if currency else 0
    fields: list[list[Any]] = [[f"{cell}|s", seconds]]
    if basis.rounding is not None:
        fields.append([f"{cell}|r", counted])
    if rate and counted:
        fields.append([f"{cell}|e", rate * counted])
    if cost and counted:
        fields.append([f"{cell}|c", cost * counted])
    return {"day": day, "f": fields}


def split_field(raw: str) -> tuple[str, str]:
    """`<cell>|<kind>` -> (cell, kind)."""
    cell, _, kind = raw.rpartition("|")
    return cell, kind
