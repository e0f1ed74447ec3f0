"""The poller: fills what webhooks miss, within a hard request budget, one per deployment.

One process per workspace holds a lease in Redis (renewed while alive; another process takes
over within `lease_ttl_s` when the holder dies). The holder spends its budget where freshness
matters most: running timers first (one workspace-wide call), then created/updated/deleted
entries through the three entity-change endpoints (falling back to per-user entries where those
are unavailable), a start-up backfill of the current week, and a periodic reconcile that
compares clockwall's totals for recent days with Clockify's and repairs each difference. From
the spare, on start and hourly, it reads Clockify's reporting settings again (app/reporting.py)
and asks for a rebuild when the zone or report rounding changed. Every entry goes through
`TotalsStore.apply_entry`, the same path as webhooks, so both can run together; a poll row
never erases a field it does not carry (the store keeps the stored value), and a malformed row
is skipped whole, logged and counted.
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
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys, rebuild, reporting
from app.budget import RequestBudget, budget_for_plan
from app.clockify import (
    FREE_REPORT_MAX_DAYS,
    TIME_ENTRY,
    TIME_ENTRY_RATE,
    BadRequestError,
    BudgetExhaustedError,
    ClockifyClient,
    ClockifyError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
)
from app.config import Settings
from app.importer import HistoryImport, lower_coverage_from
from app.metrics import Metrics
from app.models import (
    Named,
    PayloadError,
    Rate,
    parse_entry_id,
    parse_named,
    parse_time_entry,
)
from app.projection import Basis
from app.rates import RatesMarker, default_since
from app.reporting import ReportingSettings
from app.store import Clock, TotalsStore, utc_now
from app.webhook_health import WebhookWatch

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
# Clockify's reporting settings are read again at most once an hour (and on start); a failed
# read is tried again after a quarter of an hour.
REPORTING_REFRESH_S = 3600.0
REPORTING_RETRY_S = 900.0

# How far back rates re-applied to past entries are re-read: a year of Detailed reports is 12
# requests on Free; older days heal as their entries are edited.
RATES_REREAD_MAX_DAYS = 366

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
        settings: Settings | None = None,
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
        # With settings, the reporting settings (zone, week start, rounding, duration format)
        # are read from Clockify again on start and hourly (reporting.refresh); a change of
        # what the totals depend on asks for a rebuild (app/rebuild.py).
        self.settings = settings
        self.reporting_warning: str | None = None  # shown in /readyz
        self.pending_rebuild: tuple[ReportingSettings, str] | None = None  # (new, reason)
        self._fresh_workspace: dict[str, Any] | None = None  # read by _discover this round
        self.schedule = Schedule.for_budget(budget.limit_per_hour)
        self.due: dict[str, datetime] = {}
        self.entities_available = True
        self.changes_calls = 3  # requests per changes poll: the entity-change trio, or per user
        self.currency: str | None = None  # the workspace's default, for rows that name none
        self.stale_running: set[str] = set()  # we show them running, Clockify does not
        self.discovered = False
        # Rates Clockify re-applied to past entries: the marker webhooks set (app/rates.py),
        # and whether the entity-change calls also ask for TIME_ENTRY_RATE changes (until
        # Clockify refuses that type).
        self.rates = RatesMarker(redis)
        self.rate_changes = True
        self._rates_floor_warned: str | None = None
        # Webhook health and replay of failed deliveries (set by the service when webhooks
        # feed the wall); it runs after the tasks above, from the schedule's spare.
        self.webhook_watch: WebhookWatch | None = None
        # The history import (app/importer.py, set by the service): last, from what is left of
        # the spare, so it never delays a timer poll.
        self.history: HistoryImport | None = None

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
            if self.pending_rebuild is not None:
                await self._request_rebuild()
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
            if self.settings is not None and self.due.get("reporting", now) <= now:
                await self._refresh_reporting_if_affordable()
            await self.reread_rates()
            if self.webhook_watch is not None:
                await self.webhook_watch.run_due(self._can_afford_extra)
                self._set(webhooks=list(self.webhook_watch.problems))
            if self.history is not None:
                await self.history.run_due(self)
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

    async def discover(self) -> None:
        """Read the workspace's plan and currency and size the schedule to the plan's budget
        (one request); for a process that only imports history (`clockwall import`)."""
        await self._discover()

    async def _discover(self) -> None:
        workspace = await self.client.get_workspace(self.ws)
        self._count("workspace")
        plan = workspace.get("featureSubscriptionType")
        plan_text = plan if isinstance(plan, str) else None
        self.currency = _default_currency(workspace)
        per_hour = budget_for_plan(plan_text, self.configured_budget)
        self.budget.limit_per_hour = per_hour
        self.schedule = Schedule.for_budget(per_hour, self.changes_calls)
        if self.settings is not None:
            # Due on start, with the workspace just read (one request fewer) if the budget's
            # spare allows it now; on Free the start-up reads may use that spare up first.
            self.due["reporting"] = self.clock()
            self._fresh_workspace = workspace
        self.discovered = True
        self._set(plan=plan_text, budget_per_hour=per_hour)
        log.info(
            "poller: workspace plan %s, budget %d requests/hour, timers every %.0f s",
            plan_text or "unknown",
            per_hour,
            self.schedule.running_s,
        )

    # Reporting settings ---------------------------------------------------------------------
    async def _refresh_reporting_if_affordable(self) -> None:
        """The refresh on start and hourly, paid from the schedule's spare only: when it would
        starve a timer or changes poll of the coming hour, it waits for the next timer poll."""
        settings = self.settings
        assert settings is not None
        workspace, self._fresh_workspace = self._fresh_workspace, None
        cost = reporting.refresh_cost(settings)
        if workspace is not None and reporting.reads_workspace(settings):
            cost -= 1
        if await self._can_afford_extra(cost):
            await self.refresh_reporting(workspace)
        else:
            self.due["reporting"] = self.clock() + timedelta(seconds=self.schedule.running_s)

    async def refresh_reporting(self, workspace: dict[str, Any] | None = None) -> None:
        """Read the reporting settings from Clockify again (reporting.refresh) and store what
        changed; a new zone or rounding asks for the totals to be rebuilt. A Clockify failure
        is logged and shown in /readyz, and tried again later: the totals keep their settings.
        Budget and rate limits go to run_once, which postpones everything alike."""
        settings = self.settings
        assert settings is not None
        now = self.clock()
        self.due["reporting"] = now + timedelta(seconds=REPORTING_RETRY_S)
        try:
            changed = await reporting.refresh(
                self.redis, self.ws, settings, self.client, workspace=workspace
            )
        except (BudgetExhaustedError, RateLimitedError):
            raise
        except ClockifyError as exc:
            self.reporting_warning = (
                f"could not read the reporting settings from Clockify ({exc}); the totals keep "
                f"the stored ones, trying again in {REPORTING_RETRY_S / 60:.0f} minutes"
            )
            log.warning("workspace %s: %s", self.ws, self.reporting_warning)
            return
        if reporting.reads_owner(settings):
            self._count("user")
        if reporting.reads_workspace(settings) and workspace is None:
            self._count("workspace")
        self.due["reporting"] = now + timedelta(seconds=REPORTING_REFRESH_S)
        if self.pending_rebuild is None:
            self.reporting_warning = None
        if changed is None:
            return
        old, new = changed
        what = reporting.describe_change(old, new)
        if new.projection_key() == old.projection_key():
            log.info(
                "workspace %s: Clockify's reporting settings changed (%s); stored, the totals "
                "stay as they are",
                self.ws,
                what,
            )
            return
        log.warning(
            "workspace %s: Clockify's reporting settings changed (%s); the totals are rebuilt",
            self.ws,
            what,
        )
        self.pending_rebuild = (new, f"Clockify's reporting settings changed: {what}")
        await self._request_rebuild()

    async def _request_rebuild(self) -> None:
        """Ask app/rebuild.py for totals built with the new zone and rounding. When that fails
        the request is kept and tried again at the next run, without holding up the polls
        (the new settings are stored already: a refresh would see no change to act on)."""
        assert self.pending_rebuild is not None
        new, reason = self.pending_rebuild
        rounding = new.rounding
        basis = Basis(new.zone, None if rounding is None else (rounding.mode, rounding.minutes))
        try:
            await rebuild.request_rebuild(self.redis, self.ws, basis, reason=reason)
        except (RedisError, OSError):
            raise
        except Exception as exc:
            warning = (
                f"the totals still follow the old reporting settings: asking for a rebuild "
                f"failed ({type(exc).__name__}: {exc}); trying again, or run `clockwall rebuild`"
            )
            if warning != self.reporting_warning:
                log.exception("workspace %s: %s", self.ws, warning)
            self.reporting_warning = warning
            return
        self.pending_rebuild = None
        self.reporting_warning = None

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
        rate, cost = entry.hourly_rate, entry.cost_rate
        if self.currency and ((rate and not rate.currency) or (cost and not cost.currency)):
            # A row with a rate but no currency: the store keeps the currency it holds for the
            # entry (still `unknown`); for an entry it has never seen, the workspace's default.
            entry = replace(
                entry,
                hourly_rate=Rate(rate.amount_minor, rate.currency or self.currency)
                if rate
                else None,
                cost_rate=Rate(cost.amount_minor, cost.currency or self.currency) if cost else None,
            )
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

    async def can_afford_extra(self, extra: int) -> bool:
        """The spare check for work outside the schedule (the history import)."""
        return await self._can_afford_extra(extra)

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
        # TIME_ENTRY_RATE changes (a rate re-applied to past entries) ride in the same calls.
        types = (TIME_ENTRY, TIME_ENTRY_RATE) if self.rate_changes else (TIME_ENTRY,)
        try:
            # /updated leaves out entries created in the window: those come from /created.
            created = await self.client.entities_created(self.ws, since, now, types=types)
            self._count("entities-created")
            updated = await self.client.entities_updated(self.ws, since, now, types=types)
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
        except BadRequestError as exc:
            if not self.rate_changes:
                raise
            # The cursor stays: the next poll asks for the window again, entries alone.
            self.rate_changes = False
            log.warning(
                "poller: Clockify refused TIME_ENTRY_RATE entity changes (%s); asking for time "
                "entries alone from now on (rates re-applied to past entries are still re-read "
                "when their BILLABLE_RATE_UPDATED / COST_RATE_UPDATED webhooks arrive)",
                exc,
            )
            return
        for row in (*created, *updated):
            if row.get("documentType") == TIME_ENTRY_RATE:
                await self._apply_rate_change(row)
            else:
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

    # Re-applied rates ------------------------------------------------------------------
    async def _apply_rate_change(self, doc: dict[str, Any]) -> None:
        """A TIME_ENTRY_RATE change: a rate re-applied to an entry. Clockify does not document
        its shape: where it reads as a whole entry clockwall holds (by `timeEntryId`, else
        `id`), it is applied as any changed entry; else the entry's day (or, unreadable, the
        current month) is marked for the Detailed report to re-read, so no entry is made up
        from a document misread."""
        entry_id = doc.get("timeEntryId") or doc.get("id")
        if isinstance(entry_id, str) and _is_entry_id(entry_id):
            row = {"workspaceId": self.ws, **doc, "id": entry_id}
            try:
                entry = parse_time_entry(row)
            except PayloadError:
                entry = None
            held = await self.redis.hexists(keys.entry_states(self.ws), entry_id)
            if entry is not None and held:
                await self._apply_row(row, "entities")
                return
            if entry is not None:
                await self._mark_rates(entry.start.astimezone(self.store.zone).date())
                return
        await self._mark_rates(None)

    async def _mark_rates(self, since: date | None) -> None:
        today = self.store.today()
        default = default_since(today, self.store.current_week()[0])
        await self.rates.mark(self.ws, min(since or default, today), self.clock(), default)

    async def reread_rates(self) -> None:
        """Clockify re-applied a billable or cost rate to past entries (a BILLABLE_/
        COST_RATE_UPDATED webhook or a TIME_ENTRY_RATE change marked the workspace,
        app/rates.py): re-read the entries from the marker's day on through the Detailed
        report, whose rows carry each entry's rate and cost rate, then move the marker on or
        clear it. Paid from the schedule's spare only; on Free one window of 31 days (one
        request) a run. A mark that came meanwhile leaves the marker whole for the next run."""
        marker = await self.rates.read(self.ws)
        if marker is None:
            return
        store = self.store
        today = store.today()
        try:
            first = date.fromisoformat(marker.since)
        except ValueError:  # "" from an older writer: the event named no day
            first = default_since(today, store.current_week()[0])
        floor = today - timedelta(days=RATES_REREAD_MAX_DAYS)
        if first < floor:
            if self._rates_floor_warned != marker.marks:
                self._rates_floor_warned = marker.marks
                log.warning(
                    "workspace %s: Clockify re-applied a rate to entries from %s on; clockwall "
                    "re-reads the last %d days (from %s), older amounts stay as they are until "
                    "those entries are edited",
                    self.ws,
                    first,
                    RATES_REREAD_MAX_DAYS,
                    floor,
                )
            first = floor
        first = min(first, today)
        if not await self._can_afford_extra(1):
            return  # the marker stays; a later run, with budget to spare, re-reads
        start = datetime.combine(first, datetime.min.time(), store.zone).astimezone(UTC)
        end, next_since = self.clock(), None
        free = self.state.plan is None or self.state.plan.strip().upper() == "FREE"
        if free and first + timedelta(days=FREE_REPORT_MAX_DAYS) <= today:
            # One request's window; the marker moves on to the day after it.
            next_since = first + timedelta(days=FREE_REPORT_MAX_DAYS)
            next_start = datetime.combine(next_since, datetime.min.time(), store.zone)
            end = next_start.astimezone(UTC) - timedelta(milliseconds=1)
        repairs = await self._sync_range(start, end, delete_missing=False)
        moved = await self.rates.advance(self.ws, marker, next_since)
        log.info(
            "poller: re-read entries from %s to %s for re-applied rates: %d changed; %s",
            first,
            end.astimezone(store.zone).date(),
            repairs,
            (f"more to re-read from {next_since}" if next_since else "done")
            if moved
            else "a new rate change came meanwhile, so the range is read again",
        )

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
            # Complete from the week's start (unless an import reached further back).
            await lower_coverage_from(self.redis, self.ws, week_start)
            self._set(backfilled=True)
            return
        start = datetime.combine(week_start, datetime.min.time(), self.store.zone)
        await self._sync_range(start.astimezone(UTC), self.clock(), delete_missing=False)
        await self.redis.hset(keys.poller_state(self.ws), "backfilled", str(week_start))
        await lower_coverage_from(self.redis, self.ws, week_start)
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
        seen: set[str] = set()
        repairs = await self.apply_report_rows(rows, running_ids, seen)
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

    async def apply_report_rows(
        self,
        rows: list[dict[str, Any]],
        running_ids: set[str],
        seen: set[str] | None = None,
        *,
        log_each: bool = True,
    ) -> int:
        """Detailed report rows through the one apply path as `sync`; returns how many changed
        what clockwall held. `running_ids`: the timers held as running (a report may list them
        as zero-length entries); `seen` collects the ids listed. The history import passes
        `log_each=False`: a year of rows is not a year of log lines."""
        repairs = 0
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
            if seen is not None:
                seen.add(entry_id)
            outcome = await self._apply_row(row, "report")
            if outcome not in ("duplicate", "stale", "skipped"):
                repairs += 1
                if log_each:
                    log.info("reconcile: entry %s %s from Clockify", entry_id, outcome)
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
