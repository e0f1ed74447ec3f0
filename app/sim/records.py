"""What a simulated Clockify workspace is made of: its records (users, projects, entries,
webhooks, deliveries), the webhook events and plan limits Clockify documents, and the clock
every time-dependent rule reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
JSONObject = dict[str, Any]

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


def stored_instant(moment: datetime) -> datetime:
    """`moment` as Clockify stores it: UTC, whole seconds (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


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
    cost_rate_minor: int | None = None  # what an hour costs, billable or not (Pro, Enterprise)


@dataclass
class SimTask:
    id: str
    name: str
    project_id: str


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
    # Each entry keeps the rates it was given (its project's when made or moved), as Clockify
    # does: a new project rate changes past entries only when re-applied (`apply_rate`).
    hourly_rate_minor: int | None = None
    cost_rate_minor: int | None = None
    currency: str = "USD"
    rate_updated_at_s: float = 0.0  # when a rate was last re-applied (TIME_ENTRY_RATE changes)

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
