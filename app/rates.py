"""The rates-dirty marker (keys.rates_dirty): Clockify re-applied a billable or cost rate to
past entries (BILLABLE_RATE_UPDATED / COST_RATE_UPDATED), so what clockwall holds for them may
be stale. A webhook marks the workspace from a day on; the poller re-reads that range from the
Detailed report, whose rows carry each entry's rate and cost rate, and clears the marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from redis.asyncio import Redis

from app import keys

_LUA = Path(__file__).parent / "lua"


def default_since(today: date, week_start: date) -> date:
    """The first day to re-read when the event names none: the current month's first day, or
    the current week's where the week began in the month before. Clockify re-applies a rate
    either from a date or to all past entries; all of them could cost a year of report requests
    (31 days each on Free), and the ranges the wall and the reports show most, this week and
    this month, are what must not stay wrong. Older days heal when their entries are edited."""
    return min(today.replace(day=1), week_start)


@dataclass(frozen=True)
class RatesDirty:
    """The marker as read: re-read from `since` ("" from an older writer: the default day)."""

    since: str
    at: str
    marks: str  # how many marks made it; the poller clears it only if this has not changed


class RatesMarker:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._mark = redis.register_script((_LUA / "rates_mark.lua").read_text())
        self._advance = redis.register_script((_LUA / "rates_advance.lua").read_text())

    async def mark(self, ws: str, since: date, at: datetime, default: date) -> date:
        """Mark `ws` dirty from `since` on (the earliest day of all pending marks wins);
        `default` is the day a stored "" stands for. Returns the day the marker starts from."""
        day, _ = await self._mark(
            keys=[keys.rates_dirty(ws)],
            args=[since.isoformat(), at.isoformat(), default.isoformat()],
        )
        return date.fromisoformat(day.decode() if isinstance(day, bytes) else day)

    async def read(self, ws: str) -> RatesDirty | None:
        raw = await self.redis.hgetall(keys.rates_dirty(ws))
        if not raw:
            return None
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        return RatesDirty(fields.get("since", ""), fields.get("at", ""), fields.get("marks", "0"))

    async def advance(self, ws: str, seen: RatesDirty, next_since: date | None) -> bool:
        """After re-reading `seen` up to the day before `next_since` (None: up to now), move
        the marker on or delete it; False, leaving it whole, when a mark came meanwhile."""
        day = next_since.isoformat() if next_since is not None else ""
        done = await self._advance(keys=[keys.rates_dirty(ws)], args=[seen.marks, day])
        return bool(int(done))
