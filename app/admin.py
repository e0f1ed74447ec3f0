"""`clockwall setup` (create the webhooks the plan allows, reusing what exists) and
`clockwall check` (configuration, Redis, Clockify, plan, budget and webhooks, with a verdict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.budget import FREE_PLAN_PER_HOUR, RequestBudget, budget_for_plan
from app.clockify import ClockifyClient, ClockifyError, UnlimitedBudget
from app.config import Settings
from app.reporting import parse_workspace_settings, read_stored, rounding_text
from app.webhook_health import WEBHOOK_PATH, read_health, webhook_url

FREE_WEBHOOK_LIMIT = 3
PAID_WEBHOOK_LIMIT = 100  # per workspace
PAID_WEBHOOK_LIMIT_PER_ADMIN = 10  # per admin: one API key makes at most ten
# On Free the best three: timers starting and stopping drive the wall; edits fix totals.
# Manual entries and deletes then arrive by polling (see the poller).
FREE_EVENTS = ("NEW_TIMER_STARTED", "TIMER_STOPPED", "TIME_ENTRY_UPDATED")
PAID_EVENTS = (
    "NEW_TIMER_STARTED",
    "TIMER_STOPPED",
    "NEW_TIME_ENTRY",
    "TIME_ENTRY_UPDATED",
    "TIME_ENTRY_DELETED",
    "TIME_ENTRY_RESTORED",
    "TIME_ENTRY_SPLIT",
    "NEW_PROJECT",
    "PROJECT_UPDATED",
    "USER_UPDATED",
)  # ten: the per-admin limit. Client and tag names come from payloads and the name poll.


class SetupError(Exception):
    """Setup cannot go on; the message says why and what to do."""


@dataclass
class SetupResult:
    plan: str | None
    workspace: str
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def token_line(self) -> str:
        # Bound to the workspace: an unbound token would be accepted for every configured one.
        return "CLOCKIFY_WEBHOOK_TOKENS=" + ",".join(f"{self.workspace}:{t}" for t in self.tokens)


def is_free(plan: str | None) -> bool:
    return not plan or plan.upper() == "FREE"


def open_client(settings: Settings, http: httpx.AsyncClient, redis: Redis | None) -> ClockifyClient:
    budget: Any = UnlimitedBudget()
    if redis is not None and settings.workspace_ids:
        # Draw from the same hourly budget as the poller, so setup never pushes it over.
        budget = RequestBudget(
            redis,
            settings.workspace_ids[0],
            settings.api_budget_per_hour or FREE_PLAN_PER_HOUR,
        )
    return ClockifyClient(
        settings.api_key,
        budget=budget,
        api_url=settings.api_url,
        reports_url=settings.reports_url,
        http=http,
        max_retries=2,
    )


async def run_setup(client: ClockifyClient, ws: str, public_url: str) -> SetupResult:
    url = webhook_url(public_url)
    if not url.startswith(("https://", "http://")):
        raise SetupError(f"--url {public_url!r} is not a URL; give e.g. https://wall.example.com")
    workspace = await client.get_workspace(ws)
    plan = workspace.get("featureSubscriptionType")
    plan = plan if isinstance(plan, str) else None
    wanted = FREE_EVENTS if is_free(plan) else PAID_EVENTS
    listing = await client.list_webhooks(ws)
    hooks = [h for h in listing.get("webhooks", []) if isinstance(h, dict)]
    ours = {h.get("webhookEvent"): h for h in hooks if h.get("url") == url}
    missing = [event for event in wanted if event not in ours]
    in_use = int(listing.get("workspaceWebhookCount") or len(hooks))
    if is_free(plan):
        limit = FREE_WEBHOOK_LIMIT
    else:
        me = (await client.get_user()).get("id")
        mine = sum(1 for h in hooks if h.get("userId") == me)
        # Whichever binds first: the workspace's 100 or this admin's 10.
        limit = min(PAID_WEBHOOK_LIMIT, in_use - mine + PAID_WEBHOOK_LIMIT_PER_ADMIN)
    if in_use + len(missing) > limit:
        others = [
            f"{h.get('webhookEvent')} -> {h.get('url')}" for h in hooks if h.get("url") != url
        ]
        raise SetupError(
            f"the {plan or 'FREE'} plan allows {limit} webhooks and {in_use} exist; creating "
            f"{len(missing)} more ({', '.join(missing)}) would exceed it. Delete some in Clockify "
            "(Preferences > Advanced > Manage webhooks) and run setup again. Existing: "
            + ("; ".join(others) or "none")
        )
    result = SetupResult(plan, ws)
    for event in wanted:
        hook = ours.get(event)
        if hook is not None:
            result.reused.append(event)
        else:
            hook = await client.create_webhook(ws, f"clockwall {event.lower()}"[:30], url, event)
            result.created.append(event)
        token = hook.get("authToken")
        if isinstance(token, str) and token:
            result.tokens.append(token)
    return result


@dataclass
class CheckLine:
    ok: bool
    what: str
    detail: str


async def run_check(
    settings: Settings, http: httpx.AsyncClient, redis: Redis | None
) -> list[CheckLine]:
    lines: list[CheckLine] = []
    add: Callable[[bool, str, str], None] = lambda ok, what, detail: lines.append(  # noqa: E731
        CheckLine(ok, what, detail)
    )
    add(
        True,
        "configuration",
        f"mode {settings.effective_mode}, workspaces {', '.join(settings.workspace_ids) or 'none'}"
        f", {len(settings.webhook_tokens)} webhook token(s), time zone "
        f"{settings.timezone or 'from the API key owner, else UTC'}, report rounding "
        f"{settings.report_rounding or 'from the workspace'}, durations "
        f"{settings.duration_format or 'from the workspace'}",
    )
    if redis is None:
        add(
            False, "redis", "REDIS_URL is not set: the embedded store keeps nothing across restarts"
        )
    else:
        try:
            await redis.ping()
            add(True, "redis", "reachable")
        except (RedisError, OSError) as exc:
            add(False, "redis", f"unreachable ({type(exc).__name__}); start Redis or fix REDIS_URL")
            redis = None  # so the checks below still run (without the shared budget)
    if settings.effective_mode == "webhook":
        if not settings.webhook_tokens:
            add(False, "webhooks", "no CLOCKIFY_WEBHOOK_TOKENS: nothing can reach the wall")
        if not settings.api_key:
            add(True, "clockify api", "not used (no CLOCKIFY_API_KEY): webhooks only, no healing")
            return lines
    if not settings.api_key:
        add(False, "clockify api", f"mode {settings.mode} needs CLOCKIFY_API_KEY")
        return lines
    client = open_client(settings, http, redis)
    try:
        user = await client.get_user()
        add(
            True,
            "clockify api",
            f"reachable at {settings.api_url}; key belongs to {user.get('name')}",
        )
        for ws in settings.workspace_ids:
            workspace = await client.get_workspace(ws)
            plan = workspace.get("featureSubscriptionType")
            plan_text = plan if isinstance(plan, str) else None
            per_hour = budget_for_plan(plan_text, settings.api_budget_per_hour)
            add(
                True,
                f"workspace {ws}",
                f"{workspace.get('name')}, plan {plan_text or 'unknown'}"
                + await _reporting_detail(workspace, ws, redis),
            )
            if redis is not None:
                left = await RequestBudget(redis, ws, per_hour).remaining()
                add(left > 0, "api budget", f"{left} of {per_hour} requests left this hour")
            listing = await client.list_webhooks(ws)
            hooks = [h for h in listing.get("webhooks", []) if isinstance(h, dict)]
            mine = [h for h in hooks if str(h.get("url", "")).endswith(WEBHOOK_PATH)]
            configured = {t.secret.reveal() for t in settings.webhook_tokens}
            known = [h for h in mine if h.get("authToken") in configured]
            events = ", ".join(sorted(str(h.get("webhookEvent")) for h in known)) or "none"
            wanted = FREE_EVENTS if is_free(plan_text) else PAID_EVENTS
            ok = bool(known) or settings.effective_mode == "poll"
            add(
                ok,
                "webhooks",
                f"{len(known)} of {len(wanted)} recommended registered with a configured token "
                f"({events}); {len(hooks)} webhooks in the workspace"
                + ("" if ok else "; run `clockwall setup --url https://your-host`"),
            )
            # A line per webhook that feeds this wall: Clockify may have turned one off.
            for health in read_health(hooks, settings, ws):
                add(health.ok, f"webhook {health.event}", health.detail())
    except ClockifyError as exc:
        add(False, "clockify api", str(exc))
    return lines


async def _reporting_detail(workspace: dict[str, Any], ws: str, redis: Redis | None) -> str:
    """`; reports round up:15, durations DECIMAL; in use: Europe/Berlin, weeks from MONDAY,
    rounding up:15, durations DECIMAL (source clockify)`: Clockify's report settings next to
    the ones clockwall stored (the poller takes Clockify's within the hour)."""
    found = parse_workspace_settings(workspace)
    detail = ""
    if found is not None:
        detail = f"; reports round {rounding_text(found[0])}, durations {found[1]}"
    if redis is not None:
        try:
            stored = await read_stored(redis, ws)
        except (RedisError, OSError):
            stored = None
        if stored is not None:
            detail += (
                f"; in use: {stored.zone.key}, weeks from {stored.week_start}, rounding "
                f"{rounding_text(stored.rounding)}, durations {stored.duration_format} "
                f"(source {stored.source})"
            )
    return detail
