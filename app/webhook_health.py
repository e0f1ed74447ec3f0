"""Webhook health and replay: which of the workspace's webhooks feed this wall and whether
Clockify still delivers them (`enabled`, `deliveryEnabled`, `planEnabled`), and the replay of the
deliveries Clockify logged as FAILED through the webhook endpoint's own apply path.

Exactly once: the store's fingerprints make a replayed delivery that already counted a
duplicate, and a cursor per webhook in Redis (where the next log search starts, and the ids of
the logs handled since then) keeps a log from being applied twice. Neither a webhook's token nor
its URL ever leaves this module: not in logs, lines, /readyz or the wall's status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from app import keys
from app.budget import RequestBudget
from app.clockify import ClockifyClient, ForbiddenError, NotFoundError, UpstreamError
from app.config import Settings
from app.errors import JSONAnswer
from app.store import Clock, TotalsStore

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/clockify"
MENU = "Clockify > Preferences > Advanced > Manage webhooks"
LOG_PAGE_SIZE = 50
STATE_FIELD = "webhooks"  # in keys.poller_state: the last check, as /readyz shows it
# Outcomes of a replayed delivery that changed nothing.
UNCHANGED = frozenset(("duplicate", "stale", "deleted-before", "unchanged", "ignored"))
UNAVAILABLE = "unavailable"

Apply = Callable[[str, bytes, str | None], Awaitable[JSONAnswer]]
CanAfford = Callable[[int], Awaitable[bool]]


def webhook_url(public_url: str) -> str:
    base = public_url.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH


# (flag, what is wrong, the wall's short words, what to do)
_PROBLEMS = (
    (
        "planEnabled",
        "not allowed by the workspace's plan (planEnabled is false)",
        "not allowed by the plan",
        "the plan allows fewer webhooks (Free: 3) or lacks this event: delete the webhooks "
        f"beyond its limit in {MENU}, or upgrade the plan",
    ),
    (
        "enabled",
        "turned off in Clockify (enabled is false)",
        "turned off in Clockify",
        f"turn it on again in {MENU}",
    ),
    (
        "deliveryEnabled",
        "Clockify stopped delivering it after repeated failed deliveries "
        "(deliveryEnabled is false)",
        "Clockify stopped delivering it after failures",
        "fix the cause (this wall unreachable at its public URL, or Redis down: see /readyz), "
        f"then re-enable it in {MENU}, or delete it there and run `clockwall setup` (and use "
        "the token line it prints); the deliveries that failed are replayed from Clockify's log",
    ),
)
_TOKEN_PROBLEM = (
    "its signing secret is not in CLOCKIFY_WEBHOOK_TOKENS, so clockwall refuses its deliveries",
    "its token is not configured",
    "run `clockwall setup --url <this wall's URL>` and put the CLOCKIFY_WEBHOOK_TOKENS line it "
    "prints in clockwall's environment",
)
CANNOT_READ = (
    "clockwall cannot read the webhooks or their logs (Clockify answered 403 or 404): "
    "use the API key of a workspace admin"
)
NO_WEBHOOK = (
    "no webhook in Clockify carries a configured token: nothing reaches the wall but polling; "
    "run `clockwall setup --url <this wall's URL>`"
)


@dataclass(frozen=True)
class WebhookHealth:
    """One webhook that feeds this wall, as Clockify reports it; never its token or URL."""

    id: str
    name: str
    event: str
    enabled: bool
    delivery_enabled: bool
    plan_enabled: bool
    token_configured: bool
    problems: tuple[str, ...] = ()
    shorts: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def detail(self) -> str:
        """How it is and, if wrong, what to do: the detail of its `clockwall check` line."""
        if self.ok:
            return f"{self.name!r} is enabled, delivering and allowed by the plan"
        return f"{self.name!r}: {'; '.join(self.problems)}. To fix: {'; '.join(self.fixes)}"

    def line(self) -> str:
        return f"{self.event}: {self.detail()}"

    def summary(self) -> str | None:
        """A few words for the wall, None when all is well."""
        return f"{self.event}: {', '.join(self.shorts)}" if self.shorts else None

    def public(self) -> dict[str, Any]:
        """What /readyz shows."""
        return {
            "id": self.id,
            "name": self.name,
            "event": self.event,
            "enabled": self.enabled,
            "deliveryEnabled": self.delivery_enabled,
            "planEnabled": self.plan_enabled,
            "tokenConfigured": self.token_configured,
            "problem": "; ".join(self.problems) or None,
            "fix": "; ".join(self.fixes) or None,
        }


def read_health(hooks: list[dict[str, Any]], settings: Settings, ws: str) -> list[WebhookHealth]:
    """The health of this wall's webhooks among `hooks` (Clockify's webhook objects): those
    carrying one of the workspace's configured tokens, and those pointing at
    CLOCKWALL_PUBLIC_URL's webhook path whatever their token."""
    target = webhook_url(settings.public_url) if settings.public_url else None
    tokens = {t.secret.reveal() for t in settings.webhook_tokens if t.workspace_id in (None, ws)}
    out: list[WebhookHealth] = []
    for hook in hooks:
        token = hook.get("authToken")
        token_configured = isinstance(token, str) and token in tokens
        if not token_configured and (target is None or hook.get("url") != target):
            continue
        # Older webhook objects carry `enabled` only: a flag that is absent is not a problem.
        flags = {name: hook.get(name) is not False for name, *_ in _PROBLEMS}
        found = [(what, short, fix) for name, what, short, fix in _PROBLEMS if not flags[name]]
        if not token_configured:
            found.append(_TOKEN_PROBLEM)
        out.append(
            WebhookHealth(
                id=str(hook.get("id", "")),
                name=str(hook.get("name", ""))[:60],
                event=str(hook.get("webhookEvent", ""))[:64],
                enabled=flags["enabled"],
                delivery_enabled=flags["deliveryEnabled"],
                plan_enabled=flags["planEnabled"],
                token_configured=token_configured,
                problems=tuple(what for what, _, _ in found),
                shorts=tuple(short for _, short, _ in found),
                fixes=tuple(fix for _, _, fix in found),
            )
        )
    return sorted(out, key=lambda h: (h.event, h.id))


def general_problems(health: list[WebhookHealth], settings: Settings) -> list[str]:
    """Problems of no one webhook: none of them carries a configured token."""
    if settings.webhook_tokens and not any(h.token_configured for h in health):
        return [NO_WEBHOOK]
    return []


def summarize(health: list[WebhookHealth], settings: Settings) -> list[str]:
    """The wall's short list of webhook problems (empty when all is well)."""
    problems = [s for s in (h.summary() for h in health) if s]
    return problems + general_problems(health, settings)


async def read_stored_health(redis: Redis, ws: str) -> dict[str, Any] | None:
    """The last check of the workspace's webhooks, by whichever process polls it."""
    raw = await redis.hget(keys.poller_state(ws), STATE_FIELD)
    if not raw:
        return None
    data = orjson.loads(raw)
    return data if isinstance(data, dict) else None


@dataclass
class ReplayReport:
    """What one replay pass did."""

    at: str
    requests: int = 0
    fetched: int = 0  # logs not handled before
    applied: int = 0  # changed the totals
    unchanged: int = 0  # duplicates: they had counted already
    refused: int = 0  # the endpoint refused them (see the log); a resend would fail alike
    more: bool = False  # a full page: more failed deliveries wait
    interrupted: bool = False  # the store failed mid-pass; the rest waits for the next


@dataclass
class _Cursor:
    """Where a webhook's next log search starts (`since`, one second before the newest log
    handled, since Clockify's `from` has second precision and may be exclusive) and the logs
    handled at or after it (id -> epoch seconds)."""

    since: datetime
    seen: dict[str, float] = field(default_factory=dict)

    def handled(self, log_id: str, at: datetime | None) -> None:
        moment = at or self.since
        self.seen[log_id] = moment.timestamp()
        edge = moment.replace(microsecond=0) - timedelta(seconds=1)
        if edge > self.since:
            self.since = edge
            self.seen = {i: t for i, t in self.seen.items() if t >= edge.timestamp()}

    def dumps(self) -> bytes:
        return orjson.dumps({"since": self.since.isoformat(), "seen": self.seen})


class WebhookWatch:
    """Checks the webhooks' health and replays failed deliveries for one workspace; run by the
    leader poller (`run_due` after its own tasks, paid from the schedule's spare requests)."""

    def __init__(
        self,
        ws: str,
        client: ClockifyClient,
        redis: Redis,
        settings: Settings,
        store: TotalsStore,
        apply: Apply,
        *,
        budget: RequestBudget,
        clock: Clock,
    ) -> None:
        self.ws = ws
        self.client = client
        self.redis = redis
        self.settings = settings
        self.store = store
        self.apply = apply
        self.budget = budget
        self.clock = clock
        self.health: list[WebhookHealth] | None = None  # None: not checked yet
        self.problems: list[str] = []
        self.health_due: datetime | None = None  # None: now
        self.replay_due: datetime | None = None
        self.last_pass: ReplayReport | None = None

    # Intervals: on Free (30 requests an hour) a check an hour and a replay pass every six
    # hours cost about 1.5 requests an hour; after an outage a pass is due at once.
    @property
    def _free(self) -> bool:
        return self.budget.limit_per_hour <= 60

    @property
    def health_s(self) -> float:
        return 3600.0 if self._free else 300.0

    @property
    def replay_s(self) -> float:
        return 6 * 3600.0 if self._free else 900.0

    def request_replay(self) -> None:
        """The store was unreachable: deliveries may have failed; replay them when it is back."""
        self.replay_due = None

    async def run_due(self, can_afford: CanAfford) -> None:
        """Check and replay when due and `can_afford` the requests. Clockify refusing the calls
        (403: the key is not an admin's) or failing them is logged and retried later; budget
        and rate-limit errors go to the poller, which waits for them."""
        now = self.clock()
        try:
            if self.health is None or self.health_due is None or now >= self.health_due:
                if not await can_afford(1):
                    return
                await self.check()
                self.health_due = now + timedelta(seconds=self.health_s)
            if self.replay_due is not None and now < self.replay_due:
                return
            hooks = self.health or []
            if not hooks:
                self.replay_due = now + timedelta(seconds=self.replay_s)
                return
            if not await can_afford(len(hooks)):
                return
            report = await self.replay(hooks)
            again = report.more or report.interrupted
            self.replay_due = now + timedelta(seconds=0 if again else self.replay_s)
        except (ForbiddenError, NotFoundError) as exc:
            log.warning("webhook health: cannot read the webhooks or their logs: %s", exc)
            self.health, self.problems = [], [CANNOT_READ]
            self.health_due = self.replay_due = now + timedelta(hours=24)
            await self._store([], [CANNOT_READ])
        except UpstreamError as exc:
            log.warning("webhook health: %s; trying again in 5 minutes", exc)
            self.health_due = self.replay_due = now + timedelta(minutes=5)

    async def check(self) -> list[WebhookHealth]:
        """One request: the workspace's webhooks; keeps what it found for /readyz."""
        listing = await self.client.list_webhooks(self.ws)
        hooks = [h for h in listing.get("webhooks", []) if isinstance(h, dict)]
        health = read_health(hooks, self.settings, self.ws)
        problems = summarize(health, self.settings)
        if problems != self.problems:
            for hook in health:
                if not hook.ok:
                    log.warning("webhook %s", hook.line())
            if NO_WEBHOOK in problems:
                log.warning("webhooks of workspace %s: %s", self.ws, NO_WEBHOOK)
            if not problems:
                log.info("webhooks of workspace %s: all delivering", self.ws)
        self.health, self.problems = health, problems
        await self._store(health, general_problems(health, self.settings))
        return health

    async def _store(self, health: list[WebhookHealth], general: list[str]) -> None:
        stored = {
            "checkedAt": self.clock().isoformat(),
            "webhooks": [h.public() for h in health],
            "problems": general,
        }
        await self.redis.hset(keys.poller_state(self.ws), STATE_FIELD, orjson.dumps(stored))

    async def replay(self, hooks: list[WebhookHealth]) -> ReplayReport:
        """One request per webhook: its FAILED logs since its cursor; then each new one, oldest
        first across webhooks, through the apply path. Stops at a store failure, keeping the
        cursors at the last delivery handled."""
        now = self.clock()
        report = ReplayReport(at=now.isoformat())
        cursors: dict[str, _Cursor] = {}
        pending: list[tuple[datetime | None, WebhookHealth, dict[str, Any]]] = []
        for hook in hooks:
            cursor = cursors[hook.id] = await self._read_cursor(hook.id)
            logs = await self.client.webhook_logs(
                self.ws, hook.id, cursor.since, now, status="FAILED", size=LOG_PAGE_SIZE
            )
            report.requests += 1
            fresh = [item for item in logs if str(item.get("id")) not in cursor.seen]
            if len(logs) >= LOG_PAGE_SIZE:
                report.more = True
                if not fresh:
                    # A full page of logs all handled (more than a page in two seconds): step
                    # past them; the poller's reconcile covers what that might skip.
                    cursor.since += timedelta(seconds=1)
                    log.warning("replay: webhook %s has a full second of logs; stepped", hook.id)
            pending += [(_responded_at(item), hook, item) for item in fresh]
        pending.sort(key=lambda p: p[0].timestamp() if p[0] else now.timestamp())
        report.fetched = len(pending)
        try:
            for at, hook, item in pending:
                outcome = await self._replay_one(hook, item)
                if outcome == UNAVAILABLE:
                    report.interrupted = True
                    break
                cursors[hook.id].handled(str(item.get("id")), at)
                if outcome == "refused":
                    report.refused += 1
                elif outcome in UNCHANGED:
                    report.unchanged += 1
                else:
                    report.applied += 1
        finally:
            for hook_id, cursor in cursors.items():
                await self.redis.hset(
                    keys.poller_state(self.ws), f"replay:{hook_id}", cursor.dumps()
                )
        self.last_pass = report
        if report.fetched:
            log.info(
                "replayed %d failed webhook deliveries of workspace %s: %d applied, %d had "
                "counted already, %d refused%s",
                report.fetched,
                self.ws,
                report.applied,
                report.unchanged,
                report.refused,
                "; the store failed, the rest waits" if report.interrupted else "",
            )
        return report

    async def _replay_one(self, hook: WebhookHealth, item: dict[str, Any]) -> str:
        body = item.get("requestBody")
        if not isinstance(body, str) or not body:
            log.warning("replay: log %s of webhook %s has no request body", item.get("id"), hook.id)
            return "refused"
        raw = body.encode()
        if len(raw) > self.settings.webhook_max_bytes:
            log.warning(
                "replay: log %s of webhook %s holds %d bytes, more than "
                "CLOCKWALL_WEBHOOK_MAX_BYTES; skipped",
                item.get("id"),
                hook.id,
                len(raw),
            )
            return "refused"
        answer = await self.apply(hook.event, raw, self.ws)
        if answer.status == 503:
            return UNAVAILABLE
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        data = data if isinstance(data, dict) else {}
        if answer.status >= 400:
            log.warning(
                "replay: a failed %s delivery (log %s) was refused again with %d: %s",
                hook.event,
                item.get("id"),
                answer.status,
                data.get("error"),
            )
            return "refused"
        outcomes = [str(o) for o in data.get("outcomes") or [data.get("outcome")] if o]
        changed = [o for o in outcomes if o not in UNCHANGED]
        return changed[0] if changed else "unchanged"

    async def _read_cursor(self, hook_id: str) -> _Cursor:
        raw = await self.redis.hget(keys.poller_state(self.ws), f"replay:{hook_id}")
        if raw:
            data = orjson.loads(raw)
            return _Cursor(datetime.fromisoformat(data["since"]), dict(data.get("seen") or {}))
        # First pass: failed deliveries of the week the wall shows.
        start, _ = self.store.current_week()
        since = datetime.combine(start, datetime.min.time(), self.store.zone).astimezone(UTC)
        return _Cursor(since)


def _responded_at(item: dict[str, Any]) -> datetime | None:
    raw = item.get("respondedAt")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
