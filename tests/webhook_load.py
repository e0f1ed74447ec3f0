"""A paced webhook load and its model: seeded lives of entries (manual, timers started then
stopped, edits, deletions) sent in order per entry at a steady rate, each answer noted, so a
test knows what was acknowledged and what the store may hold after faults.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from tests.conftest import TOKEN, WS
from tests.payloads import (
    ANA,
    BEN,
    CHLOE,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBSITE,
    Project,
    User,
    entry_2024,
    rate,
)
from tests.processes import TIMEZONE

# Every load entry starts in October 2026, so a query of this range sees all of them.
RANGE = {"start": "2026-09-30", "end": "2026-11-01"}
USERS: tuple[User, ...] = (ANA, BEN, CHLOE)
PROJECTS: tuple[Project | None, ...] = (WEBSITE, MOBILE, INTERNAL, None)
ZONE = ZoneInfo(TIMEZONE)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Step:
    """One delivery of an entry's life: the event, the body, and the state it leaves."""

    event: str
    body: dict[str, Any]
    state: dict[str, Any] | None  # None after a delete; {"running": True} for a timer


@dataclass
class EntryScript:
    """The deliveries of one entry, sent in order (the next only after the previous answered).
    `acked` counts the leading steps answered 2xx; `sent` those sent at all."""

    id: str
    steps: list[Step]
    acked: int = 0
    sent: int = 0

    def possible_states(self) -> list[dict[str, Any] | None]:
        """What the store may hold: the last acknowledged state, or any sent after it."""
        base: list[dict[str, Any] | None] = [
            self.steps[self.acked - 1].state if self.acked else None
        ]
        return base + [s.state for s in self.steps[self.acked : self.sent]]


def _state(body: dict[str, Any], running: bool = False) -> dict[str, Any]:
    interval = body["timeInterval"]
    start = datetime.fromisoformat(interval["start"])
    out: dict[str, Any] = {
        "id": body["id"],
        "start": interval["start"],
        "day": start.astimezone(ZONE).date().isoformat(),
        "user": body["userId"],
        "project": body["projectId"],
        "running": running,
        "seconds": 0,
    }
    if not running:
        end = datetime.fromisoformat(interval["end"])
        out["seconds"] = int((end - start).total_seconds())
    return out


def build_scripts(count: int, seed: int, prefix: int = 0, ws: str = WS) -> list[EntryScript]:
    """`count` entries with seeded lives: manual entries, timers started then stopped, edits
    (other length, project or day) and deletions, all starting in October 2026."""
    rng = random.Random(seed)
    scripts = []
    for n in range(count):
        entry_id = f"{prefix:04x}{n:020x}"
        start = datetime(2026, 10, 1, 6, 0, tzinfo=UTC) + timedelta(
            days=rng.randrange(30), minutes=rng.randrange(16 * 60)
        )
        end = start + timedelta(seconds=rng.randrange(60, 4 * 3600))
        fields: dict[str, Any] = {
            "user": rng.choice(USERS),
            "project": rng.choice(PROJECTS),
            "billable": rng.random() < 0.5,
            "hourly_rate": rate(rng.choice((5000, 10500))),
            "tags": rng.choice(((), (URGENT,), (URGENT, ONSITE))),
            "ws": ws,
        }
        done = entry_2024(entry_id, _iso(start), _iso(end), **fields)
        kind = rng.random()
        steps: list[Step]
        if kind < 0.45:
            steps = [Step("NEW_TIME_ENTRY", done, _state(done))]
        elif kind < 0.7:
            started = entry_2024(entry_id, _iso(start), None, **fields)
            steps = [
                Step("NEW_TIMER_STARTED", started, _state(started, running=True)),
                Step("TIMER_STOPPED", done, _state(done)),
            ]
        elif kind < 0.9:
            fields["project"] = rng.choice(PROJECTS)
            new_start = start + timedelta(hours=rng.choice((0, 0, 20)))
            new_end = new_start + timedelta(seconds=rng.randrange(60, 4 * 3600))
            edited = entry_2024(entry_id, _iso(new_start), _iso(new_end), **fields)
            steps = [
                Step("NEW_TIME_ENTRY", done, _state(done)),
                Step("TIME_ENTRY_UPDATED", edited, _state(edited)),
            ]
        else:
            steps = [
                Step("NEW_TIME_ENTRY", done, _state(done)),
                Step("TIME_ENTRY_DELETED", done, None),
            ]
        scripts.append(EntryScript(entry_id, steps))
    return scripts


@dataclass
class Outcomes:
    by_status: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no answer at all (refused, reset, timeout)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def note(self, status: int | None, error: str = "") -> None:
        if status is None:
            self.errors += 1
            self.error_kinds[error] = self.error_kinds.get(error, 0) + 1
        else:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def acked(self) -> int:
        return sum(n for s, n in self.by_status.items() if 200 <= s < 300)

    def count(self, low: int, high: int) -> int:
        return sum(n for s, n in self.by_status.items() if low <= s < high)


class WebhookLoad:
    """Sends the scripts' deliveries at a steady rate to `base_url`, each entry's steps in
    order, and records what each answer acknowledged."""

    def __init__(self, base_url: str, scripts: list[EntryScript], timeout_s: float = 5.0) -> None:
        self.base_url = base_url
        self.scripts = scripts
        self.outcomes = Outcomes()
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout, so a
            # delivery never goes out on a connection the server is closing at that moment.
            limits=httpx.Limits(
                max_connections=32, max_keepalive_connections=32, keepalive_expiry=1.0
            ),
        )
        self.change_ids: list[str] = []
        self.latencies_s: list[float] = []
        # Deliveries whose request is wholly sent and not yet answered: what a kill cuts off.
        self.in_flight = 0
        self.busy_at: int | None = None  # `busy` is set once this many are in flight at once
        self.busy = asyncio.Event()
        self.gap_s = 0.3  # between one entry's steps: its deliveries interleave with others

    async def aclose(self) -> None:
        await self.http.aclose()

    def latency_text(self) -> str:
        ordered = sorted(self.latencies_s) or [0.0]
        p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
        return f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1]:.2f} s"

    async def send(self, script: EntryScript) -> bool:
        """Send the script's next step; True when it was acknowledged (2xx)."""
        step = script.steps[script.sent]
        script.sent += 1
        started = time.monotonic()
        sent = False

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal sent
            if event == "http11.send_request_body.complete":
                sent = True
                self.in_flight += 1
                if self.busy_at is not None and self.in_flight >= self.busy_at:
                    self.busy.set()

        try:
            response = await self.http.post(
                "/webhooks/clockify",
                content=orjson.dumps(step.body),
                headers={
                    "clockify-signature": TOKEN,
                    "clockify-webhook-event-type": step.event,
                    "content-type": "application/json",
                },
                extensions={"trace": trace},
            )
        except httpx.TransportError as exc:
            self.outcomes.note(None, type(exc).__name__)
            return False
        finally:
            if sent:
                self.in_flight -= 1
        self.outcomes.note(response.status_code)
        self.latencies_s.append(time.monotonic() - started)
        if not 200 <= response.status_code < 300:
            return False
        script.acked = script.sent
        change_id = response.json().get("changeId")
        if change_id:
            self.change_ids.append(change_id)
        return True

    async def _life(self, script: EntryScript) -> None:
        while script.sent < len(script.steps):
            if not await self.send(script):
                return  # like Clockify: no more steps for it now; `resend` finishes it
            if script.sent < len(script.steps):
                await asyncio.sleep(self.gap_s)

    async def run(self, rate_per_s: float, start: int = 0, stop: int | None = None) -> None:
        """Start one entry every 1/rate seconds (scripts[start:stop]); wait for all to finish."""
        t0 = time.monotonic()
        tasks = []
        for index, script in enumerate(self.scripts[start:stop]):
            delay = t0 + index / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing, not synchronisation
            tasks.append(asyncio.create_task(self._life(script)))
        await asyncio.gather(*tasks)

    async def resend(self, rounds: int = 3) -> None:
        """What Clockify or an operator does after a 503: send again every step that was not
        acknowledged (from the first one), until each entry's life is complete."""
        for _ in range(rounds):
            pending = [s for s in self.scripts if s.acked < len(s.steps)]
            if not pending:
                return
            for script in pending:
                script.sent = script.acked
            await asyncio.gather(*(self._life(s) for s in pending))

    def model(self) -> dict[str, dict[str, Any]]:
        """The final state of every entry whose whole life was acknowledged (None: deleted)."""
        out: dict[str, dict[str, Any]] = {}
        for script in self.scripts:
            if script.acked and script.acked == len(script.steps):
                state = script.steps[-1].state
                if state is not None:
                    out[script.id] = state
        return out
