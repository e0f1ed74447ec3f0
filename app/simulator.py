"""A fake Clockify for tests and the demo: one simulated workspace (team, projects, entries,
webhooks), a Starlette app serving the REST API under `/api/v1` and the Reports API under
`/reports/v1` as clockify-facts.md describes them, and a webhook sender with fault injection.

Everything time-dependent reads the injected `clock` (epoch seconds), so tests move time by hand.
Mutations (`start_timer`, `stop_timer`, ...) queue `Delivery` objects in `outbox`; a
`WebhookSender` posts them (`await sim.deliver_webhooks(sender)`), dropping, duplicating,
delaying, holding back or reordering on demand.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.models import format_instant

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
JSONObject = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]

# Time-entry events the simulated team produces (one webhook carries exactly one event).
NEW_TIMER_STARTED = "NEW_TIMER_STARTED"
TIMER_STOPPED = "TIMER_STOPPED"
NEW_TIME_ENTRY = "NEW_TIME_ENTRY"
TIME_ENTRY_UPDATED = "TIME_ENTRY_UPDATED"
TIME_ENTRY_DELETED = "TIME_ENTRY_DELETED"
TIME_ENTRY_EVENTS = (
    NEW_TIMER_STARTED,
    TIMER_STOPPED,
    NEW_TIME_ENTRY,
    TIME_ENTRY_UPDATED,
    TIME_ENTRY_DELETED,
)
# The documented webhookEvent enum (clockify-facts.md section 3); creation accepts any of them.
_OTHER_EVENTS = """
NEW_PROJECT NEW_TASK NEW_CLIENT TIME_ENTRY_BATCH_DELETED TIME_ENTRY_SPLIT TIME_ENTRY_RESTORED
NEW_TAG USER_DELETED_FROM_WORKSPACE USER_JOINED_WORKSPACE USER_DEACTIVATED_ON_WORKSPACE
USER_ACTIVATED_ON_WORKSPACE USER_EMAIL_CHANGED USER_UPDATED NEW_INVOICE INVOICE_UPDATED
NEW_APPROVAL_REQUEST APPROVAL_REQUEST_STATUS_UPDATED TIME_OFF_REQUESTED TIME_OFF_REQUEST_APPROVED
TIME_OFF_REQUEST_REJECTED TIME_OFF_REQUEST_WITHDRAWN BALANCE_UPDATED TAG_UPDATED TAG_DELETED
TASK_UPDATED CLIENT_UPDATED TASK_DELETED CLIENT_DELETED EXPENSE_RESTORED ASSIGNMENT_CREATED
ASSIGNMENT_DELETED ASSIGNMENT_PUBLISHED ASSIGNMENT_UPDATED EXPENSE_CREATED EXPENSE_DELETED
EXPENSE_UPDATED PROJECT_UPDATED PROJECT_DELETED USER_GROUP_CREATED USER_GROUP_UPDATED
USER_GROUP_DELETED USERS_INVITED_TO_WORKSPACE LIMITED_USERS_ADDED_TO_WORKSPACE COST_RATE_UPDATED
BILLABLE_RATE_UPDATED
"""
WEBHOOK_EVENTS = frozenset((*TIME_ENTRY_EVENTS, *_OTHER_EVENTS.split()))
TRIGGER_SOURCE_TYPES = frozenset(
    ("PROJECT_ID", "USER_ID", "TAG_ID", "TASK_ID", "WORKSPACE_ID", "ASSIGNMENT_ID", "EXPENSE_ID")
)
FREE_PLAN = "FREE"
FREE_WEBHOOK_LIMIT = 3
PAID_WEBHOOK_LIMIT = 100  # per workspace
PAID_WEBHOOK_LIMIT_PER_ADMIN = 10
FREE_RATE_LIMIT = (30, 3600.0)  # requests, window seconds: the whole workspace
PAID_RATE_LIMIT = (50, 1.0)
ENTITY_WINDOW_DEFAULT_S = 30 * 86400.0
FREE_REPORT_MAX_DAYS = 31  # Detailed report on FREE: at most one month a request
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class SimulatorError(ValueError):
    """A simulated Clockify rule was broken (unknown id, webhook limit, bad field)."""


class ManualClock:
    """A clock that moves only when told: `clock()` -> epoch seconds."""

    def __init__(self, start_s: float = 1_767_261_600.0) -> None:  # 2026-01-01T10:00:00Z
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    def set(self, moment: datetime) -> None:
        self.now_s = moment.timestamp()


def format_duration(seconds: int) -> str:
    """ISO-8601 as Clockify writes it: `PT1H30M`, `PT26S`, `PT0S`; hours never roll into days."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or out == "PT":
        out += f"{secs}S"
    return out


# State ---------------------------------------------------------------------------------
@dataclass
class SimUser:
    id: str
    name: str
    email: str
    time_zone: str = "UTC"
    week_start: str = "MONDAY"
    status: str = "ACTIVE"


@dataclass
class SimClient:
    id: str
    name: str
    currency: str | None = None
    archived: bool = False


@dataclass
class SimProject:
    id: str
    name: str
    client_id: str | None
    color: str
    billable: bool = True
    hourly_rate_minor: int | None = None  # minor units, e.g. 10500 = 105.00
    currency: str = "USD"
    estimate_s: int | None = None
    archived: bool = False


@dataclass
class SimTag:
    id: str
    name: str
    archived: bool = False


@dataclass
class SimEntry:
    id: str
    user_id: str
    start: datetime
    end: datetime | None
    project_id: str | None = None
    description: str = ""
    billable: bool = False
    tag_ids: tuple[str, ...] = ()
    created_at_s: float = 0.0
    updated_at_s: float = 0.0

    @property
    def running(self) -> bool:
        return self.end is None


@dataclass
class SimDeletion:
    entry: SimEntry
    deleted_at_s: float
    bin_id: str


@dataclass
class SimWebhook:
    id: str
    name: str
    url: str
    event: str
    auth_token: str
    user_id: str
    trigger_source_type: str = "WORKSPACE_ID"
    trigger_source: tuple[str, ...] = ()
    enabled: bool = True
    # Clockify turns delivery off after too many failed deliveries, and the plan can disable
    # a webhook (more webhooks than it allows, or an event it lacks).
    delivery_enabled: bool = True
    plan_enabled: bool = True
    failures_in_a_row: int = 0


@dataclass(frozen=True)
class SimWebhookLog:
    """One delivery attempt as `POST /webhooks/{id}/logs` lists it."""

    id: str
    webhook_id: str
    status_code: int  # 0: no answer (connection refused, timeout)
    request_body: str
    response_body: str
    responded_at_s: float

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    """One webhook POST as Clockify would send it."""

    webhook_id: str
    url: str
    event: str
    entry_id: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    endpoint: str
    status: int
    at_s: float


@dataclass
class _Fault:
    remaining: int
    status: int | None = None
    malformed: bool = False
    delay_s: float = 0.0
    retry_after_s: float | None = None
    path_contains: str | None = None


class SimulatedWorkspace:
    """One Clockify workspace, its team and its API-side rules (auth, plan limits, faults)."""

    def __init__(
        self,
        *,
        workspace_id: str | None = None,
        name: str = "Simulated Agency",
        plan: str = FREE_PLAN,
        api_key: str = "sim-api-key-0123456789",
        clock: Clock = time.time,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rng = rng or random.Random(0)
        self.clock = clock
        self.sleep = sleep
        self.id = workspace_id or self.new_id()
        self.name = name
        self.plan = plan
        self.api_key = api_key
        self.currency = "USD"
        self.users: dict[str, SimUser] = {}
        self.owner_id: str | None = None  # the API key's user; the first user added
        self.clients: dict[str, SimClient] = {}
        self.projects: dict[str, SimProject] = {}
        self.tags: dict[str, SimTag] = {}
        self.entries: dict[str, SimEntry] = {}
        self.deletions: dict[str, SimDeletion] = {}
        self.webhooks: dict[str, SimWebhook] = {}
        self.outbox: list[Delivery] = []
        self.webhook_logs: list[SimWebhookLog] = []
        # Failed deliveries in a row after which a webhook's delivery is turned off (None:
        # never; Clockify does not document its threshold).
        self.delivery_failure_limit: int | None = None
        self.requests: list[RequestRecord] = []
        # API behaviour switches (faithful defaults).
        self.admin = True  # False: the key's user is a plain member (403 on admin-only calls)
        self.enforce_rate_limit = True
        self.send_retry_after = False  # Clockify documents no Retry-After; tests may turn it on
        self.send_last_page_header = True
        self.entities_wrapped = False  # True: entities/* answer {"response": [...]}
        self.deleted_visibility_delay_s = 60.0  # deletions show up about a minute later
        self._hits: deque[float] = deque()
        self._faults: list[_Fault] = []

    # Identity and time -----------------------------------------------------------------
    def new_id(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def new_token(self) -> str:
        return "".join(self.rng.choice(_TOKEN_ALPHABET) for _ in range(32))

    def now(self) -> datetime:
        """The clock as an aware UTC datetime, truncated to seconds as Clockify stores it."""
        return datetime.fromtimestamp(int(self.clock()), UTC)

    @property
    def is_free(self) -> bool:
        return self.plan == FREE_PLAN

    # Setup -------------------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        email: str | None = None,
        *,
        time_zone: str = "UTC",
        week_start: str = "MONDAY",
    ) -> SimUser:
        ZoneInfo(time_zone)  # fail early on a typo
        email = email or f"{name.lower().replace(' ', '.')}@example.com"
        user = SimUser(self.new_id(), name, email, time_zone, week_start)
        self.users[user.id] = user
        if self.owner_id is None:
            self.owner_id = user.id
        return user

    def add_client(self, name: str, currency: str | None = None) -> SimClient:
        client = SimClient(self.new_id(), name, currency)
        self.clients[client.id] = client
        return client

    def add_project(
        self,
        name: str,
        client: SimClient | None = None,
        *,
        color: str = "#03A9F4",
        billable: bool = True,
        hourly_rate_minor: int | None = None,
        currency: str | None = None,
        estimate_s: int | None = None,
    ) -> SimProject:
        currency = currency or (client.currency if client else None) or self.currency
        project = SimProject(
            self.new_id(),
            name,
            client.id if client else None,
            color,
            billable,
            hourly_rate_minor,
            currency,
            estimate_s,
        )
        self.projects[project.id] = project
        return project

    def add_tag(self, name: str) -> SimTag:
        tag = SimTag(self.new_id(), name)
        self.tags[tag.id] = tag
        return tag

    def add_webhook(
        self,
        url: str,
        event: str,
        name: str | None = None,
        *,
        trigger_source_type: str = "WORKSPACE_ID",
        trigger_source: Sequence[str] = (),
    ) -> SimWebhook:
        """Create a webhook as `POST /webhooks` would, with the plan's limits."""
        name = name if name is not None else event.lower().replace("_", " ")[:30]
        _check_webhook(name, url, event, trigger_source_type)
        owner = self.owner_id or ""
        if self.is_free and len(self.webhooks) >= FREE_WEBHOOK_LIMIT:
            raise SimulatorError(
                f"Webhook limit reached: the Free plan allows {FREE_WEBHOOK_LIMIT} webhooks "
                "per workspace; delete one or upgrade"
            )
        if not self.is_free:
            mine = sum(1 for hook in self.webhooks.values() if hook.user_id == owner)
            if len(self.webhooks) >= PAID_WEBHOOK_LIMIT or mine >= PAID_WEBHOOK_LIMIT_PER_ADMIN:
                raise SimulatorError(
                    f"Webhook limit reached: {PAID_WEBHOOK_LIMIT_PER_ADMIN} per admin and "
                    f"{PAID_WEBHOOK_LIMIT} per workspace"
                )
        hook = SimWebhook(
            self.new_id(),
            name,
            url,
            event,
            self.new_token(),
            owner,
            trigger_source_type,
            tuple(trigger_source),
        )
        self.webhooks[hook.id] = hook
        return hook

    def update_webhook(
        self,
        webhook_id: str,
        *,
        name: str,
        url: str,
        event: str,
        trigger_source_type: str = "WORKSPACE_ID",
        trigger_source: Sequence[str] = (),
    ) -> SimWebhook:
        """Replace a webhook's settings as `PUT /webhooks/{id}` does; the token stays."""
        hook = self._webhook(webhook_id)
        _check_webhook(name, url, event, trigger_source_type)
        updated = replace(
            hook,
            name=name,
            url=url,
            event=event,
            trigger_source_type=trigger_source_type,
            trigger_source=tuple(trigger_source),
        )
        self.webhooks[webhook_id] = updated
        return updated

    def reset_webhook_token(self, webhook_id: str) -> SimWebhook:
        hook = self._webhook(webhook_id)
        hook.auth_token = self.new_token()
        return hook

    # The team at work ----------------------------------------------------------------------
    def start_timer(
        self,
        user: SimUser | str,
        project: SimProject | str | None = None,
        description: str = "",
        billable: bool | None = None,
        tags: Iterable[SimTag | str] = (),
        at: datetime | None = None,
    ) -> SimEntry:
        """Start a timer (stopping the user's running one first, as Clockify does)."""
        user_id = self._user(user).id
        at = _second(at or self.now())
        if self.running_entry(user_id) is not None:
            self.stop_timer(user_id, at)
        entry = self._new_entry(user_id, at, None, project, description, billable, tags)
        self._emit(NEW_TIMER_STARTED, entry)
        return entry

    def stop_timer(self, user: SimUser | str, at: datetime | None = None) -> SimEntry:
        user_id = self._user(user).id
        entry = self.running_entry(user_id)
        if entry is None:
            raise SimulatorError(f"user {user_id} has no running timer")
        end = _second(at or self.now())
        if end < entry.start:
            raise SimulatorError("a timer cannot stop before it started")
        entry.end = end
        entry.updated_at_s = self.clock()
        self._emit(TIMER_STOPPED, entry)
        return entry

    def add_manual_entry(
        self,
        user: SimUser | str,
        start: datetime,
        end: datetime,
        project: SimProject | str | None = None,
        description: str = "",
        billable: bool | None = None,
        tags: Iterable[SimTag | str] = (),
        *,
        notify: bool = True,
    ) -> SimEntry:
        if end < start:
            raise SimulatorError("end is before start")
        user_id = self._user(user).id
        entry = self._new_entry(
            user_id, _second(start), _second(end), project, description, billable, tags
        )
        if notify:
            self._emit(NEW_TIME_ENTRY, entry)
        return entry

    def update_entry(self, entry_id: str, **changes: Any) -> SimEntry:
        """Change `description`, `project` (id or None), `billable`, `tags` (ids), `start`,
        `end` (None makes it run again is not allowed) and emit TIME_ENTRY_UPDATED."""
        entry = self._entry(entry_id)
        allowed = {"description", "project", "billable", "tags", "start", "end"}
        unknown = set(changes) - allowed
        if unknown:
            raise SimulatorError(f"cannot update {sorted(unknown)}; use {sorted(allowed)}")
        if "description" in changes:
            entry.description = str(changes["description"])
        if "project" in changes:
            entry.project_id = self._project_id(changes["project"])
        if "billable" in changes:
            entry.billable = bool(changes["billable"])
        if "tags" in changes:
            entry.tag_ids = self._tag_ids(changes["tags"])
        if "start" in changes:
            entry.start = _second(changes["start"])
        if "end" in changes:
            if changes["end"] is None and entry.end is not None:
                raise SimulatorError("a stopped entry cannot be made to run again")
            entry.end = _second(changes["end"]) if changes["end"] is not None else None
        if entry.end is not None and entry.end < entry.start:
            raise SimulatorError("end is before start")
        entry.updated_at_s = self.clock()
        self._emit(TIME_ENTRY_UPDATED, entry)
        return entry

    def delete_entry(self, entry_id: str) -> SimEntry:
        entry = self._entry(entry_id)
        del self.entries[entry_id]
        self.deletions[entry_id] = SimDeletion(entry, self.clock(), self.new_id())
        self._emit(TIME_ENTRY_DELETED, entry)
        return entry

    def running_entry(self, user_id: str) -> SimEntry | None:
        for entry in self.entries.values():
            if entry.user_id == user_id and entry.end is None:
                return entry
        return None

    def running_entries(self) -> list[SimEntry]:
        return [entry for entry in self.entries.values() if entry.end is None]

    def simulate_step(self, rng: random.Random | None = None) -> SimEntry:
        """One plausible action of a random teammate (for the demo): stop a running timer or
        start one; now and then log a manual entry or edit a description."""
        rng = rng or self.rng
        user = rng.choice(list(self.users.values()))
        projects = [p for p in self.projects.values() if not p.archived]
        roll = rng.random()
        running = self.running_entry(user.id)
        if running is not None and roll < 0.6:
            return self.stop_timer(user)
        if roll < 0.1:
            end = self.now() - timedelta(minutes=rng.randint(5, 90))
            start = end - timedelta(minutes=rng.randint(15, 120))
            return self.add_manual_entry(user, start, end, rng.choice(projects), "Catch-up")
        if roll < 0.15 and running is not None:
            return self.update_entry(running.id, description=rng.choice(_DESCRIPTIONS))
        tags = [rng.choice(list(self.tags.values()))] if self.tags else []
        return self.start_timer(user, rng.choice(projects), rng.choice(_DESCRIPTIONS), None, tags)

    # Webhook deliveries -------------------------------------------------------------------
    def drain_outbox(self) -> list[Delivery]:
        deliveries, self.outbox = self.outbox, []
        return deliveries

    async def deliver_webhooks(self, sender: WebhookSender) -> list[DeliveryResult]:
        """Send the outbox; every attempt made (not a dropped or held one) is logged as
        Clockify logs it, so failed ones can be found through the logs endpoint."""
        results = await sender.send(self.drain_outbox())
        for result in results:
            self.log_delivery(result)
        return results

    def log_delivery(self, result: DeliveryResult) -> None:
        if result.outcome not in ("sent", "failed"):
            return
        delivery = result.delivery
        entry = SimWebhookLog(
            self.new_id(),
            delivery.webhook_id,
            result.status or 0,
            delivery.body.decode(),
            result.response_body or "",
            self.clock(),
        )
        self.webhook_logs.append(entry)
        hook = self.webhooks.get(delivery.webhook_id)
        if hook is None:
            return
        hook.failures_in_a_row = 0 if entry.succeeded else hook.failures_in_a_row + 1
        limit = self.delivery_failure_limit
        if limit is not None and hook.failures_in_a_row >= limit:
            hook.delivery_enabled = False

    def _emit(self, event: str, entry: SimEntry) -> None:
        body = orjson.dumps(self.webhook_body(entry))
        for hook in self.webhooks.values():
            if hook.event != event or not self._triggers(hook, entry):
                continue
            if not (hook.enabled and hook.delivery_enabled and hook.plan_enabled):
                continue
            headers = {
                "clockify-signature": hook.auth_token,
                "clockify-webhook-event-type": event,
                "content-type": "application/json",
            }
            self.outbox.append(Delivery(hook.id, hook.url, event, entry.id, headers, body))

    @staticmethod
    def _triggers(hook: SimWebhook, entry: SimEntry) -> bool:
        if hook.trigger_source_type == "WORKSPACE_ID" or not hook.trigger_source:
            return True
        sources = set(hook.trigger_source)
        if hook.trigger_source_type == "USER_ID":
            return entry.user_id in sources
        if hook.trigger_source_type == "PROJECT_ID":
            return entry.project_id in sources
        if hook.trigger_source_type == "TAG_ID":
            return bool(sources.intersection(entry.tag_ids))
        return False

    # JSON views ----------------------------------------------------------------------------
    def user_json(self, user: SimUser) -> JSONObject:
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "profilePicture": "",
            "activeWorkspace": self.id,
            "defaultWorkspace": self.id,
            "status": user.status,
            "settings": {
                "weekStart": user.week_start,
                "timeZone": user.time_zone,
                "timeFormat": "HOUR24",
                "dateFormat": "YYYY-MM-DD",
            },
        }

    def workspace_json(self) -> JSONObject:
        return {
            "id": self.id,
            "name": self.name,
            "hourlyRate": {"amount": 0, "currency": self.currency},
            "costRate": None,
            "memberships": [
                {"userId": uid, "membershipType": "WORKSPACE", "membershipStatus": "ACTIVE"}
                for uid in self.users
            ],
            "workspaceSettings": {"lockTimeZone": None},
            "featureSubscriptionType": self.plan,
        }

    def client_json(self, client: SimClient) -> JSONObject:
        return {
            "id": client.id,
            "name": client.name,
            "workspaceId": self.id,
            "archived": client.archived,
            "currencyCode": client.currency,
        }

    def project_json(self, project: SimProject) -> JSONObject:
        client = self.clients.get(project.client_id or "")
        estimate = format_duration(project.estimate_s or 0)
        return {
            "id": project.id,
            "name": project.name,
            "clientId": project.client_id or "",
            "clientName": client.name if client else "",
            "workspaceId": self.id,
            "billable": project.billable,
            "hourlyRate": (
                {"amount": project.hourly_rate_minor, "currency": project.currency}
                if project.hourly_rate_minor is not None
                else None
            ),
            "costRate": None,
            "estimate": {"estimate": estimate, "type": "AUTO"},
            "timeEstimate": {
                "estimate": estimate,
                "type": "AUTO",
                "resetOption": None,
                "active": project.estimate_s is not None,
                "includeNonBillable": True,
            },
            "budgetEstimate": None,
            "estimateReset": None,
            "color": project.color,
            "archived": project.archived,
            "duration": format_duration(self._project_seconds(project.id)),
            "note": "",
            "activeEstimate": "TIME" if project.estimate_s else "NONE",
            "public": True,
            "template": False,
            "memberships": [],
        }

    def tag_json(self, tag: SimTag) -> JSONObject:
        return {"id": tag.id, "name": tag.name, "workspaceId": self.id, "archived": tag.archived}

    def webhook_json(self, hook: SimWebhook) -> JSONObject:
        return {
            "id": hook.id,
            "name": hook.name,
            "url": hook.url,
            "webhookEvent": hook.event,
            "triggerSource": list(hook.trigger_source),
            "triggerSourceType": hook.trigger_source_type,
            "enabled": hook.enabled,
            "deliveryEnabled": hook.delivery_enabled,
            "planEnabled": hook.plan_enabled,
            "userId": hook.user_id,
            "workspaceId": self.id,
            "authToken": hook.auth_token,
        }

    def _interval(self, entry: SimEntry) -> JSONObject:
        end = entry.end
        return {
            "start": format_instant(entry.start),
            "end": format_instant(end) if end else None,
            "duration": format_duration(_seconds(entry)) if end else None,
        }

    def _rate(self, entry: SimEntry) -> JSONObject | None:
        project = self.projects.get(entry.project_id or "")
        if project is None or project.hourly_rate_minor is None:
            return None
        return {"amount": project.hourly_rate_minor, "currency": project.currency}

    def entry_json(self, entry: SimEntry, hydrated: bool = False) -> JSONObject:
        """A REST time-entry row (`taskId`/`tagIds`; hydrated adds project, task, tags)."""
        out: JSONObject = {
            "id": entry.id,
            "description": entry.description,
            "userId": entry.user_id,
            "workspaceId": self.id,
            "projectId": entry.project_id,
            "taskId": None,
            "tagIds": list(entry.tag_ids) or None,
            "billable": entry.billable,
            "isLocked": False,
            "kioskId": None,
            "type": "REGULAR",
            "timeInterval": self._interval(entry),
            "hourlyRate": self._rate(entry),
            "costRate": None,
            "customFieldValues": [],
        }
        if hydrated:
            out.update(self._hydration(entry))
        return out

    def _hydration(self, entry: SimEntry) -> JSONObject:
        project = self.projects.get(entry.project_id or "")
        return {
            "project": self.project_json(project) if project else None,
            "task": None,
            "tags": [self.tag_json(self.tags[t]) for t in entry.tag_ids if t in self.tags],
        }

    def webhook_body(self, entry: SimEntry) -> JSONObject:
        """The raw body Clockify POSTs for a time-entry event: hydrated, no taskId/tagIds."""
        user = self.users.get(entry.user_id)
        out: JSONObject = {
            "id": entry.id,
            "description": entry.description,
            "userId": entry.user_id,
            "billable": entry.billable,
            "projectId": entry.project_id,
            "timeInterval": self._interval(entry),
            "workspaceId": self.id,
            "isLocked": False,
            "hourlyRate": self._rate(entry),
            "costRate": None,
            "customFieldValues": [],
            "type": "REGULAR",
            "kioskId": None,
            "approvalStatus": None,
            "projectCurrency": None,
            "currentlyRunning": entry.end is None,
            **self._hydration(entry),
            "user": ({"id": user.id, "name": user.name, "status": user.status} if user else None),
        }
        return out

    def report_row(self, entry: SimEntry) -> JSONObject:
        """A Detailed report row: `_id`, flat names, integer-second duration, zoned times, and
        money as flat integers in minor units (`rate`, `amount`, `costRate`, `costAmount`,
        `currency`); no `hourlyRate` object, no `tagIds` (the tags are in `tags`)."""
        user = self.users[entry.user_id]
        project = self.projects.get(entry.project_id or "")
        client = self.clients.get(project.client_id or "") if project else None
        zone = ZoneInfo(user.time_zone)
        end = entry.end or entry.start
        seconds = _seconds(entry)
        rate = self._rate(entry)
        rate_minor = rate["amount"] if rate else 0
        amount_minor = (seconds * rate_minor + 1800) // 3600 if entry.billable else 0
        return {
            "_id": entry.id,
            "description": entry.description,
            "userId": user.id,
            "userName": user.name,
            "userEmail": user.email,
            "type": "REGULAR",
            "projectId": entry.project_id,
            "projectName": project.name if project else None,
            "projectColor": project.color if project else None,
            "clientId": client.id if client else None,
            "clientName": client.name if client else None,
            "taskId": None,
            "taskName": None,
            "tags": [{"id": t, "name": self.tags[t].name} for t in entry.tag_ids if t in self.tags],
            "billable": entry.billable,
            "isLocked": False,
            "approvalRequestId": None,
            "rate": rate_minor,
            "amount": amount_minor,
            "costRate": 0,
            "costAmount": 0,
            "currency": rate["currency"] if rate else self.currency,
            "timeInterval": {
                "start": format_instant(entry.start),
                "end": format_instant(end),
                "duration": seconds,
                "timeZone": user.time_zone,
                "zonedStart": entry.start.astimezone(zone).isoformat(),
                "zonedEnd": end.astimezone(zone).isoformat(),
                "offStart": _offset_s(entry.start, zone),
                "offEnd": _offset_s(end, zone),
            },
        }

    # Faults and bookkeeping -----------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after_s: float | None = None,
        path_contains: str | None = None,
    ) -> None:
        """The next `n` API requests (whose path contains `path_contains`) get `status`."""
        self._faults.append(
            _Fault(n, status=status, retry_after_s=retry_after_s, path_contains=path_contains)
        )

    def malformed_next(self, n: int = 1, *, path_contains: str | None = None) -> None:
        """The next `n` requests get 200 with a truncated, unparseable JSON body."""
        self._faults.append(_Fault(n, malformed=True, path_contains=path_contains))

    def delay_next(self, n: int, delay_s: float, *, path_contains: str | None = None) -> None:
        """The next `n` requests wait `delay_s` (the injected sleep) before being answered."""
        self._faults.append(_Fault(n, delay_s=delay_s, path_contains=path_contains))

    def count(self, endpoint: str | None = None, *, status: int | None = None) -> int:
        """How many requests hit `endpoint` (a route name such as "in_progress")."""
        return sum(
            1
            for record in self.requests
            if (endpoint is None or record.endpoint == endpoint)
            and (status is None or record.status == status)
        )

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path_contains is None or fault.path_contains in path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _rate_limited(self) -> float | None:
        """Seconds until a slot frees when over the plan's rate limit, else None (and count)."""
        if not self.enforce_rate_limit:
            return None
        limit, window_s = FREE_RATE_LIMIT if self.is_free else PAID_RATE_LIMIT
        now_s = self.clock()
        while self._hits and self._hits[0] <= now_s - window_s:
            self._hits.popleft()
        if len(self._hits) >= limit:
            return max(0.0, self._hits[0] + window_s - now_s)
        self._hits.append(now_s)
        return None

    # Lookups -------------------------------------------------------------------------------
    def _user(self, user: SimUser | str) -> SimUser:
        user_id = user.id if isinstance(user, SimUser) else user
        if user_id not in self.users:
            raise SimulatorError(f"unknown user {user_id}")
        return self.users[user_id]

    def _entry(self, entry_id: str) -> SimEntry:
        if entry_id not in self.entries:
            raise SimulatorError(f"unknown or deleted time entry {entry_id}")
        return self.entries[entry_id]

    def _webhook(self, webhook_id: str) -> SimWebhook:
        if webhook_id not in self.webhooks:
            raise SimulatorError(f"unknown webhook {webhook_id}")
        return self.webhooks[webhook_id]

    def _project_id(self, project: SimProject | str | None) -> str | None:
        if project is None or project == "":
            return None
        project_id = project.id if isinstance(project, SimProject) else project
        if project_id not in self.projects:
            raise SimulatorError(f"unknown project {project_id}")
        return project_id

    def _tag_ids(self, tags: Iterable[SimTag | str]) -> tuple[str, ...]:
        ids = tuple(tag.id if isinstance(tag, SimTag) else tag for tag in tags)
        for tag_id in ids:
            if tag_id not in self.tags:
                raise SimulatorError(f"unknown tag {tag_id}")
        return ids

    def _new_entry(
        self,
        user_id: str,
        start: datetime,
        end: datetime | None,
        project: SimProject | str | None,
        description: str,
        billable: bool | None,
        tags: Iterable[SimTag | str],
    ) -> SimEntry:
        project_id = self._project_id(project)
        if billable is None:
            billable = self.projects[project_id].billable if project_id else False
        now_s = self.clock()
        entry = SimEntry(
            self.new_id(),
            user_id,
            start,
            end,
            project_id,
            description,
            billable,
            self._tag_ids(tags),
            now_s,
            now_s,
        )
        self.entries[entry.id] = entry
        return entry

    def _project_seconds(self, project_id: str) -> int:
        return sum(_seconds(e) for e in self.entries.values() if e.project_id == project_id)

    # Demo team -------------------------------------------------------------------------------
    def seed_demo_team(
        self, n_users: int = 12, rng: random.Random | None = None, *, days: int = 7
    ) -> None:
        """About a dozen people in several time zones, four clients billed in EUR and USD, an
        internal non-billable project, and `days` of history ending now; a few timers run.
        History is written directly (no webhook deliveries): it predates the webhooks."""
        rng = rng or random.Random(7)
        clients = [self.add_client(name, cur) for name, cur in _DEMO_CLIENTS]
        projects = [
            self.add_project(
                name,
                clients[client_index] if client_index is not None else None,
                color=color,
                billable=rate is not None,
                hourly_rate_minor=rate,
                estimate_s=estimate_h * 3600 if estimate_h else None,
            )
            for name, client_index, color, rate, estimate_h in _DEMO_PROJECTS
        ]
        tags = [self.add_tag(name) for name in _DEMO_TAGS]
        users = []
        for index in range(n_users):
            if index < len(_DEMO_PEOPLE):
                name, zone_name, week_start = _DEMO_PEOPLE[index]
            else:
                name, zone_name, week_start = f"Teammate {index + 1}", "UTC", "MONDAY"
            users.append(self.add_user(name, time_zone=zone_name, week_start=week_start))
        now = self.now()
        for user in users:
            zone = ZoneInfo(user.time_zone)
            local_today = now.astimezone(zone).date()
            for days_ago in range(days, -1, -1):
                day = local_today - timedelta(days=days_ago)
                if day.weekday() >= 5:
                    continue
                cursor = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
                cursor += timedelta(minutes=rng.randint(0, 60))
                for _ in range(rng.randint(2, 4)):
                    length = timedelta(minutes=rng.randint(30, 180))
                    if (cursor + length).astimezone(UTC) >= now:
                        break
                    project = rng.choice(projects)
                    tag_list = [rng.choice(tags)] if rng.random() < 0.6 else []
                    entry = self.add_manual_entry(
                        user,
                        cursor.astimezone(UTC),
                        (cursor + length).astimezone(UTC),
                        project,
                        rng.choice(_DESCRIPTIONS),
                        tags=tag_list,
                        notify=False,
                    )
                    entry.created_at_s = entry.updated_at_s = (cursor + length).timestamp()
                    cursor += length + timedelta(minutes=rng.randint(5, 45))
        for user in users[:: max(1, len(users) // 4)]:
            started = now - timedelta(minutes=rng.randint(10, 120))
            if self.running_entry(user.id) is None:
                entry = self._new_entry(
                    user.id, started, None, rng.choice(projects), "Focus time", None, ()
                )
                entry.created_at_s = entry.updated_at_s = started.timestamp()


_DEMO_CLIENTS = (
    ("Acme GmbH", "EUR"),
    ("Globex Corporation", "USD"),
    ("Initech", "USD"),
    ("Umbrella SARL", "EUR"),
)
# name, client index, color, hourly rate in minor units (None: non-billable), estimate hours
_DEMO_PROJECTS: tuple[tuple[str, int | None, str, int | None, int | None], ...] = (
    ("Acme Website Relaunch", 0, "#E91E63", 9500, 160),
    ("Acme Mobile App", 0, "#9C27B0", 11000, 300),
    ("Globex Data Platform", 1, "#3F51B5", 12500, 400),
    ("Globex Support", 1, "#009688", 8000, None),
    ("Initech Migration", 2, "#FF9800", 10500, 120),
    ("Umbrella Brand Refresh", 3, "#795548", 9000, 80),
    ("Internal", None, "#607D8B", None, None),
)
_DEMO_TAGS = ("meeting", "development", "design", "review", "support")
_DEMO_PEOPLE = (
    ("Ada Lovelace", "Europe/London", "MONDAY"),
    ("Grace Hopper", "America/New_York", "SUNDAY"),
    ("Linus Berg", "Europe/Berlin", "MONDAY"),
    ("Mei Tanaka", "Asia/Tokyo", "MONDAY"),
    ("Carlos Ruiz", "Europe/Madrid", "MONDAY"),
    ("Priya Nair", "Asia/Kolkata", "MONDAY"),
    ("Tom Wright", "America/Los_Angeles", "SUNDAY"),
    ("Sofia Rossi", "Europe/Rome", "MONDAY"),
    ("Jamal Carter", "America/Edmonton", "SUNDAY"),
    ("Olivia Brown", "Australia/Sydney", "MONDAY"),
    ("Nils Johansson", "Europe/Stockholm", "MONDAY"),
    ("Amara Okafor", "Africa/Lagos", "MONDAY"),
)
_DESCRIPTIONS = (
    "Sprint planning",
    "Code review",
    "Bug fixing",
    "Client call",
    "Design mockups",
    "Deploy and monitoring",
    "Writing docs",
    "Data migration",
    "",
)


def _check_webhook(name: str, url: str, event: str, trigger_source_type: str) -> None:
    if event not in WEBHOOK_EVENTS:
        raise SimulatorError(f"webhookEvent {event!r} is not a Clockify webhook event")
    if trigger_source_type not in TRIGGER_SOURCE_TYPES:
        raise SimulatorError(f"triggerSourceType {trigger_source_type!r} is not valid")
    if not 2 <= len(name) <= 30:
        raise SimulatorError("Webhook name must be between 2 and 30 characters")
    if not url.startswith(("http://", "https://")):
        raise SimulatorError("Webhook url must be an http(s) URL")


def _second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _seconds(entry: SimEntry) -> int:
    return int((entry.end - entry.start).total_seconds()) if entry.end else 0


def _offset_s(moment: datetime, zone: ZoneInfo) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


# Webhook sender --------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    outcome: str  # "sent" | "dropped" | "failed" | "held"
    status: int | None = None
    error: str | None = None
    response_body: str | None = None


@dataclass
class WebhookSender:
    """Posts deliveries with one injected httpx.AsyncClient; faults on demand.

    `drop_probability` drops at random (seeded `rng`); `drop_next`, `duplicate_next`,
    `delay_next` and `hold_next` act on the next n deliveries; `reorder` ("reverse" or
    "shuffle") reorders each batch. Held deliveries go out after the next batch.
    """

    http: httpx.AsyncClient
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    sleep: Sleep = asyncio.sleep
    timeout_s: float = 10.0
    drop_probability: float = 0.0
    reorder: str | None = None
    log: list[DeliveryResult] = field(default_factory=list)
    _drop_n: int = 0
    _duplicate_n: int = 0
    _hold_n: int = 0
    _delays: list[tuple[int, float]] = field(default_factory=list)
    _held: list[Delivery] = field(default_factory=list)

    def drop_next(self, n: int = 1) -> None:
        self._drop_n += n

    def duplicate_next(self, n: int = 1) -> None:
        self._duplicate_n += n

    def hold_next(self, n: int = 1) -> None:
        self._hold_n += n

    def delay_next(self, n: int, delay_s: float) -> None:
        self._delays.append((n, delay_s))

    async def send(self, deliveries: Sequence[Delivery]) -> list[DeliveryResult]:
        batch = list(deliveries)
        if self.reorder == "reverse":
            batch.reverse()
        elif self.reorder == "shuffle":
            self.rng.shuffle(batch)
        elif self.reorder is not None:
            raise ValueError("reorder must be None, 'reverse' or 'shuffle'")
        late, self._held = self._held, []
        results: list[DeliveryResult] = []
        for delivery in batch:
            if self._hold_n > 0:
                self._hold_n -= 1
                self._held.append(delivery)
                results.append(self._record(DeliveryResult(delivery, "held")))
                continue
            results.extend(await self._send_with_faults(delivery))
        for delivery in late:
            results.append(self._record(await self._post(delivery)))
        return results

    async def _send_with_faults(self, delivery: Delivery) -> list[DeliveryResult]:
        if self._delays:
            n, delay_s = self._delays[0]
            self._delays[0] = (n - 1, delay_s)
            if n - 1 <= 0:
                self._delays.pop(0)
            await self.sleep(delay_s)
        if self._drop_n > 0 or (
            self.drop_probability and self.rng.random() < self.drop_probability
        ):
            self._drop_n = max(0, self._drop_n - 1)
            return [self._record(DeliveryResult(delivery, "dropped"))]
        copies = 1
        if self._duplicate_n > 0:
            self._duplicate_n -= 1
            copies = 2
        return [self._record(await self._post(delivery)) for _ in range(copies)]

    async def _post(self, delivery: Delivery) -> DeliveryResult:
        try:
            response = await self.http.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            logger.warning(
                "webhook %s for entry %s to %s failed: %s",
                delivery.event,
                delivery.entry_id,
                delivery.url,
                type(exc).__name__,
            )
            return DeliveryResult(delivery, "failed", error=type(exc).__name__)
        return DeliveryResult(
            delivery, "sent", status=response.status_code, response_body=response.text[:1000]
        )

    def _record(self, result: DeliveryResult) -> DeliveryResult:
        self.log.append(result)
        return result


# The HTTP app ------------------------------------------------------------------------------
def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"message": message, "code": status}, status)


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a number") from None
    if value < low or (high is not None and value > high):
        limit = f" and at most {high}" if high is not None else ""
        raise _BadRequest(f"{name} must be at least {low}{limit}")
    return value


def _wall_clock_param(raw: str | None, name: str) -> datetime | None:
    """A report bound as a naive wall-clock time (any offset dropped, as Clockify drops it)."""
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromisoformat(raw.removesuffix("Z")).replace(tzinfo=None)
    except ValueError:
        raise _BadRequest(f"{name} must look like 2026-01-31T00:00:00.000") from None


def _report_zone(body: JSONObject, sim: SimulatedWorkspace) -> ZoneInfo:
    name = _opt_str(body, "timeZone")
    if name is None:
        owner = sim.users.get(sim.owner_id or "")
        name = owner.time_zone if owner else "UTC"
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        raise _BadRequest(f"timeZone {name!r:.60} is not an IANA time zone") from None


def _instant_param(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must look like yyyy-MM-ddThh:mm:ssZ") from None
    return _second(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def create_simulator_app(sim: SimulatedWorkspace) -> Starlette:
    """The fake Clockify: REST under `/api/v1`, Reports under `/reports/v1`."""

    def page(
        request: Request,
        items: list[Any],
        *,
        default_size: int = 50,
        max_size: int | None = None,
        size_param: str = "page-size",
        min_page: int = 1,
        wrap: bool = False,
    ) -> Response:
        number = max(1, _int_param(request, "page", 1, min_page, None))
        size = _int_param(request, size_param, default_size, 1, max_size)
        chunk = items[(number - 1) * size : number * size]
        headers = {}
        if sim.send_last_page_header:
            headers["Last-Page"] = "true" if number * size >= len(items) else "false"
        return _json({"response": chunk} if wrap else chunk, headers=headers)

    def endpoint(name: str, handler: Handler, *, admin: bool = False) -> Handler:
        async def guarded(request: Request) -> Response:
            response = await answer(request)
            sim.requests.append(
                RequestRecord(
                    request.method,
                    request.url.path,
                    request.url.query,
                    name,
                    response.status_code,
                    sim.clock(),
                )
            )
            return response

        async def answer(request: Request) -> Response:
            given = request.headers.get("x-api-key", "")
            if not given or not hmac.compare_digest(given.encode(), sim.api_key.encode()):
                return _error(401, "Full authentication is required")
            wait_s = sim._rate_limited()
            if wait_s is not None:
                retry = {"Retry-After": str(max(1, int(wait_s + 0.999)))}
                headers = retry if sim.send_retry_after else None
                return _json({"message": "Too many requests", "code": 429}, 429, headers)
            fault = sim._take_fault(request.url.path)
            if fault is not None:
                if fault.delay_s:
                    await sim.sleep(fault.delay_s)
                if fault.malformed:
                    return Response(b'{"id": "5f1e', 200, media_type="application/json")
                if fault.status is not None:
                    headers = None
                    if fault.retry_after_s is not None:
                        headers = {"Retry-After": f"{fault.retry_after_s:g}"}
                    return _json(
                        {"message": f"Simulated failure {fault.status}", "code": fault.status},
                        fault.status,
                        headers,
                    )
            ws = request.path_params.get("ws")
            if ws is not None and ws != sim.id:
                return _error(404, f"Workspace {ws} not found")
            if admin and not sim.admin:
                return _error(403, "Access denied: workspace admin permission required")
            try:
                return await handler(request)
            except _BadRequest as exc:
                return _error(400, exc.message)
            except SimulatorError as exc:
                return _error(400, str(exc))

        return guarded

    async def get_user(request: Request) -> Response:
        if sim.owner_id is None:
            return _error(401, "Full authentication is required")
        return _json(sim.user_json(sim.users[sim.owner_id]))

    async def get_workspaces(request: Request) -> Response:
        return _json([sim.workspace_json()])

    async def get_workspace(request: Request) -> Response:
        return _json(sim.workspace_json())

    async def list_users(request: Request) -> Response:
        return page(request, [sim.user_json(u) for u in sim.users.values()])

    async def list_projects(request: Request) -> Response:
        return page(request, [sim.project_json(p) for p in sim.projects.values()])

    async def list_clients(request: Request) -> Response:
        return page(request, [sim.client_json(c) for c in sim.clients.values()])

    async def list_tags(request: Request) -> Response:
        return page(request, [sim.tag_json(t) for t in sim.tags.values()])

    async def user_entries(request: Request) -> Response:
        user_id = request.path_params["uid"]
        if user_id not in sim.users:
            return _error(404, f"User {user_id} not found")
        if user_id != sim.owner_id and not sim.admin:
            return _error(403, "Access denied: you may only read your own time entries")
        query = request.query_params
        start = _instant_param(query.get("start"), "start")
        end = _instant_param(query.get("end"), "end")
        hydrated = query.get("hydrated", "false").lower() == "true"
        in_progress = query.get("in-progress", "false").lower() == "true"
        entries = [
            e
            for e in sim.entries.values()
            if e.user_id == user_id
            and (start is None or e.start >= start)
            and (end is None or e.start <= end)
            and (not in_progress or e.end is None)
        ]
        entries.sort(key=lambda e: e.start, reverse=True)
        return page(request, [sim.entry_json(e, hydrated) for e in entries])

    async def in_progress(request: Request) -> Response:
        entries = sorted(sim.running_entries(), key=lambda e: e.start, reverse=True)
        rows = [sim.entry_json(e, hydrated=False) for e in entries]
        return page(request, rows, default_size=10, max_size=1000)

    async def one_entry(request: Request) -> Response:
        entry = sim.entries.get(request.path_params["eid"])
        if entry is None:
            return _error(404, "Time entry not found")
        hydrated = request.query_params.get("hydrated", "false").lower() == "true"
        return _json(sim.entry_json(entry, hydrated))

    def entity_page(request: Request, docs: list[JSONObject]) -> Response:
        return page(request, docs, size_param="limit", wrap=sim.entities_wrapped)

    def entity_doc(entry: SimEntry) -> JSONObject:
        return {
            **sim.entry_json(entry),
            "auditMetadata": {
                "createdAt": _stamp(entry.created_at_s),
                "updatedAt": _stamp(entry.updated_at_s),
            },
            "documentType": "TIME_ENTRY",
        }

    def entity_window(request: Request) -> tuple[float, float]:
        if "TIME_ENTRY" not in request.query_params.getlist("type"):
            raise _BadRequest("type is required; use type=TIME_ENTRY")
        start = _instant_param(request.query_params.get("start"), "start")
        end = _instant_param(request.query_params.get("end"), "end")
        if start is None and end is None:
            end = sim.now()
        if start is None:
            assert end is not None
            return end.timestamp() - ENTITY_WINDOW_DEFAULT_S, end.timestamp()
        if end is None:
            return start.timestamp(), start.timestamp() + ENTITY_WINDOW_DEFAULT_S
        return start.timestamp(), end.timestamp()

    async def entities_created(request: Request) -> Response:
        low_s, high_s = entity_window(request)
        entries = sorted(
            (e for e in sim.entries.values() if low_s <= e.created_at_s <= high_s),
            key=lambda e: e.created_at_s,
        )
        return entity_page(request, [entity_doc(e) for e in entries])

    async def entities_updated(request: Request) -> Response:
        # Clockify leaves out an entity both created and updated in the window.
        low_s, high_s = entity_window(request)
        entries = sorted(
            (
                e
                for e in sim.entries.values()
                if low_s <= e.updated_at_s <= high_s and not low_s <= e.created_at_s <= high_s
            ),
            key=lambda e: e.updated_at_s,
        )
        return entity_page(request, [entity_doc(e) for e in entries])

    async def entities_deleted(request: Request) -> Response:
        # Clockify leaves out an entity both created and deleted in the window, and lists a
        # deletion about a minute after it happens. The item's own `id` is the deletion
        # record's; the entry is in `document`.
        low_s, high_s = entity_window(request)
        visible_before_s = sim.clock() - sim.deleted_visibility_delay_s
        deletions = sorted(
            (
                d
                for d in sim.deletions.values()
                if low_s <= d.deleted_at_s <= high_s
                and d.deleted_at_s <= visible_before_s
                and not low_s <= d.entry.created_at_s <= high_s
            ),
            key=lambda d: d.deleted_at_s,
        )
        docs = [
            {
                "id": d.bin_id,
                "deletedAt": _stamp(d.deleted_at_s),
                "document": sim.entry_json(d.entry),
                "documentCode": "TIME_ENTRY",
            }
            for d in deletions
        ]
        return entity_page(request, docs)

    async def webhooks(request: Request) -> Response:
        if request.method == "GET":
            hooks = [sim.webhook_json(h) for h in sim.webhooks.values()]
            return _json({"webhooks": hooks, "workspaceWebhookCount": len(hooks)})
        body = await _json_body(request)
        fields = _webhook_fields(body)
        hook = sim.add_webhook(
            fields["url"],
            fields["event"],
            fields["name"],
            trigger_source_type=fields["trigger_source_type"],
            trigger_source=fields["trigger_source"],
        )
        return _json(sim.webhook_json(hook), 201)

    async def one_webhook(request: Request) -> Response:
        hook = sim.webhooks.get(request.path_params["wid"])
        if hook is None:
            return _error(404, "Webhook not found")
        if request.method == "DELETE":
            del sim.webhooks[hook.id]
        elif request.method == "PUT":
            fields = _webhook_fields(await _json_body(request))
            hook = sim.update_webhook(
                hook.id,
                name=fields["name"],
                url=fields["url"],
                event=fields["event"],
                trigger_source_type=fields["trigger_source_type"],
                trigger_source=fields["trigger_source"],
            )
        return _json(sim.webhook_json(hook))

    async def webhook_token(request: Request) -> Response:
        if request.path_params["wid"] not in sim.webhooks:
            return _error(404, "Webhook not found")
        return _json(sim.webhook_json(sim.reset_webhook_token(request.path_params["wid"])))

    async def webhook_logs(request: Request) -> Response:
        # The first page is page 0 (the schema's default) or 1 (its example): both answer it.
        wid = request.path_params["wid"]
        if wid not in sim.webhooks:
            return _error(404, "Webhook not found")
        number = max(1, _int_param(request, "page", 0, 0, None))
        size = _int_param(request, "size", 50, 1, None)
        body = await _json_body(request)
        start = _instant_param(_opt_str(body, "from"), "from")
        end = _instant_param(_opt_str(body, "to"), "to")
        status = body.get("status") or "ALL"
        if status not in ("ALL", "SUCCEEDED", "FAILED"):
            raise _BadRequest("status must be ALL, SUCCEEDED or FAILED")
        logs = [
            log
            for log in sim.webhook_logs
            if log.webhook_id == wid
            and (start is None or log.responded_at_s > start.timestamp())
            and (end is None or log.responded_at_s < end.timestamp())
            and (status == "ALL" or log.succeeded == (status == "SUCCEEDED"))
        ]
        logs.sort(key=lambda log: log.responded_at_s, reverse=body.get("sortByNewest") is True)
        chunk = logs[(number - 1) * size : number * size]
        return _json(
            [
                {
                    "id": log.id,
                    "webhookId": log.webhook_id,
                    "statusCode": log.status_code,
                    "requestBody": log.request_body,
                    "responseBody": log.response_body,
                    "respondedAt": datetime.fromtimestamp(log.responded_at_s, UTC).isoformat(
                        timespec="milliseconds"
                    ),
                }
                for log in chunk
            ]
        )

    async def detailed_report(request: Request) -> Response:
        body = await _json_body(request)
        zone = _report_zone(body, sim)
        # The window is wall-clock time in `timeZone` (else the key owner's profile zone);
        # an offset or a trailing Z is not honoured, as Clockify does not honour it.
        start = _wall_clock_param(_opt_str(body, "dateRangeStart"), "dateRangeStart")
        end = _wall_clock_param(_opt_str(body, "dateRangeEnd"), "dateRangeEnd")
        detailed = body.get("detailedFilter")
        if start is None or end is None:
            raise _BadRequest("dateRangeStart and dateRangeEnd are required")
        if not isinstance(detailed, dict):
            raise _BadRequest("detailedFilter is required for a detailed report")
        if sim.is_free and end - start > timedelta(days=FREE_REPORT_MAX_DAYS):
            raise _BadRequest(
                "Detailed report data on FREE subscription plan is limited to a maximum "
                f"interval length of one month ({FREE_REPORT_MAX_DAYS} days)"
            )
        number, size = detailed.get("page", 1), detailed.get("pageSize", 50)
        if not isinstance(number, int) or not isinstance(size, int) or number < 1:
            raise _BadRequest("detailedFilter.page and pageSize must be positive numbers")
        if not 1 <= size <= 1000:
            raise _BadRequest("detailedFilter.pageSize must be between 1 and 1000")
        # Running timers are left out: the in-progress endpoint is the place for them.
        entries = sorted(
            (
                e
                for e in sim.entries.values()
                if e.end is not None
                and start <= e.start.astimezone(zone).replace(tzinfo=None) <= end
            ),
            key=lambda e: e.start,
            reverse=True,
        )
        rows = [sim.report_row(e) for e in entries]
        total_s = sum(r["timeInterval"]["duration"] for r in rows)
        billable_s = sum(r["timeInterval"]["duration"] for r in rows if r["billable"])
        totals = {
            "_id": "",
            "totalTime": total_s,
            "totalBillableTime": billable_s,
            "entriesCount": len(rows),
            "totalAmount": sum(r.get("amount", 0) for r in rows),
            "amounts": _amounts(rows),
        }
        chunk = rows[(number - 1) * size : number * size]
        headers = {}
        if sim.send_last_page_header:
            headers["Last-Page"] = "true" if number * size >= len(rows) else "false"
        return _json({"totals": [totals], "timeentries": chunk}, headers=headers)

    api = "/api/v1"
    ws = f"{api}/workspaces/{{ws}}"
    routes = [
        Route(f"{api}/user", endpoint("user", get_user)),
        Route(f"{api}/workspaces", endpoint("workspaces", get_workspaces)),
        Route(ws, endpoint("workspace", get_workspace)),
        Route(f"{ws}/users", endpoint("users", list_users)),
        Route(f"{ws}/projects", endpoint("projects", list_projects)),
        Route(f"{ws}/clients", endpoint("clients", list_clients)),
        Route(f"{ws}/tags", endpoint("tags", list_tags)),
        Route(f"{ws}/user/{{uid}}/time-entries", endpoint("user_entries", user_entries)),
        Route(
            f"{ws}/time-entries/status/in-progress",
            endpoint("in_progress", in_progress, admin=True),
        ),
        Route(f"{ws}/time-entries/{{eid}}", endpoint("entry", one_entry)),
        Route(f"{ws}/entities/created", endpoint("entities_created", entities_created)),
        Route(f"{ws}/entities/updated", endpoint("entities_updated", entities_updated)),
        Route(f"{ws}/entities/deleted", endpoint("entities_deleted", entities_deleted)),
        Route(
            f"{ws}/webhooks",
            endpoint("webhooks", webhooks, admin=True),
            methods=["GET", "POST"],
        ),
        Route(
            f"{ws}/webhooks/{{wid}}",
            endpoint("webhook", one_webhook, admin=True),
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(
            f"{ws}/webhooks/{{wid}}/token",
            endpoint("webhook_token", webhook_token, admin=True),
            methods=["PATCH"],
        ),
        Route(
            f"{ws}/webhooks/{{wid}}/logs",
            endpoint("webhook_logs", webhook_logs, admin=True),
            methods=["POST"],
        ),
        Route(
            "/reports/v1/workspaces/{ws}/reports/detailed",
            endpoint("detailed_report", detailed_report),
            methods=["POST"],
        ),
    ]
    return Starlette(routes=routes)


async def _json_body(request: Request) -> JSONObject:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise _BadRequest("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    return body


def _opt_str(body: JSONObject, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _BadRequest(f"{key} must be a string")
    return value


def _webhook_fields(body: JSONObject) -> dict[str, Any]:
    name, url, event = body.get("name"), body.get("url"), body.get("webhookEvent")
    source_type, source = body.get("triggerSourceType"), body.get("triggerSource")
    if not isinstance(name, str) or not isinstance(url, str) or not isinstance(event, str):
        raise _BadRequest("name, url and webhookEvent are required")
    if not isinstance(source_type, str) or not isinstance(source, list):
        raise _BadRequest("triggerSourceType and triggerSource are required")
    if not all(isinstance(item, str) for item in source):
        raise _BadRequest("triggerSource must be a list of ids")
    return {
        "name": name,
        "url": url,
        "event": event,
        "trigger_source_type": source_type,
        "trigger_source": source,
    }


def _stamp(epoch_s: float) -> str:
    return format_instant(datetime.fromtimestamp(epoch_s, UTC))


def _amounts(rows: list[JSONObject]) -> list[JSONObject]:
    by_currency: dict[str, int] = {}
    for row in rows:
        if row.get("amount") and row.get("currency"):
            currency = row["currency"]
            by_currency[currency] = by_currency.get(currency, 0) + row["amount"]
    return [
        {"type": "EARNED", "value": value, "currency": currency}
        for currency, value in sorted(by_currency.items())
    ]
