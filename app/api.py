"""The JSON API: /api/summary, /api/running, /api/team, /api/entries, /healthz, /readyz.

Every answer comes from precomputed totals; bad query parameters get a 400 that says which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings
from app.errors import error_response, json_response
from app.reports import QueryError, parse_filters, parse_group_by
from app.store import TotalsStore

MAX_RANGE_DAYS = 366
READ_DEADLINE_S = 10.0  # a Redis that stops answering gets a 503, not a hung page
# No entry starts after models.MAX_INSTANT (9980); reads step a day and a month past `end`,
# which overflows `date` near 9999-12-31, so later days are refused rather than a 500.
LAST_DAY = date(9990, 12, 31)
Handler = Callable[[Request], Awaitable[Response]]


def parse_day(raw: str, name: str, store: TotalsStore) -> date:
    raw = raw.strip()
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(
            f"{name}={raw[:40]!r} is not a date; use YYYY-MM-DD or an ISO datetime"
        ) from None
    if moment.tzinfo is None:
        return moment.date()
    try:
        return moment.astimezone(store.zone).date()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first date there is
        raise QueryError(
            f"{name}={raw[:40]!r} is out of range; use a date between 0001-01-02 and 9999-12-30"
        ) from None


def parse_range(params: dict[str, str], store: TotalsStore) -> tuple[date, date]:
    raw_start, raw_end = params.get("start"), params.get("end")
    if not raw_start and not raw_end:
        return store.current_week()
    if not raw_start or not raw_end:
        raise QueryError("give both start and end (YYYY-MM-DD), or neither for this week")
    start = parse_day(raw_start, "start", store)
    end = parse_day(raw_end, "end", store)
    if end < start:
        raise QueryError(f"end ({end}) is before start ({start})")
    if end > LAST_DAY:
        raise QueryError(f"end ({end}) is after {LAST_DAY}; no time entry is that late")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise QueryError(f"the range is longer than {MAX_RANGE_DAYS} days; ask for less")
    return start, end


class Api:
    def __init__(
        self,
        settings: Settings,
        store: TotalsStore,
        readiness: Callable[[], Awaitable[dict[str, Any]]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.readiness = readiness

    def workspace(self, request: Request) -> str:
        ws = request.query_params.get("workspace") or self.settings.default_workspace
        allowed = self.settings.workspace_ids or (self.settings.default_workspace,)
        if ws not in allowed:
            raise QueryError(f"workspace={ws[:40]!r} is not configured here")
        return ws

    def guarded(self, handler: Handler) -> Handler:
        async def wrapper(request: Request) -> Response:
            try:
                async with asyncio.timeout(READ_DEADLINE_S):
                    return await handler(request)
            except QueryError as exc:
                return error_response(400, str(exc), "fix the query parameter and retry")
            except (RedisError, TimeoutError):
                return error_response(
                    503,
                    "the store (Redis) is unavailable",
                    "retry shortly; /readyz shows the store's state",
                    headers={"Retry-After": "5"},
                )

        return wrapper

    async def summary(self, request: Request) -> Response:
        params = dict(request.query_params)
        levels = parse_group_by(params.get("groupBy"))
        filters = parse_filters(params)
        start, end = parse_range(params, self.store)
        return json_response(
            await self.store.read_summary(
                self.workspace(request), start, end, levels, filters=filters
            )
        )

    async def running(self, request: Request) -> Response:
        ws = self.workspace(request)
        entries = await self.store.read_running(ws)
        users = await self.store.read_names(ws, "user")
        projects = await self.store.read_names(ws, "project")
        clients = await self.store.read_names(ws, "client")
        now = self.store.clock()
        out = []
        for entry in entries:
            project = projects.get(entry.get("projectId") or "")
            if project and project.get("deleted"):
                project = None  # deleted in Clockify: "Without project", as every report
            client_id = (project or {}).get("clientId") or ""
            client = clients.get(client_id)
            if client and client.get("deleted"):
                client = None
            start = datetime.fromisoformat(entry["start"])
            out.append(
                {
                    "id": entry["id"],
                    "user": {
                        "id": entry["userId"],
                        "name": users.get(entry["userId"], {}).get("name") or entry["userId"],
                    },
                    "project": {
                        "id": entry["projectId"],
                        "name": project.get("name"),
                        "color": project.get("color"),
                    }
                    if project
                    else None,
                    "client": {"id": client_id, "name": client.get("name")} if client else None,
                    "description": entry.get("description", ""),
                    "start": entry["start"],
                    "elapsedSeconds": max(0, int((now - start).total_seconds())),
                    "billable": bool(entry.get("billable")),
                    "tagIds": entry.get("tagIds", []),
                }
            )
        return json_response({"running": out, "asOf": now.isoformat()})

    async def team(self, request: Request) -> Response:
        params = dict(request.query_params)
        filters = parse_filters(params)
        start, end = parse_range(params, self.store)
        return json_response(
            await self.store.read_team(self.workspace(request), start, end, filters)
        )

    async def entries(self, request: Request) -> Response:
        params = dict(request.query_params)
        filters = parse_filters(params)
        start, end = parse_range(params, self.store)
        return json_response(
            await self.store.read_entries(self.workspace(request), start, end, filters=filters)
        )

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        state = await self.readiness()
        return json_response(state, status=200 if state["status"] == "ready" else 503)
