"""The simulated workspace as Clockify shows it: REST objects, webhook bodies, Detailed report
rows and totals, entity-change documents and webhook logs, in the shapes Clockify's OpenAPI
gives them (tests/test_sim_openapi.py checks them against it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.models import format_instant
from app.sim.records import (
    JSONObject,
    SimClient,
    SimDeletion,
    SimEntry,
    SimProject,
    SimTag,
    SimTask,
    SimUser,
    SimWebhook,
    SimWebhookLog,
)


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


class WorkspaceViews:
    """The JSON views of `SimulatedWorkspace`, which inherits them; they only read its state.
    Methods, not functions, so a test's subclass can bend one shape (a report row that loses a
    key) while the HTTP app serves all the others unchanged."""

    id: str
    name: str
    plan: str
    currency: str
    users: dict[str, SimUser]
    clients: dict[str, SimClient]
    projects: dict[str, SimProject]
    tags: dict[str, SimTag]
    tasks: dict[str, SimTask]
    entries: dict[str, SimEntry]
    time_rounding_in_reports: bool
    round_rule: dict[str, Any]
    duration_format: str

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
            "workspaceSettings": {
                "lockTimeZone": None,
                "timeRoundingInReports": self.time_rounding_in_reports,
                "round": dict(self.round_rule),
                "durationFormat": self.duration_format,
                # Deprecated, still sent: false only for COMPACT (h:mm).
                "trackTimeDownToSecond": self.duration_format != "COMPACT",
            },
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
            "costRate": (
                {"amount": project.cost_rate_minor, "currency": project.currency}
                if project.cost_rate_minor is not None
                else None
            ),
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

    def task_json(self, task: SimTask) -> JSONObject:
        """A task as NEW_TASK / TASK_UPDATED / TASK_DELETED bodies and REST carry it."""
        return {
            "id": task.id,
            "name": task.name,
            "projectId": task.project_id,
            "workspaceId": self.id,
            "assigneeId": None,
            "assigneeIds": [],
            "userGroupIds": [],
            "estimate": "PT0S",
            "status": "ACTIVE",
            "billable": True,
            "budgetEstimate": 0,
            "hourlyRate": None,
            "costRate": None,
            "duration": "PT0S",
        }

    def rate_event_body(
        self,
        kind: str,
        amount_minor: int,
        currency: str,
        user_id: str | None,
        project_id: str | None,
        since: datetime | None,
    ) -> JSONObject:
        """A BILLABLE_RATE_UPDATED / COST_RATE_UPDATED body (payload type RATE_UPDATED). Clockify
        does not document its shape: this one is a guess that names what clockwall looks for
        (the workspace, the user or project, the day the rate applies from), so a test can
        also send others."""
        out: JSONObject = {
            "workspaceId": self.id,
            "rateType": "COST" if kind == "cost" else "BILLABLE",
            "rate": {"amount": amount_minor, "currency": currency},
            "userId": user_id,
            "projectId": project_id,
        }
        if since is not None:
            out["since"] = format_instant(since)
        return out

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
            "costRate": self._cost(entry),
            "customFieldValues": [],
        }
        if hydrated:
            out.update(self._hydration(entry))
        return out

    def entity_json(self, entry: SimEntry, document_type: str = "TIME_ENTRY") -> JSONObject:
        """An item of `/entities/created` or `/entities/updated`: the REST row plus its audit
        times. A `TIME_ENTRY_RATE` item (a rate re-applied to the entry) is drawn the same way,
        the entry as it now is: Clockify does not document that document's shape."""
        updated_s = entry.updated_at_s
        if document_type == "TIME_ENTRY_RATE":
            updated_s = entry.rate_updated_at_s
        return {
            **self.entry_json(entry),
            "auditMetadata": {
                "createdAt": _stamp(entry.created_at_s),
                "updatedAt": _stamp(updated_s),
            },
            "documentType": document_type,
        }

    def deletion_json(self, deletion: SimDeletion) -> JSONObject:
        """An item of `/entities/deleted`: its own `id` is the deletion record's; the entry is in
        `document`."""
        return {
            "id": deletion.bin_id,
            "deletedAt": _stamp(deletion.deleted_at_s),
            "document": self.entry_json(deletion.entry),
            "documentCode": "TIME_ENTRY",
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
            "costRate": self._cost(entry),
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

    def webhook_log_json(self, log: SimWebhookLog) -> JSONObject:
        return {
            "id": log.id,
            "webhookId": log.webhook_id,
            "statusCode": log.status_code,
            "requestBody": log.request_body,
            "responseBody": log.response_body,
            "respondedAt": datetime.fromtimestamp(log.responded_at_s, UTC).isoformat(
                timespec="milliseconds"
            ),
        }

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
        rate_minor = entry.hourly_rate_minor or 0
        amount_minor = (seconds * rate_minor + 1800) // 3600 if entry.billable else 0
        cost_minor = entry.cost_rate_minor or 0  # cost counts billable or not
        cost_amount_minor = (seconds * cost_minor + 1800) // 3600
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
            "costRate": cost_minor,
            "costAmount": cost_amount_minor,
            "currency": entry.currency,
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

    def _interval(self, entry: SimEntry) -> JSONObject:
        end = entry.end
        return {
            "start": format_instant(entry.start),
            "end": format_instant(end) if end else None,
            "duration": format_duration(_seconds(entry)) if end else None,
        }

    def _rate(self, entry: SimEntry) -> JSONObject | None:
        if entry.hourly_rate_minor is None:
            return None
        return {"amount": entry.hourly_rate_minor, "currency": entry.currency}

    def _cost(self, entry: SimEntry) -> JSONObject | None:
        if entry.cost_rate_minor is None:
            return None
        return {"amount": entry.cost_rate_minor, "currency": entry.currency}

    def _hydration(self, entry: SimEntry) -> JSONObject:
        project = self.projects.get(entry.project_id or "")
        return {
            "project": self.project_json(project) if project else None,
            "task": None,
            "tags": [self.tag_json(self.tags[t]) for t in entry.tag_ids if t in self.tags],
        }

    def _project_seconds(self, project_id: str) -> int:
        return sum(_seconds(e) for e in self.entries.values() if e.project_id == project_id)


def report_totals(rows: list[JSONObject]) -> JSONObject:
    """The `totals` item of a Detailed report over all of its `rows` (not one page)."""
    total_s = sum(r["timeInterval"]["duration"] for r in rows)
    billable_s = sum(r["timeInterval"]["duration"] for r in rows if r["billable"])
    return {
        "_id": "",
        "totalTime": total_s,
        "totalBillableTime": billable_s,
        "entriesCount": len(rows),
        "totalAmount": sum(r.get("amount", 0) for r in rows),
        "amounts": _amounts(rows),
    }


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


def _seconds(entry: SimEntry) -> int:
    return int((entry.end - entry.start).total_seconds()) if entry.end else 0


def _offset_s(moment: datetime, zone: ZoneInfo) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _stamp(epoch_s: float) -> str:
    return format_instant(datetime.fromtimestamp(epoch_s, UTC))
