"""One simulated Clockify workspace: its team, projects, entries and webhooks, the changes the
team makes (each queuing the webhook deliveries Clockify would send), and the API-side rules
the HTTP app enforces (auth, plan and rate limits, injected faults).

Everything time-dependent reads the injected `clock` (epoch seconds), so tests move time by hand.
Mutations (`start_timer`, `stop_timer`, ...) queue `Delivery` objects in `outbox`; a
`WebhookSender` posts them (`await sim.deliver_webhooks(sender)`).
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from app.sim import team
from app.sim.records import (
    FREE_PLAN,
    FREE_RATE_LIMIT,
    FREE_WEBHOOK_LIMIT,
    NEW_TIME_ENTRY,
    NEW_TIMER_STARTED,
    PAID_RATE_LIMIT,
    PAID_WEBHOOK_LIMIT,
    PAID_WEBHOOK_LIMIT_PER_ADMIN,
    TIME_ENTRY_DELETED,
    TIME_ENTRY_UPDATED,
    TIMER_STOPPED,
    TRIGGER_SOURCE_TYPES,
    WEBHOOK_EVENTS,
    Clock,
    Delivery,
    JSONObject,
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
    Sleep,
    stored_instant,
)
from app.sim.sender import DeliveryResult, WebhookSender
from app.sim.views import WorkspaceViews

_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass
class _Fault:
    remaining: int
    status: int | None = None
    malformed: bool = False
    delay_s: float = 0.0
    retry_after_s: float | None = None
    path_contains: str | None = None


class SimulatedWorkspace(WorkspaceViews):
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
        # Report settings as Clockify's workspace settings hold them: a rounding rule is kept
        # while rounding is off, as Clockify keeps it (see set_workspace_settings).
        self.time_rounding_in_reports = False
        self.round_rule: dict[str, Any] = {"round": "Round to nearest", "minutes": "15"}
        self.duration_format = "FULL"
        self.users: dict[str, SimUser] = {}
        self.owner_id: str | None = None  # the API key's user; the first user added
        self.clients: dict[str, SimClient] = {}
        self.projects: dict[str, SimProject] = {}
        self.tags: dict[str, SimTag] = {}
        self.tasks: dict[str, SimTask] = {}
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

    def set_workspace_settings(
        self,
        *,
        rounding: tuple[str, int] | Literal["off"] | None = None,
        duration_format: str | None = None,
    ) -> None:
        """Change the report settings as an admin would in Clockify; None keeps a setting.
        `rounding`: ("UP" | "DOWN" | "NEAREST", minutes) turns report rounding on, "off" turns
        it off (the rule stays); `duration_format`: FULL, COMPACT or DECIMAL."""
        if rounding == "off":
            self.time_rounding_in_reports = False
        elif rounding is not None:
            mode, minutes = rounding
            words = {"UP": "Round up", "DOWN": "Round down", "NEAREST": "Round to nearest"}
            self.time_rounding_in_reports = True
            self.round_rule = {"round": words.get(mode, mode), "minutes": str(minutes)}
        if duration_format is not None:
            if duration_format not in ("FULL", "COMPACT", "DECIMAL"):
                raise SimulatorError(f"durationFormat {duration_format!r} is not one of Clockify's")
            self.duration_format = duration_format

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
        cost_rate_minor: int | None = None,
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
            cost_rate_minor=cost_rate_minor,
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
        at = stored_instant(at or self.now())
        if self.running_entry(user_id) is not None:
            self.stop_timer(user_id, at)
        entry = self.store_entry(user_id, at, None, project, description, billable, tags)
        self._emit(NEW_TIMER_STARTED, entry)
        return entry

    def stop_timer(self, user: SimUser | str, at: datetime | None = None) -> SimEntry:
        user_id = self._user(user).id
        entry = self.running_entry(user_id)
        if entry is None:
            raise SimulatorError(f"user {user_id} has no running timer")
        end = stored_instant(at or self.now())
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
        entry = self.store_entry(
            user_id,
            stored_instant(start),
            stored_instant(end),
            project,
            description,
            billable,
            tags,
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
            self._take_rates(entry)  # moved: the new project's rates, as Clockify sets them
        if "billable" in changes:
            entry.billable = bool(changes["billable"])
        if "tags" in changes:
            entry.tag_ids = self._tag_ids(changes["tags"])
        if "start" in changes:
            entry.start = stored_instant(changes["start"])
        if "end" in changes:
            if changes["end"] is None and entry.end is not None:
                raise SimulatorError("a stopped entry cannot be made to run again")
            entry.end = stored_instant(changes["end"]) if changes["end"] is not None else None
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

    # Names and rates -----------------------------------------------------------------------
    def add_task(self, project: SimProject | str, name: str) -> SimTask:
        project_id = self._project_id(project)
        assert project_id is not None
        task = SimTask(self.new_id(), name, project_id)
        self.tasks[task.id] = task
        self._emit_body("NEW_TASK", self.task_json(task), task.id)
        return task

    def rename_task(self, task_id: str, name: str) -> SimTask:
        task = self._task(task_id)
        task.name = name
        self._emit_body("TASK_UPDATED", self.task_json(task), task.id)
        return task

    def delete_task(self, task_id: str) -> SimTask:
        task = self._task(task_id)
        del self.tasks[task_id]
        self._emit_body("TASK_DELETED", self.task_json(task), task.id)
        return task

    def delete_project(self, project: SimProject | str) -> SimProject:
        """Delete a project as Clockify does: its entries lose it (their time stays, reported
        "Without project") but keep the rates they had; its tasks go with it."""
        project_id = self._project_id(project)
        assert project_id is not None
        body = self.project_json(self.projects[project_id])
        removed = self.projects.pop(project_id)
        for entry in [*self.entries.values(), *(d.entry for d in self.deletions.values())]:
            if entry.project_id == project_id:
                entry.project_id = None
        self.tasks = {k: t for k, t in self.tasks.items() if t.project_id != project_id}
        self._emit_body("PROJECT_DELETED", body, project_id)
        return removed

    def delete_client(self, client: SimClient | str) -> SimClient:
        client_id = client.id if isinstance(client, SimClient) else client
        if client_id not in self.clients:
            raise SimulatorError(f"unknown client {client_id}")
        removed = self.clients.pop(client_id)
        for project in self.projects.values():
            if project.client_id == client_id:
                project.client_id = None
        self._emit_body("CLIENT_DELETED", self.client_json(removed), client_id)
        return removed

    def delete_tag(self, tag: SimTag | str) -> SimTag:
        (tag_id,) = self._tag_ids([tag])
        removed = self.tags.pop(tag_id)
        for entry in self.entries.values():
            if tag_id in entry.tag_ids:
                entry.tag_ids = tuple(t for t in entry.tag_ids if t != tag_id)
        self._emit_body("TAG_DELETED", self.tag_json(removed), tag_id)
        return removed

    def apply_rate(
        self,
        kind: str,
        amount_minor: int,
        *,
        user: SimUser | str | None = None,
        project: SimProject | str | None = None,
        since: datetime | None = None,
        notify: bool = True,
    ) -> list[SimEntry]:
        """Re-apply a billable (`kind` "billable") or cost ("cost") rate to the past entries of
        a user and/or project (all of the workspace's when neither is named) that start at or
        after `since` (all when None), as an admin does in Clockify; the project's own rate
        becomes it too. Sends BILLABLE_RATE_UPDATED / COST_RATE_UPDATED (`notify`). The
        changed entries show up in `/entities/updated?type=TIME_ENTRY_RATE`, not as updated
        entries."""
        if kind not in ("billable", "cost"):
            raise SimulatorError("kind must be 'billable' or 'cost'")
        user_id = self._user(user).id if user is not None else None
        project_id = self._project_id(project)
        start = stored_instant(since) if since is not None else None
        now_s = self.clock()
        changed = []
        for entry in self.entries.values():
            if (user_id is not None and entry.user_id != user_id) or (
                project_id is not None and entry.project_id != project_id
            ):
                continue
            if start is not None and entry.start < start:
                continue
            if kind == "billable":
                entry.hourly_rate_minor = amount_minor
            else:
                entry.cost_rate_minor = amount_minor
            entry.rate_updated_at_s = now_s
            changed.append(entry)
        currency = self.currency
        if project_id is not None:
            target = self.projects[project_id]
            currency = target.currency
            if kind == "billable":
                target.hourly_rate_minor = amount_minor
            else:
                target.cost_rate_minor = amount_minor
        if notify:
            event = "COST_RATE_UPDATED" if kind == "cost" else "BILLABLE_RATE_UPDATED"
            body = self.rate_event_body(kind, amount_minor, currency, user_id, project_id, start)
            self._emit_body(event, body, project_id or user_id or self.id)
        return changed

    def _emit_body(self, event: str, body: JSONObject, entity_id: str) -> None:
        """Queue `body` for every webhook of `event` that covers `entity_id` (the workspace,
        or the named user, project, tag or task)."""
        raw = orjson.dumps(body)
        for hook in self.webhooks.values():
            if hook.event != event or not (
                hook.enabled and hook.delivery_enabled and hook.plan_enabled
            ):
                continue
            sources = hook.trigger_source
            if hook.trigger_source_type != "WORKSPACE_ID" and sources and entity_id not in sources:
                continue
            headers = {
                "clockify-signature": hook.auth_token,
                "clockify-webhook-event-type": event,
                "content-type": "application/json",
            }
            self.outbox.append(Delivery(hook.id, hook.url, event, entity_id, headers, raw))

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

    def take_fault(self, path: str) -> _Fault | None:
        """The fault (if any) that the request for `path` meets; each use counts down one."""
        for fault in self._faults:
            if fault.path_contains is None or fault.path_contains in path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def rate_limit_wait_s(self) -> float | None:
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

    def _task(self, task_id: str) -> SimTask:
        if task_id not in self.tasks:
            raise SimulatorError(f"unknown task {task_id}")
        return self.tasks[task_id]

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

    def store_entry(
        self,
        user_id: str,
        start: datetime,
        end: datetime | None,
        project: SimProject | str | None,
        description: str,
        billable: bool | None,
        tags: Iterable[SimTag | str],
    ) -> SimEntry:
        """Keep an entry as given, with no webhook event: the changes above emit their own, and
        the demo team's history and first timers predate the webhooks."""
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
        self._take_rates(entry)
        self.entries[entry.id] = entry
        return entry

    def _take_rates(self, entry: SimEntry) -> None:
        project = self.projects.get(entry.project_id or "")
        entry.hourly_rate_minor = project.hourly_rate_minor if project else None
        entry.cost_rate_minor = project.cost_rate_minor if project else None
        entry.currency = project.currency if project else self.currency

    # Demo team -------------------------------------------------------------------------------
    def seed_demo_team(
        self, n_users: int = 12, rng: random.Random | None = None, *, days: int = 7
    ) -> None:
        """About a dozen people with `days` of history (app/sim/team.py); a few timers run."""
        team.seed_demo_team(self, n_users, rng or random.Random(7), days=days)

    def simulate_step(self, rng: random.Random | None = None) -> SimEntry:
        """One plausible action of a random teammate (app/sim/team.py), for the demo."""
        return team.simulate_step(self, rng or self.rng)


def _check_webhook(name: str, url: str, event: str, trigger_source_type: str) -> None:
    if event not in WEBHOOK_EVENTS:
        raise SimulatorError(f"webhookEvent {event!r} is not a Clockify webhook event")
    if trigger_source_type not in TRIGGER_SOURCE_TYPES:
        raise SimulatorError(f"triggerSourceType {trigger_source_type!r} is not valid")
    if not 2 <= len(name) <= 30:
        raise SimulatorError("Webhook name must be between 2 and 30 characters")
    if not url.startswith(("http://", "https://")):
        raise SimulatorError("Webhook url must be an http(s) URL")
