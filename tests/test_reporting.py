"""The reporting zone and week start (app/reporting.py): settled once per workspace before any
entry is applied, the same in every process; the environment wins, then what Redis holds, then
the API key owner's Clockify profile, then UTC and MONDAY.

Unit tests on the shared Redis database (`redis` fixture, dbs.CORE) with the simulated Clockify
in this event loop; the process test runs two `clockwall serve` on dbs.MULTIPROCESS.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys, reporting
from app.clockify import ClockifyClient, UnlimitedBudget, UpstreamError
from app.config import Secret
from app.main import create_app
from app.reporting import ReportingSettings, settle
from app.sim import SimulatedWorkspace
from app.sim.server import run_simulator
from tests import dbs
from tests.conftest import TOKEN, WS, make_settings, redis_db, redis_url, wait_until
from tests.payloads import AppClient, entry_2024, post_webhook
from tests.processes import AppProcess, serve_env
from tests.simulator_server import SIM_API_URL, SIM_REPORTS_URL, open_sim_http

AUCKLAND = "Pacific/Auckland"


def owned_by(zone: str, week_start: str = "MONDAY", seed: int = 1) -> SimulatedWorkspace:
    """A simulated workspace whose API key owner's profile is in `zone`."""
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(seed))
    sim.add_user("Owner", time_zone=zone, week_start=week_start)
    return sim


@pytest.fixture
async def auckland() -> AsyncIterator[tuple[SimulatedWorkspace, ClockifyClient]]:
    sim = owned_by(AUCKLAND, "SUNDAY")
    async with open_sim_http(sim) as http:
        yield sim, client_of(sim, http)


def client_of(sim: SimulatedWorkspace, http: httpx.AsyncClient) -> ClockifyClient:
    return ClockifyClient(
        Secret(sim.api_key),
        budget=UnlimitedBudget(),
        api_url=SIM_API_URL,
        reports_url=SIM_REPORTS_URL,
        http=http,
    )


async def stored(redis: Redis, ws: str = WS) -> tuple[str, str]:
    data = orjson.loads(await redis.get(keys.reporting_settings(ws)))
    return data["timeZone"], data["weekStart"]


async def test_the_environment_wins_over_what_is_stored_and_is_stored_for_every_process(
    redis: Redis, auckland: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = auckland
    settings = make_settings(timezone="America/Edmonton", week_start="SUNDAY")
    await redis.set(
        keys.reporting_settings(WS),
        ReportingSettings(ZoneInfo("Asia/Tokyo"), "MONDAY", "clockify").to_json(),
    )
    chosen = await settle(redis, WS, settings, client)
    assert (chosen.zone.key, chosen.week_start, chosen.source) == (
        "America/Edmonton",
        "SUNDAY",
        "environment",
    )
    assert await stored(redis) == ("America/Edmonton", "SUNDAY")
    assert sim.count("user") == 0


async def test_what_redis_holds_wins_over_the_owners_clockify_profile(
    redis: Redis, auckland: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = auckland
    await redis.set(
        keys.reporting_settings(WS),
        ReportingSettings(ZoneInfo("Asia/Tokyo"), "SATURDAY", "clockify").to_json(),
    )
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.week_start) == ("Asia/Tokyo", "SATURDAY")
    assert sim.count("user") == 0


async def test_the_owners_clockify_zone_is_stored_with_one_request(
    redis: Redis, auckland: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = auckland
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.week_start, chosen.source) == (AUCKLAND, "SUNDAY", "clockify")
    assert await stored(redis) == (AUCKLAND, "SUNDAY")
    assert sim.count("user") == 1


class RacedClient:
    """Answers GET /user with an Auckland profile, but only after another process has stored
    Tokyo: the moment two processes starting together race for the key."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get_user(self) -> dict[str, object]:
        other = ReportingSettings(ZoneInfo("Asia/Tokyo"), "MONDAY", "clockify")
        await self.redis.set(keys.reporting_settings(WS), other.to_json())
        return {"settings": {"timeZone": AUCKLAND, "weekStart": "SUNDAY"}}

    async def get_workspace(self, ws: str) -> dict[str, object]:
        return {"id": ws, "workspaceSettings": {"durationFormat": "FULL"}}


async def test_the_process_that_loses_the_race_takes_the_zone_the_winner_stored(
    redis: Redis,
) -> None:
    client: Any = RacedClient(redis)
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.week_start) == ("Asia/Tokyo", "MONDAY")
    assert await stored(redis) == ("Asia/Tokyo", "MONDAY")


async def test_two_concurrent_settles_agree_on_one_zone(redis: Redis) -> None:
    settings = make_settings(timezone=None)
    tokyo, auckland = owned_by("Asia/Tokyo", seed=2), owned_by(AUCKLAND)
    async with open_sim_http(tokyo) as tokyo_http, open_sim_http(auckland) as auckland_http:
        results = await asyncio.gather(
            settle(redis, WS, settings, client_of(tokyo, tokyo_http)),
            settle(redis, WS, settings, client_of(auckland, auckland_http)),
        )
    assert results[0].same_as(results[1])
    assert await stored(redis) == (results[0].zone.key, results[0].week_start)


async def test_processes_settling_together_ask_clockify_once(redis: Redis) -> None:
    """A Free plan has 30 requests an hour: of processes starting together, one asks for the
    owner's profile and the others take what it stores."""
    settings = make_settings(timezone=None)
    sim = owned_by(AUCKLAND, "SUNDAY")
    async with open_sim_http(sim) as http:
        client: Any = SlowProfile(client_of(sim, http))
        results = await asyncio.gather(*(settle(redis, WS, settings, client) for _ in range(3)))
    assert all(r.same_as(results[0]) for r in results)
    assert (results[0].zone.key, results[0].week_start) == (AUCKLAND, "SUNDAY")
    assert sim.count("user") == 1


async def test_a_process_whose_clockify_request_fails_lets_the_next_one_ask_at_once(
    redis: Redis, auckland: tuple[SimulatedWorkspace, ClockifyClient]
) -> None:
    sim, client = auckland
    failing: Any = FailingProfile()
    with pytest.raises(UpstreamError):
        await settle(redis, WS, make_settings(timezone=None), failing)
    assert not await redis.exists(f"{keys.reporting_settings(WS)}:asking")
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert chosen.zone.key == AUCKLAND and sim.count("user") == 1


class FailingProfile:
    """A Clockify client whose GET /user fails (Clockify down)."""

    async def get_user(self) -> Any:
        raise UpstreamError("Clockify answered 503")

    async def get_workspace(self, ws: str) -> Any:
        raise UpstreamError("Clockify answered 503")


class SlowProfile:
    """A Clockify client whose GET /user answers a moment late, as over a real network, so
    that every process starting together reaches its own decision to ask meanwhile (without
    one asker, each would ask)."""

    def __init__(self, client: ClockifyClient) -> None:
        self.client = client

    async def get_user(self) -> Any:
        await asyncio.sleep(0.05)
        return await self.client.get_user()

    async def get_workspace(self, ws: str) -> Any:
        return await self.client.get_workspace(ws)


async def test_a_process_that_stopped_while_asking_holds_the_others_back_only_briefly(
    redis: Redis,
    auckland: tuple[SimulatedWorkspace, ClockifyClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, client = auckland
    monkeypatch.setattr(reporting, "ASKING_S", 0.2)
    # Another process said it was asking, then stored nothing (it stopped).
    await redis.set(f"{keys.reporting_settings(WS)}:asking", "1", px=60_000)
    chosen = await settle(redis, WS, make_settings(timezone=None), client)
    assert (chosen.zone.key, chosen.week_start) == (AUCKLAND, "SUNDAY")
    assert sim.count("user") == 1


async def test_without_configuration_or_api_key_the_zone_is_utc_and_weeks_start_monday(
    redis: Redis,
) -> None:
    chosen = await settle(redis, WS, make_settings(timezone=None), None)
    assert (chosen.zone.key, chosen.week_start, chosen.source) == ("UTC", "MONDAY", "default")
    assert await stored(redis) == ("UTC", "MONDAY")


async def test_the_webhook_answers_503_and_records_nothing_until_the_zone_is_settled(
    redis: Redis,
) -> None:
    app = create_app(make_settings(timezone=None), redis=redis)
    service = app.state.service
    body = entry_2024("66aa00000000000000000001", "2026-03-24T23:30:00Z", "2026-03-25T00:30:00Z")
    async with AppClient(app) as http:
        refused = await post_webhook(http, "NEW_TIME_ENTRY", body)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert "not settled" in refused.json()["error"]
        assert await redis.hlen(keys.entry_meta(WS)) == 0
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reporting"]["settled"] is False

        await service.settle_reporting()
        applied = await post_webhook(http, "NEW_TIME_ENTRY", body)
        assert applied.status_code == 200, applied.text
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert ready["reporting"] == {
            "timezone": "UTC",
            "weekStart": "MONDAY",
            "settled": True,
            "source": "default",
            "rounding": None,
            "durationFormat": "FULL",
        }


@pytest.mark.slow
async def test_two_processes_with_the_zone_from_clockify_bucket_every_entry_on_the_same_day(
    tmp_path: Path,
) -> None:
    sim = owned_by(AUCKLAND)
    db = dbs.MULTIPROCESS
    # 20:00-23:59 UTC on 24 March is the morning of 25 March in Auckland (UTC+13).
    starts = [f"2026-03-24T{hour:02d}:{minute:02d}:00Z" for hour in (20, 23) for minute in (0, 30)]
    async with redis_db(redis_url(db)) as redis, run_simulator(sim) as sim_url:
        env = serve_env(
            redis_url(db),
            CLOCKIFY_API_KEY=sim.api_key,
            CLOCKIFY_API_URL=f"{sim_url}/api/v1",
            CLOCKIFY_REPORTS_URL=f"{sim_url}/reports/v1",
            CLOCKWALL_MODE="webhook",
        )
        del env["CLOCKWALL_TIMEZONE"]
        apps = [AppProcess(env, tmp_path / f"app{i}.log") for i in range(2)]
        await asyncio.gather(*(app.astart() for app in apps))
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                for i, start in enumerate(starts):
                    app = apps[i % 2]
                    body = entry_2024(f"66aa{i:020d}", start, start.replace(":00Z", ":20Z"))
                    answer = await http.post(
                        f"{app.base_url}/webhooks/clockify",
                        content=orjson.dumps(body),
                        headers={
                            "clockify-signature": TOKEN,
                            "clockify-webhook-event-type": "NEW_TIME_ENTRY",
                        },
                    )
                    assert answer.status_code == 200, answer.text

                async def all_on_the_auckland_day(app: AppProcess) -> bool:
                    answer = await http.get(
                        f"{app.base_url}/api/summary",
                        params={"groupBy": "DATE", "start": "2026-03-24", "end": "2026-03-25"},
                    )
                    # Every day of the range is listed; the time is on the Auckland day only.
                    days = {r["id"]: r["totalSeconds"] for r in answer.json()["groups"]}
                    return days.keys() == {"2026-03-24", "2026-03-25"} and not days["2026-03-24"]

                for app in apps:
                    await wait_until(
                        lambda app=app: all_on_the_auckland_day(app), 10, "the Auckland day"
                    )
                    ready = (await http.get(f"{app.base_url}/readyz")).json()
                    assert ready["reporting"]["timezone"] == AUCKLAND
            assert await stored(redis, WS) == (AUCKLAND, "MONDAY")
            assert sim.count("user") == 1  # one process asked; the other read what it stored
        finally:
            await asyncio.gather(*(app.astop() for app in apps))
