"""A model-based test: random sequences of Clockify deliveries through the real webhook endpoint
into the real Redis, checked after every step against a plain-Python model.

The model implements DESIGN.md section 2 and facts section 0 (an entry counts entirely on its
start day in the reporting zone; with report rounding on, each entry's duration is rounded, then
summed, and money uses the rounded time; a group's earned and cost amounts are the exact sums of
seconds x rate, rounded once; a project's client is its current one; a deleted project, client
or tag reads "Without ..."; running timers tick) and the ordering rules of
app/lua/apply_entry.lua (create / update / delete / restore), and computes every total by brute
force over the entries it holds. Settings changes rebuild the totals (app/rebuild.py) between
steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import event as event_note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from redis.asyncio import Redis

from app import keys
from app.main import create_app
from app.projection import Basis
from app.rebuild import request_rebuild, run_rebuild
from tests import dbs
from tests.conftest import WS, FixedClock, make_settings, redis_url
from tests.payloads import (
    ACME,
    ANA,
    BEN,
    CHLOE,
    GLOBEX,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBSITE,
    Client,
    Project,
    Tag,
    User,
    client_for,
    entry_2022,
    entry_2024,
    new_client,
    new_project,
    new_tag,
    post_webhook,
    rate,
    report_row,
    running_timer,
)

ZONE = ZoneInfo("Europe/Berlin")
# Starts fall on 29 March .. 1 April UTC: across Berlin's switch to summer time (29 March) and
# across a month boundary (late on 31 March UTC is already April in Berlin).
FIRST_DAY = datetime(2026, 3, 29, tzinfo=UTC)
RANGE = ("2026-03-28", "2026-04-04")  # day hashes; covers every start day in Berlin
SUB_RANGE = ("2026-03-31", "2026-04-01")
MONTH_RANGES = (("2026-03-01", "2026-04-30"), ("2026-03-01", "2026-04-01"))  # month rollups
START_CLOCK = datetime(2026, 4, 3, 6, 0, tzinfo=UTC)  # after every generated start
IDS = [f"66aa00000000000000000{n:03d}" for n in range(1, 4)]  # few ids: many collisions
NAMES = {
    "USER": {u.id: u.name for u in (ANA, BEN, CHLOE)},
    "PROJECT": {p.id: p.name for p in (WEBSITE, MOBILE, INTERNAL)},
    "CLIENT": {c.id: c.name for c in (WEBSITE.client, MOBILE.client) if c},
    "TAG": {URGENT.id: URGENT.name, ONSITE.id: ONSITE.name},
}
KINDS = {
    "NEW_TIMER_STARTED": "create",
    "NEW_TIME_ENTRY": "create",
    "TIMER_STOPPED": "update",
    "TIME_ENTRY_UPDATED": "update",
    "TIME_ENTRY_SPLIT": "update",
    "TIME_ENTRY_RESTORED": "restore",
    "TIME_ENTRY_DELETED": "delete",
}
NONE = None  # group id of "without project/client/tag" in the API


@dataclass(frozen=True)
class State:
    """What one delivery says about an entry (everything the store's fingerprint covers)."""

    user: User
    project: Project | None
    tags: tuple[Tag, ...]
    billable: bool
    rate: tuple[int, str] | None
    start: datetime
    end: datetime | None
    description: str
    cost: int | None = None  # cost rate, minor units an hour, in the rate's currency

    @property
    def running(self) -> bool:
        return self.end is None

    def day(self, zone: ZoneInfo) -> str:
        return self.start.astimezone(zone).date().isoformat()

    def key(self) -> tuple[Any, ...]:
        """Equal keys <=> equal stored state (tags are a set, as the store sorts them)."""
        return (
            self.user.id,
            self.project.id if self.project else None,
            tuple(sorted(t.id for t in self.tags)),
            self.billable,
            self.rate,
            self.start,
            self.end,
            self.description,
            self.cost if self.rate else None,
        )


@dataclass(frozen=True)
class Stored:
    status: str  # R running, L stopped, D deleted
    fingerprint: tuple[Any, ...] | None
    state: State | None


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def amount_minor(seconds: int, rate_minor: int) -> int:
    """One entry's own amount (the entries list): rounded half up on its own."""
    return (seconds * rate_minor + 1800) // 3600


def group_minor(exact: int) -> int:
    """A group's amount: its exact sum of seconds x rate, rounded half up once."""
    return (exact + 1800) // 3600


def body_for(
    entry_id: str, state: State, shape: str, clients: dict[str, Client | None]
) -> dict[str, Any]:
    """The delivery of `state`; its project object names the project's current client, as
    Clockify hydrates it when sending."""
    hourly = rate(*state.rate) if state.rate else None
    project = state.project
    if project is not None:
        project = replace(project, client=clients.get(project.id, project.client))
    common: dict[str, Any] = {
        "user": state.user,
        "project": project,
        "tags": state.tags,
        "billable": state.billable,
        "hourly_rate": hourly,
        "description": state.description,
    }
    if state.end is None:
        body = running_timer(entry_id, iso(state.start), keys_absent=shape == "absent", **common)
    elif shape == "2022":
        body = entry_2022(entry_id, iso(state.start), iso(state.end), **common)
    elif shape == "report":
        body = report_row(entry_id, iso(state.start), iso(state.end), **common)
    else:
        body = entry_2024(entry_id, iso(state.start), iso(state.end), **common)
    cost = state.cost if state.rate else None
    body["costRate"] = rate(cost, state.rate[1]) if cost and state.rate else None
    return body


# Strategies ---------------------------------------------------------------------------------
minutes_of_day = st.one_of(
    st.sampled_from([0, 1, 22 * 60 + 59, 23 * 60, 23 * 60 + 30, 23 * 60 + 59]),
    st.integers(0, 24 * 60 - 1),
)
starts = st.builds(
    lambda day, minute, second: FIRST_DAY + timedelta(days=day, minutes=minute, seconds=second),
    st.integers(0, 3),
    minutes_of_day,
    st.sampled_from([0, 17]),
)
durations = st.one_of(st.sampled_from([0, 26, 1500, 5400]), st.integers(1, 6 * 3600))
rates = st.sampled_from([None, (10500, "EUR"), (9000, "USD"), (1001, "EUR"), (777, "GBP")])
tag_sets = st.sampled_from([(), (URGENT,), (ONSITE,), (URGENT, ONSITE)])


@st.composite
def states(draw: st.DrawFn, running: bool | None = None) -> State:
    start = draw(starts)
    is_running = draw(st.booleans()) if running is None else running
    return State(
        user=draw(st.sampled_from([ANA, BEN, CHLOE])),
        project=draw(st.sampled_from([WEBSITE, MOBILE, INTERNAL, None])),
        tags=draw(tag_sets),
        billable=draw(st.booleans()),
        rate=draw(rates),
        start=start,
        end=None if is_running else start + timedelta(seconds=draw(durations)),
        description=draw(st.sampled_from(["", "Homepage", "Review"])),
        cost=draw(st.sampled_from([None, 4000, 333])),
    )


shapes = st.sampled_from(["2024", "2022", "report", "absent"])


# The model ----------------------------------------------------------------------------------
class Model:
    def __init__(self) -> None:
        self.entries: dict[str, Stored] = {}
        self.changes = 0
        self.zone = ZONE
        self.rounding: tuple[str, int] | None = None
        # Each project's current client; what Clockify deleted.
        self.clients: dict[str, Client | None] = {
            p.id: p.client for p in (WEBSITE, MOBILE, INTERNAL)
        }
        self.deleted: set[tuple[str, str]] = set()

    def counted(self, seconds: int) -> int:
        if self.rounding is None:
            return seconds
        mode, minutes = self.rounding
        step = minutes * 60
        if mode == "UP":
            return -(-seconds // step) * step
        if mode == "DOWN":
            return seconds // step * step
        return (seconds + step // 2) // step * step

    def project_of(self, state: State) -> str | None:
        if state.project is None or ("project", state.project.id) in self.deleted:
            return None
        return state.project.id

    def client_of(self, state: State) -> str | None:
        project = self.project_of(state)
        client = self.clients.get(project) if project else None
        if client is None or ("client", client.id) in self.deleted:
            return None
        return client.id

    def tags_of(self, state: State) -> list[str]:
        return sorted(t.id for t in state.tags if ("tag", t.id) not in self.deleted)

    def apply(self, kind: str, entry_id: str, state: State | None) -> bool:
        """The rules of apply_entry.lua; True when the store changes (and emits an event)."""
        old = self.entries.get(entry_id)
        fingerprint = state.key() if state else None
        if kind == "delete":
            if old and old.status == "D":
                return False
            kept = old.state if old and old.state else state
            self.entries[entry_id] = Stored("D", fingerprint, kept)
        else:
            assert state is not None
            status = "R" if state.running else "L"
            if kind == "create" and old:
                return False
            if old and old.status == "D" and kind == "update":
                return False
            if old and old.status != "D" and old.fingerprint == fingerprint:
                return False
            if old and old.status == "L" and status == "R" and kind != "restore":
                return False
            self.entries[entry_id] = Stored(status, fingerprint, state)
        self.changes += 1
        return True

    def live(self, days: Iterable[str]) -> list[tuple[str, State]]:
        wanted = set(days)
        return [
            (i, s.state)
            for i, s in sorted(self.entries.items())
            if s.status != "D" and s.state is not None and s.state.day(self.zone) in wanted
        ]

    def seconds(self, state: State, now: datetime) -> int:
        """As reports count them: each entry rounded on its own when rounding is on."""
        end = state.end or now
        return self.counted(max(0, int((end - state.start).total_seconds())))

    def summary(self, group: str, days: list[str], now: datetime) -> dict[str, Any]:
        groups: dict[Any, dict[str, Any]] = {}
        total = {"s": 0, "b": 0, "a": {}, "c": {}, "r": 0}

        def add(bucket: dict[str, Any], state: State, seconds: int) -> None:
            bucket["s"] += seconds
            if state.running:
                bucket["r"] += seconds
            if state.billable:
                bucket["b"] += seconds
                if state.rate:
                    exact = bucket["a"]  # summed exactly here, rounded by _visible
                    exact[state.rate[1]] = exact.get(state.rate[1], 0) + seconds * state.rate[0]
            if state.rate and state.cost:  # cost counts billable or not
                cost = bucket["c"]
                cost[state.rate[1]] = cost.get(state.rate[1], 0) + seconds * state.cost

        for _, state in self.live(days):
            seconds = self.seconds(state, now)
            if seconds == 0 and not state.running:
                continue  # a zero-length entry adds nothing to any total
            idents: list[Any] = {
                "PROJECT": [self.project_of(state)],
                "USER": [state.user.id],
                "CLIENT": [self.client_of(state)],
                "TAG": self.tags_of(state) or [NONE],
                "DATE": [state.day(self.zone)],
            }[group]
            for ident in idents:
                bucket = groups.setdefault(ident, {"s": 0, "b": 0, "a": {}, "c": {}, "r": 0})
                add(bucket, state, seconds)
            add(total, state, seconds)
        shown = {k: v for k, v in groups.items() if v["s"] or v["r"] or v["a"] or v["c"]}
        return {
            "groups": {k: _visible(v) for k, v in shown.items()},
            "total": _visible(total),
            "includesRunning": any(s.running for _, s in self.live(days)),
        }

    def team(self, days: list[str], now: datetime) -> dict[tuple[str, Any], int]:
        cells: dict[tuple[str, Any], int] = {}
        for _, state in self.live(days):
            cell = (state.user.id, self.project_of(state))
            cells[cell] = cells.get(cell, 0) + self.seconds(state, now)
        return {k: v for k, v in cells.items() if v}

    def entries_in(self, days: list[str], now: datetime) -> list[tuple[Any, ...]]:
        out = []
        for entry_id, state in self.live(days):
            seconds = self.seconds(state, now)
            amount = cost = 0
            if state.billable and state.rate:
                amount = amount_minor(seconds, state.rate[0])
            if state.rate and state.cost:
                cost = amount_minor(seconds, state.cost)
            out.append(
                (
                    entry_id,
                    state.day(self.zone),
                    seconds,
                    state.running,
                    amount,
                    cost,
                    state.rate[1] if (amount or cost) and state.rate else None,
                    self.project_of(state),
                    self.client_of(state),
                    self.tags_of(state),
                )
            )
        return sorted(out, key=lambda e: (iso(self.entries[e[0]].state.start), e[0]))  # type: ignore[union-attr]

    def running(self, now: datetime) -> list[tuple[str, int]]:
        """Each timer's elapsed seconds (never rounded: the timer's own clock)."""
        timers = [
            (s.state, i) for i, s in self.entries.items() if s.status == "R" and s.state is not None
        ]
        timers.sort(key=lambda t: (iso(t[0].start), t[1]))
        return [(i, max(0, int((now - state.start).total_seconds()))) for state, i in timers]


def _visible(bucket: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": bucket["s"],
        "billable": bucket["b"],
        "running": bucket["r"],
        "amounts": {c: group_minor(v) for c, v in bucket["a"].items() if group_minor(v)},
        "cost": {c: group_minor(v) for c, v in bucket["c"].items() if group_minor(v)},
    }


def _from_api(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": group["totalSeconds"],
        "billable": group["billableSeconds"],
        "running": group["runningSeconds"],
        "amounts": {a["currency"]: round(a["amount"] * 100) for a in group["amounts"]},
        "cost": {a["currency"]: round(a["amount"] * 100) for a in group["costAmounts"]},
    }


def days_of(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


# The machine --------------------------------------------------------------------------------
class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FixedClock(START_CLOCK)
        self.redis = Redis.from_url(redis_url(dbs.CORE))
        self.run(self.redis.flushdb())
        self.app = create_app(make_settings(), redis=self.redis, clock=self.clock)
        self.http = client_for(self.app)
        self.model = Model()
        self.last: dict[str, State] = {}  # the newest state generated per entry id
        self.history: list[tuple[str, bytes, str, State | None]] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.http.aclose())
        self.run(self.redis.flushdb())
        self.run(self.redis.aclose())
        self.loop.close()

    # Delivering ---------------------------------------------------------------------------
    def deliver(self, event: str, body: Any, entry_id: str, state: State | None) -> None:
        raw = orjson.dumps(body)
        self.history.append((event, raw, entry_id, state))
        self.send(event, raw, entry_id, state)

    def send(self, event: str, raw: bytes, entry_id: str, state: State | None) -> None:
        response = self.run(post_webhook(self.http, event, raw))
        assert response.status_code == 200, response.text
        changed = self.model.apply(KINDS[event], entry_id, state)
        answer = response.json()
        event_note(f"{event} -> {answer['outcome']}")  # see --hypothesis-show-statistics
        assert (answer["changeId"] is not None) == changed, (event, answer)
        if state is not None:
            self.last[entry_id] = state

    # Rules --------------------------------------------------------------------------------
    @initialize(stopped=states(running=False), timer=states(running=True))
    def seed(self, stopped: State, timer: State) -> None:
        """Start every case with a stopped entry and a running timer, so that most steps
        meet an existing entry (the interesting orderings need one)."""
        self.deliver(
            "NEW_TIME_ENTRY", body_for(IDS[0], stopped, "2024", self.model.clients), IDS[0], stopped
        )
        self.deliver(
            "NEW_TIMER_STARTED", body_for(IDS[1], timer, "2024", self.model.clients), IDS[1], timer
        )

    @rule(entry_id=st.sampled_from(IDS), state=states(running=True), shape=shapes)
    def start_timer(self, entry_id: str, state: State, shape: str) -> None:
        self.deliver(
            "NEW_TIMER_STARTED",
            body_for(entry_id, state, shape, self.model.clients),
            entry_id,
            state,
        )

    @rule(entry_id=st.sampled_from(IDS), state=states(running=False), shape=shapes)
    def manual_entry(self, entry_id: str, state: State, shape: str) -> None:
        self.deliver(
            "NEW_TIME_ENTRY", body_for(entry_id, state, shape, self.model.clients), entry_id, state
        )

    @rule(
        entry_id=st.sampled_from(IDS),
        fallback=states(running=True),
        seconds=durations,
        shape=shapes,
    )
    def stop_timer(self, entry_id: str, fallback: State, seconds: int, shape: str) -> None:
        base = self.last.get(entry_id, fallback)
        state = replace(base, end=base.start + timedelta(seconds=seconds))
        self.deliver(
            "TIMER_STOPPED", body_for(entry_id, state, shape, self.model.clients), entry_id, state
        )

    @rule(
        entry_id=st.sampled_from(IDS),
        fallback=states(),
        change=st.sampled_from(
            ["day", "midnight", "project", "billable", "rate", "tags", "length", "running"]
        ),
        data=st.data(),
        event=st.sampled_from(["TIME_ENTRY_UPDATED", "TIME_ENTRY_SPLIT"]),
        shape=shapes,
    )
    def edit(
        self,
        entry_id: str,
        fallback: State,
        change: str,
        data: st.DataObject,
        event: str,
        shape: str,
    ) -> None:
        base = self.last.get(entry_id, fallback)
        length = None if base.end is None else base.end - base.start
        if change == "day":
            day_shift = data.draw(st.sampled_from([-1, 1]))
            start = base.start + timedelta(days=day_shift)
            if not FIRST_DAY <= start < FIRST_DAY + timedelta(days=4):
                start = base.start - timedelta(days=day_shift)
            state = replace(base, start=start)
        elif change == "midnight":
            # Across midnight in Berlin: 22:30 UTC is the same day there, 23:30 the next.
            midnight = base.start.replace(hour=0, minute=0, second=0)
            minute = data.draw(st.sampled_from([22 * 60 + 30, 23 * 60 + 30, 30]))
            state = replace(base, start=midnight + timedelta(minutes=minute))
        elif change == "project":
            project = data.draw(st.sampled_from([WEBSITE, MOBILE, INTERNAL, None]))
            state = replace(base, project=project)
        elif change == "billable":
            state = replace(base, billable=not base.billable)
        elif change == "rate":
            state = replace(base, rate=data.draw(rates), billable=True)
        elif change == "tags":
            state = replace(base, tags=data.draw(tag_sets))
        elif change == "length":
            length = timedelta(seconds=data.draw(durations))
            state = base
        else:  # edit a running timer, or make a stopped entry a (late) running state
            length = None
            state = replace(base, description=data.draw(st.sampled_from(["", "Homepage"])))
        state = replace(state, end=None if length is None else state.start + length)
        self.deliver(event, body_for(entry_id, state, shape, self.model.clients), entry_id, state)

    @rule(entry_id=st.sampled_from(IDS), fallback=states(running=False), shape=shapes)
    def late_running_edit(self, entry_id: str, fallback: State, shape: str) -> None:
        """An edit made while the timer ran, delivered after the stop (the separate webhook
        streams give no order): it must not restart the timer."""
        base = self.last.get(entry_id, fallback)
        state = replace(base, end=None, description=base.description + " (edited)")
        self.deliver(
            "TIME_ENTRY_UPDATED",
            body_for(entry_id, state, shape, self.model.clients),
            entry_id,
            state,
        )

    @rule(entry_id=st.sampled_from(IDS), id_only=st.booleans(), shape=shapes)
    def delete(self, entry_id: str, id_only: bool, shape: str) -> None:
        state = self.last.get(entry_id)
        if id_only or state is None:
            self.deliver("TIME_ENTRY_DELETED", {"id": entry_id, "workspaceId": WS}, entry_id, None)
        else:
            self.deliver(
                "TIME_ENTRY_DELETED",
                body_for(entry_id, state, shape, self.model.clients),
                entry_id,
                state,
            )

    @rule(entry_id=st.sampled_from(IDS), fallback=states(running=False), shape=shapes)
    def restore(self, entry_id: str, fallback: State, shape: str) -> None:
        state = self.last.get(entry_id, fallback)
        self.deliver(
            "TIME_ENTRY_RESTORED",
            body_for(entry_id, state, shape, self.model.clients),
            entry_id,
            state,
        )

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A duplicate, or a stale event arriving late (after newer ones)."""
        index = data.draw(st.integers(0, len(self.history) - 1))
        event, raw, entry_id, state = self.history[index]
        self.send(event, raw, entry_id, state)

    @rule(minutes=st.integers(1, 600))
    def tick(self, minutes: int) -> None:
        self.clock.now += timedelta(minutes=minutes)

    # Names and settings Clockify changes after the entries were applied -------------------
    def name_event(self, event: str, body: dict[str, Any]) -> None:
        before = self.run(self.redis.xlen(keys.changes(WS)))
        response = self.run(post_webhook(self.http, event, orjson.dumps(body)))
        assert response.status_code == 200, response.text
        # A names event is appended when a record changed (which the model does not track).
        self.model.changes += self.run(self.redis.xlen(keys.changes(WS))) - before

    @rule(
        project=st.sampled_from([WEBSITE, MOBILE, INTERNAL]),
        client=st.sampled_from([ACME, GLOBEX, None]),
    )
    def move_project(self, project: Project, client: Client | None) -> None:
        """PROJECT_UPDATED with another client: its hours move in every range."""
        self.name_event("PROJECT_UPDATED", new_project(replace(project, client=client)))
        self.model.clients[project.id] = client
        self.model.deleted.discard(("project", project.id))

    @rule(kind=st.sampled_from(["project", "client", "tag"]), n=st.integers(0, 2))
    def delete_name(self, kind: str, n: int) -> None:
        """Deleted in Clockify: the time stays, as "Without project / client / tag"."""
        if kind == "project":
            project = (WEBSITE, MOBILE, INTERNAL)[n]
            current = replace(project, client=self.model.clients[project.id])
            self.name_event("PROJECT_DELETED", new_project(current))
            self.model.deleted.add(("project", project.id))
        elif kind == "client":
            client = (ACME, GLOBEX, ACME)[n]
            self.name_event("CLIENT_DELETED", new_client(client))
            self.model.deleted.add(("client", client.id))
        else:
            tag = (URGENT, ONSITE, URGENT)[n]
            self.name_event("TAG_DELETED", new_tag(tag))
            self.model.deleted.add(("tag", tag.id))

    @rule(kind=st.sampled_from(["project", "client", "tag"]), n=st.integers(0, 2))
    def restore_name(self, kind: str, n: int) -> None:
        """Created again (NEW_*): its time shows under it again."""
        if kind == "project":
            project = (WEBSITE, MOBILE, INTERNAL)[n]
            current = replace(project, client=self.model.clients[project.id])
            self.name_event("NEW_PROJECT", new_project(current))
            self.model.deleted.discard(("project", project.id))
        elif kind == "client":
            client = (ACME, GLOBEX, ACME)[n]
            self.name_event("NEW_CLIENT", new_client(client))
            self.model.deleted.discard(("client", client.id))
        else:
            tag = (URGENT, ONSITE, URGENT)[n]
            self.name_event("NEW_TAG", new_tag(tag))
            self.model.deleted.discard(("tag", tag.id))

    @rule(
        zone=st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
        rounding=st.sampled_from([None, ("UP", 15), ("DOWN", 6), ("NEAREST", 30)]),
    )
    def change_settings(self, zone: str, rounding: tuple[str, int] | None) -> None:
        """The reporting zone or report rounding changed: the totals are rebuilt online."""
        store = self.app.state.service.store
        basis = Basis(ZoneInfo(zone), rounding)
        if self.run(request_rebuild(self.redis, WS, basis, "model")) is None:
            return  # the same settings: nothing to rebuild
        assert self.run(run_rebuild(store, WS, grace_s=0))
        self.model.zone, self.model.rounding = ZoneInfo(zone), rounding
        self.model.changes += 1  # the switch announces itself on the change stream

    # The check ----------------------------------------------------------------------------
    @invariant()
    def api_agrees_with_model(self) -> None:
        self.run(self.check())

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def check(self) -> None:
        now = self.clock.now
        model = self.model
        for start, end, groups in (
            (*RANGE, ("PROJECT", "USER", "CLIENT", "TAG", "DATE")),
            (*SUB_RANGE, ("DATE", "TAG")),
            *((*month_range, ("PROJECT", "TAG", "CLIENT")) for month_range in MONTH_RANGES),
        ):
            days = days_of(start, end)
            for group in groups:
                answer = await self.get("/api/summary", groupBy=group, start=start, end=end)
                expected = model.summary(group, days, now)
                if group == "DATE":  # every day is listed; the model holds those with time
                    assert [g["id"] for g in answer["groups"]] == days
                got = {
                    g["id"]: _from_api(g)
                    for g in answer["groups"]
                    if g["totalSeconds"] or g["runningSeconds"] or g["amounts"] or g["costAmounts"]
                }
                assert got == expected["groups"], (group, start, end)
                assert _from_api(answer) == expected["total"], (group, start, end)
                assert answer["includesRunning"] == expected["includesRunning"]
                for g in answer["groups"]:
                    if group in NAMES and g["id"] is not None:
                        assert g["name"] == NAMES[group][g["id"]]
                    elif group == "DATE":
                        assert g["name"] == g["id"]

        days = days_of(*RANGE)
        team = await self.get("/api/team", start=RANGE[0], end=RANGE[1])
        cells = {
            (u["id"], p["id"]): team["cells"][r][c]
            for r, u in enumerate(team["users"])
            for c, p in enumerate(team["projects"])
            if team["cells"][r][c]
        }
        expected_cells = model.team(days, now)
        assert cells == expected_cells
        assert team["totalSeconds"] == sum(expected_cells.values())
        for r, user in enumerate(team["users"]):
            assert user["totalSeconds"] == sum(team["cells"][r])

        entries = await self.get("/api/entries", start=RANGE[0], end=RANGE[1])
        got_entries = [
            (
                e["id"],
                e["day"],
                e["durationSeconds"],
                e["running"],
                round(e["billableAmount"] * 100),
                round(e["costAmount"] * 100),
                e["currency"],
                e["project"]["id"] if e["project"] else None,
                e["client"]["id"] if e["client"] else None,
                sorted(t["id"] for t in e["tags"]),
            )
            for e in entries["entries"]
        ]
        assert got_entries == model.entries_in(days, now)

        running = await self.get("/api/running")
        got_running = [(t["id"], t["elapsedSeconds"]) for t in running["running"]]
        assert got_running == model.running(now)

        assert await self.redis.xlen(keys.changes(WS)) == model.changes


# On top of the loaded profile ("ci": derandomized); each example runs up to 25 deliveries.
StoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25)
TestStoreModel = pytest.mark.slow(StoreMachine.TestCase)


def test_model_matches_a_hand_worked_example() -> None:
    """The model itself, on numbers worked out by hand (a wrong model proves nothing)."""
    model = Model()
    now = START_CLOCK
    start = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Berlin (CEST)
    stopped = State(
        ANA,
        WEBSITE,
        (URGENT, ONSITE),
        True,
        (10500, "EUR"),
        start,
        start + timedelta(minutes=90),
        "",
    )
    assert model.apply("create", IDS[0], stopped)
    assert not model.apply("create", IDS[0], stopped)
    late_start = replace(stopped, end=None)
    assert not model.apply("update", IDS[0], late_start)
    days = days_of(*RANGE)
    tags = model.summary("TAG", days, now)
    assert tags["total"] == {
        "seconds": 5400,
        "billable": 5400,
        "running": 0,
        "amounts": {"EUR": 15750},
        "cost": {},
    }
    assert set(tags["groups"]) == {URGENT.id, ONSITE.id}
    assert set(model.summary("DATE", days, now)["groups"]) == {"2026-04-01"}
    assert model.apply("delete", IDS[0], None)
    assert model.summary("USER", days, now)["groups"] == {}
    assert not model.apply("update", IDS[0], stopped)
    assert model.apply("restore", IDS[0], stopped)
    assert model.summary("USER", days, now)["total"]["seconds"] == 5400
    # Rounded up to 15 minutes in New York (31 March there), with a cost rate: 90 min stays
    # 90 min; 40.00 cost an hour on 1.5 h is 60.00; profit is what remains of 157.50.
    model.zone, model.rounding = ZoneInfo("America/New_York"), ("UP", 15)
    assert model.apply("update", IDS[0], replace(stopped, cost=4000))
    total = model.summary("TAG", days_of(*RANGE), now)["total"]
    assert (total["seconds"], total["amounts"], total["cost"]) == (
        5400,
        {"EUR": 15750},
        {"EUR": 6000},
    )
    assert set(model.summary("DATE", days, now)["groups"]) == {"2026-03-31"}
    short = replace(stopped, end=start + timedelta(seconds=61), cost=4000)
    assert model.apply("update", IDS[0], short)
    total = model.summary("USER", days, now)["total"]
    assert (total["seconds"], total["amounts"], total["cost"]) == (
        900,
        {"EUR": 2625},
        {"EUR": 1000},
    )
    model.deleted.add(("project", WEBSITE.id))
    assert set(model.summary("PROJECT", days, now)["groups"]) == {None}
    assert set(model.summary("CLIENT", days, now)["groups"]) == {None}
