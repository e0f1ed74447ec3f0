"""The fake Clockify: API rules (auth, plan limits, paging, windows), the seeded team, and
webhook deliveries exactly as Clockify sends them, with drop/duplicate/delay/hold/reorder."""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.child_server import ROOT, free_port
from app.models import parse_time_entry
from app.sim import (
    NEW_TIME_ENTRY,
    NEW_TIMER_STARTED,
    TIME_ENTRY_DELETED,
    TIME_ENTRY_EVENTS,
    TIME_ENTRY_UPDATED,
    TIMER_STOPPED,
    Delivery,
    ManualClock,
    SimulatedWorkspace,
    SimulatorError,
    WebhookSender,
    format_duration,
)
from app.sim.server import run_simulator_in_thread, serve_app
from tests import simulator_server
from tests.simulator_server import SIM_REPORTS_URL, open_sim_http

sim_clock = simulator_server.sim_clock
sim = simulator_server.sim
sim_url = simulator_server.sim_url

HOOK_URL = "http://receiver.test/webhooks/clockify"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Receiver:
    """A webhook endpoint that records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []

        async def hook(request: Request) -> Response:
            import orjson

            self.received.append((dict(request.headers), orjson.loads(await request.body())))
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/webhooks/clockify", hook, methods=["POST"])])

    def events(self) -> list[str]:
        return [headers["clockify-webhook-event-type"] for headers, _ in self.received]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def sender(receiver: Receiver) -> AsyncIterator[WebhookSender]:
    transport = httpx.ASGITransport(app=receiver.app)
    async with httpx.AsyncClient(transport=transport) as http:
        yield WebhookSender(http, rng=random.Random(9))


@pytest.fixture
def hooked(sim: SimulatedWorkspace) -> SimulatedWorkspace:
    """The paid demo workspace with one webhook per time-entry event."""
    for event in TIME_ENTRY_EVENTS:
        sim.add_webhook(HOOK_URL, event)
    return sim


def headers_for(sim: SimulatedWorkspace, key: str | None = None) -> dict[str, str]:
    return {"X-Api-Key": key if key is not None else sim.api_key}


# API rules ----------------------------------------------------------------------------------
async def test_missing_or_wrong_key_is_401(sim: SimulatedWorkspace) -> None:
    async with open_sim_http(sim) as http:
        missing = await http.get("/user")
        wrong = await http.get("/user", headers=headers_for(sim, "nope"))
        right = await http.get("/user", headers=headers_for(sim))
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["message"] == "Full authentication is required"
        assert "code" in response.json()
    assert right.status_code == 200 and right.json()["settings"]["timeZone"]


async def test_free_plan_allows_30_requests_per_rolling_hour() -> None:
    clock = ManualClock()
    free = SimulatedWorkspace(plan="FREE", clock=clock, rng=random.Random(3))
    free.add_user("Owner")
    free.send_retry_after = True
    async with open_sim_http(free) as http:
        statuses = []
        for _ in range(31):
            statuses.append((await http.get("/user", headers=headers_for(free))).status_code)
            clock.advance(60)
        assert statuses == [200] * 30 + [429]
        limited = await http.get(f"/workspaces/{free.id}", headers=headers_for(free))
        assert limited.status_code == 429
        # The first request was 31 minutes ago: a slot frees when it leaves the hour.
        assert int(limited.headers["Retry-After"]) == 3600 - 31 * 60
        clock.advance(3600 - 31 * 60)
        ok = await http.get(f"/workspaces/{free.id}", headers=headers_for(free))
        assert ok.status_code == 200 and ok.json()["featureSubscriptionType"] == "FREE"
    assert free.count("user", status=429) == 1


async def test_paging_and_last_page_header(sim: SimulatedWorkspace) -> None:
    async with open_sim_http(sim, headers=headers_for(sim)) as http:
        pages = [
            await http.get(f"/workspaces/{sim.id}/users", params={"page": n, "page-size": 5})
            for n in (1, 2, 3)
        ]
        default = await http.get(f"/workspaces/{sim.id}/users")
        bad = await http.get(f"/workspaces/{sim.id}/users", params={"page-size": 0})
    assert [len(p.json()) for p in pages] == [5, 5, 2]
    assert [p.headers["Last-Page"] for p in pages] == ["false", "false", "true"]
    assert len(default.json()) == 12  # default page-size 50
    assert bad.status_code == 400


async def test_in_progress_defaults_to_ten_and_caps_at_1000(sim_clock: ManualClock) -> None:
    team = SimulatedWorkspace(plan="PRO_2021", clock=sim_clock, rng=random.Random(8))
    users = [team.add_user(f"Person {i}") for i in range(12)]
    for user in users:
        team.start_timer(user, description="busy")
    async with open_sim_http(team, headers=headers_for(team)) as http:
        path = f"/workspaces/{team.id}/time-entries/status/in-progress"
        first = await http.get(path)
        everything = await http.get(path, params={"page-size": 1000})
        too_big = await http.get(path, params={"page-size": 1001})
    assert len(first.json()) == 10 and first.headers["Last-Page"] == "false"
    assert len(everything.json()) == 12
    assert too_big.status_code == 400


async def test_user_entries_filters(sim: SimulatedWorkspace) -> None:
    user_id = next(e.user_id for e in sim.running_entries())
    now = sim.now()
    base = f"/workspaces/{sim.id}/user/{user_id}/time-entries"
    async with open_sim_http(sim, headers=headers_for(sim)) as http:
        window = await http.get(
            base,
            params={
                "start": (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "page-size": 500,
            },
        )
        running = await http.get(base, params={"in-progress": "true", "hydrated": "true"})
    rows = window.json()
    assert rows and all(now - timedelta(days=2) <= parse_time_entry(r).start <= now for r in rows)
    assert [r["timeInterval"]["start"] for r in rows] == sorted(
        (r["timeInterval"]["start"] for r in rows), reverse=True
    )
    assert "project" not in rows[0] and "tagIds" in rows[0]
    (live,) = running.json()
    assert live["timeInterval"]["end"] is None and live["timeInterval"]["duration"] is None
    assert live["project"]["color"].startswith("#")


async def test_entities_windows_and_deletion_delay(
    sim: SimulatedWorkspace, sim_clock: ManualClock
) -> None:
    since = sim.now()
    sim_clock.advance(5)
    entry = next(e for e in sim.entries.values() if e.end is not None)
    sim.update_entry(entry.id, description="renamed")
    sim.delete_entry(entry.id)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    base = f"/workspaces/{sim.id}/entities"
    async with open_sim_http(sim, headers=headers_for(sim)) as http:

        async def ask(which: str, **extra: str) -> httpx.Response:
            params = {"type": "TIME_ENTRY", "start": since.strftime(fmt), **extra}
            params["end"] = sim.now().strftime(fmt)
            return await http.get(f"{base}/{which}", params=params)

        no_type = await http.get(f"{base}/updated")
        too_early = await ask("deleted")
        sim_clock.advance(61)
        deleted = await ask("deleted")
        updated = await ask("updated")
    assert no_type.status_code == 400
    assert too_early.json() == []
    (gone,) = deleted.json()
    # The item's own id is the deletion record's; the entry is its `document`.
    assert gone["document"]["id"] == entry.id and gone["documentCode"] == "TIME_ENTRY"
    assert gone["document"]["description"] == "renamed" and INSTANT.match(gone["deletedAt"])
    assert updated.json() == []  # deleted entries no longer count as updated


async def test_detailed_report(sim: SimulatedWorkspace) -> None:
    now = sim.now()
    body = {
        "dateRangeStart": (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "dateRangeEnd": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "detailedFilter": {"page": 1, "pageSize": 1000},
    }
    url = f"{SIM_REPORTS_URL}/workspaces/{sim.id}/reports/detailed"
    async with open_sim_http(sim, headers=headers_for(sim)) as http:
        report = (await http.post(url, json=body)).json()
        missing = await http.post(url, json={"dateRangeStart": body["dateRangeStart"]})
    rows = report["timeentries"]
    stopped = [e for e in sim.entries.values() if e.end is not None]
    assert len(rows) == len(stopped) == report["totals"][0]["entriesCount"]
    assert report["totals"][0]["totalTime"] == sum(r["timeInterval"]["duration"] for r in rows)
    assert {a["currency"] for a in report["totals"][0]["amounts"]} == {"EUR", "USD"}
    row = rows[0]
    assert {"_id", "userName", "projectName", "projectColor", "clientName", "tags"} <= set(row)
    assert isinstance(row["timeInterval"]["duration"], int)
    assert missing.status_code == 400


async def test_free_report_range_is_capped_at_31_days() -> None:
    free = SimulatedWorkspace(plan="FREE", clock=ManualClock(), rng=random.Random(3))
    free.add_user("Owner")
    now = free.now()
    body = {
        "dateRangeStart": (now - timedelta(days=40)).isoformat(),
        "dateRangeEnd": now.isoformat(),
        "detailedFilter": {"page": 1, "pageSize": 50},
    }
    async with open_sim_http(free) as http:
        answer = await http.post(
            f"{SIM_REPORTS_URL}/workspaces/{free.id}/reports/detailed",
            json=body,
            headers=headers_for(free),
        )
    assert answer.status_code == 400 and "31 days" in answer.json()["message"]


async def test_faults_and_request_log(sim: SimulatedWorkspace) -> None:
    sim.fail_next(1, 502, path_contains="/tags")
    sim.malformed_next(1, path_contains="/clients")
    async with open_sim_http(sim, headers=headers_for(sim)) as http:
        user = await http.get("/user")  # not matched by the faults
        tags = await http.get(f"/workspaces/{sim.id}/tags")
        clients = await http.get(f"/workspaces/{sim.id}/clients")
        tags_again = await http.get(f"/workspaces/{sim.id}/tags")
        unknown = await http.get("/workspaces/ffffffffffffffffffffffff")
    assert user.status_code == 200 and tags.status_code == 502
    assert clients.status_code == 200 and clients.content.startswith(b'{"id": "5f1e')
    assert tags_again.status_code == 200 and unknown.status_code == 404
    assert [r.endpoint for r in sim.requests] == ["user", "tags", "clients", "tags", "workspace"]
    assert sim.count("tags") == 2 and sim.count("tags", status=502) == 1


async def test_run_simulator_serves_the_api_on_a_loopback_port(
    sim: SimulatedWorkspace, sim_url: str
) -> None:
    assert sim_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=f"{sim_url}/api/v1", headers=headers_for(sim)) as http:
        answer = await http.get("/workspaces")
    assert answer.json()[0]["id"] == sim.id


def test_thread_server_for_synchronous_tests(sim: SimulatedWorkspace) -> None:
    with run_simulator_in_thread(sim) as url:
        answer = httpx.get(f"{url}/api/v1/workspaces", headers=headers_for(sim))
    assert answer.json()[0]["id"] == sim.id


# Webhook management ----------------------------------------------------------------------------
async def test_webhook_crud_over_http(sim: SimulatedWorkspace) -> None:
    base = f"/workspaces/{sim.id}/webhooks"
    create = {
        "name": "wall started",
        "url": HOOK_URL,
        "webhookEvent": NEW_TIMER_STARTED,
        "triggerSourceType": "WORKSPACE_ID",
        "triggerSource": [],
    }
    async with open_sim_http(sim, headers=headers_for(sim)) as http:
        created = await http.post(base, json=create)
        hook = created.json()
        listed = (await http.get(base)).json()
        one = (await http.get(f"{base}/{hook['id']}")).json()
        put = await http.put(f"{base}/{hook['id']}", json={**create, "webhookEvent": "NEW_TAG"})
        token = (await http.patch(f"{base}/{hook['id']}/token")).json()
        bad_name = await http.post(base, json={**create, "name": "x"})
        deleted = await http.delete(f"{base}/{hook['id']}")
        gone = await http.get(f"{base}/{hook['id']}")
    assert created.status_code == 201
    assert re.fullmatch(r"[A-Za-z0-9]{32}", hook["authToken"])
    assert set(hook) >= {"id", "name", "url", "webhookEvent", "triggerSource", "enabled"}
    assert listed == {"webhooks": [hook], "workspaceWebhookCount": 1}
    assert one == hook
    assert put.json()["webhookEvent"] == "NEW_TAG" and put.json()["authToken"] == hook["authToken"]
    assert token["authToken"] != hook["authToken"] and len(token["authToken"]) == 32
    assert bad_name.status_code == 400
    assert deleted.status_code == 200 and gone.status_code == 404


def test_free_plan_allows_three_webhooks() -> None:
    free = SimulatedWorkspace(plan="FREE", clock=ManualClock(), rng=random.Random(3))
    free.add_user("Owner")
    for event in (NEW_TIMER_STARTED, TIMER_STOPPED, TIME_ENTRY_UPDATED):
        free.add_webhook(HOOK_URL, event)
    with pytest.raises(SimulatorError, match="Free plan allows 3"):
        free.add_webhook(HOOK_URL, TIME_ENTRY_DELETED)


def test_paid_plan_limits_webhooks_per_admin(sim: SimulatedWorkspace) -> None:
    for index in range(10):
        sim.add_webhook(f"{HOOK_URL}/{index}", NEW_TIME_ENTRY)
    with pytest.raises(SimulatorError, match="10 per admin"):
        sim.add_webhook(HOOK_URL, NEW_TIME_ENTRY)


# The team and its deliveries ---------------------------------------------------------------------
def test_seeded_team_is_deterministic_and_varied(sim_clock: ManualClock) -> None:
    def build() -> SimulatedWorkspace:
        team = SimulatedWorkspace(clock=sim_clock, rng=random.Random(1))
        team.seed_demo_team(n_users=12, rng=random.Random(2))
        return team

    one, two = build(), build()
    assert list(one.entries) == list(two.entries)
    assert len(one.users) == 12 and len(one.clients) >= 3
    currencies = {p.currency for p in one.projects.values() if p.hourly_rate_minor}
    assert currencies >= {"EUR", "USD"}
    assert len({u.time_zone for u in one.users.values()}) > 5
    starts = [e.start for e in one.entries.values()]
    assert one.now() - min(starts) >= timedelta(days=5)
    assert 1 <= len(one.running_entries()) < 12
    assert not one.outbox  # history predates the webhooks
    assert all(e.end is None or e.end <= one.now() for e in one.entries.values())


def test_format_duration() -> None:
    assert format_duration(0) == "PT0S"
    assert format_duration(26) == "PT26S"
    assert format_duration(5400) == "PT1H30M"
    assert (
        format_duration(19471 * 3600 + 16 * 60 + 48) == "PT19471H16M48S"
    )  # hours never roll into days


async def test_every_event_is_delivered_as_clockify_sends_it(
    hooked: SimulatedWorkspace, sender: WebhookSender, receiver: Receiver, sim_clock: ManualClock
) -> None:
    sim = hooked
    user = next(u for u in sim.users.values() if sim.running_entry(u.id) is None)
    project = next(p for p in sim.projects.values() if p.hourly_rate_minor and p.client_id)
    tag = next(iter(sim.tags.values()))
    started = sim.start_timer(user, project, "Wall work", tags=[tag])
    sim_clock.advance(5400)
    sim.stop_timer(user)
    manual = sim.add_manual_entry(
        user, sim.now() - timedelta(hours=3), sim.now() - timedelta(hours=2), project
    )
    sim.update_entry(manual.id, description="edited", billable=False)
    sim.delete_entry(started.id)
    results = await sim.deliver_webhooks(sender)
    assert [r.outcome for r in results] == ["sent"] * 5 and {r.status for r in results} == {204}
    assert receiver.events() == [
        NEW_TIMER_STARTED,
        TIMER_STOPPED,
        NEW_TIME_ENTRY,
        TIME_ENTRY_UPDATED,
        TIME_ENTRY_DELETED,
    ]
    tokens = {hook.event: hook.auth_token for hook in sim.webhooks.values()}
    for headers, body in receiver.received:
        event = headers["clockify-webhook-event-type"]
        assert headers["clockify-signature"] == tokens[event]
        assert headers["content-type"] == "application/json"
        assert "taskId" not in body and "tagIds" not in body
        assert {"project", "task", "user", "tags", "currentlyRunning"} <= set(body)
        assert INSTANT.match(body["timeInterval"]["start"])
        assert body["workspaceId"] == sim.id and body["user"]["id"] == user.id
        parse_time_entry(body)  # the service's parser accepts every body
    start_body = receiver.received[0][1]
    assert start_body["timeInterval"]["end"] is None
    assert start_body["timeInterval"]["duration"] is None
    assert start_body["currentlyRunning"] is True
    assert start_body["project"]["color"] == project.color
    assert start_body["project"]["clientName"] == sim.clients[project.client_id or ""].name
    assert start_body["hourlyRate"] == {
        "amount": project.hourly_rate_minor,
        "currency": project.currency,
    }
    assert start_body["tags"][0]["name"] == tag.name and start_body["task"] is None
    stop_body = receiver.received[1][1]
    assert stop_body["timeInterval"]["duration"] == "PT1H30M"
    assert INSTANT.match(stop_body["timeInterval"]["end"])
    assert stop_body["currentlyRunning"] is False
    assert receiver.received[3][1]["billable"] is False
    deleted_body = receiver.received[4][1]
    assert deleted_body["id"] == started.id and deleted_body["timeInterval"]["end"]


async def test_starting_a_second_timer_stops_the_first(
    hooked: SimulatedWorkspace, sender: WebhookSender, receiver: Receiver
) -> None:
    running = hooked.running_entries()[0]
    hooked.start_timer(running.user_id, description="next thing")
    await hooked.deliver_webhooks(sender)
    assert receiver.events() == [TIMER_STOPPED, NEW_TIMER_STARTED]
    assert receiver.received[0][1]["id"] == running.id


async def test_only_matching_webhooks_fire(sim: SimulatedWorkspace) -> None:
    user = next(u for u in sim.users.values() if sim.running_entry(u.id) is None)
    sim.add_webhook(HOOK_URL, TIMER_STOPPED)
    sim.add_webhook(HOOK_URL, NEW_TIMER_STARTED, trigger_source_type="USER_ID",
                    trigger_source=["someone-else"])  # fmt: skip
    sim.start_timer(user)
    assert sim.drain_outbox() == []


def deliveries(sim: SimulatedWorkspace, n: int) -> list[Delivery]:
    user_ids = list(sim.users)
    for index in range(n):
        sim.add_manual_entry(
            user_ids[index % len(user_ids)],
            sim.now() - timedelta(hours=2),
            sim.now() - timedelta(hours=1),
            description=f"entry {index}",
        )
    return sim.drain_outbox()


async def test_drop_duplicate_and_reorder(
    hooked: SimulatedWorkspace, sender: WebhookSender, receiver: Receiver
) -> None:
    batch = deliveries(hooked, 4)
    ids = [d.entry_id for d in batch]
    sender.drop_next(1)
    sender.duplicate_next(1)
    results = await sender.send(batch)
    assert [r.outcome for r in results] == ["dropped", "sent", "sent", "sent", "sent"]
    assert [body["id"] for _, body in receiver.received] == [ids[1], ids[1], ids[2], ids[3]]

    receiver.received.clear()
    sender.reorder = "reverse"
    await sender.send(batch)
    assert [body["id"] for _, body in receiver.received] == ids[::-1]

    receiver.received.clear()
    sender.reorder = "shuffle"
    sender.rng = random.Random(1)
    await sender.send(batch)
    shuffled = [body["id"] for _, body in receiver.received]
    assert sorted(shuffled) == sorted(ids) and shuffled != ids  # fixed seed: a real shuffle


async def test_hold_delivers_late_after_newer_events(
    hooked: SimulatedWorkspace, sender: WebhookSender, receiver: Receiver
) -> None:
    user = next(u for u in hooked.users.values() if hooked.running_entry(u.id) is None)
    hooked.start_timer(user)
    sender.hold_next(1)  # the start arrives late...
    assert [r.outcome for r in await hooked.deliver_webhooks(sender)] == ["held"]
    hooked.stop_timer(user)
    await hooked.deliver_webhooks(sender)
    assert receiver.events() == [TIMER_STOPPED, NEW_TIMER_STARTED]  # ...after the stop


async def test_random_drops_are_seeded(hooked: SimulatedWorkspace, receiver: Receiver) -> None:
    batch = deliveries(hooked, 40)
    outcomes = []
    for _ in range(2):
        transport = httpx.ASGITransport(app=receiver.app)
        async with httpx.AsyncClient(transport=transport) as http:
            sender = WebhookSender(http, rng=random.Random(21), drop_probability=0.25)
            outcomes.append([r.outcome for r in await sender.send(batch)])
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count("dropped") < 40


async def test_delay_uses_the_injected_sleep(
    hooked: SimulatedWorkspace, receiver: Receiver
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    transport = httpx.ASGITransport(app=receiver.app)
    async with httpx.AsyncClient(transport=transport) as http:
        sender = WebhookSender(http, sleep=fake_sleep)
        sender.delay_next(2, 3.5)
        await sender.send(deliveries(hooked, 3))
    assert slept == [3.5, 3.5] and len(receiver.received) == 3


async def test_delivery_over_real_loopback(hooked: SimulatedWorkspace, receiver: Receiver) -> None:
    async with serve_app(receiver.app) as url, httpx.AsyncClient() as http:
        for hook in hooked.webhooks.values():
            hook.url = f"{url}/webhooks/clockify"
        results = await WebhookSender(http).send(deliveries(hooked, 2))
    assert [r.status for r in results] == [204, 204]
    assert receiver.events() == [NEW_TIME_ENTRY, NEW_TIME_ENTRY]


async def test_unreachable_receiver_is_a_failed_delivery(hooked: SimulatedWorkspace) -> None:
    port = free_port()  # nothing listens there
    for hook in hooked.webhooks.values():
        hook.url = f"http://127.0.0.1:{port}/webhooks/clockify"
    async with httpx.AsyncClient() as http:
        (result,) = await WebhookSender(http).send(deliveries(hooked, 1))
    assert result.outcome == "failed" and result.error == "ConnectError"


# Packaging ----------------------------------------------------------------------------------
def test_every_package_under_app_is_installed_with_it() -> None:
    # setuptools lists packages by name: a subpackage left out (app.sim) is missing from a
    # non-editable install, and `clockwall demo` fails there on import.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "app").rglob("__init__.py")
    }
    assert "app.sim" in found and found <= listed, f"add {sorted(found - listed)} to packages"
