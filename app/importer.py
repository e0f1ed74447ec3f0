"""The history import: Clockify's Detailed report read window by window into the one apply path,
within the request budget's spare, resumable; and the coverage it records (keys.coverage).

The coverage hash `cw:{ws}:coverage` holds:
- `from`: the first local day from which clockwall's data is complete (YYYY-MM-DD). It only
  moves back: the week's backfill, each window the import finishes, or (webhook-only mode) the
  day of the first webhook.
- `import`: the import as JSON `{since, until, next, bound, page, state, rows, requests,
  windows, message, error?, resumeAt?, startedAt, updatedAt}`. It imports the days [since,
  until]; `next` is the newest day still to read (null once done), `bound` where the window
  ending on `next` goes on (below). `state` is running, paused (a 429 or a network error: it
  resumes by itself at `resumeAt`, where it stopped), done, or failed (an error no retry
  fixes; `error` says what to do).
- `importer`: `<holder> <epoch ms>`, the process reading a page now and until when: the
  service and `clockwall import` take turns on one job and never read at once.

Windows go newest-first: the days people look at first (this month, last month) are whole
first, and `from` moves back as each window finishes, so while a long import runs every answer
says truly from which day its numbers are complete (oldest-first could only say so at the end).
Within a window the import keeps its place by time, not by page number: rows come newest
first, and the next request asks for the window up to the oldest start of the last page
(`bound`, wall-clock, inclusive), page 1 again. Page numbers shift when an entry is deleted
between two requests (on Free those are minutes or hours apart), which would skip a row; a
time bound does not, and it survives a restart as it is. Should Clockify ever answer a page
out of that order, the window goes on by page number instead. Rows are applied as `sync`, so a
row read twice (the rows at the bound, a second import, a webhook for the same entry) changes
nothing.

On Free a window is at most 31 days and the import spends only the hourly budget's spare, after
the running-timer and change polls: a year takes hours there, by design (bench/history.py: 7
simulated hours for 37,000 entries). On paid plans a window is up to 366 days: a year of
37,000 entries is 37 requests of 1,000 rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys
from app.clockify import (
    FREE_REPORT_MAX_DAYS,
    MAX_PAGES,
    BudgetExhaustedError,
    ClockifyError,
    RateLimitedError,
    UpstreamError,
)
from app.models import PayloadError, parse_instant
from app.store import Clock, utc_now

if TYPE_CHECKING:
    from app.config import Settings
    from app.poller import Poller

log = logging.getLogger(__name__)

ACTIVE = ("running", "paused")
PAID_WINDOW_DAYS = 366  # Clockify's paid plans report a year in one request
PAGES_PER_RUN = 5  # pages one turn reads before the poller's own work comes round again
CLAIM_TTL_S = 120.0  # a turn renews its claim before each page
PAUSE_S = 60.0  # after a 429 without Retry-After, or a network error
END_OF_DAY = time(23, 59, 59, 999_000)
# What the spare estimate leaves aside each hour for the poller's own unscheduled reads
# (reporting settings hourly, reconcile, names).
RESERVED_PER_HOUR = 2
WAIT_FOR_SPARE_S = 30.0  # `clockwall import` looks again this often while the spare is spent

_CLAIM_LUA = """
-- KEYS[1] coverage hash; ARGV[1] holder; ARGV[2] now (epoch ms); ARGV[3] held until (epoch
-- ms), or "" to release. Field `importer` = "<holder> <until ms>". Returns 1 when the claim is
-- this holder's (taken, renewed or released), 0 while another holder's claim is still good.
local held = redis.call('HGET', KEYS[1], 'importer')
if held then
  local holder, until_ms = string.match(held, '^(%S+) (%d+)$')
  if holder and holder ~= ARGV[1] and tonumber(until_ms) > tonumber(ARGV[2]) then return 0 end
end
if ARGV[3] == '' then
  if held then redis.call('HDEL', KEYS[1], 'importer') end
else
  redis.call('HSET', KEYS[1], 'importer', ARGV[1] .. ' ' .. ARGV[3])
end
return 1
"""
_LOWER_FROM_LUA = """
-- KEYS[1] coverage hash; ARGV[1] a day (YYYY-MM-DD). Moves `from` back to it unless it holds
-- that day or an earlier one (ISO days compare as strings). Returns 1 when it moved.
local held = redis.call('HGET', KEYS[1], 'from')
if held and held <= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'from', ARGV[1])
return 1
"""


async def lower_coverage_from(redis: Redis, ws: str, day: date) -> bool:
    """Data is complete from `day` on: `from` moves back to it (never forward)."""
    script = redis.register_script(_LOWER_FROM_LUA)
    return int(await script(keys=[keys.coverage(ws)], args=[day.isoformat()])) == 1


async def note_first_webhook(redis: Redis, ws: str, day: date) -> None:
    """Webhook-only mode: data is complete from the day the first webhook was applied (set
    once; an earlier `from` stays)."""
    await redis.hsetnx(keys.coverage(ws), "from", day.isoformat())


async def read_coverage(redis: Redis, ws: str) -> dict[str, Any]:
    """`{from, import}` as /readyz shows it (`import` null before the first import)."""
    raw_from, raw_job = await redis.hmget(keys.coverage(ws), ["from", "import"])
    job = ImportJob.from_json(raw_job)
    return {
        "from": _text(raw_from) if raw_from else None,
        "import": job.to_dict() if job is not None else None,
    }


def months_back(today: date, months: int) -> date:
    """The first day of the month `months` before today's (0: this month's)."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class ImportJob:
    """One import's progress, as stored in the coverage hash."""

    since: date
    until: date
    next: date | None  # the newest day still to read; None once done
    state: str = "running"  # running | paused | done | failed
    rows: int = 0
    requests: int = 0
    windows: int = 0
    bound: str | None = None  # the window goes on up to this wall-clock time (None: its end)
    page: int = 1  # the page to ask for at `bound` (above 1 only when paging by number)
    message: str = ""
    error: str | None = None
    resume_at: datetime | None = None
    started_at: str = ""
    updated_at: str = ""

    @property
    def days_total(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def days_done(self) -> int:
        return self.days_total if self.next is None else (self.until - self.next).days

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "next": self.next.isoformat() if self.next else None,
            "state": self.state,
            "rows": self.rows,
            "requests": self.requests,
            "windows": self.windows,
            "bound": self.bound,
            "page": self.page,
            "message": self.message,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
        }
        if self.error:
            out["error"] = self.error
        if self.resume_at is not None:
            out["resumeAt"] = self.resume_at.isoformat()
        return out

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> ImportJob | None:
        """None when absent or unreadable (an unreadable job is started again, not guessed)."""
        if not raw:
            return None
        try:
            data = orjson.loads(raw)
            return cls(
                since=date.fromisoformat(data["since"]),
                until=date.fromisoformat(data["until"]),
                next=date.fromisoformat(data["next"]) if data.get("next") else None,
                state=str(data.get("state", "running")),
                rows=int(data.get("rows", 0)),
                requests=int(data.get("requests", 0)),
                windows=int(data.get("windows", 0)),
                bound=str(data["bound"]) if data.get("bound") else None,
                page=max(1, int(data.get("page", 1))),
                message=str(data.get("message", "")),
                error=data.get("error"),
                resume_at=(
                    datetime.fromisoformat(data["resumeAt"]) if data.get("resumeAt") else None
                ),
                started_at=str(data.get("startedAt", "")),
                updated_at=str(data.get("updatedAt", "")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def plan_job(
    current: ImportJob | None, since: date, today: date, covered_from: date | None, now: str
) -> tuple[ImportJob | None, str]:
    """The job after asking for history from `since`: only the days before `from` are read
    (after it the data is complete already); a job under way reaches further back instead of
    starting over. Returns the job (None: nothing to do) and what happened, in words."""
    if covered_from is not None and covered_from <= since:
        return current, f"the data is complete from {covered_from} already: nothing to import"
    if current is not None and current.state in ACTIVE and current.next is not None:
        if since < current.since:
            return replace(current, since=since), (
                f"the import under way ({current.since} to {current.until}) now reaches back "
                f"to {since}"
            )
        return current, f"an import of {current.since} to {current.until} is under way"
    until = covered_from - timedelta(days=1) if covered_from is not None else today
    job = ImportJob(since, until, until, started_at=now, updated_at=now)
    return job, f"importing {since} to {until}"


class HistoryImport:
    """One workspace's history import. In the service, the poller that holds the lease calls
    `run_due` after its own work (so the import only ever spends what the running-timer and
    change polls leave); `clockwall import` calls `request` and then `step` in a loop."""

    def __init__(
        self,
        ws: str,
        redis: Redis,
        *,
        months: int = 0,
        clock: Clock = utc_now,
        holder: str | None = None,
    ) -> None:
        self.ws = ws
        self.redis = redis
        self.months = months  # CLOCKWALL_IMPORT_MONTHS: asked for once per process; 0: never
        self.clock = clock
        self.holder = holder or uuid.uuid4().hex
        self._claim = redis.register_script(_CLAIM_LUA)
        self._asked = months <= 0
        # Paging by number (the fallback) is not carried over from another process or an
        # earlier run: pages shift meanwhile, so that window part is read again from page 1.
        self._paging_since: tuple[str, str | None] | None = None  # (startedAt, bound)
        self.stopped_for = ""  # why the last step ended: pages|spare|paused|done|failed|busy|idle

    # Redis ----------------------------------------------------------------------------------
    async def read(self) -> tuple[ImportJob | None, date | None]:
        """The job and the coverage's `from`."""
        raw_from, raw_job = await self.redis.hmget(keys.coverage(self.ws), ["from", "import"])
        covered = date.fromisoformat(_text(raw_from)) if raw_from else None
        return ImportJob.from_json(raw_job), covered

    async def _save(self, job: ImportJob) -> None:
        job.updated_at = self.clock().isoformat()
        await self.redis.hset(keys.coverage(self.ws), "import", orjson.dumps(job.to_dict()))

    async def claim(self) -> bool:
        now_ms = int(self.clock().timestamp() * 1000)
        until_ms = now_ms + int(CLAIM_TTL_S * 1000)
        args: list[str | int] = [self.holder, now_ms, until_ms]
        return int(await self._claim(keys=[keys.coverage(self.ws)], args=args)) == 1

    async def release(self) -> None:
        now_ms = int(self.clock().timestamp() * 1000)
        await self._claim(keys=[keys.coverage(self.ws)], args=[self.holder, now_ms, ""])

    # Asking -------------------------------------------------------------------------------
    async def request(self, since: date, today: date) -> tuple[ImportJob | None, str] | None:
        """Ask for history from `since` (see plan_job); None while another process holds the
        claim (ask again shortly)."""
        if not await self.claim():
            return None
        try:
            current, covered = await self.read()
            job, said = plan_job(current, since, today, covered, self.clock().isoformat())
            if job is not None and job is not current:
                await self._save(job)
            return job, said
        finally:
            await self.release()

    async def run_due(self, poller: Poller) -> None:
        """The service's turn, after the poller's own work: ask once for the automatic depth
        (CLOCKWALL_IMPORT_MONTHS), then read what the spare allows. More pages affordable now
        bring the poller back at once; else its next scheduled poll does. A Redis outage goes
        to the poller (it backs off); any other failure is logged here, so a fault in the
        import never holds up the running-timer poll."""
        try:
            await self._run_due(poller)
        except (RedisError, OSError):
            raise
        except Exception:
            poller.due.pop("import", None)
            log.exception(
                "history import of workspace %s: unexpected error; trying again at the next "
                "poll (what was imported stays)",
                self.ws,
            )

    async def _run_due(self, poller: Poller) -> None:
        if not self._asked:
            since = months_back(poller.store.today(), self.months)
            asked = await self.request(since, poller.store.today())
            if asked is not None:
                self._asked = True
                log.info(
                    "history import of workspace %s (CLOCKWALL_IMPORT_MONTHS=%d): %s",
                    self.ws,
                    self.months,
                    asked[1],
                )
        job = await self.step(poller)
        if self.stopped_for == "pages":
            poller.due["import"] = self.clock()
        elif self.stopped_for == "paused" and job is not None and job.resume_at is not None:
            poller.due["import"] = job.resume_at
        else:
            poller.due.pop("import", None)

    # Reading --------------------------------------------------------------------------------
    async def step(self, poller: Poller, max_pages: int = PAGES_PER_RUN) -> ImportJob | None:
        """Read up to `max_pages` pages while the budget's spare allows, saving progress after
        each; returns the job as it stands (`stopped_for` says why the step ended)."""
        if not await self.claim():
            self.stopped_for = "busy"
            return (await self.read())[0]
        try:
            job, _covered = await self.read()
            if job is None or job.state not in ACTIVE or job.next is None:
                self.stopped_for = "idle"
                return job
            now = self.clock()
            if job.state == "paused" and job.resume_at is not None and now < job.resume_at:
                self.stopped_for = "paused"
                return job
            self.stopped_for = "pages"
            for _ in range(max_pages):
                _raise_if_cancelled()
                if not await poller.can_afford_extra(1):
                    self.stopped_for = "spare"
                    message = self._describe(job, poller, waiting=True)
                    if message != job.message:
                        job.message = message
                        await self._save(job)
                    break
                if not await self.claim():  # renewed before each page
                    self.stopped_for = "busy"  # it lapsed and another process took it
                    break
                job = await self._read_page(poller, job)
                if job.state != "running":
                    self.stopped_for = job.state
                    break
            return job
        finally:
            with contextlib.suppress(Exception):
                await self.release()

    def _window(self, job: ImportJob, poller: Poller) -> tuple[date, date]:
        assert job.next is not None
        days = FREE_REPORT_MAX_DAYS if _is_free(poller) else PAID_WINDOW_DAYS
        return max(job.since, job.next - timedelta(days=days - 1)), job.next

    async def _read_page(self, poller: Poller, job: ImportJob) -> ImportJob:
        first, last = self._window(job, poller)
        assert job.next is not None
        upper = (
            datetime.fromisoformat(job.bound) if job.bound else datetime.combine(last, END_OF_DAY)
        )
        page = job.page
        if page > 1 and self._paging_since != (job.started_at, job.bound):
            log.info(
                "history import of workspace %s: window %s to %s was read by page number up "
                "to page %d elsewhere or before a restart; reading it again from page 1",
                self.ws,
                first,
                upper,
                page - 1,
            )
            page = 1
        zone = poller.store.zone
        try:
            rows, is_last = await poller.client.detailed_report_page(
                self.ws, datetime.combine(first, time.min), upper, zone, page
            )
        except BudgetExhaustedError:
            # The spare check passed but another reader took the slot: wait for the next one.
            self.stopped_for = "spare"
            job.message = self._describe(job, poller, waiting=True)
            await self._save(job)
            return job
        except (RateLimitedError, UpstreamError) as exc:
            return await self._pause(job, exc, first, upper, page)
        except ClockifyError as exc:
            job.state = "failed"
            job.error = (
                f"{exc}; then run `clockwall import --since {job.since}` to go on from "
                f"{job.next} (what was imported stays)"
            )
            job.message = f"failed at {first} to {last}: {job.error}"
            log.error("history import of workspace %s failed: %s", self.ws, job.error)
            await self._save(job)
            return job
        if job.state == "paused":
            log.info(
                "history import of workspace %s resumed where it stopped (%s to %s, page %d) "
                "after: %s",
                self.ws,
                first,
                upper,
                page,
                job.error,
            )
        job.requests += 1
        running_ids = {e["id"] for e in await poller.store.read_running(self.ws)}
        await poller.apply_report_rows(rows, running_ids, log_each=False)
        job.rows += len(rows)
        job.state, job.error, job.resume_at = "running", None, None
        if is_last:
            job.windows += 1
            job.bound, job.page = None, 1
            self._paging_since = None
            # The days from `first` on are now read, and those after `until` were complete
            # when the job began: the data is whole from `first`.
            await lower_coverage_from(self.redis, self.ws, first)
            following = first - timedelta(days=1)
            log.info(
                "history import of workspace %s: %s to %s read, data complete from %s",
                self.ws,
                first,
                last,
                first,
            )
            if following < job.since:
                job.next, job.state = None, "done"
                log.info(
                    "history import of workspace %s done: %s to %s, %d entries in %d requests",
                    self.ws,
                    job.since,
                    job.until,
                    job.rows,
                    job.requests,
                )
            else:
                job.next = following
        else:
            oldest = _oldest_start(rows, zone) if page == 1 else None
            if oldest is not None and oldest < upper:
                job.bound, job.page = _wall_clock(oldest), 1
            elif page >= MAX_PAGES:
                job.state = "failed"
                job.error = (
                    f"Clockify's Detailed report of {first} to {upper} gave {MAX_PAGES} pages "
                    "without a last one; its paging seems broken: try again later"
                )
            else:
                if page == 1:
                    log.warning(
                        "history import of workspace %s: Clockify's rows of %s to %s are not "
                        "newest first; going on by page number (a row deleted meanwhile may "
                        "hide another until the entry is next edited)",
                        self.ws,
                        first,
                        upper,
                    )
                job.page = page + 1
                self._paging_since = (job.started_at, job.bound)
        job.message = self._describe(job, poller)
        await self._save(job)
        return job

    async def _pause(
        self, job: ImportJob, exc: ClockifyError, first: date, upper: datetime, page: int
    ) -> ImportJob:
        wait_s = PAUSE_S
        if isinstance(exc, RateLimitedError) and exc.retry_after_s:
            wait_s = max(exc.retry_after_s, 1.0)
        job.state = "paused"
        job.resume_at = self.clock() + timedelta(seconds=wait_s)
        cause = "rate-limited by Clockify (429)" if isinstance(exc, RateLimitedError) else str(exc)
        job.error = cause
        job.message = (
            f"paused at {first} to {upper}, page {page}: {cause}; it resumes there by itself "
            f"at {job.resume_at.isoformat(timespec='seconds')}"
        )
        log.warning("history import of workspace %s %s", self.ws, job.message)
        self.stopped_for = "paused"
        await self._save(job)
        return job

    def _describe(self, job: ImportJob, poller: Poller, *, waiting: bool = False) -> str:
        """Progress in words, with how long the rest takes on Free (the spare is small)."""
        if job.next is None:
            return (
                f"imported {job.since} to {job.until}: {job.rows} entries in "
                f"{job.requests} requests"
            )
        days_left = (job.next - job.since).days + 1
        text = f"{days_left} days left to read ({job.since} to {job.next})"
        if not _is_free(poller):
            return text + ("; waiting for the request budget" if waiting else "")
        spare = spare_per_hour(poller)
        windows = math.ceil(days_left / FREE_REPORT_MAX_DAYS)
        per_day = job.rows / job.days_done if job.days_done else 0.0
        pages = max(windows, math.ceil(per_day * days_left / 1000))
        hours = pages / max(spare, 1)
        return (
            f"{text}; on Free the import spends only what the running-timer and change polls "
            f"leave of the hourly budget (about {spare} requests an hour, 31 days a request), "
            f"so about {_hours_text(hours)} more: expected"
            + ("; waiting for that spare now" if waiting else "")
        )


def _raise_if_cancelled() -> None:
    """Stop a cancelled task (Ctrl-C in `clockwall import`, a service shutting down) at the next
    page: redis-py 8 can swallow a cancellation that arrives while it awaits a pooled
    connection, and the command then completes as if nothing happened."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def spare_per_hour(poller: Poller) -> int:
    """Requests an hour the poller's schedule leaves (less a reserve for its own extras)."""
    schedule = poller.schedule
    scheduled = 3600 / schedule.running_s + poller.changes_calls * 3600 / schedule.changes_s
    return max(0, int(poller.budget.limit_per_hour - scheduled) - RESERVED_PER_HOUR)


def _is_free(poller: Poller) -> bool:
    # An unknown plan is taken for FREE, as the budget takes it.
    return poller.state.plan is None or poller.state.plan.strip().upper() == "FREE"


def _hours_text(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    return f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h"


def _oldest_start(rows: list[dict[str, Any]], zone: ZoneInfo) -> datetime | None:
    """The oldest start among `rows` as a naive wall-clock time in `zone`, if the rows come
    newest first (by instant); None when they do not or a start is unreadable."""
    starts: list[datetime] = []
    for row in rows:
        interval = row.get("timeInterval")
        raw = interval.get("start") if isinstance(interval, dict) else None
        try:
            moment = parse_instant(raw, "timeInterval.start")
        except PayloadError:
            return None
        if moment is None:
            return None
        starts.append(moment)
    if not starts or any(
        later < earlier for earlier, later in zip(starts[1:], starts, strict=False)
    ):
        return None
    return starts[-1].astimezone(zone).replace(tzinfo=None)


def _wall_clock(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


# `clockwall import` ---------------------------------------------------------------------------
Show = Callable[[ImportJob], None]
Sleep = Callable[[float], Awaitable[None]]


class ImportCliError(Exception):
    """What stops `clockwall import` before it reads anything; the message says what to do."""


async def import_in_foreground(
    settings: Settings,
    ws: str,
    since: date,
    show: Show,
    *,
    sleep: Sleep = asyncio.sleep,
    redis: Redis | None = None,
    clock: Clock = utc_now,
) -> tuple[int, str]:
    """`clockwall import`: settle the reporting zone as the service does, ask for the history
    from `since`, and read it here, from the same Redis budget the service spends (its
    running-timer poll keeps its share; on Free that makes a long history take hours). A
    service running meanwhile takes turns on the same job. Returns (exit code, last words):
    0 done (or nothing to do), 1 failed, 2 a wrong --since."""
    own_redis = redis is None
    if redis is None:
        assert settings.redis_url is not None
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    history = HistoryImport(ws, redis, clock=clock)
    try:
        return await _import(settings, ws, since, show, sleep, redis, clock, history)
    except ImportCliError as exc:
        return 2, str(exc)
    except ClockifyError as exc:
        return 1, f"{exc}; nothing more was imported (run the command again once it is fixed)"
    except (RedisError, OSError) as exc:
        return 1, (
            f"Redis did not answer ({type(exc).__name__}); check that it runs and that REDIS_URL "
            "points at the Redis the service uses, then run the command again: it goes on "
            "where it stopped"
        )
    except asyncio.CancelledError:
        # Ctrl-C: leave the job paused where it is; the command again (or the service) resumes.
        with contextlib.suppress(Exception):
            await _pause_by_user(history)
        raise
    finally:
        if own_redis:
            await redis.aclose()


async def _import(
    settings: Settings,
    ws: str,
    since: date,
    show: Show,
    sleep: Sleep,
    redis: Redis,
    clock: Clock,
    history: HistoryImport,
) -> tuple[int, str]:
    import httpx

    from app.budget import FREE_PLAN_PER_HOUR, RequestBudget
    from app.clockify import ClockifyClient
    from app.metrics import Metrics
    from app.poller import Poller
    from app.projection import Basis
    from app.rebuild import ensure_projection
    from app.reporting import settle
    from app.store import TotalsStore

    async with httpx.AsyncClient() as http:
        budget = RequestBudget(redis, ws, settings.api_budget_per_hour or FREE_PLAN_PER_HOUR)
        client = ClockifyClient(
            settings.api_key,
            budget=budget,
            api_url=settings.api_url,
            reports_url=settings.reports_url,
            http=http,
        )
        # The zone that decides each entry's day, as every process of the service has it.
        reporting = await settle(redis, ws, settings, client)
        store = TotalsStore(redis, reporting.zone, reporting.week_start_index, clock=clock)
        rounding = reporting.rounding
        basis = Basis(
            reporting.zone, None if rounding is None else (rounding.mode, rounding.minutes)
        )
        await ensure_projection(store, ws, basis)
        today = store.today()
        if since > today:
            raise ImportCliError(
                f"--since {since} is after today ({today} in {reporting.zone.key}); give the "
                "first day to import"
            )
        poller = Poller(
            ws,
            client,
            store,
            redis,
            Metrics(),
            mode="poll",
            budget=budget,
            configured_budget=settings.api_budget_per_hour,
            clock=clock,
        )
        await poller.discover()  # the plan: window size and the spare
        asked = None
        while asked is None:  # another process is mid-page: it lets go within seconds
            asked = await history.request(since, today)
            if asked is None:
                await sleep(1.0)
        job, said = asked
        if job is None or job.state == "done":
            return 0, said
        log.info("history import of workspace %s: %s", ws, said)
        show(job)
        while True:
            job = await history.step(poller)
            _raise_if_cancelled()
            if job is None:
                return 1, "the import was removed from Redis meanwhile; run the command again"
            show(job)
            if job.state == "done":
                return 0, job.message
            if job.state == "failed":
                return 1, job.error or job.message
            if history.stopped_for == "pages":
                continue
            if history.stopped_for == "paused" and job.resume_at is not None:
                await sleep(max(1.0, (job.resume_at - clock()).total_seconds()))
            elif history.stopped_for == "busy":
                await sleep(2.0)
            else:
                await sleep(WAIT_FOR_SPARE_S)


async def _pause_by_user(history: HistoryImport) -> None:
    if not await history.claim():
        return  # another process is reading it now: it goes on
    job, _ = await history.read()
    if job is None or job.state not in ACTIVE:
        return
    job.state = "paused"
    job.resume_at = None
    job.error = "stopped with Ctrl-C"
    job.message = (
        f"stopped at {job.next} with Ctrl-C; run `clockwall import --since {job.since}` to go "
        "on (a running clockwall service goes on by itself)"
    )
    await history._save(job)
    await history.release()
