"""Realistic Clockify bodies for the tests (clockify-facts.md section 3) and a webhook poster.

Shapes: 2022-era webhook bodies (no `type`, `kioskId`, `approvalStatus`, `projectCurrency`,
`currentlyRunning`), 2024-era ones (all of those, hydrated project/task/user/tags), running
timers (end and duration null, or absent), REST rows (`projectId`/`taskId`/`tagIds`), Reports
detailed rows (`_id`, integer-second duration) and the name events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from app.sim import format_duration as iso_duration  # one formatter for all
from tests.conftest import TOKEN, WS

WEBHOOK_PATH = "/webhooks/clockify"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Client:
    id: str
    name: str


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    color: str
    client: Client | None


@dataclass(frozen=True)
class Tag:
    id: str
    name: str


ANA = User("65a1b2c3d4e5f60718293a4b", "Ana Lopez", "ana@example.com")
BEN = User("65a1b2c3d4e5f60718293a4c", "Ben Okafor", "ben@example.com")
CHLOE = User("65a1b2c3d4e5f60718293a4d", "Chloe Martin", "chloe@example.com")
ACME = Client("64c0ffee00000000000000a1", "ACME GmbH")
GLOBEX = Client("64c0ffee00000000000000a2", "Globex Ltd")
WEBSITE = Project("64d0000000000000000000b1", "Website relaunch", "#03A9F4", ACME)
MOBILE = Project("64d0000000000000000000b2", "Mobile app", "#8BC34A", GLOBEX)
INTERNAL = Project("64d0000000000000000000b3", "Internal", "#9E9E9E", None)
URGENT = Tag("64e0000000000000000000c1", "urgent")
ONSITE = Tag("64e0000000000000000000c2", "on-site")
TASK_ID = "64f0000000000000000000d1"


def rate(amount_minor: int, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": amount_minor, "currency": currency}


def _seconds_between(start: str, end: str) -> int:
    from datetime import datetime

    return int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def project_object(project: Project, ws: str = WS) -> dict[str, Any]:
    """The hydrated `project` of a 2024 time-entry webhook."""
    return {
        "name": project.name,
        "clientId": project.client.id if project.client else "",
        "workspaceId": ws,
        "billable": True,
        "estimate": {"estimate": "PT0S", "type": "AUTO"},
        "color": project.color,
        "archived": False,
        "clientName": project.client.name if project.client else "",
        "duration": "PT412H7M",
        "note": "",
        "activeEstimate": "NONE",
        "timeEstimate": {
            "estimate": "PT0S",
            "type": "AUTO",
            "resetOption": None,
            "active": False,
            "includeNonBillable": True,
        },
        "budgetEstimate": None,
        "estimateReset": None,
        "id": project.id,
        "public": True,
        "template": False,
    }


def task_object(project: Project, ws: str = WS) -> dict[str, Any]:
    return {
        "name": "Design review",
        "projectId": project.id,
        "assigneeId": None,
        "assigneeIds": [],
        "userGroupIds": [],
        "estimate": "PT0S",
        "status": "ACTIVE",
        "workspaceId": ws,
        "budgetEstimate": 0,
        "billable": True,
        "hourlyRate": None,
        "costRate": None,
        "id": TASK_ID,
        "duration": "PT3H",
    }


def tag_object(tag: Tag, ws: str = WS) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name, "workspaceId": ws, "archived": False}


def entry_2024(
    entry_id: str,
    start: str,
    end: str | None,
    *,
    user: User = ANA,
    project: Project | None = WEBSITE,
    tags: tuple[Tag, ...] = (),
    billable: bool = True,
    hourly_rate: dict[str, Any] | None = None,
    description: str = "Homepage layout",
    with_task: bool = False,
    ws: str = WS,
) -> dict[str, Any]:
    """A 2024-era time-entry webhook body (NEW_TIME_ENTRY, TIMER_STOPPED, TIME_ENTRY_*).
    `end=None` makes a running timer (end and duration null, currentlyRunning true)."""
    return {
        "id": entry_id,
        "description": description,
        "userId": user.id,
        "billable": billable,
        "projectId": project.id if project else None,
        "timeInterval": {
            "start": start,
            "end": end,
            "duration": iso_duration(_seconds_between(start, end)) if end else None,
        },
        "workspaceId": ws,
        "isLocked": False,
        "hourlyRate": hourly_rate,
        "costRate": None,
        "customFieldValues": [],
        "type": "REGULAR",
        "kioskId": None,
        "approvalStatus": None,
        "projectCurrency": None,
        "currentlyRunning": end is None,
        "project": project_object(project, ws) if project else None,
        "task": task_object(project, ws) if (with_task and project) else None,
        "user": {"id": user.id, "name": user.name, "status": "ACTIVE"},
        "tags": [tag_object(t, ws) for t in tags],
    }


def entry_2022(
    entry_id: str,
    start: str,
    end: str,
    *,
    user: User = BEN,
    project: Project | None = MOBILE,
    tags: tuple[Tag, ...] = (),
    billable: bool = True,
    hourly_rate: dict[str, Any] | None = None,
    description: str = "API integration",
    ws: str = WS,
) -> dict[str, Any]:
    """The April-2022 capture's field set: no type, kioskId, approvalStatus, projectCurrency or
    currentlyRunning; an older, smaller project object."""
    return {
        "id": entry_id,
        "description": description,
        "userId": user.id,
        "billable": billable,
        "projectId": project.id if project else "",
        "timeInterval": {
            "start": start,
            "end": end,
            "duration": iso_duration(_seconds_between(start, end)),
        },
        "workspaceId": ws,
        "isLocked": False,
        "hourlyRate": hourly_rate,
        "costRate": None,
        "customFieldValues": [],
        "project": {
            "name": project.name,
            "clientId": project.client.id if project.client else "",
            "workspaceId": ws,
            "billable": True,
            "estimate": {"estimate": "PT0S", "type": "AUTO"},
            "color": project.color,
            "archived": False,
            "clientName": project.client.name if project.client else "",
            "duration": "PT19471H16M48S",
            "note": "",
            "id": project.id,
            "public": False,
            "template": False,
        }
        if project
        else None,
        "task": None,
        "user": {"id": user.id, "name": user.name, "status": "ACTIVE"},
        "tags": [tag_object(t, ws) for t in tags],
    }


def running_timer(
    entry_id: str,
    start: str,
    *,
    keys_absent: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """A NEW_TIMER_STARTED body: end and duration null, or (keys_absent) left out."""
    body = entry_2024(entry_id, start, None, **fields)
    if keys_absent:
        body["timeInterval"] = {"start": start}
        del body["currentlyRunning"]
    return body


def without_project(body: dict[str, Any], empty_string: bool = False) -> dict[str, Any]:
    """The same entry with no project: projectId null (or "" as older bodies send it)."""
    out = dict(body)
    out["projectId"] = "" if empty_string else None
    out["project"] = None
    out["task"] = None
    return out


def rest_row(
    entry_id: str,
    start: str,
    end: str | None,
    *,
    user: User = CHLOE,
    project: Project | None = INTERNAL,
    tags: tuple[Tag, ...] = (),
    billable: bool = False,
    hourly_rate: dict[str, Any] | None = None,
    ws: str = WS,
) -> dict[str, Any]:
    """A non-hydrated REST row (`GET .../user/{id}/time-entries`): ids, no embedded objects."""
    return {
        "id": entry_id,
        "description": "Planning",
        "tagIds": [t.id for t in tags] or None,
        "userId": user.id,
        "billable": billable,
        "taskId": None,
        "projectId": project.id if project else None,
        "workspaceId": ws,
        "timeInterval": {
            "start": start,
            "end": end,
            "duration": iso_duration(_seconds_between(start, end)) if end else None,
        },
        "customFieldValues": [],
        "type": "REGULAR",
        "kioskId": None,
        "hourlyRate": hourly_rate,
        "costRate": None,
        "isLocked": False,
    }


def report_row(
    entry_id: str,
    start: str,
    end: str,
    *,
    user: User = ANA,
    project: Project | None = WEBSITE,
    tags: tuple[Tag, ...] = (),
    billable: bool = True,
    hourly_rate: dict[str, Any] | None = None,
    description: str = "Sprint review",
    ws: str = WS,
) -> dict[str, Any]:
    """A Reports detailed row: `_id`, integer-second duration, flat names, zoned times."""
    seconds = _seconds_between(start, end)
    return {
        "_id": entry_id,
        "description": description,
        "userId": user.id,
        "userName": user.name,
        "userEmail": user.email,
        "workspaceId": ws,
        "type": "REGULAR",
        "projectId": project.id if project else None,
        "projectName": project.name if project else None,
        "projectColor": project.color if project else None,
        "clientId": project.client.id if project and project.client else None,
        "clientName": project.client.name if project and project.client else None,
        "taskId": None,
        "taskName": None,
        "tagIds": [t.id for t in tags],
        "tags": [{"id": t.id, "name": t.name} for t in tags],
        "billable": billable,
        "isLocked": False,
        "approvalRequestId": None,
        "hourlyRate": hourly_rate,
        "timeInterval": {
            "start": start,
            "end": end,
            "duration": seconds,
            "timeZone": "Europe/Berlin",
            "zonedStart": start,
            "zonedEnd": end,
            "offStart": 3600,
            "offEnd": 3600,
        },
    }


def user_updated(user: User, *, name: str | None = None) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": name or user.name,
        "profilePicture": "https://img.clockify.me/no-user-image.png",
        "settings": {
            "weekStart": "MONDAY",
            "timeZone": "Europe/Berlin",
            "timeFormat": "HOUR24",
            "dateFormat": "DD/MM/YYYY",
            "sendNewsletter": False,
            "weeklyUpdates": False,
            "longRunning": False,
        },
        "userCustomFields": [],
    }


def new_project(
    project: Project, *, name: str | None = None, ws: str = WS, color: str | None = None
) -> dict[str, Any]:
    """NEW_PROJECT / PROJECT_UPDATED, with the `client.currencyId = {timestamp, date}` quirk."""
    client = project.client
    return {
        "id": project.id,
        "name": name or project.name,
        "hourlyRate": {"amount": 10500, "currency": "EUR"},
        "costRate": None,
        "clientId": client.id if client else "",
        "workspaceId": ws,
        "billable": True,
        "memberships": [
            {
                "userId": ANA.id,
                "hourlyRate": None,
                "costRate": None,
                "targetId": project.id,
                "membershipType": "PROJECT",
                "membershipStatus": "ACTIVE",
            }
        ],
        "color": color or project.color,
        "estimate": {"estimate": "PT0S", "type": "AUTO"},
        "archived": False,
        "duration": "PT0S",
        "clientName": client.name if client else "",
        "note": "",
        "timeEstimate": {
            "estimate": "PT120H",
            "type": "AUTO",
            "resetOption": None,
            "active": True,
            "includeNonBillable": True,
        },
        "budgetEstimate": None,
        "estimateReset": None,
        "currency": {"id": "64aa00000000000000000001", "code": "EUR"},
        "template": False,
        "public": True,
        "tasks": [],
        "client": {
            "id": client.id,
            "name": client.name,
            "workspaceId": ws,
            "archived": False,
            "address": "",
            "note": "",
            "currencyId": {"timestamp": 1690000000, "date": "2023-07-22T04:26:40.000+00:00"},
        }
        if client
        else None,
    }


def new_client(client: Client, *, name: str | None = None, ws: str = WS) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": name or client.name,
        "email": None,
        "workspaceId": ws,
        "archived": False,
        "address": "Hauptstr. 1, Berlin",
        "note": "",
        "currencyId": "64aa00000000000000000001",
        "currencyCode": "EUR",
    }


def new_tag(tag: Tag, *, name: str | None = None, ws: str = WS) -> dict[str, Any]:
    return {"id": tag.id, "name": name or tag.name, "workspaceId": ws, "archived": False}


class AppClient(httpx.AsyncClient):
    """An in-process client for an app from `create_app` (no lifespan, no sockets) that, when
    closed, also closes what the app opened on its own: the store's pipelined connection."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", "http://localhost")
        super().__init__(transport=httpx.ASGITransport(app=app), **kwargs)
        self.app = app

    async def __aexit__(self, *exc_info: Any) -> None:
        await super().__aexit__(*exc_info)
        await close_app(self.app)

    async def aclose(self) -> None:
        await super().aclose()
        await close_app(self.app)


async def close_app(app: Any) -> None:
    """What the lifespan would close at shutdown, for apps tested without one."""
    pipe = app.state.service.pipe
    if pipe is not None:
        await pipe.aclose()


def client_for(app: Any) -> httpx.AsyncClient:
    return AppClient(app)


async def post_webhook(
    client: httpx.AsyncClient, event: str, body: Any, token: str | None = TOKEN
) -> httpx.Response:
    """POST one delivery as Clockify does: the raw entity, the event in a header, the secret
    in `clockify-signature` (left out when `token` is None)."""
    headers = {"content-type": "application/json", "clockify-webhook-event-type": event}
    if token is not None:
        headers["clockify-signature"] = token
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(WEBHOOK_PATH, content=content, headers=headers)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc, arg-type]


def hm(seconds: int) -> str:
    """Seconds as h:mm, minutes cut (the wall's way)."""
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"
