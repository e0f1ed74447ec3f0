"""The reporting time zone and week start of a workspace: settled once, before the first entry
is applied, and the same in every process, because the zone decides the day each entry counts on.

Where they come from, first found wins: the environment (CLOCKWALL_TIMEZONE, CLOCKWALL_WEEK_START,
each on its own); what Redis already holds for the workspace; with an API key and no
CLOCKWALL_TIMEZONE, the key owner's profile in Clockify (GET /user, one request); else UTC and
MONDAY. The result is stored in Redis; a first value is stored with SET NX, so two processes
starting together agree on one (the loser reads the winner's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis

from app import keys
from app.clockify import ClockifyClient
from app.config import WEEKDAYS, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportingSettings:
    zone: ZoneInfo
    week_start: str  # MONDAY ... SUNDAY
    source: str = "default"  # environment, stored, clockify or default: shown in /readyz

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as `date.weekday()` counts."""
        return WEEKDAYS.index(self.week_start)

    def same_as(self, other: ReportingSettings) -> bool:
        return (self.zone.key, self.week_start) == (other.zone.key, other.week_start)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"timeZone": self.zone.key, "weekStart": self.week_start, "source": self.source}
        )


DEFAULT = ReportingSettings(ZoneInfo("UTC"), "MONDAY")


def parse_owner_settings(user: object) -> ReportingSettings | None:
    """The zone and week start of a GET /user answer; None when it names no known zone."""
    profile = user.get("settings") if isinstance(user, dict) else None
    if not isinstance(profile, dict):
        return None
    zone = _zone(profile.get("timeZone"))
    if zone is None:
        return None
    week_start = profile.get("weekStart")
    if not isinstance(week_start, str) or week_start.upper() not in WEEKDAYS:
        week_start = "MONDAY"
    return ReportingSettings(zone, week_start.upper(), "clockify")


def _zone(name: object) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return None


def _parse_stored(raw: bytes | str | None) -> ReportingSettings | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    zone = _zone(data.get("timeZone"))
    week_start = data.get("weekStart")
    if zone is None or week_start not in WEEKDAYS:
        return None  # unreadable: settled again as if nothing were stored
    source = data.get("source")
    return ReportingSettings(zone, str(week_start), source if isinstance(source, str) else "stored")


async def settle(
    redis: Redis, ws: str, settings: Settings, client: ClockifyClient | None
) -> ReportingSettings:
    """The workspace's reporting settings, stored in Redis for every process. Raises what Redis
    or Clockify raise (RedisError, OSError, ClockifyError): the caller retries."""
    key = keys.reporting_settings(ws)
    stored = _parse_stored(await redis.get(key))
    if stored is None:
        first = DEFAULT
        if settings.timezone is None and client is not None:
            owner = parse_owner_settings(await client.get_user())
            if owner is None:
                log.warning(
                    "the API key owner's Clockify profile names no known time zone; reporting "
                    "in UTC (set CLOCKWALL_TIMEZONE to choose one)"
                )
            first = owner or DEFAULT
        if await redis.set(key, first.to_json(), nx=True):
            stored = first
        else:
            # Another process stored one first: take its value, whatever we found.
            stored = _parse_stored(await redis.get(key)) or first
    chosen = stored
    if settings.timezone is not None:
        chosen = replace(chosen, zone=ZoneInfo(settings.timezone), source="environment")
    if settings.week_start is not None:
        chosen = replace(chosen, week_start=settings.week_start, source="environment")
    if not chosen.same_as(stored):
        await redis.set(key, chosen.to_json())  # the environment wins over what was stored
    return chosen
