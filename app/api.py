"""The JSON API: /api/summary, /api/team, /api/entries (JSON, or CSV with `format=csv`),
/api/names, /api/running, /healthz, /readyz; and how their queries fail.

Every answer comes from precomputed totals. The query of a report is parsed here, once
(`parse_report_query`); what is wrong with it raises `app.reports.QueryError`, which the app's
exception handlers (`EXCEPTION_HANDLERS`) answer with a 400 saying what is allowed, and a
store that does not answer, or not within `READ_DEADLINE_S`, gets a 503 with Retry-After:

    QueryError (a ValueError)      -> 400 {error, hint}: change the query; a retry cannot help
    RedisError, TimeoutError       -> 503 {error, hint}, Retry-After: 5
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from app import export
from app.config import DURATION_FORMATS, Settings
from app.errors import error_response, json_response
from app.reporting import read_stored
from app.reports import Filters, QueryError, parse_filters, parse_group_by
from app.store import TotalsStore

MAX_RANGE_DAYS = 366
READ_DEADLINE_S = 10.0  # a Redis that stops answering gets a 503, not a hung page
# No entry starts after models.MAX_INSTANT (9980); reads step a day and a month past `end`,
# which overflows `date` near 9999-12-31, so later days are refused rather than a 500.
LAST_DAY = date(9990, 12, 31)
# The entries a JSON answer lists (it says `truncated` beyond), and one CSV export holds.
JSON_ENTRY_LIMIT = 5000
CSV_ENTRY_LIMIT = 50_000
FORMATS = ("json", "csv")
QUERY_HINT = "change that query parameter as the error says; the same request fails again"
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


def parse_range(params: Mapping[str, str], store: TotalsStore) -> tuple[date, date]:
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


def parse_format(params: Mapping[str, str]) -> str:
    raw = (params.get("format") or "json").strip().lower()
    if raw not in FORMATS:
        raise QueryError(f"format={raw[:20]!r} is not one of {', '.join(FORMATS)}")
    return raw


@dataclass(frozen=True)
class ReportQuery:
    """What a report's query string asks for (DESIGN.md section 3)."""

    workspace: str
    start: date
    end: date
    filters: Filters
    format: str  # json | csv
    levels: tuple[str, ...] = ()  # the summary's groupBy


# Errors -----------------------------------------------------------------------------------
async def query_error(request: Request, exc: Exception) -> Response:
    """A malformed query: 400 with the message that names the parameter and what it takes."""
    return error_response(400, str(exc), QUERY_HINT)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    return error_response(
        503,
        "the store (Redis) is unavailable",
        "retry shortly; /readyz shows the store's state",
        headers={"Retry-After": "5"},
    )


# For `Starlette(exception_handlers=...)`: every route, pages and share report included.
EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    QueryError: query_error,
    RedisError: store_unavailable,
    TimeoutError: store_unavailable,
}


def within_deadline(handler: Handler) -> Handler:
    """`handler` with the read deadline: a store that stops answering ends in a
    TimeoutError (a 503 by EXCEPTION_HANDLERS), not a hung page."""

    async def bounded(request: Request) -> Response:
        async with asyncio.timeout(READ_DEADLINE_S):
            return await handler(request)

    return bounded


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

    def parse_report_query(self, request: Request, grouped: bool = False) -> ReportQuery:
        """The report query of `request`; QueryError naming the first wrong parameter."""
        params = request.query_params
        levels = parse_group_by(params.get("groupBy")) if grouped else ()
        filters = parse_filters(params)
        start, end = parse_range(params, self.store)
        fmt = parse_format(params)
        return ReportQuery(self.workspace(request), start, end, filters, fmt, levels)

    async def duration_format(self, ws: str) -> str:
        """The workspace's duration format (FULL, COMPACT or DECIMAL), as Clockify shows
        durations; FULL until the reporting settings are stored."""
        stored = await read_stored(self.store.redis, ws)
        if stored is None or stored.duration_format not in DURATION_FORMATS:
            return "FULL"
        return stored.duration_format

    async def summary(self, request: Request) -> Response:
        query = self.parse_report_query(request, grouped=True)
        answer = await self.store.read_summary(
            query.workspace, query.start, query.end, query.levels, filters=query.filters
        )
        fmt = await self.duration_format(query.workspace)
        if query.format == "csv":
            rows = export.summary_rows(answer, fmt)
            return export.csv_response("summary", answer["dateRange"], rows)
        return json_response({**answer, "durationFormat": fmt})

    async def team(self, request: Request) -> Response:
        query = self.parse_report_query(request)
        answer = await self.store.read_team(query.workspace, query.start, query.end, query.filters)
        fmt = await self.duration_format(query.workspace)
        if query.format == "csv":
            return export.csv_response("team", answer["dateRange"], export.team_rows(answer, fmt))
        return json_response({**answer, "durationFormat": fmt})

    async def entries(self, request: Request) -> Response:
        query = self.parse_report_query(request)
        csv = query.format == "csv"
        answer = await self.store.read_entries(
            query.workspace,
            query.start,
            query.end,
            limit=CSV_ENTRY_LIMIT if csv else JSON_ENTRY_LIMIT,
            filters=query.filters,
        )
        fmt = await self.duration_format(query.workspace)
        if not csv:
            return json_response({**answer, "durationFormat": fmt})
        if answer["truncated"]:
            raise QueryError(
                f"the range holds more than {CSV_ENTRY_LIMIT:,} entries, more than one CSV "
                "export gives; export a shorter range, or filter by person or project"
            )
        rows = export.entries_rows(answer, fmt, self.store.zone)
        return export.csv_response("entries", answer["dateRange"], rows)

    async def names(self, request: Request) -> Response:
        """Users, projects, clients, tags and tasks for the pages' pickers: deleted ones left
        out (and a task of a deleted project), archived ones flagged, sorted by name."""
        ws = self.workspace(request)
        records = {
            kind: await self.store.read_names(ws, kind)
            for kind in ("user", "project", "client", "tag", "task")
        }

        def live(kind: str, ident: str | None) -> bool:
            record = records[kind].get(ident or "")
            return record is not None and not record.get("deleted")

        out: dict[str, list[dict[str, Any]]] = {}
        for kind, found in records.items():
            listed = []
            for ident, record in found.items():
                if record.get("deleted"):
                    continue
                item: dict[str, Any] = {"id": ident, "name": record.get("name") or ident}
                if kind == "project":
                    client_id = record.get("clientId")
                    item["color"] = record.get("color")
                    item["clientId"] = client_id if live("client", client_id) else None
                if kind == "task":
                    project_id = record.get("projectId")
                    if project_id and not live("project", project_id):
                        continue  # its project was deleted: its time is "Without task"
                    item["projectId"] = project_id
                if record.get("archived"):
                    item["archived"] = True
                listed.append(item)
            listed.sort(key=lambda item: (str(item["name"]).casefold(), item["id"]))
            out[f"{kind}s"] = listed
        return json_response(out)

    async def running(self, request: Request) -> Response:
        return json_response(await self.store.reports.running(self.workspace(request)))

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        state = await self.readiness()
        return json_response(state, status=200 if state["status"] == "ready" else 503)
