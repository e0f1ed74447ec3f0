"""`clockwall setup` and `clockwall check` against the fake Clockify (through
httpx.ASGITransport; on a loopback port for the CLI) and a real Redis (dbs.ADMIN): the webhooks
each plan gets, idempotent reruns, the Free limit, every check line, and the CLI's exit codes
and output (never the API key)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from app.admin import (
    FREE_EVENTS,
    PAID_EVENTS,
    SetupError,
    open_client,
    run_check,
    run_setup,
)
from app.cli import main
from app.config import Secret, Settings, WebhookToken
from app.sim import SimulatedWorkspace
from app.sim.server import run_simulator_in_thread
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.simulator_server import SIM_URL, open_sim_http

DB = dbs.ADMIN
PUBLIC_URL = "https://wall.example.com"
HOOK_URL = f"{PUBLIC_URL}/webhooks/clockify"


@pytest.fixture
async def redis8() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(DB)) as client:
        yield client


def workspace(plan: str) -> SimulatedWorkspace:
    sim = SimulatedWorkspace(plan=plan, rng=random.Random(4))
    sim.add_user("Olga Owner")
    sim.add_user("Max Member")
    return sim


def settings_for(sim: SimulatedWorkspace, url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url(DB),
        "api_key": Secret(sim.api_key),
        "workspace_ids": (sim.id,),
        "api_url": f"{url}/api/v1",
        "reports_url": f"{url}/reports/v1",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# setup --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("plan", "wanted"), [("FREE", FREE_EVENTS), ("PRO_2021", PAID_EVENTS)])
async def test_setup_creates_the_plans_webhooks_once(
    redis8: Redis, plan: str, wanted: tuple[str, ...]
) -> None:
    sim = workspace(plan)
    async with open_sim_http(sim) as http:
        client = open_client(settings_for(sim, SIM_URL), http, redis8)
        first = await run_setup(client, sim.id, PUBLIC_URL)
        second = await run_setup(client, sim.id, PUBLIC_URL + "/")
    assert first.plan == plan
    assert first.created == list(wanted) and first.reused == []
    assert second.created == [] and second.reused == list(wanted)
    hooks = list(sim.webhooks.values())
    assert sorted(h.event for h in hooks) == sorted(wanted)
    assert {h.url for h in hooks} == {HOOK_URL}
    tokens = [next(h.auth_token for h in hooks if h.event == e) for e in wanted]
    assert first.tokens == second.tokens == tokens
    # Each token bound to its workspace, so it cannot write to another configured one.
    assert first.token_line() == "CLOCKIFY_WEBHOOK_TOKENS=" + ",".join(
        f"{sim.id}:{t}" for t in tokens
    )
    assert sim.api_key not in first.token_line()


def test_free_events_are_the_three_that_matter_most() -> None:
    assert FREE_EVENTS == ("NEW_TIMER_STARTED", "TIMER_STOPPED", "TIME_ENTRY_UPDATED")
    assert len(PAID_EVENTS) == len(set(PAID_EVENTS)) == 10


async def test_setup_refuses_to_exceed_the_free_limit(redis8: Redis) -> None:
    sim = workspace("FREE")
    sim.add_webhook("https://zapier.example/hook", "NEW_PROJECT")
    async with open_sim_http(sim) as http:
        client = open_client(settings_for(sim, SIM_URL), http, redis8)
        with pytest.raises(SetupError) as caught:
            await run_setup(client, sim.id, PUBLIC_URL)
    message = str(caught.value)
    assert "allows 3 webhooks" in message and "1 exist" in message
    assert "NEW_PROJECT -> https://zapier.example/hook" in message
    assert len(sim.webhooks) == 1  # nothing created
    assert sim.count("webhooks") == 1  # one GET, no POST


async def test_setup_completes_a_partial_free_setup(redis8: Redis) -> None:
    sim = workspace("FREE")
    existing = sim.add_webhook(HOOK_URL, "TIMER_STOPPED")
    async with open_sim_http(sim) as http:
        result = await run_setup(
            open_client(settings_for(sim, SIM_URL), http, redis8), sim.id, PUBLIC_URL
        )
    assert result.created == ["NEW_TIMER_STARTED", "TIME_ENTRY_UPDATED"]
    assert result.reused == ["TIMER_STOPPED"]
    assert existing.auth_token in result.tokens


async def test_setup_rejects_a_non_url(redis8: Redis) -> None:
    sim = workspace("FREE")
    async with open_sim_http(sim) as http:
        client = open_client(settings_for(sim, SIM_URL), http, redis8)
        with pytest.raises(SetupError, match="is not a URL"):
            await run_setup(client, sim.id, "wall.example.com")
    assert sim.requests == []


# check --------------------------------------------------------------------------------------
async def test_check_all_ok_after_setup(redis8: Redis) -> None:
    sim = workspace("FREE")
    async with open_sim_http(sim) as http:
        result = await run_setup(
            open_client(settings_for(sim, SIM_URL), http, redis8), sim.id, PUBLIC_URL
        )
        tokens = tuple(WebhookToken(Secret(t)) for t in result.tokens)
        lines = await run_check(settings_for(sim, SIM_URL, webhook_tokens=tokens), http, redis8)
    assert [line.what for line in lines] == [
        "configuration",
        "redis",
        "clockify api",
        f"workspace {sim.id}",
        "api budget",
        "webhooks",
        "webhook NEW_TIMER_STARTED",
        "webhook TIMER_STOPPED",
        "webhook TIME_ENTRY_UPDATED",
    ]
    assert all(line.ok for line in lines), lines
    by_what = {line.what: line.detail for line in lines}
    assert "mode hybrid" in by_what["configuration"]
    assert "Olga Owner" in by_what["clockify api"]
    assert "plan FREE" in by_what[f"workspace {sim.id}"]
    assert "of 30 requests left" in by_what["api budget"]
    assert by_what["webhooks"].startswith("3 of 3 recommended")
    assert not any(sim.api_key in line.detail for line in lines)


async def test_check_wrong_api_key(redis8: Redis) -> None:
    sim = workspace("FREE")
    async with open_sim_http(sim) as http:
        settings = settings_for(sim, SIM_URL, api_key=Secret("not-the-key-12345"))
        lines = await run_check(settings, http, redis8)
    failed = [line for line in lines if not line.ok]
    assert [line.what for line in failed] == ["clockify api"]
    assert failed[0].detail.startswith("bad API key: Clockify answered 401")
    assert "not-the-key-12345" not in failed[0].detail


async def test_check_unreachable_redis() -> None:
    sim = workspace("FREE")
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        async with open_sim_http(sim) as http:
            lines = await run_check(settings_for(sim, SIM_URL), http, dead)
    finally:
        await dead.aclose()
    by_what = {line.what: line for line in lines}
    assert not by_what["redis"].ok
    assert "unreachable" in by_what["redis"].detail and "REDIS_URL" in by_what["redis"].detail
    assert by_what["clockify api"].ok  # Clockify is still checked


async def test_check_without_tokens(redis8: Redis) -> None:
    sim = workspace("FREE")
    async with open_sim_http(sim) as http:
        hybrid = await run_check(settings_for(sim, SIM_URL, mode="hybrid"), http, redis8)
        webhook_only = await run_check(
            Settings(redis_url=redis_url(DB), workspace_ids=(sim.id,), mode="webhook"),
            http,
            redis8,
        )
    (hooks,) = [line for line in hybrid if line.what == "webhooks"]
    assert not hooks.ok and "clockwall setup" in hooks.detail
    failed = [line for line in webhook_only if not line.ok]
    assert [line.what for line in failed] == ["webhooks"]
    assert "no CLOCKIFY_WEBHOOK_TOKENS" in failed[0].detail


async def test_check_poll_mode_needs_no_tokens(redis8: Redis) -> None:
    sim = workspace("PRO_2021")
    async with open_sim_http(sim) as http:
        lines = await run_check(settings_for(sim, SIM_URL, mode="poll"), http, redis8)
    assert all(line.ok for line in lines), lines
    assert any("of 36000 requests left" in line.detail for line in lines)


# The CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedWorkspace]:
    """A Free workspace served from a thread (the CLI runs its own event loop), with the
    environment pointing at it."""
    sim = workspace("FREE")
    for name in (
        "CLOCKIFY_WEBHOOK_TOKENS",
        "CLOCKWALL_MODE",
        "CLOCKWALL_API_BUDGET_PER_HOUR",
        "CLOCKWALL_TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)
    with run_simulator_in_thread(sim) as url:
        monkeypatch.setenv("REDIS_URL", redis_url(DB))
        monkeypatch.setenv("CLOCKIFY_API_KEY", sim.api_key)
        monkeypatch.setenv("CLOCKIFY_WORKSPACE_ID", sim.id)
        monkeypatch.setenv("CLOCKIFY_API_URL", f"{url}/api/v1")
        monkeypatch.setenv("CLOCKIFY_REPORTS_URL", f"{url}/reports/v1")
        yield sim


@pytest.fixture
def flushed8() -> Iterator[None]:
    import redis

    client = redis.Redis.from_url(redis_url(DB))
    client.flushdb()
    yield
    client.flushdb()
    client.close()


def test_cli_setup_then_check(
    cli_sim: SimulatedWorkspace,
    flushed8: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["setup", "--url", PUBLIC_URL]) == 0
    out, err = capsys.readouterr()
    token_lines = [line for line in out.splitlines() if line.startswith("CLOCKIFY_WEBHOOK_TOKENS=")]
    assert len(token_lines) == 1 and err == ""
    bound = [item.partition(":") for item in token_lines[0].split("=", 1)[1].split(",")]
    assert {ws for ws, _, _ in bound} == {cli_sim.id}
    tokens = [token for _, _, token in bound]
    assert sorted(tokens) == sorted(h.auth_token for h in cli_sim.webhooks.values())
    assert "created: NEW_TIMER_STARTED, TIMER_STOPPED, TIME_ENTRY_UPDATED" in out
    assert cli_sim.api_key not in out

    assert main(["setup", "--url", PUBLIC_URL]) == 0  # again: nothing new, same tokens
    again, _ = capsys.readouterr()
    assert "created: nothing (all were there)" in again and token_lines[0] in again
    assert len(cli_sim.webhooks) == 3

    monkeypatch.setenv("CLOCKIFY_WEBHOOK_TOKENS", token_lines[0].split("=", 1)[1])
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("all is well") and "FAIL" not in out
    assert cli_sim.api_key not in out + err


def test_cli_check_fails_with_a_wrong_key(
    cli_sim: SimulatedWorkspace,
    flushed8: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOCKIFY_API_KEY", "wrong-key-never-printed-1")
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert "FAIL  clockify api: bad API key" in out and "problem(s) found" in out
    assert "wrong-key-never-printed-1" not in out + err

    assert main(["setup", "--url", PUBLIC_URL]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("clockwall setup: bad API key") and out == ""
    assert "wrong-key-never-printed-1" not in out + err


def test_cli_setup_over_the_free_limit_exits_1(
    cli_sim: SimulatedWorkspace, flushed8: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_sim.add_webhook("https://zapier.example/hook", "NEW_PROJECT")
    assert main(["setup", "--url", PUBLIC_URL]) == 1
    out, err = capsys.readouterr()
    assert "allows 3 webhooks" in err and "CLOCKIFY_WEBHOOK_TOKENS" not in out
    assert len(cli_sim.webhooks) == 1


def test_cli_setup_without_a_key_exits_2(
    cli_sim: SimulatedWorkspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLOCKIFY_API_KEY")
    assert main(["setup", "--url", PUBLIC_URL]) == 2
    assert "set CLOCKIFY_API_KEY" in capsys.readouterr().err
    assert cli_sim.requests == []


def test_cli_configuration_error_exits_2(
    cli_sim: SimulatedWorkspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOCKWALL_MODE", "sometimes")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "CLOCKWALL_MODE" in err
    assert cli_sim.api_key not in err
