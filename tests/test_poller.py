"""The poller against the fake Clockify (through httpx.ASGITransport, or on a loopback port where
a test needs a socket) and a real Redis (dbs.POLLER).

One fake clock drives everything: the simulator, the request budget, the store and the poller
(whose sleeps move it instead of waiting), so simulated hours and days run in a second or two.
Only the lease (Redis PX expiry) and the client timeout use real time, with bounded waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from app.budget import RequestBudget
from app.clockify import ClockifyClient
from app.config import Secret, Settings, WebhookToken
from app.main import create_app
from app.metrics import Metrics
from app.poller import Poller, Schedule
from app.sim import (
    NEW_TIMER_STARTED,
    TIME_ENTRY_EVENTS,
    TIME_ENTRY_UPDATED,
    TIMER_STOPPED,
    ManualClock,
    SimEntry,
    SimulatedWorkspace,
    WebhookSender,
)
from app.sim.server import run_simulator
from app.store import TotalsStore
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.payloads import AppClient
from tests.simulator_server import SIM_URL, open_sim_http

DB = dbs.POLLER
HOUR_S = 3600.0
FREE_BUDGET = 30
GROUPS = ("PROJECT", "USER", "CLIENT", "DATE")
HOOK_URL = "http://clockwall.test/webhooks/clockify"
# The fake clock starts on Thursday 2026-01-01 10:00 UTC; the reporting week starts Monday.
WEEK_START = date(2025, 12, 29)
# How late a running timer may show up beyond the schedule's interval: one run_once may sit
# between a due time and the fake clock step that reaches it.
SLACK_S = 5.0

Totals = dict[Any, tuple[int, int, dict[str, int]]]


@pytest.fixture
async def redis8() -> AsyncIterator[Redis]:
    async with redis_db(redis_url(DB)) as client:
        yield client


# The rig: simulator + Redis + store + pollers on one fake clock -----------------------------
@dataclass
class Rig:
    clock: ManualClock
    sim: SimulatedWorkspace
    url: str
    redis: Redis
    store: TotalsStore
    http: httpx.AsyncClient
    budget_per_hour: int
    lease_ttl_s: float = 10.0
    timeout_s: float = 5.0
    max_retries: int = 3
    sent: dict[int, int] = field(default_factory=dict)  # id(poller) -> requests it sent

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def poller(self, *, mode: str = "poll", http: httpx.AsyncClient | None = None) -> Poller:
        budget = RequestBudget(self.redis, self.sim.id, self.budget_per_hour, clock=self.clock)
        client = ClockifyClient(
            Secret(self.sim.api_key),
            budget=budget,
            api_url=f"{self.url}/api/v1",
            reports_url=f"{self.url}/reports/v1",
            http=http or self.http,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            sleep=self.sleep,
            rng=random.Random(3),
        )
        return Poller(
            self.sim.id,
            client,
            self.store,
            self.redis,
            Metrics(),
            mode=mode,
            budget=budget,
            clock=self.now,
            sleep=self.sleep,
            lease_ttl_s=self.lease_ttl_s,
        )


@contextlib.asynccontextmanager
async def open_rig(
    redis: Redis,
    *,
    plan: str = "FREE",
    users: int = 6,
    history_days: int = 3,
    zone: str = "UTC",
    store: TotalsStore | None = None,
    clock: ManualClock | None = None,
    on_port: bool = False,
    **options: Any,
) -> AsyncIterator[Rig]:
    """The rig; the simulator answers in this event loop, or on a loopback port (`on_port`)
    where a test needs a socket: a timeout (httpx.ASGITransport enforces none), a crash."""
    clock = clock or ManualClock()
    sim = SimulatedWorkspace(plan=plan, clock=clock, rng=random.Random(1))
    sim.seed_demo_team(users, rng=random.Random(2), days=history_days)
    if store is None:
        store = TotalsStore(
            redis, ZoneInfo(zone), clock=lambda: datetime.fromtimestamp(clock(), UTC)
        )
    per_hour = FREE_BUDGET if plan == "FREE" else 36_000
    async with contextlib.AsyncExitStack() as stack:
        if on_port:
            url = await stack.enter_async_context(run_simulator(sim))
            http = await stack.enter_async_context(httpx.AsyncClient())
        else:
            url = SIM_URL
            http = await stack.enter_async_context(open_sim_http(sim))
        yield Rig(clock, sim, url, redis, store, http, per_hour, **options)


# Brute force from the simulator's own entries ------------------------------------------------
def expected_totals(
    sim: SimulatedWorkspace,
    zone: ZoneInfo,
    group: str,
    now_s: float,
    first: date = WEEK_START,
    last: date | None = None,
    extra: Iterable[SimEntry] = (),
) -> Totals:
    """Seconds, billable seconds and amounts (minor units: the group's exact seconds x rate,
    rounded half up once) per group, for entries starting in [first, last] in `zone`; running
    timers count until `now_s`."""
    out: Totals = {}
    for entry in [*sim.entries.values(), *extra]:
        day = entry.start.astimezone(zone).date()
        if day < first or (last is not None and day > last):
            continue
        end_s = entry.end.timestamp() if entry.end else now_s
        seconds = max(0, int(end_s - entry.start.timestamp()))
        if seconds == 0:
            continue
        project = sim.projects.get(entry.project_id or "")
        key = {
            "PROJECT": entry.project_id,
            "USER": entry.user_id,
            "CLIENT": project.client_id if project else None,
            "DATE": day.isoformat(),
        }[group]
        total, billable, amounts = out.get(key, (0, 0, {}))
        if entry.billable:
            billable += seconds
            if project and project.hourly_rate_minor:
                amount = seconds * project.hourly_rate_minor  # exact, rounded below
                amounts = dict(amounts)
                amounts[project.currency] = amounts.get(project.currency, 0) + amount
        out[key] = (total + seconds, billable, amounts)
    return {
        key: (total, billable, {c: m for c, v in amounts.items() if (m := (v + 1800) // 3600)})
        for key, (total, billable, amounts) in out.items()
    }


async def stored_totals(
    store: TotalsStore, ws: str, group: str, first: date = WEEK_START, last: date | None = None
) -> Totals:
    summary = await store.read_summary(ws, first, last or store.today(), group)
    return {
        g["id"]: (
            g["totalSeconds"],
            g["billableSeconds"],
            {a["currency"]: round(a["amount"] * 100) for a in g["amounts"]},
        )
        for g in summary["groups"]
    }


async def assert_totals_match(
    rig: Rig, extra: Iterable[SimEntry] = (), first: date = WEEK_START
) -> None:
    extra = list(extra)
    for group in GROUPS:
        want = expected_totals(rig.sim, rig.store.zone, group, rig.clock(), first, extra=extra)
        got = await stored_totals(rig.store, rig.sim.id, group, first)
        assert got == want, f"{group} totals differ"


def pending_deletions(sim: SimulatedWorkspace) -> list[SimEntry]:
    """Deleted entries Clockify does not list under entities/deleted yet (~60 s delay)."""
    cutoff = sim.clock() - sim.deleted_visibility_delay_s
    return [d.entry for d in sim.deletions.values() if d.deleted_at_s > cutoff]


def max_requests_per_rolling_hour(sim: SimulatedWorkspace) -> int:
    stamps = sorted(r.at_s for r in sim.requests)
    most, low = 0, 0
    for high, at_s in enumerate(stamps):
        while stamps[low] <= at_s - HOUR_S:
            low += 1
        most = max(most, high - low + 1)
    return most


# A team at work -------------------------------------------------------------------------------
class Team:
    """Seeded random teammates: start and stop timers, log manual entries, delete old entries
    and (optionally) move stopped entries to another project."""

    def __init__(self, sim: SimulatedWorkspace, seed: int, *, edits: bool = False) -> None:
        self.sim = sim
        self.rng = random.Random(seed)
        self.edits = edits
        self.history = [e.id for e in sim.entries.values() if e.end is not None]
        self.actions: list[str] = []

    def act(self) -> None:
        sim, rng = self.sim, self.rng
        user = rng.choice(list(sim.users.values()))
        projects = list(sim.projects.values())
        roll = rng.random()
        running = sim.running_entries()
        if roll < 0.35:
            sim.start_timer(user, rng.choice(projects), "Focus")
            self.actions.append("start")
        elif roll < 0.65 and running:
            sim.stop_timer(rng.choice(running).user_id)
            self.actions.append("stop")
        elif roll < 0.8:
            end = sim.now() - timedelta(minutes=rng.randint(5, 60))
            start = end - timedelta(minutes=rng.randint(10, 90))
            sim.add_manual_entry(user, start, end, rng.choice(projects), "Catch-up")
            self.actions.append("manual")
        elif roll < 0.9 and self.history:
            entry_id = self.history.pop(rng.randrange(len(self.history)))
            if entry_id in sim.entries:
                sim.delete_entry(entry_id)
                self.actions.append("delete")
        elif self.edits:
            stopped = [e for e in sim.entries.values() if e.end is not None]
            entry = rng.choice(stopped)
            sim.update_entry(entry.id, project=rng.choice(projects).id)
            self.actions.append("edit")


async def drive(
    rig: Rig,
    poller: Poller,
    team: Team | None,
    hours: float,
    *,
    gap_s: tuple[float, float] = (120.0, 480.0),
    after_step: Callable[[], Any] | None = None,
) -> None:
    """Run the poller on the fake clock for `hours`, the team acting every `gap_s` seconds."""
    end_s = rig.clock() + hours * HOUR_S
    rng = random.Random(11)
    next_action_s = rig.clock() + rng.uniform(*gap_s)
    while rig.clock() < end_s:
        if team is not None and rig.clock() >= next_action_s:
            team.act()
            next_action_s = rig.clock() + rng.uniform(*gap_s)
        wait_s = await poller.run_once()
        if after_step is not None:
            await after_step()
        target_s = min(rig.clock() + wait_s, next_action_s if team else end_s, end_s)
        await poller.sleep(max(0.0, target_s - rig.clock()))


async def settle(rig: Rig, poller: Poller, max_hours: float = 3.0) -> None:
    """Let the poller run (no team) until a changes poll has seen every deletion."""
    rig.clock.advance(rig.sim.deleted_visibility_delay_s + 1)
    deadline_s = rig.clock() + max_hours * HOUR_S
    before = rig.sim.count("entities_updated")
    while rig.clock() < deadline_s:
        wait_s = await poller.run_once()
        if rig.sim.count("entities_updated") > before and poller.state.last_error is None:
            return
        await poller.sleep(wait_s)
    raise AssertionError(f"no successful changes poll: {poller.state}")


# 1. A simulated hour (three) on Free, polling only ----------------------------------------
async def test_free_plan_hours_of_polling_stay_in_budget_and_fresh(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        poller = rig.poller()
        team = Team(rig.sim, seed=5)
        schedule = Schedule.for_budget(FREE_BUDGET)
        checked = {"changes": 0, "fresh": 0}

        async def check() -> None:
            # The schedule fits the budget: it never runs dry, so nothing is ever late.
            assert poller.state.last_error is None
            now_s = rig.clock()
            stored = {e["id"] for e in await rig.store.read_running(rig.sim.id)}
            for entry in rig.sim.running_entries():
                if now_s - entry.start.timestamp() > schedule.running_s + SLACK_S:
                    assert entry.id in stored, f"timer {entry.id} missing after {now_s}"
                    checked["fresh"] += 1
            for entry_id in stored - {e.id for e in rig.sim.running_entries()}:
                # A stop shows at the next changes poll: early when the spare allows it.
                stopped = rig.sim.entries[entry_id].end
                assert stopped is not None
                assert now_s - stopped.timestamp() <= schedule.changes_s + SLACK_S
            polls = rig.sim.count("entities_updated")
            if polls > checked["changes"] and poller.state.last_error is None:
                checked["changes"] = polls
                await assert_totals_match(rig, pending_deletions(rig.sim))

        await drive(rig, poller, team, hours=3, after_step=check)
        await settle(rig, poller)
        await assert_totals_match(rig)

    assert poller.state.plan == "FREE" and poller.state.budget_per_hour == FREE_BUDGET
    assert poller.schedule == schedule
    assert {"start", "stop", "manual", "delete"} <= set(team.actions)
    assert checked["changes"] >= 10 and checked["fresh"] > 0
    assert rig.sim.count(status=429) == 0
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET
    # One in-progress call carries every timer: about 3600 / running_s of them an hour.
    assert rig.sim.count("in_progress") >= 3 * 3600 / schedule.running_s - 1


# 2. Webhooks dropped at random for a day; reconcile heals every total ----------------------
async def test_dropped_webhooks_for_a_day_are_healed_by_reconcile(redis8: Redis) -> None:
    async with open_rig(redis8, plan="PRO_2021", users=8, zone="Europe/Berlin") as rig:
        hooks = [rig.sim.add_webhook(HOOK_URL, event) for event in TIME_ENTRY_EVENTS]
        settings = Settings(
            redis_url=redis_url(DB),
            workspace_ids=(rig.sim.id,),
            webhook_tokens=tuple(WebhookToken(Secret(h.auth_token)) for h in hooks),
            mode="webhook",
            timezone="Europe/Berlin",
        )
        app = create_app(settings, redis=redis8, clock=rig.now)
        rig.store = app.state.service.store
        async with AppClient(app) as hook_http:
            sender = WebhookSender(hook_http, rng=random.Random(5), drop_probability=0.3)
            poller = rig.poller(mode="hybrid")
            await poller.run_once()  # discover, names, timers, changes and the week's backfill
            assert poller.state.backfilled and poller.state.last_error is None

            rng = random.Random(8)
            created: list[str] = []
            day_end_s = rig.clock() + 24 * HOUR_S
            while rig.clock() < day_end_s:
                rig.clock.advance(rng.uniform(60, 600))
                if rng.random() < 0.1 and created:
                    victim = created.pop(rng.randrange(len(created)))
                    if victim in rig.sim.entries and rig.sim.entries[victim].end is not None:
                        rig.sim.delete_entry(victim)
                else:
                    created.append(rig.sim.simulate_step(rng).id)
                for result in await rig.sim.deliver_webhooks(sender):
                    assert result.outcome == "dropped" or result.status == 200, result

            outcomes = [r.outcome for r in sender.log]
            assert 0.2 < outcomes.count("dropped") / len(outcomes) < 0.4
            assert rig.sim.deletions and rig.sim.running_entries()
            before = await stored_totals(rig.store, rig.sim.id, "PROJECT")
            assert before != expected_totals(rig.sim, rig.store.zone, "PROJECT", rig.clock())

            await poller.poll_running()
            await poller.reconcile()
            await assert_totals_match(rig)
            assert poller.state.repairs > 0
            repairs = poller.metrics.registry.get_sample_value("clockwall_reconcile_repairs_total")
            assert repairs == poller.state.repairs


# 3. Webhooks and polling together: duplicates, shuffles and late deliveries ---------------
async def test_webhooks_and_polling_with_duplicates_and_reordering(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        hooks = [
            rig.sim.add_webhook(HOOK_URL, event)
            for event in (NEW_TIMER_STARTED, TIMER_STOPPED, TIME_ENTRY_UPDATED)
        ]
        settings = Settings(
            redis_url=redis_url(DB),
            workspace_ids=(rig.sim.id,),
            webhook_tokens=tuple(WebhookToken(Secret(h.auth_token)) for h in hooks),
            mode="hybrid",
            timezone="UTC",
        )
        app = create_app(settings, redis=redis8, clock=rig.now)
        rig.store = app.state.service.store
        async with AppClient(app) as hook_http:
            sender = WebhookSender(hook_http, rng=random.Random(6), reorder="shuffle")
            poller = rig.poller(mode="hybrid")
            team = Team(rig.sim, seed=9, edits=True)
            rng = random.Random(4)

            async def deliver() -> None:
                roll = rng.random()
                if roll < 0.3:
                    sender.duplicate_next(2)
                elif roll < 0.5:
                    sender.hold_next(1)
                for result in await rig.sim.deliver_webhooks(sender):
                    assert result.outcome == "held" or result.status == 200, result

            await drive(rig, poller, team, hours=4, gap_s=(30, 240), after_step=deliver)
            await sender.send([])  # whatever is still held goes out now, late
            poller.due["reconcile"] = rig.now()
            await settle(rig, poller)
            await assert_totals_match(rig)

    outcomes = [r.outcome for r in sender.log]
    assert outcomes.count("held") >= 3
    assert len(outcomes) > len({id(r.delivery) for r in sender.log})  # duplicates went out
    assert {"start", "stop", "manual", "delete", "edit"} <= set(team.actions)
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET


# 4. Faults: 429 storms, 5xx, timeouts, malformed answers ---------------------------------
async def _fault_storm(rig: Rig, inject: Callable[[SimulatedWorkspace], None]) -> Poller:
    poller = rig.poller()
    await poller.run_once()
    assert poller.state.last_error is None and poller.state.backfilled
    team = Team(rig.sim, seed=3)
    for _ in range(4):
        team.act()
    inject(rig.sim)
    errors: list[str] = []
    deadline_s = rig.clock() + 3 * HOUR_S
    recovered = False
    while rig.clock() < deadline_s:
        try:
            wait_s = await poller.run_once()
        except Exception as exc:  # the contract under test: run_once never raises
            pytest.fail(f"run_once raised {exc!r}")
        if poller.state.last_error is not None:
            errors.append(poller.state.last_error)
        elif errors and rig.sim.count("entities_updated") and not rig.sim._faults:
            recovered = True
            break
        await poller.sleep(wait_s)
    assert errors, "the fault was not reported in state.last_error"
    assert recovered, f"no recovery: {errors[-1]}"
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET
    await settle(rig, poller)
    await assert_totals_match(rig)
    assert poller.state.last_error is None
    return poller


async def test_429_storm_backs_off_and_recovers(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        poller = await _fault_storm(rig, lambda sim: sim.fail_next(40, 429))
    limited = [r for r in rig.sim.requests if r.status == 429]
    assert len(limited) == 40
    # /metrics: every 429 answer counted, the budget left and the last good poll published.
    sample = poller.metrics.registry.get_sample_value
    assert sample("clockwall_api_rate_limited_total") == 40
    left = sample("clockwall_api_budget_remaining")
    assert left is not None and 0 <= left <= FREE_BUDGET
    assert (sample("clockwall_last_successful_poll_timestamp_seconds") or 0) > 0
    in_progress = {"endpoint": "in-progress", "status": "ok"}
    assert (sample("clockwall_poller_requests_total", in_progress) or 0) > 0
    # Backoff: not all 40 in a burst; retries wait, and the poller pauses between rounds.
    assert limited[-1].at_s - limited[0].at_s > 60


async def test_5xx_is_reported_and_recovers(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        await _fault_storm(rig, lambda sim: sim.fail_next(6, 503))
    assert rig.sim.count(status=503) == 6


async def test_timeouts_are_reported_and_recover(redis8: Redis) -> None:
    # The simulator answers late in real time; the client gives up after 50 ms.
    async with open_rig(redis8, timeout_s=0.05, max_retries=1, on_port=True) as rig:
        rig.sim.sleep = asyncio.sleep
        poller = await _fault_storm(rig, lambda sim: sim.delay_next(2, 0.3))
    assert poller.state.last_error is None


async def test_malformed_answers_are_reported_and_recover(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        await _fault_storm(rig, lambda sim: sim.malformed_next(3))


async def test_errors_name_the_problem(redis8: Redis) -> None:
    async with open_rig(redis8) as rig:
        poller = rig.poller()
        await poller.run_once()
        rig.sim.fail_next(4, 429)
        poller.due["running"] = rig.now()
        await poller.run_once()
        assert "429" in (poller.state.last_error or "")
        rig.sim.malformed_next(1)
        rig.clock.advance(3600)
        await poller.run_once()
        assert "not valid JSON" in (poller.state.last_error or "")
        rig.sim.fail_next(4, 502)
        rig.clock.advance(3600)
        await poller.run_once()
        assert "502" in (poller.state.last_error or "")


# 5. Two processes: one lease, one poller; a crash hands over within the TTL ----------------
class RequestCounter:
    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> None:
        self.count += 1
        self.event.set()


async def test_two_pollers_one_leader_and_failover(redis8: Redis) -> None:
    ttl_s = 0.5
    # On a port: the crash below cancels a poller mid-request, as a dying process would.
    async with open_rig(redis8, lease_ttl_s=ttl_s, on_port=True) as rig:
        counters = [RequestCounter(), RequestCounter()]
        https = [httpx.AsyncClient(event_hooks={"request": [c]}) for c in counters]
        pollers = [rig.poller(http=h) for h in https]
        leader_seen = [asyncio.Event(), asyncio.Event()]
        for index, poller in enumerate(pollers):

            def on_state(state: Any, index: int = index) -> None:
                if state.role == "leader":
                    leader_seen[index].set()

            poller.on_state = on_state

            async def yielding_sleep(seconds: float) -> None:
                rig.clock.advance(seconds)
                await asyncio.sleep(0.002)  # let the other "process" run, as real time would

            poller.sleep = yielding_sleep
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        try:
            done, _ = await asyncio.wait(
                [asyncio.create_task(e.wait()) for e in leader_seen],
                timeout=5,
                return_when=asyncio.FIRST_COMPLETED,
            )
            assert done, "nobody became leader"
            first = 0 if leader_seen[0].is_set() else 1
            other = 1 - first
            async with asyncio.timeout(5):
                while counters[first].count < 5 or pollers[other].state.role != "standby":
                    counters[first].event.clear()
                    await counters[first].event.wait()
            assert pollers[first].state.role == "leader"
            assert counters[other].count == 0 and not leader_seen[other].is_set()

            # Crash: the leader stops (no release); the lease lapses after ttl_s of real time.
            tasks[first].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[first]
            crashed_at = time.monotonic()
            crashed_count = counters[first].count
            await asyncio.wait_for(leader_seen[other].wait(), timeout=5)
            took_over_s = time.monotonic() - crashed_at
            assert took_over_s <= ttl_s + 1.0, took_over_s
            await asyncio.wait_for(counters[other].event.wait(), timeout=5)
            assert counters[other].count > 0
            assert counters[first].count == crashed_count
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for poller in pollers:
                await poller.stop()
            for http in https:
                await http.aclose()
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET


async def test_stop_releases_the_lease_at_once(redis8: Redis) -> None:
    async with open_rig(redis8, lease_ttl_s=30) as rig:
        first, second = rig.poller(), rig.poller()
        assert await first.lease.hold()
        assert not await second.lease.hold()
        await first.stop()
        assert first.state.role == "stopped"
        assert await second.lease.hold()


# 6. Entity-change endpoints unavailable: per-user entries instead --------------------------
async def test_without_entity_endpoints_falls_back_to_per_user_entries(redis8: Redis) -> None:
    async with open_rig(redis8, users=4) as rig:
        rig.sim.fail_next(100_000, status=404, path_contains="entities")
        poller = rig.poller()
        team = Team(rig.sim, seed=21)
        team.history = []  # deletions need entities/deleted; see the reconcile test
        await drive(rig, poller, team, hours=3)
        assert poller.state.source == "per-user"
        # A running timer deleted in Clockify: absent from its user's entries, so gone here.
        victim = rig.sim.running_entries()[0]
        await poller.poll_running()
        assert victim.id in {e["id"] for e in await rig.store.read_running(rig.sim.id)}
        rig.sim.delete_entry(victim.id)
        rig.clock.advance(poller.schedule.running_s)
        await poller.run_once()
        assert victim.id not in {e["id"] for e in await rig.store.read_running(rig.sim.id)}
        await settle_per_user(rig, poller)
        await assert_totals_match(rig)
    assert rig.sim.count("user_entries") > 0
    assert {"start", "stop", "manual"} <= set(team.actions)
    assert max_requests_per_rolling_hour(rig.sim) <= FREE_BUDGET
    assert rig.sim.count(status=429) == 0


async def settle_per_user(rig: Rig, poller: Poller) -> None:
    before = rig.sim.count("user_entries")
    deadline_s = rig.clock() + 3 * HOUR_S
    while rig.clock() < deadline_s:
        wait_s = await poller.run_once()
        if rig.sim.count("user_entries") >= before + len(rig.sim.users) and (
            poller.state.last_error is None
        ):
            return
        await poller.sleep(wait_s)
    raise AssertionError(f"no full per-user refresh: {poller.state}")
