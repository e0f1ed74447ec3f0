"""The history import (app/importer.py) against the simulated Clockify (httpx.ASGITransport) and a
real Redis (dbs.POLLER), on one fake clock: windows of at most 31 days on Free and one of up to
366 days on a paid plan, newest first, 1,000 rows a request; only the request budget's spare
spent, the running-timer poll on schedule; resumable after a kill, a 429 or a network error;
idempotent; no double counting with webhooks arriving meanwhile; coverage recorded.

Simulated hours run in seconds, but the apply path takes thousands of rows, so the module is
marked slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.config import Secret, Settings, WebhookToken
from app.importer import (
    CLAIM_TTL_S,
    HistoryImport,
    ImportJob,
    import_in_foreground,
    months_back,
    plan_job,
    read_coverage,
)
from app.main import create_app
from app.poller import Poller
from app.sim import (
    NEW_TIME_ENTRY,
    TIME_ENTRY_DELETED,
    TIME_ENTRY_UPDATED,
    ManualClock,
    SimEntry,
    SimProject,
    SimulatedWorkspace,
    SimUser,
    WebhookSender,
)
from app.sim.server import run_simulator, run_simulator_in_thread
from app.store import TotalsStore
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.payloads import AppClient
from tests.sim_rig import wired

pytestmark = pytest.mark.slow

DB = dbs.POLLER
ZONE = ZoneInfo("Europe/Berlin")
HOOK_URL = "http://clockwall.test/webhooks/clockify"
# The fake clock starts on Thursday 2026-01-01 10:00 UTC; the reporting week starts Monday.
TODAY = date(2026, 1, 1)
WEEK_START = date(2025, 12, 29)
HOUR_S = 3600.0


# The rig ---------------------------------------------------------------------------------------
@dataclass
class Request:
    """One Detailed report request: its window (wall-clock, as sent) and page."""

    start: str
    end: str
    page: int
    size: int
    at_s: float

    @property
    def first_day(self) -> date:
        return date.fromisoformat(self.start[:10])

    @property
    def last_day(self) -> date:
        return date.fromisoformat(self.end[:10])


@dataclass
class Rig:
    clock: ManualClock
    sim: SimulatedWorkspace
    users: list[SimUser]
    project: SimProject
    redis: Redis
    store: TotalsStore
    poller: Poller
    sender: WebhookSender
    http: httpx.AsyncClient
    requests: list[Request] = field(default_factory=list)
    # A hook run before each Detailed report request is sent (faults, a kill).
    before_report: Callable[[int], Awaitable[None]] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def history(self, months: int = 0, holder: str | None = None) -> HistoryImport:
        return HistoryImport(self.sim.id, self.redis, months=months, clock=self.now, holder=holder)

    def imports(self, since: date) -> list[Request]:
        """The import's requests (the week's backfill and the reconcile read this week)."""
        return [r for r in self.requests if r.first_day < WEEK_START and r.first_day >= since]

    async def job(self) -> ImportJob | None:
        return ImportJob.from_json(await self.redis.hget(keys.coverage(self.sim.id), "import"))

    async def covered_from(self) -> str | None:
        raw = await self.redis.hget(keys.coverage(self.sim.id), "from")
        return raw.decode() if raw else None

    async def deliver(self) -> None:
        for result in await self.sim.deliver_webhooks(self.sender):
            assert result.status == 200, result

    async def summary(self, start: date, end: date) -> dict[str, Any]:
        answer = await self.http.get(
            "/api/summary",
            params={"start": start.isoformat(), "end": end.isoformat(), "groupBy": "USER"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def truth(self, start: date, end: date) -> dict[str, int]:
        """Seconds per user of the stopped entries Clockify holds that start in [start, end]."""
        out: dict[str, int] = {}
        for entry in self.sim.entries.values():
            if entry.end is None or not start <= entry.start.astimezone(ZONE).date() <= end:
                continue
            seconds = int((entry.end - entry.start).total_seconds())
            out[entry.user_id] = out.get(entry.user_id, 0) + seconds
        return out

    async def assert_matches_clockify(self, start: date, end: date) -> None:
        summary = await self.summary(start, end)
        ours = {g["id"]: g["totalSeconds"] for g in summary["groups"] if g["totalSeconds"]}
        truth = self.truth(start, end)
        assert ours == truth
        assert summary["totalSeconds"] == sum(truth.values())

    async def run_service(self, *, limit_s: float = 48 * HOUR_S) -> None:
        """The poller's loop as the service runs it (its sleeps move the fake clock) until the
        import is done or failed."""
        end_s = self.clock() + limit_s
        while self.clock() < end_s:
            wait_s = await self.poller.run_once()
            job = await self.job()
            if job is not None and job.state in ("done", "failed"):
                return
            self.clock.advance(wait_s)
        raise AssertionError(f"the import did not finish in {limit_s / HOUR_S:.0f} simulated h")

    async def run_steps(self, history: HistoryImport, *, max_pages: int = 1) -> ImportJob:
        """`clockwall import`'s loop without its sleeps: step until done."""
        for _ in range(10_000):
            job = await history.step(self.poller, max_pages=max_pages)
            assert job is not None
            if job.state in ("done", "failed"):
                return job
            if history.stopped_for == "paused" and job.resume_at is not None:
                self.clock.set(job.resume_at + timedelta(seconds=1))
            elif history.stopped_for != "pages":
                self.clock.advance(60)
        raise AssertionError("the import never finished")


def add_history(
    sim: SimulatedWorkspace,
    users: list[SimUser],
    project: SimProject,
    *,
    days: int,
    per_user_day: int,
    rng: random.Random,
) -> None:
    """`per_user_day` entries a day for each user over the `days` days before today, made
    long ago (so the change polls do not list them as new)."""
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    now_s = clock()
    clock.advance(-500 * 86400)
    midnight = datetime(2026, 1, 1, tzinfo=ZONE)
    for back in range(1, days + 1):
        day_start = midnight - timedelta(days=back)
        for user in users:
            for k in range(per_user_day):
                start = day_start + timedelta(hours=7, minutes=k * 50 + rng.randint(0, 20))
                length = timedelta(minutes=rng.randint(5, 45), seconds=rng.randint(0, 59))
                sim.add_manual_entry(user, start, start + length, project, notify=False)
    clock.now_s = now_s


@contextlib.asynccontextmanager
async def open_rig(
    plan: str = "FREE",
    *,
    days: int = 0,
    users: int = 5,
    per_user_day: int = 3,
    events: tuple[str, ...] = (),
    budget_per_hour: int | None = None,
) -> AsyncIterator[Rig]:
    clock = ManualClock()
    sim = SimulatedWorkspace(plan=plan, clock=clock, rng=random.Random(1))
    team = [sim.add_user(f"Person {i:02d}", time_zone=str(ZONE)) for i in range(users)]
    project = sim.add_project("Website", sim.add_client("Acme GmbH", "EUR"), hourly_rate_minor=9500)
    add_history(sim, team, project, days=days, per_user_day=per_user_day, rng=random.Random(2))
    hooks = [sim.add_webhook(HOOK_URL, event) for event in events]
    settings = Settings(
        redis_url=redis_url(DB),
        workspace_ids=(sim.id,),
        webhook_tokens=tuple(WebhookToken(Secret(h.auth_token)) for h in hooks),
        mode="hybrid",
        timezone=str(ZONE),
    )
    if budget_per_hour is not None:
        sim.enforce_rate_limit = False  # the test asks for more than Free's 30 an hour
    rig: Rig | None = None

    async def record(request: httpx.Request) -> None:
        if not request.url.path.endswith("/reports/detailed"):
            return
        assert rig is not None
        if rig.before_report is not None:
            await rig.before_report(len(rig.requests))
        body = orjson.loads(request.content)
        rig.requests.append(
            Request(
                body["dateRangeStart"],
                body["dateRangeEnd"],
                body["detailedFilter"]["page"],
                body["detailedFilter"]["pageSize"],
                clock(),
            )
        )

    async with wired(sim, settings, clock, redis_url(DB), record) as w:
        w.poller.configured_budget = budget_per_hour
        rig = Rig(clock, sim, team, project, w.redis, w.store, w.poller, w.sender, w.sender.http)
        yield rig


# Free: 31-day windows, newest first, within the spare -----------------------------------------
async def test_free_imports_newest_first_in_31_day_windows_of_1000_rows_from_the_spare() -> None:
    # 89 days before this week, 35 entries a day: 1,085 rows in a full window, so two requests.
    async with open_rig("FREE", days=100, users=7, per_user_day=5) as rig:
        rig.poller.history = rig.history(months=3)  # the current month and three before

        await rig.run_service()

        since = months_back(TODAY, 3)
        assert since == date(2025, 10, 1)
        job = await rig.job()
        assert job is not None and job.state == "done", job
        # The week's backfill set `from` to Monday, so the import read the days before it.
        assert (job.since, job.until, job.next) == (since, WEEK_START - timedelta(days=1), None)
        reads = rig.imports(since)
        windows: list[tuple[date, date]] = []
        for r in reads:
            assert r.size == 1000 and r.page == 1  # the place is kept by time, not by page
            assert (r.last_day - r.first_day).days + 1 <= 31
            if not windows or windows[-1][0] != r.first_day:
                windows.append((r.first_day, r.last_day))
        # Newest first, back to back, covering [since, until] exactly.
        assert windows == [
            (date(2025, 11, 28), date(2025, 12, 28)),
            (date(2025, 10, 28), date(2025, 11, 27)),
            (date(2025, 10, 1), date(2025, 10, 27)),
        ]
        # 1,085 rows in a full window: two requests; 945 in the last: one.
        assert len(reads) == job.requests == expected_requests(rig, since) == 5
        assert await rig.covered_from() == "2025-10-01"
        await rig.assert_matches_clockify(since, TODAY)

        # Never over the budget, and the running-timer poll kept its schedule throughout.
        stamps = sorted(r.at_s for r in rig.sim.requests)
        assert max(rolling_hour(stamps)) <= 30
        assert rig.sim.count(status=429) == 0
        polls = [r.at_s for r in rig.sim.requests if r.endpoint == "in_progress"]
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        assert max(gaps) <= rig.poller.schedule.running_s + 1.0
        # On Free the import waits for the spare: it took simulated hours, not one burst.
        assert reads[-1].at_s - reads[0].at_s >= HOUR_S / 2


def expected_requests(rig: Rig, since: date) -> int:
    """Requests a newest-first import of [since, Sunday] on Free takes."""
    total, last = 0, WEEK_START - timedelta(days=1)
    while last >= since:
        first = max(since, last - timedelta(days=30))
        rows = sum(
            1
            for e in rig.sim.entries.values()
            if e.end is not None and first <= e.start.astimezone(ZONE).date() <= last
        )
        total += requests_for(rows)
        last = first - timedelta(days=1)
    return total


def requests_for(rows: int) -> int:
    """A window's first 1,000 rows, then 999 new ones a request (the bound's row again)."""
    return 1 if rows <= 1000 else 1 + -(-(rows - 1000) // 999)


def rolling_hour(stamps: list[float]) -> Iterator[int]:
    low = 0
    for high, at_s in enumerate(stamps):
        while stamps[low] <= at_s - HOUR_S:
            low += 1
        yield high - low + 1


async def test_free_progress_says_the_import_takes_hours_and_moves_coverage_back_per_window() -> (
    None
):
    async with open_rig("FREE", days=100, users=2, per_user_day=2) as rig:
        await rig.poller.run_once()  # discovery, the week's backfill: `from` is Monday
        assert await rig.covered_from() == WEEK_START.isoformat()
        history = rig.history()
        asked = await history.request(date(2025, 10, 1), TODAY)
        assert asked is not None and asked[0] is not None
        # Other unscheduled reads used the spare of this hour: the import waits, says why.
        while await rig.poller.can_afford_extra(1):
            assert await rig.poller.budget.acquire()
        job = await history.step(rig.poller)
        assert history.stopped_for == "spare" and job is not None
        assert "on Free" in job.message and "waiting for that spare" in job.message
        assert " h more" in job.message or " min more" in job.message
        coverage = (await rig.summary(date(2025, 12, 1), TODAY))["coverage"]
        assert coverage["from"] == WEEK_START.isoformat() and not coverage["complete"]
        assert coverage["importing"]["state"] == "running"

        rig.clock.advance(HOUR_S)
        job = await history.step(rig.poller, max_pages=1)
        assert job is not None and job.windows == 1
        # The newest window is whole: the data is complete from its first day.
        assert await rig.covered_from() == "2025-11-28"
        coverage = (await rig.summary(date(2025, 12, 1), TODAY))["coverage"]
        assert coverage["complete"] and coverage["importing"]["next"] == "2025-11-27"


# Paid: one window, 1,000 rows a request ----------------------------------------------------------
async def test_paid_plan_reads_a_year_in_one_window_of_1000_row_requests() -> None:
    async with open_rig("PRO_2021", days=400, users=4, per_user_day=2) as rig:
        await rig.poller.run_once()  # discovery and the week's backfill
        since = TODAY - timedelta(days=365)
        before = len(rig.sim.requests)
        history = rig.history()
        await history.request(since, TODAY)

        job = await rig.run_steps(history, max_pages=50)

        assert job.state == "done"
        reads = rig.imports(since)
        until = WEEK_START - timedelta(days=1)
        assert {(r.first_day, r.size) for r in reads} == {(since, 1000)}
        assert reads[0].last_day == until
        rows = sum(
            1 for e in rig.sim.entries.values() if since <= e.start.astimezone(ZONE).date() <= until
        )
        assert rows > 2000 and len(reads) == job.requests == requests_for(rows)
        assert len(rig.sim.requests) - before == job.requests  # nothing but the report pages
        assert await rig.covered_from() == since.isoformat()
        await rig.assert_matches_clockify(since, TODAY)


# Resume, pause, idempotence ----------------------------------------------------------------------
async def test_a_killed_import_resumes_where_it_stopped_and_reads_no_window_twice() -> None:
    async with open_rig("FREE", days=100, users=7, per_user_day=5, budget_per_hour=10_000) as rig:
        await rig.poller.run_once()
        since = date(2025, 10, 1)
        first = rig.history(holder="first")
        await first.request(since, TODAY)
        hang, reached = asyncio.Event(), asyncio.Event()

        async def kill_on_the_fourth(index: int) -> None:
            if len(rig.imports(since)) == 3:  # window 2, its second request
                reached.set()
                await hang.wait()

        rig.before_report = kill_on_the_fourth
        task = asyncio.create_task(rig.run_steps(first))
        await asyncio.wait_for(reached.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rig.before_report = None
        # A killed process cannot let go: its claim holds until it lapses.
        assert await first.claim()
        killed = await rig.job()
        assert killed is not None and killed.windows == 1 and killed.bound is not None

        second = rig.history(holder="second")
        assert await second.step(rig.poller) is not None and second.stopped_for == "busy"
        rig.clock.advance(CLAIM_TTL_S + 1)
        job = await rig.run_steps(second)

        assert job.state == "done" and job.windows == 3
        reads = [(r.start, r.end, r.page) for r in rig.imports(since)]
        # The second process went on at the first one's bound: no request went twice, and the
        # whole import took as many as one without a kill.
        assert len(reads) == len(set(reads)) == expected_requests(rig, since)
        assert len({r[0] for r in reads}) == 3  # three windows
        assert reads[3][0] == reads[2][0] and reads[3][1] < reads[2][1]  # window 2 went on
        await rig.assert_matches_clockify(since, TODAY)


async def test_a_429_pauses_the_import_and_it_resumes_where_it_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_rig("PRO_2021", days=60, users=10, per_user_day=3) as rig:
        await rig.poller.run_once()
        since = TODAY - timedelta(days=60)
        history = rig.history()
        await history.request(since, TODAY)
        await history.step(rig.poller, max_pages=1)  # the first 1,000 rows
        rig.sim.send_retry_after = True
        rig.sim.fail_next(4, status=429, retry_after_s=30, path_contains="/reports/")

        with caplog.at_level(logging.INFO, logger="app.importer"):
            job = await history.step(rig.poller, max_pages=5)
            assert job is not None and job.state == "paused" and history.stopped_for == "paused"
            assert job.error is not None and "429" in job.error
            assert "resumes there by itself" in job.message
            assert job.resume_at is not None and job.resume_at > rig.now()
            # Until then it waits, sending nothing.
            sent = len(rig.requests)
            await history.step(rig.poller)
            assert len(rig.requests) == sent and history.stopped_for == "paused"
            coverage = (await rig.summary(since, TODAY))["coverage"]
            assert coverage["importing"]["state"] == "paused"

            rig.clock.set(job.resume_at)
            job = await rig.run_steps(history, max_pages=5)
        assert job.state == "done"
        assert any("paused at" in r.getMessage() for r in caplog.records)
        assert any("resumed where it stopped" in r.getMessage() for r in caplog.records)
        # The refused request (four tries) was sent again once; every other request once.
        reads = Counter((r.start, r.end, r.page) for r in rig.imports(since))
        assert sorted(reads.values())[-1] == 5 and sorted(reads.values())[:-1] == [1] * (
            len(reads) - 1
        )
        await rig.assert_matches_clockify(since, TODAY)


async def test_a_network_error_pauses_the_import_and_it_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_rig("PRO_2021", days=40, users=10, per_user_day=3) as rig:
        await rig.poller.run_once()
        since = TODAY - timedelta(days=40)
        history = rig.history()
        await history.request(since, TODAY)
        failures = [4]  # every try of one request (3 retries)

        async def unreachable(index: int) -> None:
            if failures[0] > 0:
                failures[0] -= 1
                raise httpx.ConnectError("connection refused")

        rig.before_report = unreachable
        with caplog.at_level(logging.INFO, logger="app.importer"):
            job = await history.step(rig.poller)
            assert job is not None and job.state == "paused"
            assert job.error is not None and "failed to connect" in job.error
            job = await rig.run_steps(history, max_pages=5)
        assert job.state == "done"
        assert any("resumed where it stopped" in r.getMessage() for r in caplog.records)
        await rig.assert_matches_clockify(since, TODAY)


async def test_importing_again_changes_nothing() -> None:
    async with open_rig("PRO_2021", days=50, users=6, per_user_day=4) as rig:
        await rig.poller.run_once()
        since = TODAY - timedelta(days=50)
        history = rig.history()
        await history.request(since, TODAY)
        await rig.run_steps(history, max_pages=10)
        before = await rig.summary(since, TODAY)
        changes = await rig.redis.xlen(keys.changes(rig.sim.id))

        # Asked again: the data is complete from `since`, so nothing is read.
        sent = len(rig.requests)
        asked = await history.request(since, TODAY)
        assert asked is not None and asked[0] is not None and asked[0].state == "done"
        assert "nothing to import" in asked[1] and len(rig.requests) == sent
        # Read all again from scratch (coverage forgotten): every row is a duplicate.
        await rig.redis.hdel(keys.coverage(rig.sim.id), "from", "import")
        await history.request(since, TODAY)
        job = await rig.run_steps(history, max_pages=10)
        assert job.state == "done" and job.rows > 0 and len(rig.requests) > sent
        assert await rig.redis.xlen(keys.changes(rig.sim.id)) == changes
        assert await rig.summary(since, TODAY) == before


async def test_webhooks_arriving_during_the_import_are_not_counted_twice() -> None:
    events = (NEW_TIME_ENTRY, TIME_ENTRY_UPDATED, TIME_ENTRY_DELETED)
    async with open_rig("PRO_2021", days=120, users=8, per_user_day=4, events=events) as rig:
        await rig.poller.run_once()
        since = TODAY - timedelta(days=120)
        history = rig.history()
        await history.request(since, TODAY)
        rng = random.Random(9)
        for _ in range(30):
            job = await history.step(rig.poller, max_pages=1)
            assert job is not None
            # Meanwhile in Clockify: edits, deletions and new entries anywhere in the range,
            # in pages read already and in pages still to come; each by webhook too.
            for entry in rng.sample(stopped(rig), 3):
                assert entry.end is not None
                rig.sim.update_entry(
                    entry.id, end=entry.end + timedelta(minutes=rng.randint(1, 30))
                )
            for _ in range(2):
                rig.sim.delete_entry(rng.choice(stopped(rig)).id)
            start = rig.now() - timedelta(days=rng.randint(1, 119), hours=rng.randint(0, 12))
            rig.sim.add_manual_entry(rng.choice(rig.users), start, start + timedelta(hours=1))
            await rig.deliver()
            if job.state == "done":
                break
        assert job.state == "done", job
        await rig.assert_matches_clockify(since, TODAY)


def stopped(rig: Rig) -> list[SimEntry]:
    return [e for e in rig.sim.entries.values() if e.end is not None]


# Asking for an import ----------------------------------------------------------------------------
def test_plan_job_reads_only_what_coverage_lacks_and_extends_a_job_under_way() -> None:
    now = "2026-01-01T10:00:00+00:00"
    job, said = plan_job(None, date(2025, 10, 1), TODAY, None, now)
    assert job is not None and (job.since, job.until, job.next) == (
        date(2025, 10, 1),
        TODAY,
        TODAY,
    )
    job, _ = plan_job(None, date(2025, 10, 1), TODAY, WEEK_START, now)
    assert job is not None and job.until == date(2025, 12, 28)
    same, said = plan_job(job, date(2025, 11, 1), TODAY, WEEK_START, now)
    assert same is job and "under way" in said
    wider, said = plan_job(job, date(2025, 6, 1), TODAY, WEEK_START, now)
    assert wider is not None and wider.since == date(2025, 6, 1) and wider.next == job.next
    nothing, said = plan_job(None, date(2025, 12, 1), TODAY, date(2025, 11, 1), now)
    assert nothing is None and "nothing to import" in said
    # After a finished import, asking for more reads only the days before its `from`.
    done = ImportJob(date(2025, 10, 1), date(2025, 12, 28), None, state="done")
    more, said = plan_job(done, date(2025, 6, 1), TODAY, date(2025, 10, 1), now)
    assert more is not None and more is not done and more.state == "running"
    assert (more.since, more.until, more.next) == (
        date(2025, 6, 1),
        date(2025, 9, 30),
        date(2025, 9, 30),
    )
    assert months_back(date(2026, 1, 15), 1) == date(2025, 12, 1)
    assert months_back(date(2026, 3, 31), 14) == date(2025, 1, 1)
    assert months_back(date(2026, 3, 31), 0) == date(2026, 3, 1)


async def test_the_service_asks_for_its_months_once_and_zero_asks_for_none() -> None:
    async with open_rig("PRO_2021", days=10, users=2, per_user_day=1) as rig:
        rig.poller.history = rig.history(months=0)
        await rig.poller.run_once()
        assert await rig.job() is None and rig.imports(date(2000, 1, 1)) == []
        assert await rig.covered_from() == WEEK_START.isoformat()

        rig.poller.history = rig.history(months=1)
        await rig.poller.run_once()
        job = await rig.job()
        assert job is not None and job.since == date(2025, 12, 1) and job.state == "done"
        assert await rig.covered_from() == "2025-12-01"
        # A restart asks again and finds nothing to do.
        sent = len(rig.requests)
        rig.poller.history = rig.history(months=1)
        await rig.poller.run_once()
        assert [r for r in rig.requests[sent:] if r.first_day < WEEK_START] == []


async def test_readyz_shows_coverage_and_the_import_per_workspace() -> None:
    async with open_rig("PRO_2021", days=5, users=2, per_user_day=1) as rig:
        await rig.poller.run_once()
        history = rig.history()
        await history.request(date(2025, 12, 1), TODAY)
        answer = await rig.http.get("/readyz")
        coverage = answer.json()["coverage"][rig.sim.id]
        assert coverage["from"] == WEEK_START.isoformat()
        assert coverage["import"]["state"] == "running"
        assert coverage["import"]["since"] == "2025-12-01"
        assert await read_coverage(rig.redis, rig.sim.id) == coverage


# Coverage without an API key --------------------------------------------------------------------
async def test_webhook_only_mode_records_the_day_of_the_first_webhook_once() -> None:
    clock = ManualClock()
    sim = SimulatedWorkspace(clock=clock, rng=random.Random(3))
    user = sim.add_user("Ada", time_zone=str(ZONE))
    hook = sim.add_webhook(HOOK_URL, NEW_TIME_ENTRY)
    settings = Settings(
        redis_url=redis_url(DB),
        workspace_ids=(sim.id,),
        webhook_tokens=(WebhookToken(Secret(hook.auth_token)),),
        timezone=str(ZONE),
    )

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    async with redis_db(redis_url(DB)) as redis:
        app = create_app(settings, redis=redis, clock=now)
        async with AppClient(app) as http:
            sender = WebhookSender(http)
            start = sim.now() - timedelta(days=3)
            sim.add_manual_entry(user, start, start + timedelta(hours=1))
            for result in await sim.deliver_webhooks(sender):
                assert result.status == 200
            raw = await redis.hget(keys.coverage(sim.id), "from")
            assert raw == TODAY.isoformat().encode()
            answer = await http.get(
                "/api/summary", params={"start": "2025-12-01", "end": "2026-01-01"}
            )
            summary = answer.json()
            assert summary["coverage"] == {"from": TODAY.isoformat(), "complete": False}

            clock.advance(2 * 86400)
            sim.add_manual_entry(user, sim.now() - timedelta(hours=2), sim.now())
            await redis.hdel(keys.coverage(sim.id), "from")  # would be set again if asked
            for result in await sim.deliver_webhooks(sender):
                assert result.status == 200
            assert await redis.hget(keys.coverage(sim.id), "from") is None  # asked once


# `clockwall import` ------------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("CLOCKIFY_", "CLOCKWALL_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    return monkeypatch


def test_clockwall_import_says_what_to_set_without_a_key_or_redis(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    cli_env.setenv("CLOCKIFY_WORKSPACE_ID", "5f0e1a2b3c4d5e6f7a8b9c0d")
    assert main(["import", "--since", "2025-01-01"]) == 2
    assert "CLOCKIFY_API_KEY is not set" in capsys.readouterr().err
    cli_env.setenv("CLOCKIFY_API_KEY", "some-key-0123456789")
    assert main(["import", "--since", "2025-01-01"]) == 2
    assert "REDIS_URL is not set" in capsys.readouterr().err
    cli_env.setenv("REDIS_URL", redis_url(DB))
    assert main(["import", "--since", "January"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_clockwall_import_imports_in_the_foreground_and_again_finds_nothing_to_do(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(4))
    team = [sim.add_user(f"Person {i}", time_zone=str(ZONE)) for i in range(3)]
    project = sim.add_project("Website", sim.add_client("Acme GmbH", "EUR"), hourly_rate_minor=9500)
    today = datetime.now(ZONE).date()
    since = today - timedelta(days=20)
    for back in range(1, 21):
        for user in team:
            start = datetime.combine(today - timedelta(days=back), datetime.min.time(), ZONE)
            start += timedelta(hours=9)
            sim.add_manual_entry(user, start, start + timedelta(hours=2), project, notify=False)
    asyncio.run(_flush(redis_url(DB)))
    try:
        with run_simulator_in_thread(sim) as url:
            cli_env.setenv("CLOCKIFY_API_KEY", sim.api_key)
            cli_env.setenv("CLOCKIFY_WORKSPACE_ID", sim.id)
            cli_env.setenv("CLOCKIFY_API_URL", f"{url}/api/v1")
            cli_env.setenv("CLOCKIFY_REPORTS_URL", f"{url}/reports/v1")
            cli_env.setenv("REDIS_URL", redis_url(DB))
            cli_env.setenv("CLOCKWALL_TIMEZONE", str(ZONE))
            code = main(["import", "--since", since.isoformat()])
            out, err = capsys.readouterr()
            assert code == 0, err
            assert f"imported {since} to {today}: 60 entries" in out
            coverage = asyncio.run(_coverage(redis_url(DB), sim.id))
            assert coverage["from"] == since.isoformat()
            assert coverage["import"]["state"] == "done"

            reports = sim.count("detailed_report")
            assert main(["import", "--since", since.isoformat()]) == 0
            assert "nothing to import" in capsys.readouterr().out
            assert sim.count("detailed_report") == reports
            assert main(["import", "--since", (today + timedelta(days=2)).isoformat()]) == 2
            assert "after today" in capsys.readouterr().err
    finally:
        asyncio.run(_flush(redis_url(DB)))


async def test_ctrl_c_leaves_the_import_paused_where_it_stopped_for_the_next_run() -> None:
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(6))
    user = sim.add_user("Ada", time_zone=str(ZONE))
    start = datetime.now(UTC) - timedelta(days=5)
    sim.add_manual_entry(user, start, start + timedelta(hours=1), notify=False)
    async with run_simulator(sim) as url, redis_db(redis_url(DB)) as redis:
        settings = Settings(
            redis_url=redis_url(DB),
            api_key=Secret(sim.api_key),
            workspace_ids=(sim.id,),
            api_url=f"{url}/api/v1",
            reports_url=f"{url}/reports/v1",
            timezone=str(ZONE),
        )
        since = datetime.now(ZONE).date() - timedelta(days=30)
        task: asyncio.Task[tuple[int, str]] | None = None

        def show(job: ImportJob) -> None:
            assert task is not None
            task.cancel()  # as Ctrl-C does to `asyncio.run`'s task, before the first read

        task = asyncio.create_task(import_in_foreground(settings, sim.id, since, show, redis=redis))
        with pytest.raises(asyncio.CancelledError):
            await task
        job = ImportJob.from_json(await redis.hget(keys.coverage(sim.id), "import"))
        assert job is not None and job.state == "paused" and job.resume_at is None
        assert f"clockwall import --since {since}" in job.message
        assert sim.count("detailed_report") == 0

        # The next run goes on with it.
        code, said = await import_in_foreground(
            settings, sim.id, since, lambda job: None, redis=redis
        )
        assert code == 0 and "1 entries" in said


async def _flush(url: str) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def _coverage(url: str, ws: str) -> dict[str, Any]:
    redis = Redis.from_url(url)
    try:
        return await read_coverage(redis, ws)
    finally:
        await redis.aclose()
