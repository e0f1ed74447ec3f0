"""A fake Clockify for tests, benchmarks and the demo, one concern a module: `records` (what a
workspace holds, events, plan limits, the clock), `state` (`SimulatedWorkspace`: the team at
work and the API-side rules), `views` (the JSON shapes Clockify serves and posts), `sender`
(webhook delivery with faults), `team` (the demo team), `app` (the Starlette app) and
`server` (the app on a loopback port; import it from `app.sim.server`).
"""

from app.sim.app import create_simulator_app
from app.sim.records import (
    ENTITY_WINDOW_DEFAULT_S,
    FREE_PLAN,
    FREE_RATE_LIMIT,
    FREE_REPORT_MAX_DAYS,
    FREE_WEBHOOK_LIMIT,
    NEW_TIME_ENTRY,
    NEW_TIMER_STARTED,
    PAID_RATE_LIMIT,
    PAID_WEBHOOK_LIMIT,
    PAID_WEBHOOK_LIMIT_PER_ADMIN,
    TIME_ENTRY_DELETED,
    TIME_ENTRY_EVENTS,
    TIME_ENTRY_UPDATED,
    TIMER_STOPPED,
    TRIGGER_SOURCE_TYPES,
    WEBHOOK_EVENTS,
    Delivery,
    ManualClock,
    RequestRecord,
    SimClient,
    SimDeletion,
    SimEntry,
    SimProject,
    SimTag,
    SimTask,
    SimulatorError,
    SimUser,
    SimWebhook,
    SimWebhookLog,
)
from app.sim.sender import DeliveryResult, WebhookSender
from app.sim.state import SimulatedWorkspace
from app.sim.views import format_duration

__all__ = [
    "ENTITY_WINDOW_DEFAULT_S",
    "FREE_PLAN",
    "FREE_RATE_LIMIT",
    "FREE_REPORT_MAX_DAYS",
    "FREE_WEBHOOK_LIMIT",
    "NEW_TIMER_STARTED",
    "NEW_TIME_ENTRY",
    "PAID_RATE_LIMIT",
    "PAID_WEBHOOK_LIMIT",
    "PAID_WEBHOOK_LIMIT_PER_ADMIN",
    "TIMER_STOPPED",
    "TIME_ENTRY_DELETED",
    "TIME_ENTRY_EVENTS",
    "TIME_ENTRY_UPDATED",
    "TRIGGER_SOURCE_TYPES",
    "WEBHOOK_EVENTS",
    "Delivery",
    "DeliveryResult",
    "ManualClock",
    "RequestRecord",
    "SimClient",
    "SimDeletion",
    "SimEntry",
    "SimProject",
    "SimTag",
    "SimTask",
    "SimUser",
    "SimWebhook",
    "SimWebhookLog",
    "SimulatedWorkspace",
    "SimulatorError",
    "WebhookSender",
    "create_simulator_app",
    "format_duration",
]
