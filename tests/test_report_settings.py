"""Report rounding and duration format as workspace settings (app/reporting.py): read from
Clockify's workspace answer, pinned by the environment, settled with the zone, read again by the
poller at most hourly within its request budget, and a rebuild asked for only when what the
totals depend on (zone, rounding) changes.

The simulated Clockify answers in this event loop (httpx.ASGITransport); Redis is the shared
test database (`redis` fixture, dbs.CORE). Time is a ManualClock moved by hand.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from app import keys, rebuild, reporting
from app.admin import run_check
from app.budget import RequestBudget
from app.clockify import ClockifyClient, UnlimitedBudget, UpstreamError
from app.config import ConfigError, Secret, Settings
from app.main import create_app
from app.metrics import Metrics
from app.poller import REPORTING_REFRESH_S, Poller, Schedule
from app.projection import Basis
from app.reporting import (
    ReportingSettings,
    Rounding,
    parse_workspace_settings,
    refresh,
    settle,
)
from app.sim import ManualClock, SimulatedWorkspace
from app.store import TotalsStore
from tests.conftest import WS, make_settings
from tests.payloads import AppClient
from tests.simulator_server import SIM_API_URL, SIM_REPORTS_URL, open_sim_http
from tests.test_poller import FREE_BUDGET, SLACK_S, Team, drive, max_requests_per_rolling_hour
from tests.test_poller import open_rig as open_poller_rig

TOKYO = "Asia/Tokyo"


def answer(**workspace_settings: Any) -> dict[str, Any]:
    """A GET /workspaces/{id} answer with these workspaceSettings."""
    return {"id": WS, "name": "Agency", "workspaceSettings": workspace_settings}


def on(rule: str, minutes: object) -> dict[str, Any]:
    return answer(timeRoundingInReports=True, round={"round": rule, "minutes": minutes})


# Parsing Clockify's workspace answer ------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "mode"),
    [("Round up", "UP"), ("Round down", "DOWN"), ("Round to nearest", "NEAREST")],
)
def test_each_of_clockifys_three_rounding_rules_is_read(rule: str, mode: str) -> None:
    assert parse_workspace_settings(on(rule, "15")) == (Rounding(mode, 15), "FULL")


@pytest.mark.parametrize(("minutes", "read"), [("15", 15), (" 6 ", 6), (30, 30), (60.0, 60)])
def test_minutes_are_read_from_clockifys_string_or_a_number(minutes: object, read: int) -> None:
    assert parse_workspace_settings(on("Round up", minutes)) == (Rounding("UP", read), "FULL")


def test_a_rounding_rule_with_rounding_off_rounds_nothing() -> None:
    # Clockify keeps the rule while `timeRoundingInReports` is false.
    off = answer(timeRoundingInReports=False, round={"round": "Round up", "minutes": "15"})
    assert parse_workspace_settings(off) == (None, "FULL")
    assert parse_workspace_settings(answer(round={"round": "Round up", "minutes": "15"})) == (
        None,
        "FULL",
    )


@pytest.mark.parametrize(
    "rule",
    [
        {"round": "Round sideways", "minutes": "15"},
        {"round": "Round up", "minutes": "0"},
        {"round": "Round up", "minutes": "481"},
        {"round": "Round up", "minutes": "a quarter"},
        {"round": "Round up", "minutes": True},
        {"round": None, "minutes": "15"},
        {"minutes": "15"},
        "Round up 15",
        None,
    ],
)
def test_a_rounding_rule_clockwall_cannot_read_rounds_nothing_and_says_so(
    rule: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.reporting"):
        found = parse_workspace_settings(answer(timeRoundingInReports=True, round=rule))
    assert found == (None, "FULL")
    assert "CLOCKWALL_REPORT_ROUNDING" in caplog.text


@pytest.mark.parametrize(
    ("workspace_settings", "duration_format"),
    [
        ({"durationFormat": "FULL"}, "FULL"),
        ({"durationFormat": "COMPACT"}, "COMPACT"),
        ({"durationFormat": "decimal"}, "DECIMAL"),
        # Without durationFormat, the deprecated flags as Clockify maps them.
        ({"decimalFormat": True, "trackTimeDownToSecond": True}, "DECIMAL"),
        ({"decimalFormat": False, "trackTimeDownToSecond": False}, "COMPACT"),
        ({"trackTimeDownToSecond": True}, "FULL"),
        ({"durationFormat": "HH:MM"}, "FULL"),
        ({}, "FULL"),
    ],
)
def test_the_duration_format_is_read_where_the_openapi_puts_it(
    workspace_settings: dict[str, Any], duration_format: str
) -> None:
    assert parse_workspace_settings(answer(**workspace_settings)) == (None, duration_format)


@pytest.mark.parametrize("ws_json", [None, [], "workspace", {"id": WS}, {"workspaceSettings": []}])
def test_an_answer_without_workspace_settings_gives_none(ws_json: object) -> None:
    assert parse_workspace_settings(ws_json) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@pytest.mark.slow
@given(
    flag=JSON,
    rule=JSON | st.fixed_dictionaries({"round": JSON, "minutes": JSON}),
    named=JSON,
)
def test_any_garbage_in_workspace_settings_gives_a_valid_reading(
    flag: object, rule: object, named: object
) -> None:
    found = parse_workspace_settings(
        answer(timeRoundingInReports=flag, round=rule, durationFormat=named)
    )
    assert found is not None
    rounding, duration_format = found
    assert duration_format in ("FULL", "COMPACT", "DECIMAL")
    assert rounding is None or (rounding.mode in ("UP", "DOWN", "NEAREST"))


# The settings object ----------------------------------------------------------------------------
def test_rounding_rejects_what_clockify_cannot_round_to() -> None:
    for mode, minutes in (("SIDEWAYS", 15), ("UP", 0), ("UP", 481)):
        with pytest.raises(ValueError, match="not a report rounding"):
            Rounding(mode, minutes)
    assert Rounding("NEAREST", 30).to_json() == {"mode": "NEAREST", "minutes": 30}
    assert str(Rounding("DOWN", 6)) == "down:6"


def test_the_projection_key_names_zone_and_rounding_only() -> None:
    berlin = ReportingSettings(ZoneInfo("Europe/Berlin"), "MONDAY", rounding=Rounding("UP", 15))
    assert berlin.projection_key() == "Europe/Berlin|UP:15"
    utc = ReportingSettings(ZoneInfo("UTC"), "SUNDAY", duration_format="DECIMAL")
    assert utc.projection_key() == "UTC|off"
    display_only = ReportingSettings(ZoneInfo("UTC"), "MONDAY", "clockify", None, "COMPACT")
    assert display_only.projection_key() == utc.projection_key()
    assert not display_only.same_as(utc)  # same_as compares every setting
    assert utc.same_as(ReportingSettings(ZoneInfo("UTC"), "SUNDAY", "other", None, "DECIMAL"))


def test_what_redis_holds_carries_rounding_and_duration_format() -> None:
    chosen = ReportingSettings(
        ZoneInfo(TOKYO), "SUNDAY", "clockify", Rounding("DOWN", 6), "DECIMAL"
    )
    data = orjson.loads(chosen.to_json())
    assert data["rounding"] == {"mode": "DOWN", "minutes": 6}
    assert data["durationFormat"] == "DECIMAL"
    back = reporting._parse_stored(chosen.to_json())
    assert back == chosen
    # A value stored before rounding was followed: no rounding, FULL.
    older = orjson.dumps({"timeZone": TOKYO, "weekStart": "MONDAY", "source": "clockify"})
    assert reporting._parse_stored(older) == ReportingSettings(
        ZoneInfo(TOKYO), "MONDAY", "clockify"
    )
    odd = orjson.dumps({**data, "rounding": {"mode": "UP", "minutes": -1}, "durationFormat": 7})
    assert reporting._parse_stored(odd) == ReportingSettings(ZoneInfo(TOKYO), "SUNDAY", "clockify")


# The environment ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "rounding"),
    [("Up:15", ("UP", 15)), (" down:6 ", ("DOWN", 6)), ("NEAREST : 30", ("NEAREST", 30))],
)
def test_report_rounding_from_the_environment(raw: str, rounding: tuple[str, int]) -> None:
    settings = Settings.from_env({"CLOCKWALL_REPORT_ROUNDING": raw})
    assert settings.report_rounding is not None and settings.rounding == rounding


def test_rounding_off_in_the_environment_differs_from_unset() -> None:
    off = Settings.from_env({"CLOCKWALL_REPORT_ROUNDING": "OFF"})
    assert off.report_rounding == "off" and off.rounding is None
    unset = Settings.from_env({})
    assert unset.report_rounding is None and unset.rounding is None
    assert unset.duration_format is None


@pytest.mark.parametrize(
    "raw", ["up", "up:", "up:0", "up:481", "sideways:15", "15", "up:1.5", "up:-5", "up:15:2"]
)
def test_a_malformed_rounding_names_the_accepted_forms(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CLOCKWALL_REPORT_ROUNDING": raw})
    message = str(caught.value)
    assert "CLOCKWALL_REPORT_ROUNDING" in message
    assert "off" in message and "up:15, down:6, nearest:30" in message


def test_duration_format_from_the_environment_and_its_error() -> None:
    assert Settings.from_env({"CLOCKWALL_DURATION_FORMAT": "decimal"}).duration_format == "DECIMAL"
    assert Settings(duration_format="COMPACT").duration_format == "COMPACT"
    with pytest.raises(ConfigError, match="use one of FULL, COMPACT, DECIMAL"):
        Settings.from_env({"CLOCKWALL_DURATION_FORMAT": "h:mm"})


# Settling with the simulated Clockify ----------------------------------------------------------
def workspace_owned_by(zone: str = TOKYO, week_start: str = "MONDAY") -> SimulatedWorkspace:
    sim = SimulatedWorkspace(
        workspace_id=WS, plan="PRO_2021", clock=ManualClock(), rng=random.Random(7)
    )
    sim.add_user("Owner", time_zone=zone, week_start=week_start)
    return sim


async def no_sleep(seconds: float) -> None:
    """Retries back off on the fake clock's terms: not at all."""


def client_of(
    sim: SimulatedWorkspace, http: httpx.AsyncClient, budget: Any = None
) -> ClockifyClient:
    return ClockifyClient(
        Secret(sim.api_key),
        budget=budget or UnlimitedBudget(),
        api_url=SIM_API_URL,
        reports_url=SIM_REPORTS_URL,
        http=http,
        sleep=no_sleep,
    )


@pytest.fixture
async def clockify() -> AsyncIterator[tuple[SimulatedWorkspace, ClockifyClient]]:
    sim = workspace_owned_by()
    sim.set_workspace_settings(rounding=("UP", 15), duration_format="DECIMAL")
    async with open_sim_http(sim) as http:
        yield sim, client_of(sim, http)


async def stored(redis: Redis) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(await redis.get(keys.reporting_settings(WS)))
    return data


async def test_the_first_settle_stores_the_workspaces_rounding_with_one_more_request(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.rounding, chosen.duration_format) == (
        TOKYO,
        Rounding("UP", 15),
        "DECIMAL",
    )
    assert (sim.count("user"), sim.count("workspace")) == (1, 1)
    data = await stored(redis)
    assert data["rounding"] == {"mode": "UP", "minutes": 15}
    assert data["durationFormat"] == "DECIMAL"
    # Settled: the next process reads Redis and asks Clockify nothing.
    again = await settle(redis, WS, make_settings(timezone=None), client)
    assert again.same_as(chosen) and len(sim.requests) == 2


async def test_settle_asks_only_what_the_environment_leaves_open(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    pinned = make_settings(report_rounding="off", duration_format="COMPACT")  # zone set too
    chosen = await settle(redis, WS, pinned, client)
    assert sim.requests == []
    assert (chosen.zone.key, chosen.rounding, chosen.duration_format) == (
        "Europe/Berlin",
        None,
        "COMPACT",
    )
    await redis.flushdb()
    half = await settle(redis, WS, make_settings(report_rounding="nearest:30"), client)
    assert [r.endpoint for r in sim.requests] == ["workspace"]
    assert (half.rounding, half.duration_format) == (Rounding("NEAREST", 30), "DECIMAL")


async def test_the_environment_wins_over_what_redis_holds(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    _, client = clockify
    await settle(redis, WS, make_settings(timezone=None), client)
    chosen = await settle(
        redis, WS, make_settings(report_rounding="down:6", duration_format="FULL"), client
    )
    assert (chosen.rounding, chosen.duration_format) == (Rounding("DOWN", 6), "FULL")
    data = await stored(redis)
    assert (data["rounding"], data["durationFormat"]) == ({"mode": "DOWN", "minutes": 6}, "FULL")


async def test_a_value_stored_before_rounding_was_followed_gets_the_workspaces_once(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    older = {"timeZone": "America/Edmonton", "weekStart": "SUNDAY", "source": "clockify"}
    await redis.set(keys.reporting_settings(WS), orjson.dumps(older))
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.week_start) == ("America/Edmonton", "SUNDAY")
    assert (chosen.rounding, chosen.duration_format) == (Rounding("UP", 15), "DECIMAL")
    assert [r.endpoint for r in sim.requests] == ["workspace"]
    await settle(redis, WS, make_settings(timezone=None), client)
    assert len(sim.requests) == 1
    assert (await stored(redis))["durationFormat"] == "DECIMAL"


async def test_without_an_api_key_nothing_rounds_and_durations_are_full(redis: Redis) -> None:
    chosen = await settle(redis, WS, make_settings(timezone=None), None)
    assert (chosen.rounding, chosen.duration_format) == (None, "FULL")
    assert (await stored(redis))["rounding"] is None


# Refreshing: each kind of change ------------------------------------------------------------------
def change_zone(sim: SimulatedWorkspace) -> None:
    sim.users[sim.owner_id or ""].time_zone = "Pacific/Auckland"


def change_week_start(sim: SimulatedWorkspace) -> None:
    sim.users[sim.owner_id or ""].week_start = "SUNDAY"


CHANGES: dict[str, tuple[Any, str, bool]] = {
    # name: (what Clockify's admin does, what the log names, whether the totals change)
    "zone": (change_zone, f"time zone {TOKYO} -> Pacific/Auckland", True),
    "week start": (change_week_start, "week start MONDAY -> SUNDAY", False),
    "rounding off": (
        lambda sim: sim.set_workspace_settings(rounding="off"),
        "rounding up:15 -> off",
        True,
    ),
    "rounding mode": (
        lambda sim: sim.set_workspace_settings(rounding=("NEAREST", 15)),
        "rounding up:15 -> nearest:15",
        True,
    ),
    "rounding minutes": (
        lambda sim: sim.set_workspace_settings(rounding=("UP", 6)),
        "rounding up:15 -> up:6",
        True,
    ),
    "duration format": (
        lambda sim: sim.set_workspace_settings(duration_format="COMPACT"),
        "duration format DECIMAL -> COMPACT",
        False,
    ),
}


@pytest.mark.parametrize("name", list(CHANGES))
async def test_refresh_detects_each_kind_of_change_and_stores_it(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient], name: str
) -> None:
    sim, client = clockify
    settings = make_settings(timezone=None)
    first = await settle(redis, WS, settings, client)
    assert await refresh(redis, WS, settings, client) is None  # nothing changed yet
    action, described, totals_change = CHANGES[name]
    action(sim)
    changed = await refresh(redis, WS, settings, client)
    assert changed is not None
    old, new = changed
    assert old.same_as(first)
    assert reporting.describe_change(old, new) == described
    assert (old.projection_key() != new.projection_key()) is totals_change
    assert reporting._parse_stored(await redis.get(keys.reporting_settings(WS))) == new
    assert await refresh(redis, WS, settings, client) is None  # stored: no change twice


async def test_refresh_turns_rounding_on(redis: Redis) -> None:
    sim = workspace_owned_by()
    async with open_sim_http(sim) as http:
        client = client_of(sim, http)
        settings = make_settings()
        await settle(redis, WS, settings, client)
        sim.set_workspace_settings(rounding=("DOWN", 30))
        changed = await refresh(redis, WS, settings, client)
    assert changed is not None
    assert (changed[0].rounding, changed[1].rounding) == (None, Rounding("DOWN", 30))
    assert changed[1].projection_key() == "Europe/Berlin|DOWN:30"


async def test_refresh_lets_the_environment_win_field_by_field_and_asks_only_for_the_rest(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    settings = make_settings(report_rounding="up:15")  # zone and rounding pinned
    await settle(redis, WS, settings, client)
    before = len(sim.requests)
    change_zone(sim)
    sim.set_workspace_settings(rounding="off")
    assert await refresh(redis, WS, settings, client) is None
    assert [r.endpoint for r in sim.requests[before:]] == ["workspace"]
    sim.set_workspace_settings(duration_format="FULL")
    changed = await refresh(redis, WS, settings, client)
    assert changed is not None
    assert reporting.describe_change(*changed) == "duration format DECIMAL -> FULL"
    assert changed[1].zone.key == "Europe/Berlin" and changed[1].rounding == Rounding("UP", 15)


async def test_a_workspace_answer_in_hand_saves_a_request(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    settings = make_settings(timezone=None)
    await settle(redis, WS, settings, client)
    before = len(sim.requests)
    sim.set_workspace_settings(rounding=("UP", 5))
    changed = await refresh(redis, WS, settings, client, workspace=sim.workspace_json())
    assert changed is not None and changed[1].rounding == Rounding("UP", 5)
    assert [r.endpoint for r in sim.requests[before:]] == ["user"]


async def test_an_owner_profile_without_a_zone_keeps_the_stored_zone(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    settings = make_settings(timezone=None)
    await settle(redis, WS, settings, client)

    original = sim.user_json
    sim.user_json = lambda user: {**original(user), "settings": {}}  # type: ignore[method-assign]
    assert await refresh(redis, WS, settings, client) is None
    assert (await stored(redis))["timeZone"] == TOKYO


async def test_the_compare_and_set_refuses_a_value_it_did_not_read(redis: Redis) -> None:
    key = keys.reporting_settings(WS)
    swap = redis.register_script(reporting._REPLACE_LUA)
    assert await swap(keys=[key], args=[b"", b"first"]) == 1
    assert await swap(keys=[key], args=[b"", b"second"]) == 0
    assert await swap(keys=[key], args=[b"other", b"second"]) == 0
    assert await redis.get(key) == b"first"
    assert await swap(keys=[key], args=[b"first", b"second"]) == 1
    assert await redis.get(key) == b"second"


# The poller ---------------------------------------------------------------------------------------
class Rebuilds:
    """Stands in for app/rebuild.py's request_rebuild, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Basis, str]] = []
        self.fail = 0

    async def request_rebuild(
        self, redis: Redis, ws: str, basis: Basis, reason: str, force: bool = False
    ) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the rebuild queue is not there")
        self.calls.append((ws, basis, reason))


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> Rebuilds:
    fake = Rebuilds()
    monkeypatch.setattr(rebuild, "request_rebuild", fake.request_rebuild)
    return fake


def basis_of(settings: ReportingSettings) -> Basis:
    rounding = settings.rounding
    return Basis(settings.zone, None if rounding is None else (rounding.mode, rounding.minutes))


class PollRig:
    def __init__(self, redis: Redis, sim: SimulatedWorkspace, http: httpx.AsyncClient) -> None:
        self.redis, self.sim, self.http = redis, sim, http
        self.clock = sim.clock
        assert isinstance(self.clock, ManualClock)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def poller(self, settings: Settings, per_hour: int = 1000) -> Poller:
        budget = RequestBudget(self.redis, WS, per_hour, clock=self.clock)
        return Poller(
            WS,
            client_of(self.sim, self.http, budget),
            TotalsStore(self.redis, ZoneInfo(TOKYO), clock=self.now),
            self.redis,
            Metrics(),
            mode="poll",
            budget=budget,
            settings=settings,
            clock=self.now,
        )


@pytest.fixture
async def poll_rig(redis: Redis) -> AsyncIterator[PollRig]:
    sim = workspace_owned_by()
    sim.set_workspace_settings(rounding=("UP", 15), duration_format="DECIMAL")
    async with open_sim_http(sim) as http:
        yield PollRig(redis, sim, http)


async def test_on_start_the_poller_refreshes_with_the_workspace_it_just_read(
    poll_rig: PollRig, rebuilds: Rebuilds
) -> None:
    settings = make_settings(timezone=None)
    await settle(poll_rig.redis, WS, settings, client_of(poll_rig.sim, poll_rig.http))
    sim = poll_rig.sim
    before = {name: sim.count(name) for name in ("user", "workspace")}
    poller = poll_rig.poller(settings)
    await poller._discover()
    assert poller.due["reporting"] == poll_rig.now()  # due at once
    await poller._refresh_reporting_if_affordable()
    # The plan's workspace answer serves the refresh: one GET /workspaces, one GET /user.
    assert sim.count("workspace") - before["workspace"] == 1
    assert sim.count("user") - before["user"] == 1
    assert poller.due["reporting"] == poll_rig.now() + timedelta(seconds=REPORTING_REFRESH_S)
    assert rebuilds.calls == [] and poller.reporting_warning is None


@pytest.mark.parametrize("name", list(CHANGES))
async def test_the_poller_asks_for_a_rebuild_only_when_zone_or_rounding_change(
    poll_rig: PollRig, rebuilds: Rebuilds, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(timezone=None)
    sim, redis = poll_rig.sim, poll_rig.redis
    await settle(redis, WS, settings, client_of(sim, poll_rig.http))
    poller = poll_rig.poller(settings)
    await poller.refresh_reporting()
    action, described, totals_change = CHANGES[name]
    action(sim)
    with caplog.at_level(logging.INFO, logger="app.poller"):
        await poller._refresh_reporting_if_affordable()  # due: the test calls it
    new = reporting._parse_stored(await redis.get(keys.reporting_settings(WS)))
    assert new is not None and described in caplog.text
    assert sim.api_key not in caplog.text
    if totals_change:
        reason = f"Clockify's reporting settings changed: {described}"
        assert rebuilds.calls == [(WS, basis_of(new), reason)]
        assert basis_of(new).key() == new.projection_key()
    else:
        assert rebuilds.calls == []
        assert "the totals stay as they are" in caplog.text
    assert poller.pending_rebuild is None


async def test_the_poller_refreshes_at_most_once_an_hour(
    poll_rig: PollRig, rebuilds: Rebuilds
) -> None:
    settings = make_settings(timezone=None)
    poller = poll_rig.poller(settings)
    refreshed: list[datetime] = []

    async def counting(workspace: dict[str, Any] | None = None) -> None:
        refreshed.append(poll_rig.now())
        poller.due["reporting"] = poll_rig.now() + timedelta(seconds=REPORTING_REFRESH_S)

    poller.refresh_reporting = counting  # type: ignore[method-assign]
    poller.discovered = True
    for _ in range(12):
        if poller.due.get("reporting", poll_rig.now()) <= poll_rig.now():
            await poller._refresh_reporting_if_affordable()
        poll_rig.clock.advance(599)
    assert len(refreshed) == 2  # at 0 and past one hour, within 12 x 599 s


async def test_a_failed_rebuild_request_is_kept_and_retried_without_stopping_the_polls(
    poll_rig: PollRig, rebuilds: Rebuilds, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(timezone=None)
    sim = poll_rig.sim
    await settle(poll_rig.redis, WS, settings, client_of(sim, poll_rig.http))
    poller = poll_rig.poller(settings)
    rebuilds.fail = 1
    change_zone(sim)
    with caplog.at_level(logging.WARNING, logger="app.poller"):
        await poller.refresh_reporting()
    assert poller.pending_rebuild is not None and rebuilds.calls == []
    assert "clockwall rebuild" in (poller.reporting_warning or "")
    # The next round asks again first (the settings are stored: a refresh would see no change).
    await poller._request_rebuild()
    assert poller.pending_rebuild is None and poller.reporting_warning is None
    ((_, basis, _),) = rebuilds.calls
    assert basis.key() == "Pacific/Auckland|UP:15"


async def test_a_clockify_failure_keeps_the_settings_and_tries_again_later(
    poll_rig: PollRig, rebuilds: Rebuilds
) -> None:
    settings = make_settings(timezone=None)
    poller = poll_rig.poller(settings)
    poll_rig.sim.fail_next(4, 503, path_contains="/user")
    await poller.refresh_reporting()
    assert "could not read the reporting settings" in (poller.reporting_warning or "")
    assert poller.due["reporting"] == poll_rig.now() + timedelta(seconds=900)
    poll_rig.clock.advance(900)
    await poller.refresh_reporting()
    assert poller.reporting_warning is None


async def test_the_refresh_waits_when_the_budget_cannot_spare_it(
    poll_rig: PollRig, rebuilds: Rebuilds
) -> None:
    settings = make_settings(timezone=None)
    poller = poll_rig.poller(settings, per_hour=FREE_BUDGET)
    poller.schedule = Schedule.for_budget(FREE_BUDGET)
    # The hour's spare is spent: what is left belongs to the timer and changes polls.
    for _ in range(FREE_BUDGET - 20):
        assert await poller.budget.acquire()
    before = len(poll_rig.sim.requests)
    await poller._refresh_reporting_if_affordable()
    assert len(poll_rig.sim.requests) == before
    assert poller.due["reporting"] == poll_rig.now() + timedelta(seconds=poller.schedule.running_s)


async def test_free_plan_hours_with_hourly_refreshes_stay_in_budget_and_timers_fresh(
    redis: Redis, rebuilds: Rebuilds
) -> None:
    async with open_poller_rig(redis) as rig:
        settings = Settings(workspace_ids=(rig.sim.id,), api_key=Secret(rig.sim.api_key))
        poller = rig.poller()
        poller.settings = settings
        # A first start: settling asks the owner and the workspace, from the same budget.
        await settle(redis, rig.sim.id, settings, poller.client)
        team = Team(rig.sim, seed=5)
        schedule = Schedule.for_budget(FREE_BUDGET)
        late: list[str] = []

        async def check() -> None:
            assert poller.state.last_error is None, poller.state.last_error
            stored = {e["id"] for e in await rig.store.read_running(rig.sim.id)}
            for entry in rig.sim.running_entries():
                waited_s = rig.clock() - entry.start.timestamp()
                if waited_s > schedule.running_s + SLACK_S and entry.id not in stored:
                    late.append(entry.id)

        await drive(rig, poller, team, hours=4, after_step=check)
        rig.sim.users[rig.sim.owner_id or ""].time_zone = TOKYO
        await drive(rig, poller, team, hours=1.5, after_step=check)
    assert late == []
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET
    assert rig.sim.count(status=429) == 0
    # Settled at the start (one GET /user); then refreshed when the start-up reads had left
    # the spare, and hourly: never twice within an hour, never skipped for long.
    asked_s = [r.at_s for r in rig.sim.requests if r.endpoint == "user"][1:]
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(asked_s)]
    assert len(asked_s) >= 5 and all(3599.99 <= gap_s <= 3600 + 600 for gap_s in gaps_s), gaps_s
    assert [basis.key() for _, basis, _ in rebuilds.calls] == [f"{TOKYO}|off"]


# What /readyz and `clockwall check` show ----------------------------------------------------------
async def test_readyz_shows_rounding_and_duration_format_next_to_the_zone(redis: Redis) -> None:
    settings = make_settings(report_rounding="up:15", duration_format="DECIMAL")
    app = create_app(settings, redis=redis)
    async with AppClient(app) as http:
        await app.state.service.settle_reporting()
        ready = (await http.get("/readyz")).json()
    assert ready["reporting"] == {
        "timezone": "Europe/Berlin",
        "weekStart": "MONDAY",
        "settled": True,
        "source": "environment",
        "rounding": {"mode": "UP", "minutes": 15},
        "durationFormat": "DECIMAL",
    }


async def test_check_shows_clockifys_report_settings_and_the_ones_in_use(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    settings = Settings(
        workspace_ids=(WS,),
        api_key=Secret(sim.api_key),
        api_url=SIM_API_URL,
        reports_url=SIM_REPORTS_URL,
        mode="poll",
        duration_format="COMPACT",
    )
    await settle(redis, WS, settings, client)
    async with open_sim_http(sim) as http:
        lines = await run_check(settings, http, redis)
    by_what = {line.what: line.detail for line in lines}
    assert "durations COMPACT" in by_what["configuration"]
    assert "report rounding from the workspace" in by_what["configuration"]
    detail = by_what[f"workspace {WS}"]
    assert "reports round up:15, durations DECIMAL" in detail
    assert f"in use: {TOKYO}, weeks from MONDAY, rounding up:15, durations COMPACT" in detail


async def test_clockify_errors_in_refresh_propagate_to_the_caller(
    redis: Redis, clockify: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = clockify
    sim.fail_next(4, 502)
    with pytest.raises(UpstreamError):
        await refresh(redis, WS, make_settings(timezone=None), client)
