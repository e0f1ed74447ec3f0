"""ClockifyClient against the fake Clockify (through httpx.ASGITransport; on a loopback port
where a timeout is tested): paging, retries, budget, typed errors, and the shapes each method
returns."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from app.child_server import free_port
from app.clockify import (
    AuthError,
    BadRequestError,
    BudgetExhaustedError,
    ClockifyClient,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnlimitedBudget,
    UpstreamError,
)
from app.config import Secret
from app.sim import ManualClock, SimulatedWorkspace
from tests import simulator_server
from tests.simulator_server import SIM_API_URL, SIM_REPORTS_URL, SIM_URL, open_sim_http

sim_clock = simulator_server.sim_clock
sim = simulator_server.sim
sim_http = simulator_server.sim_http
sim_url = simulator_server.sim_url

WRONG_KEY = "wrong-key-that-must-never-leak-42"


class RecordedSleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class CountingBudget:
    """Allows `allowed` requests, then refuses; counts every question."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.asked = 0

    async def acquire(self) -> bool:
        self.asked += 1
        return self.asked <= self.allowed


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


MakeClient = Callable[..., ClockifyClient]


@pytest.fixture
def make_client(
    sim_http: httpx.AsyncClient, sim: SimulatedWorkspace, sleeps: RecordedSleeps
) -> MakeClient:
    """Clients for the simulator (in this event loop, no port); use them as
    `async with make_client(...) as client`."""

    def factory(**overrides: object) -> ClockifyClient:
        values: dict[str, object] = {
            "budget": UnlimitedBudget(),
            "api_url": SIM_API_URL,
            "reports_url": SIM_REPORTS_URL,
            "http": sim_http,
            "sleep": sleeps,
            "rng": random.Random(3),
            "timeout_s": 5.0,
        }
        values.update(overrides)
        key = str(values.pop("api_key", sim.api_key))
        return ClockifyClient(Secret(key), **values)  # type: ignore[arg-type]

    return factory


def queries(sim: SimulatedWorkspace, endpoint: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in sim.requests if r.endpoint == endpoint]


# Discovery and shapes ---------------------------------------------------------------------
async def test_user_workspaces_and_plan(make_client: MakeClient, sim: SimulatedWorkspace) -> None:
    async with make_client() as client:
        user = await client.get_user()
        workspaces = await client.get_workspaces()
        workspace = await client.get_workspace(sim.id)
    assert user["id"] == sim.owner_id
    assert set(user["settings"]) >= {"timeZone", "weekStart"}
    assert [w["id"] for w in workspaces] == [sim.id]
    assert workspace["featureSubscriptionType"] == "PRO_2021"


async def test_lists_return_everything(make_client: MakeClient, sim: SimulatedWorkspace) -> None:
    async with make_client(page_size=3) as client:
        users = await client.list_users(sim.id)
        projects = await client.list_projects(sim.id)
        clients = await client.list_clients(sim.id)
        tags = await client.list_tags(sim.id)
    assert sorted(u["id"] for u in users) == sorted(sim.users)
    assert sorted(p["id"] for p in projects) == sorted(sim.projects)
    assert sorted(c["id"] for c in clients) == sorted(sim.clients)
    assert sorted(t["id"] for t in tags) == sorted(sim.tags)
    assert {p["hourlyRate"]["currency"] for p in projects if p["hourlyRate"]} == {"EUR", "USD"}


# Pagination -------------------------------------------------------------------------------
async def test_paging_stops_on_last_page_header(
    make_client: MakeClient, sim: SimulatedWorkspace
) -> None:
    # 12 users in pages of 4: the third page is full, but says Last-Page: true.
    async with make_client(page_size=4) as client:
        users = await client.list_users(sim.id)
    assert len(users) == 12
    sent = queries(sim, "users")
    assert [q["page"] for q in sent] == [["1"], ["2"], ["3"]]
    assert all(q["page-size"] == ["4"] for q in sent)


async def test_paging_without_header_stops_on_short_page(
    make_client: MakeClient, sim: SimulatedWorkspace
) -> None:
    sim.send_last_page_header = False
    async with make_client(page_size=5) as client:
        users = await client.list_users(sim.id)
    assert len(users) == 12
    assert sim.count("users") == 3  # 5 + 5 + 2 (short)


async def test_paging_without_header_needs_an_empty_page_when_exact(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
) -> None:
    sim.send_last_page_header = False
    async with make_client(page_size=4) as client:
        assert len(await client.list_users(sim.id)) == 12
    assert sim.count("users") == 4  # 4 + 4 + 4 + 0


async def test_in_progress_is_one_request_with_big_page_size(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
) -> None:
    async with make_client() as client:
        running = await client.list_in_progress(sim.id)
    assert {e["id"] for e in running} == {e.id for e in sim.running_entries()}
    assert running and all(e["timeInterval"]["end"] is None for e in running)
    assert queries(sim, "in_progress") == [{"page": ["1"], "page-size": ["1000"]}]


async def test_user_entries_window_hydrated_newest_first(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
) -> None:
    user_id = next(iter(sim.users))
    now = sim.now()
    async with make_client(page_size=2) as client:
        rows = await client.list_user_entries(sim.id, user_id, now - timedelta(days=3), now)
    expected = [
        e
        for e in sim.entries.values()
        if e.user_id == user_id and now - timedelta(days=3) <= e.start <= now
    ]
    assert len(rows) == len(expected) > 2
    starts = [r["timeInterval"]["start"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert all("project" in r and "tags" in r for r in rows)
    sent = queries(sim, "user_entries")[0]
    assert sent["hydrated"] == ["true"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent["start"][0])


@pytest.mark.parametrize("wrapped", [False, True])
async def test_entities_updated_and_deleted_both_shapes(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sim_clock: ManualClock,
    wrapped: bool,
) -> None:
    sim.entities_wrapped = wrapped
    since = sim.now()
    sim_clock.advance(10)
    user_id = next(iter(sim.users))
    created = sim.add_manual_entry(
        user_id, since - timedelta(hours=2), since - timedelta(hours=1), description="late log"
    )
    doomed = next(e for e in sim.entries.values() if e.end is not None and e.id != created.id)
    sim.delete_entry(doomed.id)
    sim_clock.advance(120)  # deletions show up about a minute later
    async with make_client(page_size=50) as client:
        new = await client.entities_created(sim.id, since, sim.now())
        updated = await client.entities_updated(sim.id, since, sim.now())
        deleted = await client.entities_deleted(sim.id, since, sim.now())
    # Clockify lists an entry created in the window under /created only, not under /updated.
    assert [d["id"] for d in new] == [created.id]
    assert new[0]["documentType"] == "TIME_ENTRY"
    assert updated == []
    assert [d["document"]["id"] for d in deleted] == [doomed.id]
    sent = queries(sim, "entities_updated")[0]
    assert sent["type"] == ["TIME_ENTRY"] and sent["limit"] == ["50"]


async def test_detailed_report_pages_through_rows(
    make_client: MakeClient, sim: SimulatedWorkspace
) -> None:
    now = sim.now()
    async with make_client(page_size=10) as client:  # report pages of 20
        rows = await client.detailed_report(sim.id, now - timedelta(days=8), now)
    stopped = [e for e in sim.entries.values() if e.end is not None]
    assert sorted(r["_id"] for r in rows) == sorted(e.id for e in stopped)
    assert all(isinstance(r["timeInterval"]["duration"], int) for r in rows)
    assert sim.count("detailed_report") == -(-len(stopped) // 20)


# Retries ----------------------------------------------------------------------------------
async def test_429_with_retry_after_is_honoured(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sleeps: RecordedSleeps,
) -> None:
    sim.fail_next(2, 429, retry_after_s=7)
    async with make_client() as client:
        assert (await client.get_workspace(sim.id))["id"] == sim.id
    assert sleeps.calls == [7.0, 7.0]
    assert sim.count("workspace") == 3


async def test_429_without_retry_after_backs_off_with_jitter(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sleeps: RecordedSleeps,
) -> None:
    sim.fail_next(3, 429)
    async with make_client(backoff_base_s=1.0, max_retries=3) as client:
        await client.get_user()
    assert len(sleeps.calls) == 3
    for attempt, delay_s in enumerate(sleeps.calls):
        step_s = 2.0**attempt
        assert step_s / 2 <= delay_s <= step_s


async def test_429_after_all_retries_raises_with_retry_after(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sleeps: RecordedSleeps,
) -> None:
    sim.fail_next(5, 429, retry_after_s=2)
    async with make_client(max_retries=2) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get_user()
    assert caught.value.retry_after_s == 2.0
    assert sim.count("user") == 3 and sleeps.calls == [2.0, 2.0]


async def test_long_retry_after_is_not_slept_inside_the_call(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sleeps: RecordedSleeps,
) -> None:
    sim.fail_next(1, 429, retry_after_s=1800)
    async with make_client(max_retry_after_s=60) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get_user()
    assert caught.value.retry_after_s == 1800.0
    assert sleeps.calls == []


async def test_5xx_then_success(
    make_client: MakeClient, sim: SimulatedWorkspace, sleeps: RecordedSleeps
) -> None:
    sim.fail_next(2, 503)
    sim.fail_next(1, 500)
    async with make_client() as client:
        assert len(await client.list_tags(sim.id)) == len(sim.tags)
    assert len(sleeps.calls) == 3
    assert [r.status for r in sim.requests] == [503, 503, 500, 200]


async def test_5xx_is_not_retried_when_creating_a_webhook(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
) -> None:
    sim.fail_next(1, 502)
    async with make_client() as client:
        with pytest.raises(UpstreamError, match="502"):
            await client.create_webhook(sim.id, "started", "https://x.test/h", "NEW_TIMER_STARTED")
    assert sim.count("webhooks") == 1


async def test_timeout_is_an_upstream_error_and_retried(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    sim_url: str,
    sleeps: RecordedSleeps,
) -> None:
    # On a real port: httpx.ASGITransport enforces no timeout.
    on_port = {"api_url": f"{sim_url}/api/v1", "http": None}
    sim.delay_next(1, 0.3)
    async with make_client(timeout_s=0.05, max_retries=0, **on_port) as client:
        with pytest.raises(UpstreamError, match="timed out"):
            await client.get_user()
    sim.delay_next(1, 0.3)
    async with make_client(timeout_s=0.05, max_retries=1, **on_port) as client:
        assert (await client.get_user())["id"] == sim.owner_id
    assert len(sleeps.calls) == 1


async def test_connection_refused_is_an_upstream_error(sleeps: RecordedSleeps) -> None:
    port = free_port()  # nothing listens there
    client = ClockifyClient(
        Secret("k"),
        budget=UnlimitedBudget(),
        api_url=f"http://127.0.0.1:{port}/api/v1",
        sleep=sleeps,
        max_retries=1,
    )
    async with client:
        with pytest.raises(UpstreamError, match="failed to connect"):
            await client.get_user()
    assert len(sleeps.calls) == 1


async def test_malformed_json_is_an_upstream_error(
    make_client: MakeClient, sim: SimulatedWorkspace
) -> None:
    sim.malformed_next(1)
    async with make_client() as client:
        with pytest.raises(UpstreamError, match="not valid JSON"):
            await client.get_workspaces()


async def test_unexpected_shape_is_an_upstream_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"not": "a list"}))
    async with httpx.AsyncClient(transport=transport) as http:
        client = ClockifyClient(Secret("k"), budget=UnlimitedBudget(), http=http)
        with pytest.raises(UpstreamError, match="expected a JSON array"):
            await client.list_tags("ws")
        await client.aclose()
        assert not http.is_closed  # an injected client belongs to its owner


# Typed errors -------------------------------------------------------------------------------
async def test_401_is_auth_error_without_the_key(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_client(api_key=WRONG_KEY) as client:
        with pytest.raises(AuthError) as caught:
            await client.get_user()
    message = str(caught.value)
    assert message.startswith("bad API key")
    assert "Full authentication is required" in message and "CLOCKIFY_API_KEY" in message
    assert WRONG_KEY not in message and WRONG_KEY not in caplog.text
    assert WRONG_KEY not in repr(client.__dict__)


async def test_403_is_forbidden_error(make_client: MakeClient, sim: SimulatedWorkspace) -> None:
    sim.admin = False
    async with make_client() as client:
        with pytest.raises(ForbiddenError, match="admin"):
            await client.list_in_progress(sim.id)


async def test_404_is_not_found_error(make_client: MakeClient) -> None:
    async with make_client() as client:
        with pytest.raises(NotFoundError, match="CLOCKIFY_WORKSPACE_ID"):
            await client.get_workspace("000000000000000000000000")


async def test_retry_logs_never_show_the_key(
    make_client: MakeClient,
    sim: SimulatedWorkspace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.fail_next(1, 503)
    async with make_client() as client:
        await client.get_user()
    assert "retry 1 of 3" in caplog.text
    assert sim.api_key not in caplog.text


# Budget ---------------------------------------------------------------------------------
async def test_budget_refusal_sends_nothing(
    make_client: MakeClient, sim: SimulatedWorkspace
) -> None:
    budget = CountingBudget(allowed=2)
    async with make_client(budget=budget, page_size=4) as client:
        with pytest.raises(BudgetExhaustedError, match="budget"):
            await client.list_users(sim.id)  # needs 3 pages
    assert sim.count() == 2 and budget.asked == 3


async def test_retries_spend_budget_too(make_client: MakeClient, sim: SimulatedWorkspace) -> None:
    budget = CountingBudget(allowed=2)
    sim.fail_next(5, 503)
    async with make_client(budget=budget, max_retries=5) as client:
        with pytest.raises(BudgetExhaustedError):
            await client.get_user()
    assert sim.count() == 2


# Webhooks ---------------------------------------------------------------------------------
async def test_webhook_calls(make_client: MakeClient, sim: SimulatedWorkspace) -> None:
    async with make_client() as client:
        created = await client.create_webhook(
            sim.id, "clockwall stopped", "https://wall.test/webhooks/clockify", "TIMER_STOPPED"
        )
        listed = await client.list_webhooks(sim.id)
        reset = await client.reset_webhook_token(sim.id, created["id"])
        await client.delete_webhook(sim.id, created["id"])
        after = await client.list_webhooks(sim.id)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", created["authToken"])
    assert created["triggerSourceType"] == "WORKSPACE_ID" and created["triggerSource"] == []
    assert listed["workspaceWebhookCount"] == 1
    assert listed["webhooks"][0]["authToken"] == created["authToken"]
    assert reset["authToken"] != created["authToken"]
    assert after == {"webhooks": [], "workspaceWebhookCount": 0}


async def test_free_plan_webhook_limit_is_a_bad_request(sleeps: RecordedSleeps) -> None:
    sim_free = SimulatedWorkspace(plan="FREE", clock=ManualClock(), rng=random.Random(5))
    sim_free.add_user("Owner")
    url = SIM_URL
    async with open_sim_http(sim_free) as http:
        client = ClockifyClient(
            Secret(sim_free.api_key),
            budget=UnlimitedBudget(),
            api_url=SIM_API_URL,
            http=http,
            sleep=sleeps,
        )
        async with client:
            for event in ("NEW_TIMER_STARTED", "TIMER_STOPPED", "TIME_ENTRY_UPDATED"):
                await client.create_webhook(sim_free.id, event.lower()[:30], url, event)
            with pytest.raises(BadRequestError, match="Free plan allows 3"):
                await client.create_webhook(sim_free.id, "deleted", url, "TIME_ENTRY_DELETED")
