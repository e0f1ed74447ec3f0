"""The Clockify REST and Reports API client: one `httpx.AsyncClient`, an hourly request budget
asked before every send (retries included), retries with backoff, and page-by-page reads.

Exceptions (every message says what went wrong and what to do; none contains the API key)::

    ClockifyError                  base of everything below
     +-- AuthError                 401: the API key is missing, wrong or revoked
     +-- ForbiddenError            403: the key's user may not do this (often: needs admin)
     +-- NotFoundError             404: workspace (or item) unknown to this key
     +-- BadRequestError           other 4xx: Clockify rejected the request (e.g. webhook limit)
     +-- RateLimitedError          429 after the retries; carries `retry_after_s`
     +-- UpstreamError             5xx, timeouts, connection errors, malformed JSON
     +-- BudgetExhaustedError      our own hourly budget said no; nothing was sent

Retries: 429 always (Clockify refused before doing anything); 5xx, timeouts and connection
errors only for requests that are safe to repeat (reads, PUT, DELETE), never for creating a
webhook or resetting its token, which could otherwise happen twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import orjson

from app.config import Secret
from app.models import format_instant

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.clockify.me/api/v1"
DEFAULT_REPORTS_URL = "https://reports.api.clockify.me/v1"
MAX_IN_PROGRESS_PAGE_SIZE = 1000  # documented maximum of /time-entries/status/in-progress
MAX_REPORT_PAGE_SIZE = 1000  # documented maximum of detailedFilter.pageSize
FREE_REPORT_MAX_DAYS = 31  # on FREE one report request may cover at most 31 days
MAX_PAGES = 10_000  # a guard against a server that never says "last page"
TIME_ENTRY = "TIME_ENTRY"
TIME_ENTRY_RATE = "TIME_ENTRY_RATE"  # an entity change: a rate re-applied to a past entry

JSONObject = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


class Budget(Protocol):
    """Anything that says whether one more request may be sent now (see app/budget.py)."""

    async def acquire(self) -> bool: ...


class UnlimitedBudget:
    """A budget that always says yes: for tests and the demo, never for a real workspace."""

    async def acquire(self) -> bool:
        return True


class ClockifyError(Exception):
    """Any failure talking to Clockify."""


class AuthError(ClockifyError):
    """401: the API key is missing, wrong or revoked."""


class ForbiddenError(ClockifyError):
    """403: the key is valid but its user may not do this."""


class NotFoundError(ClockifyError):
    """404: the workspace or item does not exist or this key cannot see it."""


class BadRequestError(ClockifyError):
    """Another 4xx: Clockify rejected the request; the message carries Clockify's reason."""


class RateLimitedError(ClockifyError):
    """429 after all retries (or a Retry-After too long to wait for inside one call)."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamError(ClockifyError):
    """Clockify failed: 5xx, timeout, connection error or a body that is not the JSON expected."""


class BudgetExhaustedError(ClockifyError):
    """The hourly request budget is spent; the request was not sent."""


class ClockifyClient:
    """Typed calls to Clockify. Lists come back complete (all pages), as plain dicts."""

    def __init__(
        self,
        api_key: Secret,
        *,
        budget: Budget,
        api_url: str = DEFAULT_API_URL,
        reports_url: str = DEFAULT_REPORTS_URL,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_retry_after_s: float = 120.0,
        page_size: int = 500,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0 or page_size < 1:
            raise ValueError("max_retries must be >= 0 and page_size >= 1")
        self._api_key = api_key
        self._budget = budget
        self.api_url = api_url.rstrip("/")
        self.reports_url = reports_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout_s)
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._max_retry_after_s = max_retry_after_s
        self._page_size = page_size
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Called with the HTTP status of every answer, retries included (the poller counts
        # each 429 with it).
        self.on_status: Callable[[int], None] | None = None

    async def __aenter__(self) -> ClockifyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (an injected one belongs to you)."""
        if self._owns_http:
            await self._http.aclose()

    # Discovery ------------------------------------------------------------------------
    async def get_user(self) -> JSONObject:
        return _expect_object(await self._get_json("/user"), "GET /user")

    async def get_workspaces(self) -> list[JSONObject]:
        return _expect_list(await self._get_json("/workspaces"), "GET /workspaces")

    async def get_workspace(self, ws: str) -> JSONObject:
        """The workspace; its plan is `featureSubscriptionType` (FREE, PRO_2021, ...)."""
        return _expect_object(await self._get_json(f"/workspaces/{ws}"), "GET /workspaces/{ws}")

    async def list_users(self, ws: str) -> list[JSONObject]:
        return await self._paginate(f"/workspaces/{ws}/users", {})

    async def list_projects(self, ws: str) -> list[JSONObject]:
        return await self._paginate(f"/workspaces/{ws}/projects", {})

    async def list_clients(self, ws: str) -> list[JSONObject]:
        return await self._paginate(f"/workspaces/{ws}/clients", {})

    async def list_tags(self, ws: str) -> list[JSONObject]:
        return await self._paginate(f"/workspaces/{ws}/tags", {})

    # Time entries ---------------------------------------------------------------------
    async def list_user_entries(
        self, ws: str, user_id: str, start: datetime, end: datetime, hydrated: bool = True
    ) -> list[JSONObject]:
        """One user's entries whose start lies in [start, end], newest first."""
        params = {
            "start": format_instant(start),
            "end": format_instant(end),
            "hydrated": "true" if hydrated else "false",
        }
        return await self._paginate(f"/workspaces/{ws}/user/{user_id}/time-entries", params)

    async def list_in_progress(self, ws: str) -> list[JSONObject]:
        """Every running timer of the workspace: one request for up to 1000 timers."""
        return await self._paginate(
            f"/workspaces/{ws}/time-entries/status/in-progress",
            {},
            page_size=min(self._page_size * 2, MAX_IN_PROGRESS_PAGE_SIZE),
        )

    async def entities_created(
        self, ws: str, start: datetime, end: datetime, *, types: Sequence[str] = (TIME_ENTRY,)
    ) -> list[JSONObject]:
        """Time entries created in [start, end], as they are now (experimental endpoint);
        `types` may add TIME_ENTRY_RATE, in the same request."""
        return await self._entities(ws, "created", start, end, types)

    async def entities_updated(
        self, ws: str, start: datetime, end: datetime, *, types: Sequence[str] = (TIME_ENTRY,)
    ) -> list[JSONObject]:
        """Time entries updated in [start, end]; one also created in it is left out (it is
        among the created ones). `types` may add TIME_ENTRY_RATE, in the same request."""
        return await self._entities(ws, "updated", start, end, types)

    async def entities_deleted(self, ws: str, start: datetime, end: datetime) -> list[JSONObject]:
        """`{id, deletedAt, document, documentCode}` for entries deleted in [start, end], the
        entry in `document`; one also created in the window is left out."""
        return await self._entities(ws, "deleted", start, end)

    async def _entities(
        self,
        ws: str,
        which: str,
        start: datetime,
        end: datetime,
        types: Sequence[str] = (TIME_ENTRY,),
    ) -> list[JSONObject]:
        # Paged with `page` (1-based, as Clockify's guide uses it) and `limit`; `type` repeats.
        params: dict[str, str | int | list[str]] = {
            "type": list(types),
            "start": format_instant(start),
            "end": format_instant(end),
        }
        return await self._paginate(
            f"/workspaces/{ws}/entities/{which}", params, size_param="limit", unwrap="response"
        )

    async def detailed_report(
        self,
        ws: str,
        start: datetime,
        end: datetime,
        zone: ZoneInfo | None = None,
        *,
        max_days: int | None = None,
    ) -> list[JSONObject]:
        """Detailed report rows (`timeentries`; durations in integer seconds) of [start, end],
        all pages. Clockify reads the window as wall-clock times in the `timeZone` sent (a
        trailing Z is not honoured), so both ends go as wall-clock times in `zone`; with
        `max_days` (31 on FREE) the window is cut into requests of at most that many days."""
        zone = zone or ZoneInfo("UTC")
        page_size = min(self._page_size * 2, MAX_REPORT_PAGE_SIZE)
        rows: list[JSONObject] = []
        for first, last in _wall_clock_chunks(start, end, zone, max_days):
            for page in range(1, MAX_PAGES + 1):
                batch, is_last = await self.detailed_report_page(
                    ws, first, last, zone, page, page_size
                )
                rows.extend(batch)
                if is_last:
                    break
            else:
                raise _too_many_pages(f"{self.reports_url}/workspaces/{ws}/reports/detailed")
        return rows

    async def detailed_report_page(
        self,
        ws: str,
        first: datetime,
        last: datetime,
        zone: ZoneInfo,
        page: int,
        page_size: int = MAX_REPORT_PAGE_SIZE,
    ) -> tuple[list[JSONObject], bool]:
        """One page (1-based) of the Detailed report of [first, last], naive wall-clock times
        in `zone` (one request), newest entry first, and whether it is the last page; for
        callers that keep their place between pages (the history import, app/importer.py)."""
        url = f"{self.reports_url}/workspaces/{ws}/reports/detailed"
        body = {
            "dateRangeStart": _wall_clock(first),
            "dateRangeEnd": _wall_clock(last),
            "timeZone": zone.key,
            # Clockify's default order, said out loud: the import keeps its place by it.
            "sortOrder": "DESCENDING",
            "detailedFilter": {"page": page, "pageSize": page_size, "sortColumn": "DATE"},
            "amountShown": "EARNED",
            "exportType": "JSON",
        }
        response = await self._send("POST", url, json_body=body, idempotent=True)
        data = _expect_object(_decode(response), "POST /reports/detailed")
        batch = data.get("timeentries", data.get("timeEntries", []))
        batch = _expect_list(batch, "POST /reports/detailed timeentries")
        return batch, _is_last_page(response, len(batch), page_size)

    # Webhooks -------------------------------------------------------------------------
    async def list_webhooks(self, ws: str) -> JSONObject:
        """`{webhooks: [...], workspaceWebhookCount}` (a bare list is normalised to that)."""
        data = await self._get_json(f"/workspaces/{ws}/webhooks")
        if isinstance(data, list):
            return {"webhooks": data, "workspaceWebhookCount": len(data)}
        data = _expect_object(data, "GET /webhooks")
        data.setdefault("webhooks", [])
        return data

    async def create_webhook(self, ws: str, name: str, url: str, event: str) -> JSONObject:
        """A workspace-wide webhook for one event; the answer carries its `authToken`."""
        body = {
            "name": name,
            "url": url,
            "webhookEvent": event,
            "triggerSourceType": "WORKSPACE_ID",
            "triggerSource": [],
        }
        response = await self._send(
            "POST", f"{self.api_url}/workspaces/{ws}/webhooks", json_body=body, idempotent=False
        )
        return _expect_object(_decode(response), "POST /webhooks")

    async def webhook_logs(
        self,
        ws: str,
        webhook_id: str,
        start: datetime,
        end: datetime,
        *,
        status: str = "FAILED",
        size: int = 50,
    ) -> list[JSONObject]:
        """The oldest `size` delivery logs of one webhook in (start, end): `{id, webhookId,
        statusCode, requestBody, responseBody, respondedAt}`. One request, the first page only:
        Clockify's schema gives `page` a default of 0 and an example of 1, so only leaving it
        out surely means the first page; callers move `start` on instead of paging."""
        body = {
            "from": format_instant(start),
            "to": format_instant(end),
            "status": status,
            "sortByNewest": False,
        }
        response = await self._send(
            "POST",
            f"{self.api_url}/workspaces/{ws}/webhooks/{webhook_id}/logs",
            params={"size": size},
            json_body=body,
            idempotent=True,  # a search: safe to repeat
        )
        return _expect_list(_decode(response), "POST /webhooks/{id}/logs")

    async def reset_webhook_token(self, ws: str, webhook_id: str) -> JSONObject:
        """A new `authToken`; the old one stops working at once."""
        response = await self._send(
            "PATCH",
            f"{self.api_url}/workspaces/{ws}/webhooks/{webhook_id}/token",
            idempotent=False,
        )
        return _expect_object(_decode(response), "PATCH /webhooks/{id}/token")

    async def delete_webhook(self, ws: str, webhook_id: str) -> None:
        await self._send(
            "DELETE", f"{self.api_url}/workspaces/{ws}/webhooks/{webhook_id}", idempotent=True
        )

    # Plumbing -------------------------------------------------------------------------
    async def _get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = await self._send("GET", f"{self.api_url}{path}", params=params)
        return _decode(response)

    async def _paginate(
        self,
        path: str,
        params: Mapping[str, str | int | list[str]],
        *,
        page_size: int | None = None,
        size_param: str = "page-size",
        unwrap: str | None = None,
    ) -> list[JSONObject]:
        """All pages: `page` from 1, page size always sent; stops on `Last-Page: true` or a
        short page. `unwrap` names a key the list may be wrapped in (`{"response": [...]}`)."""
        size = page_size or self._page_size
        items: list[JSONObject] = []
        for page in range(1, MAX_PAGES + 1):
            query = {**params, "page": page, size_param: size}
            response = await self._send("GET", f"{self.api_url}{path}", params=query)
            data = _decode(response)
            if unwrap is not None and isinstance(data, dict) and unwrap in data:
                data = data[unwrap]
            batch = _expect_list(data, f"GET {path}")
            items.extend(batch)
            if _is_last_page(response, len(batch), size):
                return items
        raise _too_many_pages(path)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | list[str]] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One logical request: budget first, then send, retrying 429 (and 5xx/timeouts when
        `idempotent`) with exponential backoff and jitter, honouring Retry-After."""
        what = f"{method} {_path_of(url, self.api_url, self.reports_url)}"
        headers = {"X-Api-Key": self._api_key.reveal(), "Accept": "application/json"}
        content = orjson.dumps(json_body) if json_body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self._max_retries + 1):
            if not await self._budget.acquire():
                raise BudgetExhaustedError(
                    f"{what} not sent: the hourly Clockify API budget is spent; it refills as "
                    "the oldest requests leave the rolling hour (raise "
                    "CLOCKWALL_API_BUDGET_PER_HOUR only if your plan allows more)"
                )
            error: ClockifyError
            retry_after_s: float | None = None
            retryable = idempotent
            try:
                response = await self._http.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    content=content,
                    headers=headers,
                    timeout=self._timeout,
                )
            except httpx.TimeoutException as exc:
                error = UpstreamError(
                    f"{what} timed out ({type(exc).__name__}); Clockify is slow or unreachable, "
                    "try again later or raise the timeout"
                )
            except httpx.TransportError as exc:
                error = UpstreamError(
                    f"{what} failed to connect ({type(exc).__name__}); check the network and "
                    "CLOCKIFY_API_URL / CLOCKIFY_REPORTS_URL"
                )
            else:
                status = response.status_code
                if self.on_status is not None:
                    self.on_status(status)
                if status < 400:
                    return response
                if status == 429:
                    retry_after_s = _retry_after_s(response)
                    retryable = True
                    error = RateLimitedError(
                        f"{what} was rate limited by Clockify (429 {self._reason(response)}); "
                        "slow down or lower CLOCKWALL_API_BUDGET_PER_HOUR",
                        retry_after_s,
                    )
                    if retry_after_s is not None and retry_after_s > self._max_retry_after_s:
                        raise error
                elif status >= 500:
                    error = UpstreamError(
                        f"{what} failed on Clockify's side ({status} {self._reason(response)}); "
                        "try again later"
                    )
                else:
                    raise self._client_error(what, response)
            if not retryable or attempt == self._max_retries:
                raise error
            delay_s = retry_after_s if retry_after_s is not None else self._backoff_s(attempt)
            logger.warning(
                "clockify %s: %s; retry %d of %d in %.2f s",
                what,
                type(error).__name__,
                attempt + 1,
                self._max_retries,
                delay_s,
            )
            await self._sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff_s(self, attempt: int) -> float:
        # "Equal jitter": half the exponential step fixed, half random, so retries spread out
        # but never come back sooner than half the step.
        step_s = min(self._backoff_max_s, self._backoff_base_s * 2.0**attempt)
        return step_s / 2 + self._rng.uniform(0, step_s / 2)

    def _reason(self, response: httpx.Response) -> str:
        """Clockify's own `message`, shortened, with the API key scrubbed just in case."""
        message = ""
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
        message = (message or response.reason_phrase or "").strip()[:200]
        key = self._api_key.reveal()
        if key:
            message = message.replace(key, "***")
        return message

    def _client_error(self, what: str, response: httpx.Response) -> ClockifyError:
        status, reason = response.status_code, self._reason(response)
        if status == 401:
            return AuthError(
                f"bad API key: Clockify answered 401 ({reason}) to {what}; set "
                "CLOCKIFY_API_KEY to a key from Clockify > Preferences > Advanced (a subdomain "
                "workspace needs a key generated inside that workspace)"
            )
        if status == 403:
            return ForbiddenError(
                f"forbidden: Clockify answered 403 ({reason}) to {what}; the API key's user "
                "lacks the permission, use a key of a workspace owner or admin"
            )
        if status == 404:
            return NotFoundError(
                f"not found: Clockify answered 404 ({reason}) to {what}; check "
                "CLOCKIFY_WORKSPACE_ID (the workspace may not exist or the key's user is not "
                "a member) and the item id"
            )
        return BadRequestError(
            f"Clockify rejected {what} with {status} ({reason}); fix the request as the "
            "message says"
        )


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            f"Clockify answered {response.request.method} "
            f"{response.request.url.path} with a body that is not valid JSON "
            f"({len(response.content)} bytes); try again later"
        ) from None


def _expect_list(data: Any, what: str) -> list[JSONObject]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UpstreamError(
            f"{what}: expected a JSON array of objects, got {type(data).__name__}; "
            "check CLOCKIFY_API_URL points at the Clockify API"
        )
    return data


def _expect_object(data: Any, what: str) -> JSONObject:
    if not isinstance(data, dict):
        raise UpstreamError(
            f"{what}: expected a JSON object, got {type(data).__name__}; "
            "check CLOCKIFY_API_URL points at the Clockify API"
        )
    return data


def _is_last_page(response: httpx.Response, count: int, page_size: int) -> bool:
    return response.headers.get("Last-Page", "").lower() == "true" or count < page_size


def _too_many_pages(what: str) -> UpstreamError:
    return UpstreamError(
        f"{what}: more than {MAX_PAGES} pages without a last page; Clockify's paging seems "
        "broken, try again later"
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _wall_clock_chunks(
    start: datetime, end: datetime, zone: ZoneInfo, max_days: int | None
) -> list[tuple[datetime, datetime]]:
    """[start, end] as naive wall-clock times in `zone`, cut into spans of at most `max_days`
    measured on the wall clock (as Clockify measures them); each span ends a millisecond
    before the next begins, so no entry is listed twice."""
    first = start.astimezone(zone).replace(tzinfo=None)
    last = end.astimezone(zone).replace(tzinfo=None)
    if max_days is None:
        return [(first, last)]
    step, tick = timedelta(days=max_days), timedelta(milliseconds=1)
    chunks: list[tuple[datetime, datetime]] = []
    while first + step <= last:
        chunks.append((first, first + step - tick))
        first += step
    chunks.append((first, last))
    return chunks


def _wall_clock(moment: datetime) -> str:
    """`2026-01-01T09:00:00.000`: no offset, no Z (Clockify adds the body's `timeZone`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _path_of(url: str, *bases: str) -> str:
    for base in bases:
        if url.startswith(base):
            return url[len(base) :] or "/"
    return url
