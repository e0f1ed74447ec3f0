"""The simulated workspace served over HTTP as Clockify serves it: the REST API under `/api/v1`
and the Reports API under `/reports/v1`, with Clockify's auth, plan and rate limits, paging,
and the workspace's injected faults. A Starlette app: serve it on a port (app/sim/server.py)
or hand it to `httpx.ASGITransport`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.sim.records import (
    ENTITY_WINDOW_DEFAULT_S,
    FREE_REPORT_MAX_DAYS,
    JSONObject,
    RequestRecord,
    SimulatorError,
    stored_instant,
)
from app.sim.state import SimulatedWorkspace
from app.sim.views import report_totals

Handler = Callable[[Request], Awaitable[Response]]


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
    return stored_instant(moment)


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
            wait_s = sim.rate_limit_wait_s()
            if wait_s is not None:
                retry = {"Retry-After": str(max(1, int(wait_s + 0.999)))}
                headers = retry if sim.send_retry_after else None
                return _json({"message": "Too many requests", "code": 429}, 429, headers)
            fault = sim.take_fault(request.url.path)
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
        return entity_page(request, [sim.entity_json(e) for e in entries])

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
        docs = [sim.entity_json(e) for e in entries]
        if "TIME_ENTRY_RATE" in request.query_params.getlist("type"):
            # Entries a rate was re-applied to (SimulatedWorkspace.apply_rate) in the window.
            docs += [
                sim.entity_json(e, "TIME_ENTRY_RATE")
                for e in sorted(sim.entries.values(), key=lambda e: e.rate_updated_at_s)
                if low_s <= e.rate_updated_at_s <= high_s
            ]
        return entity_page(request, docs)

    async def entities_deleted(request: Request) -> Response:
        # Clockify leaves out an entity both created and deleted in the window, and lists a
        # deletion about a minute after it happens.
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
        return entity_page(request, [sim.deletion_json(d) for d in deletions])

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
        return _json([sim.webhook_log_json(log) for log in chunk])

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
        chunk = rows[(number - 1) * size : number * size]
        headers = {}
        if sim.send_last_page_header:
            headers["Last-Page"] = "true" if number * size >= len(rows) else "false"
        return _json({"totals": [report_totals(rows)], "timeentries": chunk}, headers=headers)

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
