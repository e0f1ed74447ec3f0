"""The poller: fills what webhooks miss, within a hard request budget, one per deployment.

One process per workspace holds a lease in Redis (renewed while alive; another process takes
over within `lease_ttl_s` when the holder dies). The holder spends its budget where freshness
matters most: running timers first (one workspace-wide call), then created/updated/deleted
entries through the three entity-change endpoints (falling back to per-user entries where those
are unavailable), a start-up backfill of the current week, and a periodic reconcile that
compares clockwall's totals for recent days with Clockify's and repairs each difference. Every
entry goes through `TotalsStore.apply_entry`, the same path as webhooks, so both can run
together; a poll row never erases a field it does not carry (the store keeps the stored value),
and a malformed row is skipped whole, logged and counted.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys
from app.budget import RequestBudget, budget_for_plan
from app.clockify import (
    FREE_REPORT_MAX_DAYS,
    BudgetExhaustedError,
    ClockifyClient,
    ClockifyError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
)
from app.config import WEEKDAYS
from app.metrics import Metrics
from app.models import (
    Named,
    PayloadError,
    Rate,
    parse_entry_id,
    parse_named,
    parse_time_entry,
)
from app.reporting import ReportingSettings, parse_owner_settings
from app.store import Clock, TotalsStore, utc_now
from app.webhook_health import WebhookWatch

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]

_RENEW_LUA = """
-- KEYS[1] lease key; ARGV[1] holder id; ARGV[2] ttl ms. Returns 1 when renewed or taken.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE_LUA = """
-- KEYS[1] lease key; ARGV[1] holder id. Deletes the lease only if we hold it.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """A Redis lease: at most one holder; it lapses `ttl_s` after the holder stops renewing."""

    def __init__(self, redis: Redis, key: str, ttl_s: float = 10.0) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def hold(self) -> bool:
        return int(await self._renew(keys=[self.key], args=[self.holder, self.ttl_ms])) == 1

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.holder])


@dataclass
class PollerState:
    """What /readyz, /metrics and the wall's freshness indicator show."""

    mode: str
    role: str = "starting"  # starting | leader | standby | stopped
    plan: str | None = None
    budget_per_hour: int | None = None
    requests_left: int | None = None
    last_success_at: str | None = None
    next_poll_at: str | None = None
    last_error: str | None = None
    backfilled: bool = False
    repairs: int = 0
    source: str = "entities"  # entities | per-user
    webhooks: list[str] = field(default_factory=list)  # the webhooks' problems, in short


@dataclass(frozen=True)
class Schedule:
    """Intervals derived from the budget: running timers get about two thirds of it."""

    running_s: float
    changes_s: float
    reconcile_s: float
    names_s: float

    @classmethod
    def for_budget(cls, per_hour: int, changes_calls: int = 3) -> Schedule:
        # Reserve a fifth (at least 8: plan, owner, four name lists, backfill, reconcile) and
        # give the in-progress call 3/5 of the rest, the entity-change trio (created, updated,
        # deleted) the other 2/5. On Free (30/h) that is timers every ~4.6 min (13 an hour)
        # and changes every 20 min (3 x 3 requests).
        spare = max(8, per_hour // 5)
        usable = max(3, per_hour - spare)
        changes_per_h = max(1, (usable - usable * 3 // 5) // changes_calls)
        running_per_h = max(1, usable - changes_per_h * changes_calls)
        # The budget's rolling hour holds both its ends, so an interval of exactly 3600/n
        # lets n+1 polls in; a hair longer and the hour holds n, as planned.
        stretch = 1 + 1e-6
        return cls(
            running_s=max(5.0, 3600 / running_per_h * stretch),
            changes_s=max(15.0, 3600 / changes_per_h * stretch),
            reconcile_s=max(900.0, 3600 * 6 if per_hour <= 60 else 900.0),
            names_s=max(600.0, 3600 * 24 if per_hour <= 60 else 3600.0),
        )


class Poller:
    def __init__(
        self,
        ws: str,
        client: ClockifyClient,
        store: TotalsStore,
        redis: Redis,
        metrics: Metrics,
        *,
        mode: str,
        budget: RequestBudget,
        configured_budget: int | None = None,
        check_owner_settings: bool = False,
        week_start_configured: bool = False,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        lease_ttl_s: float = 10.0,
        overlap_s: float = 120.0,
        on_state: Callable[[PollerState], None] | None = None,
    ) -> None:
        self.ws = ws
        self.client = client
        self.store = store
        self.redis = redis
        self.metrics = metrics
        self.budget = budget
        self.configured_budget = configured_budget
        self.clock = clock
        self.sleep = sleep
        self.lease = Lease(redis, keys.poller_lease(ws), lease_ttl_s)
        self.overlap = timedelta(seconds=overlap_s)
        self.on_state = on_state
        client.on_status = self._on_status
        self.state = PollerState(mode=mode)
        # The zone never changes at runtime (app/reporting.py settles it once); the poller
        # only notices when the key owner's profile no longer matches it.
        self.check_owner_settings = check_owner_settings
        # A week start the operator set (CLOCKWALL_WEEK_START) is no drift from the owner's.
        self.week_start_configured = week_start_configured
        self.reporting_warning: str | None = None
        self.schedule = Schedule.for_budget(budget.limit_per_hour)
        self.due: dict[str, datetime] = {}
        self.entities_available = True
        self.changes_calls = 3  # requests per changes poll: the entity-change trio, or per user
        self.currency: str | None = None  # the workspace's default, for rows that name none
        self.stale_running: set[str] = set()  # we show them running, Clockify does not
        self.discovered = False
        # Webhook health and replay of failed deliveries (set by the service when webhooks
        # feed the wall); it runs after the tasks above, from the schedule's spare.
        self.webhook_watch: WebhookWatch | None = None

    # Lifecycle --------------------------------------------------------------------------
    async def run(self) -> None:
        """Forever: hold the lease, do what is due, sleep until the next thing is due."""
        backoff_s = 1.0
        while True:
            try:
                if not await self.lease.hold():
                    self._set(role="standby")
                    await self.sleep(self.lease.ttl_ms / 3000)
                    continue
                if self.state.role != "leader":
                    log.info("poller for workspace %s: this process polls now", self.ws)
                    self._set(role="leader")
                wait_s = await self.run_once()
                backoff_s = 1.0
                await self.sleep(min(wait_s, self.lease.ttl_ms / 3000))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._set(last_error=f"store unavailable ({type(exc).__name__})")
                if self.webhook_watch is not None:
                    self.webhook_watch.request_replay()
                log.warning("poller: Redis unavailable (%s); retrying", type(exc).__name__)
                await self.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
            except Exception:
                # A bug must not kill polling for good: log it with its trace and go on.
                log.exception("poller: unexpected error; retrying")
                self._set(last_error="internal error (see the log)")
                await self.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)

    async def stop(self) -> None:
        self._set(role="stopped")
        with contextlib.suppress(RedisError, OSError):
            await self.lease.release()

    # One step ---------------------------------------------------------------------------
    async def run_once(self) -> float:
        """Do every task that is due now; return seconds until the next one is due."""
        now = self.clock()
        try:
            if not self.discovered:
                await self._discover()
            for task, interval_s, action in (
                ("names", self.schedule.names_s, self.refresh_names),
                ("running", self.schedule.running_s, self.poll_running),
                ("changes", self.schedule.changes_s, self.poll_changes),
                ("reconcile", self.schedule.reconcile_s, self.reconcile),
            ):
                if task == "reconcile" and not self.state.backfilled:
                    await self.backfill()
                    self.due["reconcile"] = now + timedelta(seconds=interval_s)
                    continue
                if self.due.get(task, now) <= now:
                    await action()
                    self.due[task] = now + timedelta(seconds=interval_s)
            if self.webhook_watch is not None:
                await self.webhook_watch.run_due(self._can_afford_extra)
                self._set(webhooks=list(self.webhook_watch.problems))
            self._set(last_success_at=self.clock().isoformat(), last_error=None)
            self.metrics.last_poll.set(time.time())
        except BudgetExhaustedError:
            free_at = datetime.fromtimestamp(await self.budget.next_free_at(), UTC)
            for task, due in self.due.items():
                self.due[task] = max(due, free_at)
            self.due.setdefault("running", free_at)
            self._set(last_error="hourly API budget used up; waiting for the next free slot")
        except RateLimitedError as exc:
            wait = exc.retry_after_s or 60.0
            for task in ("running", "changes"):
                self.due[task] = self.clock() + timedelta(seconds=wait)
            self._set(last_error=f"Clockify rate-limited us (429); pausing {wait:.0f} s")
        except ClockifyError as exc:
            self._set(last_error=str(exc))
            log.warning("poller: %s", exc)
            for task in ("running", "changes"):
                self.due[task] = self.clock() + timedelta(seconds=30)
        await self._publish_budget()
        next_due = min(self.due.values(), default=self.clock() + timedelta(seconds=5))
        self._set(next_poll_at=next_due.isoformat())
        return max(0.5, (next_due - self.clock()).total_seconds())

    async def _discover(self) -> None:
        workspace = await self.client.get_workspace(self.ws)
        self._count("workspace")
        plan = workspace.get("featureSubscriptionType")
        plan_text = plan if isinstance(plan, str) else None
        self.currency = _default_currency(workspace)
        per_hour = budget_for_plan(plan_text, self.configured_budget)
        self.budget.limit_per_hour = per_hour
        self.schedule = Schedule.for_budget(per_hour, self.changes_calls)
        if self.check_owner_settings:
            owner = parse_owner_settings(await self.client.get_user())
            self._count("user")
            self._compare_owner_settings(owner)
        self.discovered = True
        self._set(plan=plan_text, budget_per_hour=per_hour)
        log.info(
            "poller: workspace plan %s, budget %d requests/hour, timers every %.0f s",
            plan_text or "unknown",
            per_hour,
            self.schedule.running_s,
        )

    def _compare_owner_settings(self, owner: ReportingSettings | None) -> None:
        store = self.store
        if owner is None or (
            owner.zone.key == store.zone.key
            and (self.week_start_configured or owner.week_start_index == store.week_start_index)
        ):
            self.reporting_warning = None
            return
        warning = (
            f"the API key owner's Clockify profile now says {owner.zone.key}, week from "
            f"{owner.week_start}; the reporting zone stays {store.zone.key}, week from "
            f"{WEEKDAYS[store.week_start_index]}, until the totals are rebuilt (not yet "
            "automatic)"
        )
        if warning != self.reporting_warning:
            log.warning("workspace %s: %s", self.ws, warning)
        self.reporting_warning = warning

    async def _publish_budget(self) -> None:
        left = await self.budget.remaining()
        self.metrics.budget_left.set(left)
        self._set(requests_left=left)

    def _set(self, **changes: Any) -> None:
        before = asdict(self.state)
        for name, value in changes.items():
            setattr(self.state, name, value)
        if self.on_state and asdict(self.state) != before:
            self.on_state(self.state)

    def _on_status(self, status: int) -> None:
        if status == 429:
            self.metrics.rate_limited.inc()

    def _count(self, endpoint: str, status: str = "ok") -> None:
        self.metrics.poller_requests.labels(endpoint=endpoint, status=status).inc()

    # Tasks ------------------------------------------------------------------------------
    async def _apply_row(self, row: dict[str, Any], source: str, kind: str = "sync") -> str:
        row.setdefault("workspaceId", self.ws)
        try:
            entry = parse_time_entry(row)
        except PayloadError as exc:
            self._skip(source, row, str(exc))
            return "skipped"
        if entry.workspace_id != self.ws:
            return "skipped"
        rate = entry.hourly_rate
        if rate is not None and not rate.currency and self.currency:
            # A row with a rate but no currency: the store keeps the currency it holds for the
            # entry (still `unknown`); for an entry it has never seen, the workspace's default.
            entry = replace(entry, hourly_rate=Rate(rate.amount_minor, self.currency))
        return (await self.store.apply_entry(entry, kind)).outcome

    def _skip(self, source: str, row: dict[str, Any], why: str) -> None:
        entry_id = row.get("id") or row.get("_id")
        log.warning(
            "poller: skipped a malformed entry %.40r from Clockify (%s): %s; what clockwall "
            "holds for it stays until Clockify sends it whole",
            entry_id,
            source,
            why,
        )
        self.metrics.poll_rows_skipped.labels(source=source).inc()

    async def poll_running(self) -> None:
        rows = await self.client.list_in_progress(self.ws)
        self._count("in-progress")
        seen = set()
        for row in rows:
            seen.add(row.get("id"))
            await self._apply_row(row, "in-progress")
        # Timers we show as running that Clockify no longer runs were stopped or deleted;
        # the entity-change poll tells which, so make it due now if the budget's spare allows
        # (else the scheduled one will).
        stale = [e for e in await self.store.read_running(self.ws) if e["id"] not in seen]
        self.stale_running = {e["id"] for e in stale}
        if not stale:
            return
        if self.entities_available:
            if await self._can_afford_extra(self.changes_calls):
                self.due["changes"] = self.clock()
            return
        users = {e["userId"] for e in stale}
        if await self._can_afford_extra(len(users)):
            listed = await self._refresh_users(users)
            # Not among its user's recent entries (the last two days) any more: deleted.
            since = self.clock() - timedelta(days=2)
            for entry in stale:
                if entry["id"] not in listed and datetime.fromisoformat(entry["start"]) >= since:
                    await self.store.delete_entry(self.ws, entry["id"])

    async def _can_afford_extra(self, extra: int) -> bool:
        """Whether `extra` unscheduled requests now still leave a slot for every timer poll
        and scheduled changes poll of the coming hour. Only the schedule's spare may pay for
        them (on Free the start-up requests use it up in the first hour); spending more would
        starve the timer poll, which is what the wall shows first."""
        running_s, changes_s = self.schedule.running_s, self.schedule.changes_s
        window_s = 3600.0
        per_window = window_s / running_s + self.changes_calls * window_s / changes_s
        left = await self.budget.remaining()
        if left < extra:
            return False
        if left >= extra + per_window + 1:
            return True  # paid plans: far more than the schedule can spend
        now_s = self.clock().timestamp()
        grants: Any = await self.redis.zrangebyscore(
            keys.budget(self.ws), f"({now_s - window_s!r}", "+inf", withscores=True
        )
        granted = sorted(float(score) for _, score in grants)
        limit = self.budget.limit_per_hour
        # At each request the schedule sends in the coming hour (timer polls, and changes polls
        # from the one due next, which may be now), grants still in its window + the extra +
        # the schedule's sends until then must fit the limit.
        sends = [(now_s + k * running_s, 1) for k in range(1, int(window_s / running_s) + 1)]
        due_s = self.due["changes"].timestamp() if "changes" in self.due else now_s
        first_s = min(max(now_s, due_s), now_s + changes_s)
        sends += [
            (first_s + k * changes_s, self.changes_calls)
            for k in range(int(window_s / changes_s) + 1)
            if first_s + k * changes_s <= now_s + window_s
        ]
        scheduled = 0
        for moment_s, calls in sorted(sends):
            scheduled += calls
            still_in = len(granted) - bisect.bisect_right(granted, moment_s - window_s)
            if still_in + extra + scheduled > limit:
                return False
        return True

    async def poll_changes(self) -> None:
        if not self.entities_available:
            await self._refresh_users(None)
            return
        if await self.budget.remaining() < self.changes_calls:
            # The three calls go together: a poll the budget cuts short spends its first
            # requests for nothing, and repeating that each time a slot frees starves it.
            raise BudgetExhaustedError(
                f"the changes poll needs {self.changes_calls} requests; waiting for the budget"
            )
        cursor = await self._cursor()
        now = self.clock()
        since = cursor - self.overlap
        try:
            # /updated leaves out entries created in the window: those come from /created.
            created = await self.client.entities_created(self.ws, since, now)
            self._count("entities-created")
            updated = await self.client.entities_updated(self.ws, since, now)
            self._count("entities-updated")
            deleted = await self.client.entities_deleted(self.ws, since, now)
            self._count("entities-deleted")
        except (NotFoundError, ForbiddenError) as exc:
            log.warning(
                "poller: the entity-change endpoints are unavailable (%s); falling back to "
                "per-user time entries",
                type(exc).__name__,
            )
            self.entities_available = False
            # One request per user now: stretch the changes interval to fit the budget.
            self.changes_calls = max(1, len(await self.store.read_names(self.ws, "user")))
            self.schedule = Schedule.for_budget(self.budget.limit_per_hour, self.changes_calls)
            self._set(source="per-user")
            return
        for row in (*created, *updated):
            await self._apply_row(row, "entities")
        for item in deleted:
            await self._apply_deleted(item)
        await self.redis.hset(keys.poller_state(self.ws), "cursor", now.isoformat())

    async def _apply_deleted(self, item: dict[str, Any]) -> None:
        """`{id, deletedAt, document, documentCode}`: the entry is `document` (its id is the
        entry's; the item's own id may be the deletion record's)."""
        doc = item.get("document") if isinstance(item.get("document"), dict) else None
        entry_id = (doc or {}).get("id") or item.get("id")
        if not isinstance(entry_id, str) or not _is_entry_id(entry_id):
            self._skip("entities", item, "a deleted item without an entry id")
            return
        if doc is not None:
            try:
                entry = parse_time_entry({"workspaceId": self.ws, **doc, "id": entry_id})
            except PayloadError:
                entry = None  # a partial document still deletes its entry, by id
            if entry is not None and entry.workspace_id == self.ws:
                await self.store.apply_entry(entry, "delete")
                return
        await self.store.delete_entry(self.ws, entry_id)

    async def _cursor(self) -> datetime:
        raw = await self.redis.hget(keys.poller_state(self.ws), "cursor")
        if raw:
            return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
        start, _ = self.store.current_week()
        return datetime.combine(start, datetime.min.time(), self.store.zone).astimezone(UTC)

    async def _refresh_users(self, user_ids: set[str] | None) -> set[str]:
        """Fallback without entity changes: re-read recent entries per user (costs one
        request per user, so it runs at the changes interval, never per timer tick).
        Returns the ids of the entries seen."""
        users = user_ids
        if users is None:
            users = set((await self.store.read_names(self.ws, "user")).keys())
        since = self.clock() - timedelta(days=2)
        listed: set[str] = set()
        for user_id in sorted(users):
            rows = await self.client.list_user_entries(self.ws, user_id, since, self.clock())
            self._count("user-entries")
            for row in rows:
                listed.add(str(row.get("id")))
                await self._apply_row(row, "user-entries")
        return listed

    async def refresh_names(self) -> None:
        records: list[Named] = []
        for kind, fetch in (
            ("user", self.client.list_users),
            ("project", self.client.list_projects),
            ("client", self.client.list_clients),
            ("tag", self.client.list_tags),
        ):
            rows = await fetch(self.ws)
            self._count(f"{kind}s")
            for row in rows:
                try:
                    named = parse_named(kind, row, kind)
                except PayloadError:
                    continue
                if named is not None:
                    records.append(named)
                    if kind == "project" and named.client_id and row.get("clientName"):
                        records.append(Named("client", named.client_id, str(row["clientName"])))
        await self.store.apply_names(self.ws, records)
        await self._store_project_tracked(records)

    async def _store_project_tracked(self, records: list[Named]) -> None:
        """Clockify's own life totals of the projects, for their progress (store.read_progress);
        replaced whole, so a deleted project's figure goes with it."""
        tracked: list[str] = []
        for named in records:
            if named.kind == "project" and named.tracked_s is not None:
                tracked += [named.id, str(named.tracked_s)]
        key = keys.project_tracked(self.ws)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if tracked:
                pipe.hset(key, items=[*tracked, "readAt", self.clock().isoformat()])
            await pipe.execute()

    async def backfill(self, since: datetime | None = None) -> None:
        """The current week from the detailed report (per-user entries as the fallback), once
        a week; with `since`, everything from then on, now."""
        if since is not None:
            await self._sync_range(since, self.clock(), delete_missing=False)
            return
        marker = await self.redis.hget(keys.poller_state(self.ws), "backfilled")
        week_start, _ = self.store.current_week()
        if marker and (marker.decode() if isinstance(marker, bytes) else marker) == str(week_start):
            self._set(backfilled=True)
            return
        start = datetime.combine(week_start, datetime.min.time(), self.store.zone)
        await self._sync_range(start.astimezone(UTC), self.clock(), delete_missing=False)
        await self.redis.hset(keys.poller_state(self.ws), "backfilled", str(week_start))
        self._set(backfilled=True)
        log.info("poller: backfilled the week from %s", week_start)

    async def reconcile(self) -> None:
        """Compare the last two days with Clockify and repair every difference."""
        today = self.store.today()
        first = today - timedelta(days=1)
        start = datetime.combine(first, datetime.min.time(), self.store.zone).astimezone(UTC)
        ours = await self.store.read_summary(self.ws, first, today, "DATE")
        repairs = await self._sync_range(start, self.clock(), delete_missing=True)
        theirs = await self.store.read_summary(self.ws, first, today, "DATE")
        if repairs:
            log.warning(
                "reconcile: repaired %d entries; total for %s..%s was %d s, is now %d s",
                repairs,
                first,
                today,
                ours["totalSeconds"] - ours["runningSeconds"],
                theirs["totalSeconds"] - theirs["runningSeconds"],
            )
            self.metrics.reconcile_repairs.inc(repairs)
            self._set(repairs=self.state.repairs + repairs)

    async def _sync_range(self, start: datetime, end: datetime, *, delete_missing: bool) -> int:
        # An unknown plan is taken for FREE, as the budget takes it.
        free = self.state.plan is None or self.state.plan.strip().upper() == "FREE"
        try:
            rows = await self.client.detailed_report(
                self.ws,
                start,
                end,
                self.store.zone,
                max_days=FREE_REPORT_MAX_DAYS if free else None,
            )
            self._count("reports-detailed")
        except (NotFoundError, ForbiddenError):
            rows = []
            for user_id in sorted((await self.store.read_names(self.ws, "user")).keys()):
                rows += await self.client.list_user_entries(self.ws, user_id, start, end)
                self._count("user-entries")
        running_ids = {e["id"] for e in await self.store.read_running(self.ws)}
        repairs = 0
        seen: set[str] = set()
        for row in rows:
            entry_id = row.get("id") or row.get("_id")
            if not isinstance(entry_id, str):
                self._skip("report", row, "a row without an id")
                continue
            interval: dict[str, Any] = row.get("timeInterval") or {}
            if entry_id in running_ids and (
                not interval.get("end") or interval.get("duration") in (0, "PT0S", None)
            ):
                continue  # reports may show running timers as zero-length entries; a timer
                # we hold as running that the report shows with a length was stopped: repair
            row = dict(row, id=entry_id)
            # Seen even when malformed: a row Clockify lists is never deleted for its shape.
            seen.add(entry_id)
            outcome = await self._apply_row(row, "report")
            if outcome not in ("duplicate", "stale", "skipped"):
                repairs += 1
                log.info("reconcile: entry %s %s from Clockify", entry_id, outcome)
        if delete_missing:
            local = await self.store.read_entries(
                self.ws,
                start.astimezone(self.store.zone).date(),
                end.astimezone(self.store.zone).date(),
            )
            for entry in local["entries"]:
                # A timer we show as running is gone only if Clockify no longer runs it.
                running = entry["running"] and entry["id"] not in self.stale_running
                if running or entry["id"] in seen:
                    continue
                started = datetime.fromisoformat(entry["start"])
                if started < start or started > end:
                    continue
                result = await self.store.delete_entry(self.ws, entry["id"])
                if result.changed:
                    repairs += 1
                    log.info("reconcile: entry %s is gone from Clockify; removed", entry["id"])
        return repairs


def _default_currency(workspace: dict[str, Any]) -> str | None:
    """The workspace's default currency: `currencies[isDefault].code`, else its hourly
    rate's; None when it names none (or nothing like an ISO code)."""
    currencies = workspace.get("currencies")
    rate = workspace.get("hourlyRate")
    candidates = [
        item.get("code")
        for item in (currencies if isinstance(currencies, list) else ())
        if isinstance(item, dict) and item.get("isDefault")
    ]
    candidates.append(rate.get("currency") if isinstance(rate, dict) else None)
    for code in candidates:
        if isinstance(code, str) and len(code) == 3 and code.isascii() and code.isalpha():
            return code.upper()
    return None


def _is_entry_id(value: str) -> bool:
    try:
        parse_entry_id({"id": value})
    except PayloadError:
        return False
    return True


def poll_status_event(state: PollerState) -> bytes:
    return orjson.dumps({"type": "poll", **asdict(state)})
