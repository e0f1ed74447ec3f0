"""Webhook health (`enabled`, `deliveryEnabled`, `planEnabled`) in `clockwall check`, /readyz and
the wall's status, and the replay of deliveries Clockify logged as FAILED: after a real Redis
outage each is applied exactly once, through the webhook endpoint's apply path, within the
request budget. Never a token in any of it.

One fake clock drives the simulator, the request budget, the store and the poller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.admin import FREE_EVENTS, run_check
from app.budget import RequestBudget
from app.clockify import ClockifyClient
from app.config import Secret, Settings, WebhookToken
from app.main import Service, create_app
from app.metrics import Metrics
from app.poller import Poller
from app.sim import (
    ManualClock,
    SimEntry,
    SimulatedWorkspace,
    SimWebhook,
    WebhookSender,
)
from app.sim.server import run_simulator, serve_app
from app.store import TotalsStore
from app.webhook_health import LOG_PAGE_SIZE, NO_WEBHOOK, WebhookWatch, read_health
from tests import dbs
from tests.conftest import make_settings, redis_url
from tests.payloads import close_app
from tests.processes import RedisProcess
from tests.simulator_server import SIM_API_URL, SIM_REPORTS_URL, open_sim_http

DB = dbs.CORE  # the conftest `redis` fixture's database
HOOK_URL = "http://clockwall.test/webhooks/clockify"
SECRET_A = "Aq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u"
SECRET_B = "Bq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u"
SECRET_C = "Cq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u"
WS = "5f0e1a2b3c4d5e6f7a8b9c0d"


def hook(secret: str, event: str, **flags: Any) -> dict[str, Any]:
    return {
        "id": f"hook-{event.lower()}",
        "name": f"clockwall {event.lower()}"[:30],
        "url": HOOK_URL,
        "webhookEvent": event,
        "enabled": True,
        "deliveryEnabled": True,
        "planEnabled": True,
        "workspaceId": WS,
        "authToken": secret,
        **flags,
    }


def secrets_of(sim: SimulatedWorkspace) -> list[str]:
    return [h.auth_token for h in sim.webhooks.values()] + [sim.api_key]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


# Health ---------------------------------------------------------------------------------------
def test_each_flag_that_is_off_is_a_problem_with_what_to_do() -> None:
    settings = Settings(
        workspace_ids=(WS,),
        webhook_tokens=(WebhookToken(Secret(SECRET_A)), WebhookToken(Secret(SECRET_B), WS)),
        public_url="http://clockwall.test",
    )
    hooks = [
        hook(SECRET_A, "NEW_TIMER_STARTED"),
        hook(SECRET_B, "TIMER_STOPPED", deliveryEnabled=False),
        hook(SECRET_B, "TIME_ENTRY_UPDATED", enabled=False, planEnabled=False),
        hook(SECRET_C, "TIME_ENTRY_DELETED"),  # our URL, a token clockwall does not know
        dict(hook(SECRET_C, "NEW_PROJECT"), url="https://zapier.example/hook"),  # not ours
        # An older object without the two newer flags: nothing to report.
        {k: v for k, v in hook(SECRET_A, "NEW_TIME_ENTRY").items() if "abled" not in k[1:]},
    ]
    health = {h.event: h for h in read_health(hooks, settings, WS)}
    assert sorted(health) == [
        "NEW_TIMER_STARTED",
        "NEW_TIME_ENTRY",
        "TIMER_STOPPED",
        "TIME_ENTRY_DELETED",
        "TIME_ENTRY_UPDATED",
    ]
    assert health["NEW_TIMER_STARTED"].ok and health["NEW_TIME_ENTRY"].ok
    assert "enabled, delivering and allowed by the plan" in health["NEW_TIMER_STARTED"].detail()

    stopped = health["TIMER_STOPPED"]
    assert not stopped.ok and not stopped.delivery_enabled
    assert "Clockify stopped delivering it after repeated failed deliveries" in stopped.detail()
    assert "re-enable it in Clockify > Preferences > Advanced > Manage webhooks" in (
        stopped.detail()
    )
    assert stopped.summary() == "TIMER_STOPPED: Clockify stopped delivering it after failures"

    updated = health["TIME_ENTRY_UPDATED"]
    assert "not allowed by the workspace's plan" in updated.detail()
    assert "turned off in Clockify" in updated.detail() and "upgrade the plan" in updated.detail()
    assert updated.public()["enabled"] is False and updated.public()["planEnabled"] is False

    unknown = health["TIME_ENTRY_DELETED"]
    assert not unknown.token_configured
    assert "not in CLOCKIFY_WEBHOOK_TOKENS" in unknown.detail()
    assert "clockwall setup" in unknown.detail()

    shown = orjson.dumps([h.public() for h in health.values()]).decode()
    shown += "".join(h.line() + str(h.summary()) for h in health.values())
    assert_no_secret(shown, [SECRET_A, SECRET_B, SECRET_C, "http://", "zapier"])


def test_a_token_bound_to_another_workspace_does_not_make_a_webhook_ours() -> None:
    other = "6a0e1a2b3c4d5e6f7a8b9c0e"
    settings = Settings(
        workspace_ids=(WS, other), webhook_tokens=(WebhookToken(Secret(SECRET_A), other),)
    )
    assert read_health([hook(SECRET_A, "TIMER_STOPPED")], settings, WS) == []


async def test_check_prints_a_line_per_webhook_and_fails_on_a_disabled_one(
    redis: Redis,
) -> None:
    sim = SimulatedWorkspace(plan="FREE", rng=random.Random(4))
    sim.add_user("Olga Owner")
    hooks = [sim.add_webhook(HOOK_URL, event) for event in FREE_EVENTS]
    hooks[1].delivery_enabled = False
    tokens = tuple(WebhookToken(Secret(h.auth_token), sim.id) for h in hooks)
    async with open_sim_http(sim) as http:
        settings = Settings(
            redis_url=redis_url(DB),
            api_key=Secret(sim.api_key),
            workspace_ids=(sim.id,),
            webhook_tokens=tokens,
            api_url=SIM_API_URL,
            reports_url=SIM_REPORTS_URL,
        )
        lines = await run_check(settings, http, redis)
    by_what = {line.what: line for line in lines}
    for event in FREE_EVENTS:
        assert f"webhook {event}" in by_what
    failed = [line.what for line in lines if not line.ok]
    assert failed == [f"webhook {hooks[1].event}"]
    assert "re-enable it in Clockify" in by_what[f"webhook {hooks[1].event}"].detail
    assert_no_secret(repr(lines), [*secrets_of(sim), HOOK_URL])


# /readyz and the wall's status ----------------------------------------------------------------
async def test_readyz_and_the_wall_status_show_webhook_problems_without_tokens(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(5))
    sim.add_user("Olga Owner")
    hooks = [sim.add_webhook(HOOK_URL, event) for event in FREE_EVENTS]
    hooks[0].enabled = False
    hooks[2].plan_enabled = False
    async with run_simulator(sim) as url:
        settings = Settings(
            redis_url=redis_url(DB),
            api_key=Secret(sim.api_key),
            workspace_ids=(sim.id,),
            webhook_tokens=tuple(WebhookToken(Secret(h.auth_token)) for h in hooks),
            api_url=f"{url}/api/v1",
            reports_url=f"{url}/reports/v1",
            timezone="UTC",
        )
        app = create_app(settings, clock=lambda: sim.now())
        service: Service = app.state.service
        service.build_pollers()
        try:
            (poller,) = service.pollers
            assert poller.webhook_watch is not None
            assert poller.webhook_watch.apply == app.webhook.apply  # the one apply path
            with caplog.at_level(logging.INFO):
                await poller.run_once()
            poller.state.role = "leader"  # run() would say so; run_once is enough here
            status = service.status()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                ready = await c.get("/readyz")
        finally:
            assert service.http is not None
            await service.http.aclose()
            await close_app(app)
            await service.redis.aclose()
    assert status["webhooks"] == [
        f"{hooks[0].event}: turned off in Clockify",
        f"{hooks[2].event}: not allowed by the plan",
    ]
    assert status["poll"]["webhooks"] == status["webhooks"]  # what other processes receive
    assert ready.status_code == 200  # a webhook problem does not take the wall out of service
    listed = {h["event"]: h for h in ready.json()["webhooks"]}
    assert sorted(listed) == sorted(FREE_EVENTS)
    assert listed[hooks[0].event]["enabled"] is False
    assert "turn it on again" in listed[hooks[0].event]["fix"]
    assert listed[hooks[1].event]["problem"] is None
    assert listed[hooks[2].event]["planEnabled"] is False
    assert {h["workspace"] for h in listed.values()} == {sim.id}
    secrets = [*secrets_of(sim), HOOK_URL, "clockwall.test"]
    assert_no_secret(ready.text + orjson.dumps(status).decode() + caplog.text, secrets)
    assert "turned off in Clockify" in caplog.text  # the operator's log says it too


async def test_no_webhook_with_a_configured_token_is_a_problem_too(redis: Redis) -> None:
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(6))
    sim.add_user("Olga Owner")
    async with open_sim_http(sim) as http:
        budget = RequestBudget(redis, sim.id, 1000)
        client = ClockifyClient(Secret(sim.api_key), budget=budget, api_url=SIM_API_URL, http=http)
        settings = Settings(
            workspace_ids=(sim.id,), webhook_tokens=(WebhookToken(Secret(SECRET_A)),)
        )
        store = TotalsStore(redis, settings.zone, 0, 100, clock=sim.now)
        watch = WebhookWatch(
            sim.id, client, redis, settings, store, _never_apply, budget=budget, clock=sim.now
        )
        await watch.run_due(_always)
    assert watch.problems == [NO_WEBHOOK]
    assert sim.count("webhook_logs") == 0  # nothing of ours to replay


async def _never_apply(event: str, body: bytes, bound: str | None) -> Any:
    raise AssertionError("nothing should be replayed")


async def _always(extra: int) -> bool:
    return True


# The simulator's logs endpoint ----------------------------------------------------------------
async def test_the_simulator_lists_failed_deliveries_as_the_logs_endpoint_does(
    redis: Redis,
) -> None:
    clock = ManualClock()
    sim = SimulatedWorkspace(plan="PRO_2021", clock=clock, rng=random.Random(8))
    ana = sim.add_user("Ana")
    stopped = sim.add_webhook(HOOK_URL, "TIMER_STOPPED")
    answers = iter([503, 200, 503])

    def clockwall(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json={"outcome": "x"})

    sim.delivery_failure_limit = 3
    sender = WebhookSender(httpx.AsyncClient(transport=httpx.MockTransport(clockwall)))
    for _ in range(3):
        sim.start_timer(ana)
        clock.advance(60)
        sim.stop_timer(ana)
        await sim.deliver_webhooks(sender)
        clock.advance(60)
    assert [log.status_code for log in sim.webhook_logs] == [503, 200, 503]
    assert stopped.delivery_enabled  # two failures, not three in a row

    start = datetime.fromtimestamp(clock() - 3600, UTC)
    async with open_sim_http(sim) as http:
        client = ClockifyClient(
            Secret(sim.api_key),
            budget=RequestBudget(redis, sim.id, 100, clock=clock),
            api_url=SIM_API_URL,
            http=http,
        )
        failed = await client.webhook_logs(sim.id, stopped.id, start, sim.now())
        newest_first = await client.webhook_logs(sim.id, stopped.id, start, sim.now(), size=1)
        everything = await client.webhook_logs(sim.id, stopped.id, start, sim.now(), status="ALL")
    assert [item["statusCode"] for item in failed] == [503, 503]
    assert set(failed[0]) == {
        "id",
        "webhookId",
        "statusCode",
        "requestBody",
        "responseBody",
        "respondedAt",
    }
    assert orjson.loads(failed[0]["requestBody"])["userId"] == ana.id
    assert failed[0]["respondedAt"].endswith("+00:00")
    assert len(newest_first) == 1 and newest_first[0]["id"] == failed[0]["id"]  # oldest first
    assert len(everything) == 3
    request = sim.requests[-1]
    assert request.endpoint == "webhook_logs" and "page" not in request.query


# Replay ---------------------------------------------------------------------------------------
def model(sim: SimulatedWorkspace) -> dict[str, tuple[int | None, str | None, str]]:
    """What each entry should show: seconds (None while running), project, description."""
    out = {}
    for entry in sim.entries.values():
        seconds = None if entry.end is None else int((entry.end - entry.start).total_seconds())
        out[entry.id] = (seconds, entry.project_id, entry.description)
    return out


async def shown(service: Service, ws: str, day: datetime) -> dict[str, Any]:
    found = await service.store.read_entries(ws, day.date() - timedelta(days=7), day.date())
    return {
        e["id"]: (
            None if e["running"] else e["durationSeconds"],
            (e["project"] or {}).get("id"),
            e["description"],
        )
        for e in found["entries"]
    }


def most_in_an_hour(sim: SimulatedWorkspace) -> int:
    moments = sorted(record.at_s for record in sim.requests)
    return max(
        (sum(1 for m in moments[i:] if m < start + 3600) for i, start in enumerate(moments)),
        default=0,
    )


@contextlib.asynccontextmanager
async def live(tmp_path: Path, sim: SimulatedWorkspace, clock: ManualClock) -> AsyncIterator[Any]:
    """Our own redis-server, the app, and its poller with a watch on the fake clock."""
    server = RedisProcess(tmp_path / "redis")
    await server.start()
    http = httpx.AsyncClient()
    app: Any = None
    try:
        async with run_simulator(sim) as url:
            hooks = list(sim.webhooks.values())
            settings = Settings(
                redis_url=server.url(),
                api_key=Secret(sim.api_key),
                workspace_ids=(sim.id,),
                webhook_tokens=tuple(WebhookToken(Secret(h.auth_token), sim.id) for h in hooks),
                api_url=f"{url}/api/v1",
                reports_url=f"{url}/reports/v1",
                timezone="UTC",
            )
            app = create_app(settings, clock=sim.now)
            service: Service = app.state.service
            # As Service.build_pollers wires it, but with the budget on the fake clock.
            budget = RequestBudget(service.redis, sim.id, 30, clock=clock)

            async def advance(seconds: float) -> None:
                clock.advance(seconds)

            client = ClockifyClient(
                Secret(sim.api_key),
                budget=budget,
                api_url=f"{url}/api/v1",
                reports_url=f"{url}/reports/v1",
                http=http,
                sleep=advance,
                max_retries=1,
            )
            poller = Poller(
                sim.id,
                client,
                service.store,
                service.redis,
                Metrics(),
                mode="hybrid",
                budget=budget,
                clock=sim.now,
                sleep=advance,
            )
            assert service.replay_apply is not None
            poller.webhook_watch = WebhookWatch(
                sim.id,
                client,
                service.redis,
                settings,
                service.store,
                service.replay_apply,
                budget=budget,
                clock=sim.now,
            )
            service.pollers.append(poller)
            sender = WebhookSender(httpx.AsyncClient(transport=httpx.ASGITransport(app=app)))
            try:
                yield server, service, poller, sender
            finally:
                await sender.http.aclose()
    finally:
        await http.aclose()
        if app is not None:
            await close_app(app)
            await app.state.service.redis.aclose()
        await server.stop()


@pytest.mark.slow
async def test_failed_deliveries_are_replayed_once_after_a_redis_outage_within_the_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()  # Thursday 2026-01-01 10:00 UTC
    sim = SimulatedWorkspace(plan="FREE", clock=clock, rng=random.Random(9))
    ana, ben = sim.add_user("Ana Admin"), sim.add_user("Ben Builder")
    website = sim.add_project("Website", hourly_rate_minor=10000)
    mobile = sim.add_project("Mobile")
    hooks: list[SimWebhook] = [sim.add_webhook(HOOK_URL, event) for event in FREE_EVENTS]
    today = sim.now().replace(hour=0)
    # This morning's work, logged before the webhooks existed.
    first: SimEntry = sim.add_manual_entry(
        ana, today.replace(hour=8), today.replace(hour=9), website, notify=False
    )
    second = sim.add_manual_entry(
        ben,
        today.replace(hour=8, minute=30),
        today.replace(hour=9, minute=45),
        mobile,
        notify=False,
    )

    async def run_for(seconds: float) -> None:
        end = clock() + seconds
        while clock() < end:
            clock.advance(await poller.run_once())

    async with live(tmp_path, sim, clock) as (server, service, poller, sender):
        watch = poller.webhook_watch
        assert watch is not None
        sim.start_timer(ana, website, "Landing page")
        assert {r.status for r in await sim.deliver_webhooks(sender)} == {200}
        # The first hour's start-up requests use the schedule's spare; then the watch's turn.
        await run_for(75 * 60)
        assert watch.health is not None and len(watch.health) == 3 and watch.problems == []
        assert watch.last_pass is not None and watch.last_pass.fetched == 0
        passes = sim.count("webhook_logs") // len(hooks)
        # Wait for a changes poll, so the replay (not the poller) is what heals the outage.
        changes_due = poller.due["changes"]
        while poller.due["changes"] == changes_due:
            clock.advance(await poller.run_once())

        await server.stop()
        for change in (
            {"end": today.replace(hour=9, minute=30)},
            {"project": website.id},
            {"description": "Kick-off"},
        ):
            target = second if "project" in change else first
            sim.update_entry(target.id, **change)
            clock.advance(1)
        results = await sim.deliver_webhooks(sender)
        assert [r.status for r in results] == [503, 503, 503]
        assert sum(1 for log in sim.webhook_logs if not log.succeeded) == 3
        clock.advance(120)
        await server.start()

        with caplog.at_level(logging.INFO):
            back_at = clock()
            while watch.last_pass is None or watch.last_pass.fetched == 0:
                clock.advance(await poller.run_once())
                assert clock() - back_at < 10 * 60, "no replay within ten minutes"
        report = watch.last_pass
        assert (report.fetched, report.applied, report.unchanged, report.refused) == (3, 3, 0, 0)
        assert await shown(service, sim.id, sim.now()) == model(sim)
        assert "3 applied" in caplog.text

        watch.request_replay()  # a second pass finds nothing new and applies nothing
        logs_before = sim.count("webhook_logs")
        while sim.count("webhook_logs") == logs_before:
            clock.advance(await poller.run_once())
        assert watch.last_pass is not report
        assert (watch.last_pass.fetched, watch.last_pass.applied) == (0, 0)
        assert await shown(service, sim.id, sim.now()) == model(sim)

    # One log request per webhook per pass, and never beyond the Free budget.
    assert sim.count("webhook_logs") == (passes + 2) * len(hooks)
    assert sim.count(status=429) == 0
    assert most_in_an_hour(sim) <= 30
    assert LOG_PAGE_SIZE == 50
    assert_no_secret(caplog.text, secrets_of(sim))


async def test_a_redis_error_in_the_poller_loop_asks_for_a_replay() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    settings = Settings(workspace_ids=(WS,), webhook_tokens=(WebhookToken(Secret(SECRET_A)),))

    async def stop(seconds: float) -> None:
        raise asyncio.CancelledError

    try:
        budget = RequestBudget(dead, WS, 30)
        client = ClockifyClient(Secret("key-0123456789"), budget=budget)
        store = TotalsStore(dead, settings.zone, 0, 100)
        poller = Poller(
            WS, client, store, dead, Metrics(), mode="hybrid", budget=budget, sleep=stop
        )
        watch = WebhookWatch(
            WS, client, dead, settings, store, _never_apply, budget=budget, clock=store.clock
        )
        watch.replay_due = datetime(2026, 1, 1, 16, tzinfo=UTC)
        poller.webhook_watch = watch
        with pytest.raises(asyncio.CancelledError):
            await poller.run()
        assert watch.replay_due is None  # due at once, when the store answers again
        assert poller.state.last_error == "store unavailable (ConnectionError)"
        await client.aclose()
    finally:
        await dead.aclose()


# The wall -------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is missing")
async def test_the_wall_shows_a_webhook_problem_the_polling_process_found(redis: Redis) -> None:
    """Another process polls: its state reaches this one's wall through the change stream."""
    from playwright.async_api import async_playwright, expect

    settings = make_settings(redis_url=redis_url(DB), timezone="UTC", heartbeat_s=5.0)
    app = create_app(settings)
    problem = "TIMER_STOPPED: Clockify stopped delivering it after failures"
    async with (
        app.router.lifespan_context(app),
        serve_app(app) as url,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless=new", "--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(url + "/")
            await expect(page.locator("#conn-text")).to_have_text(re.compile(r"^Live"))
            await expect(page.locator("#problem")).to_be_hidden()
            state = {"type": "poll", "role": "leader", "mode": "hybrid", "webhooks": [problem]}
            await redis.xadd(keys.changes(WS), {"d": orjson.dumps(state)})
            shown = page.locator("#problem")
            await expect(shown).to_be_visible()
            await expect(shown).to_contain_text(f"Clockify webhooks need attention ({problem})")
            await expect(shown).to_contain_text("Run clockwall check for what to do.")
            assert errors == []
        finally:
            await browser.close()
