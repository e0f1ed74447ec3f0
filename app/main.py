"""create_app(settings): builds the store, the routes and the lifespan that opens and closes
them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app import keys
from app.access import AccessMiddleware, ShareRevocations
from app.api import EXCEPTION_HANDLERS, Api, within_deadline
from app.budget import RequestBudget
from app.clockify import ClockifyClient, ClockifyError
from app.config import WEEKDAYS, Settings
from app.importer import HistoryImport, read_coverage
from app.metrics import Metrics
from app.pipe import ScriptPipe
from app.poller import Poller, PollerState, poll_status_event
from app.projection import Basis
from app.rebuild import Rebuilder, ensure_projection, rebuild_state
from app.reporting import ReportingSettings, read_stored, rounding_text, settle
from app.share import ShareReport
from app.sse import RAW_SEND_KEY, EventsEndpoint
from app.store import STORE_DEADLINE_S, Clock, TotalsStore, utc_now
from app.stream import ChangeHub
from app.tasks import stop_tasks
from app.webhook_health import Apply, WebhookWatch, read_stored_health
from app.webhooks import WebhookEndpoint

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
WEBHOOK_PATH = "/webhooks/clockify"
PAGES = {
    "/": "wall.html",
    "/summary": "summary.html",
    "/team": "team.html",
    "/weekly": "weekly.html",
    "/share": "share.html",
}


# What the pages share (the header and navigation, the range picker, the error box) is written
# once in static/partials/ and put in place of `<!--#include NAME-->` when a page is served.
INCLUDE = re.compile(r"^<!--#include ([\w.-]+)-->\n", re.MULTILINE)


def render_page(name: str) -> str | None:
    """A page of static/ with its includes in place; None when the page is missing."""
    path = STATIC_DIR / name
    if not path.is_file():
        return None

    def include(match: re.Match[str]) -> str:
        return (STATIC_DIR / "partials" / match[1]).read_text(encoding="utf-8")

    return INCLUDE.sub(include, path.read_text(encoding="utf-8"))


def _page(name: str) -> Any:
    async def page(request: Request) -> Response:
        html = render_page(name)  # read on each visit, as a file would be: edits show at once
        if html is None:
            return Response(f"{name} is missing from {STATIC_DIR}", status_code=404)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return page


def open_redis(settings: Settings) -> Redis:
    """The real Redis when REDIS_URL is set, else an in-process emulation (fakeredis + Lua)."""
    if settings.redis_url:
        # No per-command socket timeout (it costs a task or a timer per command): each
        # webhook and API answer has one deadline of its own. A pooled connection that died
        # (Redis restarted) shows up as a reset: the command is retried on a fresh connection,
        # so the first reads after an outage don't fail once per dead connection in the pool.
        # A large pool, so a burst of requests never fails for want of a connection.
        pool = ConnectionPool.from_url(
            settings.redis_url,
            max_connections=1000,
            socket_connect_timeout=2,
            socket_keepalive=True,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        )
        return Redis.from_pool(pool)  # closing the client closes the pool too
    import fakeredis

    log.warning(
        "REDIS_URL is not set: using the embedded in-process store; nothing is durable and "
        "only this process sees it. Set REDIS_URL=redis://host:6379/0 for real use."
    )
    return fakeredis.FakeAsyncRedis()


WARM_MONTHS = 12  # whole months read ahead at start (app/reports.py caches them)


def basis_of(reporting: ReportingSettings) -> Basis:
    """The settings the totals are built with (app/projection.py)."""
    rounding = reporting.rounding
    return Basis(reporting.zone, (rounding.mode, rounding.minutes) if rounding else None)


class Service:
    """Everything one app process holds: Redis, the store, metrics and background state."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis | None = None,
        clock: Clock = utc_now,
        exiting: asyncio.Event | None = None,
    ):
        self.settings = settings
        self.redis = redis if redis is not None else open_redis(settings)
        self.embedded = redis is None and not settings.redis_url
        self.metrics = Metrics()
        # Applies travel over one pipelined connection to the same Redis (the embedded store
        # keeps to redis-py).
        self.pipe = ScriptPipe.for_client(self.redis, stall_s=STORE_DEADLINE_S)
        self.store = TotalsStore(
            self.redis,
            settings.zone,
            settings.week_start_index,
            settings.stream_maxlen,
            clock=clock,
            pipe=self.pipe,
            # A configured zone is known now; any other waits for settle_reporting().
            settled=settings.timezone is not None,
            rounding=settings.rounding if settings.report_rounding is not None else None,
        )
        self.reporting: ReportingSettings | None = None
        self.reporting_error: str | None = None
        self.reporting_settled = asyncio.Event()
        self.store_error: str | None = None
        self.hub = ChangeHub(
            self.redis,
            settings.workspace_ids or (settings.default_workspace,),
            on_drop=self.metrics.sse_dropped.inc,
            on_lag=self.metrics.stream_lag.set,
            heartbeat_s=settings.heartbeat_s,
            exiting=exiting,
        )
        self.pollers: list[Poller] = []
        # The webhook endpoint's apply path, for replaying failed deliveries (set by create_app).
        self.replay_apply: Apply | None = None
        self.http: httpx.AsyncClient | None = None
        self._last_poll_publish = 0.0
        self._background: set[asyncio.Task[None]] = set()

    def status(self) -> dict[str, Any]:
        """What the wall's freshness indicator shows; sent as an SSE `status` event."""
        out: dict[str, Any] = {
            "mode": self.settings.effective_mode,
            "store": "ok" if self.hub.store_ok else "unreachable",
            "embeddedStore": self.embedded,
        }
        # Each workspace's own currency, where a poller read it: the wall shows it first.
        currencies = {p.ws: p.currency for p in self.pollers if p.currency}
        if currencies:
            out["currencies"] = currencies
        leaders = [p.state for p in self.pollers if p.state.role == "leader"]
        if leaders:
            out["poll"] = asdict(leaders[0])
            problems = [problem for state in leaders for problem in state.webhooks]
            if problems:
                out["webhooks"] = problems
        return out

    def clockify_client(self, ws: str) -> tuple[ClockifyClient, RequestBudget] | None:
        """A Clockify client spending `ws`'s request budget; None without an API key."""
        settings = self.settings
        if not settings.api_key:
            return None
        if self.http is None:
            self.http = httpx.AsyncClient()
        budget = RequestBudget(self.redis, ws, settings.api_budget_per_hour or 30)
        client = ClockifyClient(
            settings.api_key,
            budget=budget,
            api_url=settings.api_url,
            reports_url=settings.reports_url,
            http=self.http,
        )
        return client, budget

    async def settle_reporting(self) -> None:
        """Settle every workspace's reporting zone and week start (app/reporting.py) and hand
        them to the store, which applies entries from then on. The store keeps one zone: with
        several workspaces that disagree, the first one's is used and the log says so."""
        found: list[tuple[str, ReportingSettings]] = []
        for ws in self.settings.workspace_ids or (self.settings.default_workspace,):
            made = self.clockify_client(ws)
            found.append((ws, await settle(self.redis, ws, self.settings, made and made[0])))
        (first_ws, chosen), others = found[0], found[1:]
        for ws, other in others:
            # Rounding and duration format may differ: they are each workspace's own.
            if (other.zone.key, other.week_start) != (chosen.zone.key, chosen.week_start):
                log.warning(
                    "workspace %s reports in %s (week from %s) but workspace %s in %s (week "
                    "from %s): one process reports every workspace in one zone, so %s is used "
                    "for all; set CLOCKWALL_TIMEZONE (and CLOCKWALL_WEEK_START) to choose",
                    ws,
                    other.zone.key,
                    other.week_start,
                    first_ws,
                    chosen.zone.key,
                    chosen.week_start,
                    chosen.zone.key,
                )
        self.reporting = chosen
        self.reporting_error = None
        # The totals follow the settled zone and report rounding: a workspace whose totals
        # were built otherwise (or not at all) gets an online rebuild (app/rebuild.py). Only
        # then are entries applied: one applied before would start a workspace's first
        # generation without the settings, and a rebuild right after.
        for ws, _found in found:
            await ensure_projection(self.store, ws, basis_of(chosen))
        self.store.settle(chosen.zone, chosen.week_start_index, basis_of(chosen).rounding)
        self.reporting_settled.set()
        log.info(
            "reporting in %s, weeks from %s (source: %s), report rounding %s, durations %s",
            chosen.zone.key,
            chosen.week_start,
            chosen.source,
            rounding_text(chosen.rounding),
            chosen.duration_format,
        )

    async def try_settle_reporting(self, timeout_s: float) -> bool:
        """settle_reporting() once; False (logged, and shown in /readyz) when Redis or
        Clockify did not answer."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.settle_reporting()
            return True
        except (RedisError, OSError, TimeoutError, ClockifyError, httpx.HTTPError) as exc:
            self.reporting_error = _settle_problem(exc)
            log.warning(
                "the reporting time zone is not settled: %s; %s",
                self.reporting_error,
                "retrying"
                if self.store.settled
                else "webhook deliveries get 503 until it is; retrying",
            )
            return False

    async def warm_reports(self, months: int = WARM_MONTHS) -> None:
        """Read the last `months` whole months of every workspace once, in the background,
        so the first report of a past range answers from memory (app/reports.py caches each
        month while it is unchanged); a failure only costs that first report its speed."""
        if not self.store.settled:
            await self.reporting_settled.wait()
        today = self.store.today()
        first = today.replace(day=1)
        for _ in range(months):
            first = (first - timedelta(days=1)).replace(day=1)
        for ws in self.settings.workspace_ids or (self.settings.default_workspace,):
            started = time.monotonic()
            try:
                await self.store.reports.summary(ws, first, today, ("PROJECT",))
                # Every month's sums per project, so the first wall's progress reads no month.
                await self.store.progress.read(ws)
            except (RedisError, OSError, TimeoutError) as exc:
                log.info("reports of workspace %s not read ahead: %s", ws, type(exc).__name__)
                continue
            log.info(
                "reports of workspace %s read ahead from %s in %.1f s",
                ws,
                first,
                time.monotonic() - started,
            )

    async def follow_reporting(self, every_s: float = 5.0) -> None:
        """Take up what another process (the poller's hourly refresh) stored as the reporting
        settings: the week start and duration format shape answers at once; the zone and
        rounding decide the totals, which follow through a rebuild (app/rebuild.py)."""
        ws = (self.settings.workspace_ids or (self.settings.default_workspace,))[0]
        while True:
            await asyncio.sleep(every_s)
            if not self.store.settled or self.reporting is None:
                continue
            try:
                stored = await read_stored(self.redis, ws)
            except (RedisError, OSError):
                continue
            if stored is None or stored == self.reporting:
                continue
            log.info(
                "the reporting settings changed: %s, weeks from %s, rounding %s, durations %s",
                stored.zone.key,
                stored.week_start,
                rounding_text(stored.rounding),
                stored.duration_format,
            )
            self.reporting = stored
            self.store.settle(stored.zone, stored.week_start_index, basis_of(stored).rounding)

    async def keep_settling_reporting(self) -> None:
        """try_settle_reporting() until it succeeds, backing off up to 30 s."""
        backoff_s = 1.0
        while not await self.try_settle_reporting(timeout_s=30.0):
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 30.0)

    async def run_poller(self, poller: Poller) -> None:
        # The poller applies entries too: not before the zone that buckets them is settled.
        if not self.store.settled:
            await self.reporting_settled.wait()
        await poller.run()

    def build_pollers(self) -> None:
        """One poller per workspace when an API key is set and the mode polls."""
        settings = self.settings
        if not settings.api_key or settings.effective_mode not in ("poll", "hybrid"):
            return
        for ws in settings.workspace_ids:
            made = self.clockify_client(ws)
            assert made is not None  # an API key is set
            client, budget = made
            self.pollers.append(
                Poller(
                    ws,
                    client,
                    self.store,
                    self.redis,
                    self.metrics,
                    mode=settings.effective_mode,
                    budget=budget,
                    configured_budget=settings.api_budget_per_hour,
                    settings=settings,
                    on_state=functools.partial(self._poll_state_changed, ws),
                )
            )
            # The history import runs in the poller's turn, so only in the process holding the
            # lease and only from what the running-timer and change polls leave of the budget.
            self.pollers[-1].history = HistoryImport(
                ws, self.redis, months=settings.import_months, clock=self.store.clock
            )
            if settings.webhook_tokens and self.replay_apply is not None:
                self.pollers[-1].webhook_watch = WebhookWatch(
                    ws,
                    client,
                    self.redis,
                    settings,
                    self.store,
                    self.replay_apply,
                    budget=budget,
                    clock=self.store.clock,
                )

    def _poll_state_changed(self, ws: str, state: PollerState) -> None:
        # The leader publishes through the change stream (at most every 20 s, or at once on an
        # error), so SSE clients of every process see how fresh the polled data is.
        if state.role != "leader":
            return
        now = time.monotonic()
        if state.last_error is None and now - self._last_poll_publish < 20:
            return
        self._last_poll_publish = now
        task = asyncio.create_task(self._publish_poll_state(ws, state))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_poll_state(self, ws: str, state: PollerState) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.redis.xadd(
                keys.changes(ws),
                {"d": poll_status_event(state)},
                maxlen=self.settings.stream_maxlen,
                approximate=True,
            )

    def note_store_error(self, exc: Exception) -> None:
        self.store_error = f"{type(exc).__name__}: Redis did not answer"
        # Deliveries may have failed meanwhile: once the store is back, replay them.
        for poller in self.pollers:
            if poller.webhook_watch is not None:
                poller.webhook_watch.request_replay()

    async def readiness(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "mode": self.settings.effective_mode,
            "embeddedStore": self.embedded,
            "workspaces": list(self.settings.workspace_ids),
        }
        try:
            async with asyncio.timeout(2):
                await self.redis.ping()
        except (RedisError, OSError) as exc:
            self.note_store_error(exc)
            state.update(
                status="unavailable",
                store=f"unreachable ({type(exc).__name__}); check that Redis runs and "
                "REDIS_URL points at it",
            )
            return state
        self.store_error = None
        state.update(status="ready", store="ok")
        state.update(self.reporting_state())
        if not self.store.settled:
            state["status"] = "unavailable"
        if self.pollers:
            state["pollers"] = [asdict(p.state) for p in self.pollers]
        with contextlib.suppress(RedisError, OSError):
            state["totals"] = {
                ws: await rebuild_state(self.redis, ws)
                for ws in self.settings.workspace_ids or (self.settings.default_workspace,)
            }
        with contextlib.suppress(RedisError, OSError):
            # From which day each workspace's data is complete, and its history import.
            state["coverage"] = {
                ws: await read_coverage(self.redis, ws)
                for ws in self.settings.workspace_ids or (self.settings.default_workspace,)
            }
        # As the polling process (maybe another) last found them; no tokens, no URLs.
        webhooks: list[dict[str, Any]] = []
        with contextlib.suppress(RedisError, OSError):
            for ws in self.settings.workspace_ids:
                stored = await read_stored_health(self.redis, ws)
                if stored is not None:
                    webhooks += [{"workspace": ws, **h} for h in stored.get("webhooks", [])]
                    general = stored.get("problems", [])
                    webhooks += [{"workspace": ws, "problem": p} for p in general]
        if webhooks:
            state["webhooks"] = webhooks
        return state

    def reporting_state(self) -> dict[str, Any]:
        """The zone that decides each entry's day, where it came from, and what is wrong."""
        store = self.store
        reporting: dict[str, Any] = {
            "timezone": store.zone.key,
            "weekStart": WEEKDAYS[store.week_start_index],
            "settled": store.settled,
        }
        if self.reporting is not None:
            reporting["source"] = self.reporting.source
            rounding = self.reporting.rounding
            reporting["rounding"] = None if rounding is None else rounding.to_json()
            reporting["durationFormat"] = self.reporting.duration_format
        if not store.settled:
            reporting["problem"] = (
                f"not settled yet ({self.reporting_error or 'starting'}); webhook deliveries "
                "get 503 until it is"
            )
        warnings = [p.reporting_warning for p in self.pollers if p.reporting_warning]
        if warnings:
            reporting["warning"] = warnings[0]
        return {"reporting": reporting}

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _settle_problem(exc: BaseException) -> str:
    if isinstance(exc, (RedisError, OSError)):
        return f"Redis does not answer ({type(exc).__name__}); check that it runs and REDIS_URL"
    if isinstance(exc, TimeoutError):
        return "Redis or Clockify did not answer in time"
    # ClockifyError messages name the cause and never the key.
    return (
        "Clockify did not give the reporting settings (the API key owner's profile, the "
        f"workspace's report rounding) ({exc}); fix that, or set CLOCKWALL_TIMEZONE, "
        "CLOCKWALL_REPORT_ROUNDING and CLOCKWALL_DURATION_FORMAT"
    )


class ClockwallApp(Starlette):
    """Starlette that keeps the server's own `send` in the scope, before any middleware wraps
    it, so an event stream can find its connection (see compat.writable_transport), and that
    hands webhook deliveries straight to their endpoint: they carry their own token (the access
    middleware lets them through untouched) and are the one route under sustained load."""

    webhook: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if (
                scope["path"] == WEBHOOK_PATH
                and scope["method"] == "POST"
                and self.webhook is not None
                and not scope.get("root_path")
            ):
                await self.webhook(scope, receive, send)
                return
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    clock: Clock = utc_now,
    exiting: asyncio.Event | None = None,
) -> Starlette:
    """`exiting`: set when the server begins to exit, so event streams end at once
    (app.compat.ClockwallServer sets it); one is made when not given, as `app.state.exiting`."""
    exiting = exiting if exiting is not None else asyncio.Event()
    service = Service(settings, redis, clock, exiting)
    api = Api(settings, service.store, service.readiness)
    webhook = WebhookEndpoint(
        settings, service.store, service.metrics, on_store_error=service.note_store_error
    )
    service.replay_apply = webhook.apply
    events = EventsEndpoint(settings, api, service.hub, service.metrics, service.status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with contextlib.suppress(RedisError, OSError):
            await service.hub.prime()  # without Redis, the reader primes itself when it can
        service.hub.start()
        tasks: list[asyncio.Task[None]] = []
        # Before the first request when Redis (and Clockify) answer at once; else in the
        # background, the webhook answering 503 meanwhile. A configured zone needs no wait.
        if service.store.settled or not await service.try_settle_reporting(timeout_s=5.0):
            tasks.append(asyncio.create_task(service.keep_settling_reporting()))
        service.build_pollers()
        rebuilder = Rebuilder(
            service.store, settings.workspace_ids or (settings.default_workspace,)
        )
        tasks.append(asyncio.create_task(rebuilder.run(), name="clockwall-rebuilder"))
        tasks.append(asyncio.create_task(service.follow_reporting(), name="clockwall-settings"))
        tasks.append(asyncio.create_task(service.warm_reports(), name="clockwall-warm-reports"))
        tasks += [
            asyncio.create_task(service.run_poller(p), name=f"clockwall-poller-{p.ws}")
            for p in service.pollers
        ]
        try:
            yield
        finally:
            await stop_tasks(tasks)
            for poller in service.pollers:
                await poller.stop()
            if service.http is not None:
                await service.http.aclose()
            await service.hub.stop()
            if service.pipe is not None:
                await service.pipe.aclose()
            await service.redis.aclose()

    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route("/api/summary", within_deadline(api.summary)),
        Route("/api/running", within_deadline(api.running)),
        Route("/api/team", within_deadline(api.team)),
        Route("/api/entries", within_deadline(api.entries)),
        Route("/api/names", within_deadline(api.names)),
        Route("/api/share/report", ShareReport(settings, service.store).handle),
        Route("/events", events.handle),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", service.metrics_endpoint),
    ]
    for path, page in PAGES.items():
        routes.append(Route(path, _page(page)))
    if STATIC_DIR.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    app = ClockwallApp(
        routes=routes,
        lifespan=lifespan,
        # A malformed query is a 400 and a store that does not answer a 503, on every route.
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(
                AccessMiddleware,
                settings=settings,
                is_revoked=ShareRevocations(service.redis).is_revoked,
            )
        ],
    )
    app.webhook = webhook
    app.state.service = service
    app.state.exiting = exiting
    return app
