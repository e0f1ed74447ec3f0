"""A workspace's reporting settings: time zone and week start (they decide the day and week each
entry counts in), report rounding and duration format. One truth per workspace, in Redis, the
same in every process; settled once before the first entry is applied, read again by the poller.

Where each field comes from, first found wins: the environment (CLOCKWALL_TIMEZONE,
CLOCKWALL_WEEK_START, CLOCKWALL_REPORT_ROUNDING, CLOCKWALL_DURATION_FORMAT, each on its own);
what Redis already holds for the workspace; with an API key, Clockify: the key owner's profile
(GET /user) for the zone and week start unless CLOCKWALL_TIMEZONE is set, the workspace
(GET /workspaces/{id}: `workspaceSettings.timeRoundingInReports`, `round`, `durationFormat`)
for rounding and duration format; else UTC, MONDAY, no rounding and FULL.

`settle` runs at start: one process asks Clockify (a short-lived `:asking` key) while the others
wait for what it stores, and a first value is stored with SET NX, so two processes starting
together agree on one (the loser reads the winner's). `refresh` (the poller, hourly) asks
Clockify again and stores what changed, with a compare-and-set so it never overwrites a value
it did not read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis

from app import keys
from app.clockify import ClockifyClient, ClockifyError, RateLimitedError, UpstreamError
from app.config import (
    DURATION_FORMATS,
    MAX_ROUNDING_MINUTES,
    ROUNDING_MODES,
    WEEKDAYS,
    Settings,
)

log = logging.getLogger(__name__)
# The first process to settle a workspace's settings asks Clockify; the others wait this long
# for what it stores, looking every ASKING_POLL_S, before asking themselves.
ASKING_S = 10.0
ASKING_POLL_S = 0.05
_REPLACE_LUA = (Path(__file__).parent / "lua" / "reporting_replace.lua").read_text()


@dataclass(frozen=True)
class Rounding:
    """Clockify's report rounding: each entry's duration rounded to a step of `minutes`."""

    mode: str  # UP | DOWN | NEAREST
    minutes: int  # 1..480

    def __post_init__(self) -> None:
        if self.mode not in ROUNDING_MODES or not 1 <= self.minutes <= MAX_ROUNDING_MINUTES:
            raise ValueError(
                f"not a report rounding: {self.mode} to {self.minutes} minutes (modes "
                f"{', '.join(ROUNDING_MODES)}; 1 to {MAX_ROUNDING_MINUTES} minutes)"
            )

    def to_json(self) -> dict[str, str | int]:
        return {"mode": self.mode, "minutes": self.minutes}

    def __str__(self) -> str:
        """`up:15`, as CLOCKWALL_REPORT_ROUNDING spells it."""
        return f"{self.mode.lower()}:{self.minutes}"


@dataclass(frozen=True)
class ReportingSettings:
    zone: ZoneInfo
    week_start: str  # MONDAY ... SUNDAY
    # Where the zone and week start came from: environment, stored, clockify or default
    # (shown in /readyz).
    source: str = "default"
    rounding: Rounding | None = None  # None: Clockify's reports do not round
    duration_format: str = "FULL"  # FULL (h:mm:ss), COMPACT (h:mm) or DECIMAL (hours)

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as `date.weekday()` counts."""
        return WEEKDAYS.index(self.week_start)

    def same_as(self, other: ReportingSettings) -> bool:
        """Every setting equal (where they came from aside)."""
        return self._values() == other._values()

    def projection_key(self) -> str:
        """The settings the totals depend on, as a stable string: `Europe/Berlin|UP:15`,
        `UTC|off`. Totals built under another key must be rebuilt."""
        rounding = self.rounding
        rule = "off" if rounding is None else f"{rounding.mode}:{rounding.minutes}"
        return f"{self.zone.key}|{rule}"

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "timeZone": self.zone.key,
                "weekStart": self.week_start,
                "source": self.source,
                "rounding": None if self.rounding is None else self.rounding.to_json(),
                "durationFormat": self.duration_format,
            }
        )

    def _values(self) -> tuple[str, str, Rounding | None, str]:
        return (self.zone.key, self.week_start, self.rounding, self.duration_format)


DEFAULT = ReportingSettings(ZoneInfo("UTC"), "MONDAY")


def rounding_text(rounding: Rounding | None) -> str:
    return "off" if rounding is None else str(rounding)


def describe_change(old: ReportingSettings, new: ReportingSettings) -> str:
    """`time zone UTC -> Asia/Tokyo, rounding off -> up:15`: each setting that differs."""
    changes = [
        f"{name} {before} -> {after}"
        for name, before, after in (
            ("time zone", old.zone.key, new.zone.key),
            ("week start", old.week_start, new.week_start),
            ("rounding", rounding_text(old.rounding), rounding_text(new.rounding)),
            ("duration format", old.duration_format, new.duration_format),
        )
        if before != after
    ]
    return ", ".join(changes) or "nothing"


# Clockify's answers ---------------------------------------------------------------------------
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


def parse_workspace_settings(ws_json: object) -> tuple[Rounding | None, str] | None:
    """Report rounding and duration format of a GET /workspaces/{id} answer; None when it has
    no `workspaceSettings`. Clockify keeps a `round` rule while rounding is off
    (`timeRoundingInReports` false): only the flag turns it on. A rule that cannot be read
    counts as no rounding (logged). Without `durationFormat`, the deprecated `decimalFormat`
    and `trackTimeDownToSecond` flags tell the format, as Clockify maps them."""
    found = ws_json.get("workspaceSettings") if isinstance(ws_json, dict) else None
    if not isinstance(found, dict):
        return None
    return _rounding_of(found), _duration_format_of(found)


def _rounding_of(found: dict[str, Any]) -> Rounding | None:
    on = found.get("timeRoundingInReports")
    if not (on is True or (isinstance(on, str) and on.strip().lower() == "true")):
        return None
    rule = found.get("round")
    mode: str | None = None
    minutes: int | None = None
    if isinstance(rule, dict):
        mode, minutes = _rounding_mode(rule.get("round")), _rounding_minutes(rule.get("minutes"))
    if mode is None or minutes is None:
        log.warning(
            "the workspace rounds its reports, but its rule %.200r is not one clockwall reads "
            "(expected round: 'Round up', 'Round down' or 'Round to nearest' and minutes from 1 "
            "to %d); totals are not rounded: set CLOCKWALL_REPORT_ROUNDING (e.g. up:15) to round",
            rule,
            MAX_ROUNDING_MINUTES,
        )
        return None
    return Rounding(mode, minutes)


def _rounding_mode(text: object) -> str | None:
    """`Round up`, `Round down`, `Round to nearest` (any case, `_` for spaces, or the bare
    word) -> UP, DOWN, NEAREST."""
    if not isinstance(text, str):
        return None
    words = text.upper().replace("_", " ").replace("-", " ").split()
    if "NEAREST" in words:
        return "NEAREST"
    if "UP" in words:
        return "UP"
    if "DOWN" in words:
        return "DOWN"
    return None


def _rounding_minutes(value: object) -> int | None:
    """`"15"` (Clockify sends a string), 15 or 15.0 -> 15; None outside 1..480."""
    minutes: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, float) and value.is_integer():
        minutes = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        minutes = int(value.strip())
    if minutes is None or not 1 <= minutes <= MAX_ROUNDING_MINUTES:
        return None
    return minutes


def _duration_format_of(found: dict[str, Any]) -> str:
    named = found.get("durationFormat")
    if isinstance(named, str) and named.strip().upper() in DURATION_FORMATS:
        return named.strip().upper()
    # Full: decimalFormat false, trackTimeDownToSecond true; Compact: both false; Decimal:
    # decimalFormat true (OpenAPI WorkspaceSettingsDtoV1).
    if found.get("decimalFormat") is True:
        return "DECIMAL"
    if found.get("trackTimeDownToSecond") is False:
        return "COMPACT"
    return "FULL"


def _zone(name: object) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return None


# What Redis holds -----------------------------------------------------------------------------
def _parse_stored(raw: bytes | str | None) -> ReportingSettings | None:
    data = _stored_json(raw)
    if data is None:
        return None
    zone = _zone(data.get("timeZone"))
    week_start = data.get("weekStart")
    if zone is None or week_start not in WEEKDAYS:
        return None  # unreadable: settled again as if nothing were stored
    source = data.get("source")
    rounding = None
    stored_rounding = data.get("rounding")
    if isinstance(stored_rounding, dict):
        mode = stored_rounding.get("mode")
        minutes = _rounding_minutes(stored_rounding.get("minutes"))
        if mode in ROUNDING_MODES and minutes is not None:
            rounding = Rounding(str(mode), minutes)
    duration_format = data.get("durationFormat")
    return ReportingSettings(
        zone,
        str(week_start),
        source if isinstance(source, str) else "stored",
        rounding,
        duration_format if duration_format in DURATION_FORMATS else "FULL",
    )


async def read_stored(redis: Redis, ws: str) -> ReportingSettings | None:
    """What Redis holds for the workspace; None when nothing (readable) is stored."""
    return _parse_stored(await redis.get(keys.reporting_settings(ws)))


def _knows_workspace(raw: bytes | str | None) -> bool:
    """Whether a stored value carries the workspace's rounding and duration format: values
    stored before clockwall followed them have neither."""
    data = _stored_json(raw)
    return data is not None and data.get("durationFormat") in DURATION_FORMATS


def _stored_json(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


# Settling and refreshing ------------------------------------------------------------------------
def reads_owner(settings: Settings) -> bool:
    """Whether the zone and week start come from the key owner's profile (GET /user): only
    while CLOCKWALL_TIMEZONE is unset."""
    return settings.timezone is None


def reads_workspace(settings: Settings) -> bool:
    """Whether rounding or duration format come from the workspace (GET /workspaces/{id})."""
    return settings.report_rounding is None or settings.duration_format is None


def refresh_cost(settings: Settings) -> int:
    """Clockify requests one `refresh` sends (a workspace answer handed in saves one)."""
    return int(reads_owner(settings)) + int(reads_workspace(settings))


def _with_workspace(current: ReportingSettings, workspace: object) -> ReportingSettings:
    found = parse_workspace_settings(workspace)
    if found is None:
        log.warning(
            "Clockify's workspace answer has no workspaceSettings; keeping report rounding %s "
            "and durations %s (set CLOCKWALL_REPORT_ROUNDING and CLOCKWALL_DURATION_FORMAT to "
            "choose)",
            rounding_text(current.rounding),
            current.duration_format,
        )
        return current
    rounding, duration_format = found
    return replace(current, rounding=rounding, duration_format=duration_format)


def _with_environment(chosen: ReportingSettings, settings: Settings) -> ReportingSettings:
    """Every field the environment sets, set so: it wins over Redis and Clockify."""
    if settings.timezone is not None:
        chosen = replace(chosen, zone=ZoneInfo(settings.timezone), source="environment")
    if settings.week_start is not None:
        chosen = replace(chosen, week_start=settings.week_start, source="environment")
    if settings.report_rounding is not None:
        rule = settings.rounding
        chosen = replace(chosen, rounding=None if rule is None else Rounding(*rule))
    if settings.duration_format is not None:
        chosen = replace(chosen, duration_format=settings.duration_format)
    return chosen


async def _first_settings(
    ws: str, settings: Settings, client: ClockifyClient | None
) -> ReportingSettings:
    if client is None:
        return DEFAULT
    first = DEFAULT
    if reads_owner(settings):
        owner = parse_owner_settings(await client.get_user())
        if owner is None:
            log.warning(
                "the API key owner's Clockify profile names no known time zone; reporting "
                "in UTC (set CLOCKWALL_TIMEZONE to choose one)"
            )
        first = owner or DEFAULT
    if reads_workspace(settings):
        workspace = await _read_workspace(client, ws)
        if workspace is not None:
            first = _with_workspace(first, workspace)
    return first


async def _read_workspace(client: ClockifyClient, ws: str) -> object | None:
    """GET /workspaces/{id} while settling; None (logged) when Clockify refuses it (a 4xx) or
    the request budget is spent, so the report rounding never holds up the zone that webhook
    deliveries wait for. Timeouts, 5xx and 429 raise: the caller retries."""
    try:
        return await client.get_workspace(ws)
    except (UpstreamError, RateLimitedError):
        raise
    except ClockifyError as exc:
        log.warning(
            "workspace %s: could not read its report rounding and duration format (%s); "
            "settling without rounding, durations FULL (the poller reads them again hourly; "
            "or set CLOCKWALL_REPORT_ROUNDING and CLOCKWALL_DURATION_FORMAT)",
            ws,
            exc,
        )
        return None


async def settle(
    redis: Redis, ws: str, settings: Settings, client: ClockifyClient | None
) -> ReportingSettings:
    """The workspace's reporting settings, stored in Redis for every process. Raises what Redis
    or Clockify raise (RedisError, OSError, ClockifyError): the caller retries."""
    key = keys.reporting_settings(ws)
    raw = await redis.get(key)
    stored = _parse_stored(raw)
    # One process asks Clockify (a Free plan has 30 requests an hour); the others wait for
    # what it stores, and ask themselves only if it has not stored it in time.
    asking = f"{key}:asking"
    if (
        stored is None
        and client is not None
        and not await redis.set(asking, "1", nx=True, px=int(ASKING_S * 1000))
    ):
        raw = await _wait_for_stored(redis, key, ASKING_S)
        stored = _parse_stored(raw)
    if stored is None:
        try:
            first = await _first_settings(ws, settings, client)
            if await redis.set(key, first.to_json(), nx=True):
                raw, stored = first.to_json(), first
            else:
                # Another process stored one first: take its value, whatever we found.
                raw = await redis.get(key)
                stored = _parse_stored(raw) or first
        finally:
            # Stored, or Clockify failed: either way the next process need not wait.
            if client is not None:
                await redis.delete(asking)
    chosen = stored
    asked = False
    if client is not None and reads_workspace(settings) and not _knows_workspace(raw):
        # Stored before clockwall followed the workspace's rounding: ask for it once.
        workspace = await _read_workspace(client, ws)
        if workspace is not None:
            chosen, asked = _with_workspace(chosen, workspace), True
    chosen = _with_environment(chosen, settings)
    if asked or not chosen.same_as(stored):
        await redis.set(key, chosen.to_json())  # the environment wins over what was stored
    return chosen


async def _wait_for_stored(redis: Redis, key: str, within_s: float) -> bytes | str | None:
    """The settings another process stores under `key` within `within_s`, else None."""
    deadline = time.monotonic() + within_s
    while True:
        raw: bytes | str | None = await redis.get(key)
        if _parse_stored(raw) is not None or time.monotonic() >= deadline:
            return raw
        await asyncio.sleep(ASKING_POLL_S)


async def refresh(
    redis: Redis,
    ws: str,
    settings: Settings,
    client: ClockifyClient,
    *,
    workspace: object | None = None,
) -> tuple[ReportingSettings, ReportingSettings] | None:
    """Ask Clockify again (the owner's profile unless CLOCKWALL_TIMEZONE is set, the
    workspace unless both CLOCKWALL_REPORT_ROUNDING and CLOCKWALL_DURATION_FORMAT are: at most
    two requests through the client's budget; `workspace`, a GET /workspaces/{id} answer the
    caller already has, saves one), the environment still winning field by field. When that
    differs from what Redis holds, store it and return (old, new); None when nothing changed.
    An owner profile without a known zone keeps the stored zone and week start. Raises what
    Redis or Clockify raise."""
    owner = None
    if reads_owner(settings):
        owner = parse_owner_settings(await client.get_user())
        if owner is None:
            log.warning(
                "workspace %s: the API key owner's Clockify profile names no known time zone; "
                "keeping the stored one (set CLOCKWALL_TIMEZONE to choose one)",
                ws,
            )
    if reads_workspace(settings) and workspace is None:
        workspace = await client.get_workspace(ws)
    key = keys.reporting_settings(ws)
    replace_if_held = redis.register_script(_REPLACE_LUA)
    while True:
        raw = await redis.get(key)
        stored = _parse_stored(raw)
        old = stored or DEFAULT
        new = old
        if owner is not None:
            new = replace(new, zone=owner.zone, week_start=owner.week_start, source="clockify")
        if reads_workspace(settings):
            new = _with_workspace(new, workspace)
        new = _with_environment(new, settings)
        if stored is not None and new.same_as(stored):
            return None
        held = b"" if raw is None else raw if isinstance(raw, bytes) else raw.encode()
        if int(await replace_if_held(keys=[key], args=[held, new.to_json()])) == 1:
            return None if new.same_as(old) else (old, new)
        # Another process stored a value meanwhile: compare with that one.
