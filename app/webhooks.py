"""POST /webhooks/clockify: verify the token, bound the body, parse leniently, apply, answer.

Order matters: the token is checked before the body is read; nothing is acknowledged (2xx)
that the store did not take; a store outage answers 503 so the delivery can be resent; an entry
the store cannot apply for another reason answers 500 and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from app.compat import body_is_in
from app.config import Settings
from app.errors import JSONAnswer, error_answer, json_answer
from app.importer import note_first_webhook
from app.metrics import Metrics
from app.models import (
    Named,
    PayloadError,
    TimeEntry,
    parse_entry_id,
    parse_named,
    parse_rate_change,
    parse_time_entry,
)
from app.rates import RatesMarker, default_since
from app.signatures import TokenVerifier
from app.store import STORE_DEADLINE_S, ApplyError, ApplyResult, TotalsStore

log = logging.getLogger(__name__)

ENTRY_KINDS = {
    "NEW_TIMER_STARTED": "create",
    "NEW_TIME_ENTRY": "create",
    "TIMER_STOPPED": "update",
    "TIME_ENTRY_UPDATED": "update",
    "TIME_ENTRY_SPLIT": "update",
    "TIME_ENTRY_RESTORED": "restore",
}
DELETE_EVENTS = {"TIME_ENTRY_DELETED", "TIME_ENTRY_BATCH_DELETED"}
NAME_EVENTS = {
    "USER_JOINED_WORKSPACE": "user",
    "USER_UPDATED": "user",
    "USER_EMAIL_CHANGED": "user",
    "USER_ACTIVATED_ON_WORKSPACE": "user",
    "USER_DEACTIVATED_ON_WORKSPACE": "user",
    "USER_DELETED_FROM_WORKSPACE": "user",
    "NEW_PROJECT": "project",
    "PROJECT_UPDATED": "project",
    "PROJECT_DELETED": "project",
    "NEW_CLIENT": "client",
    "CLIENT_UPDATED": "client",
    "CLIENT_DELETED": "client",
    "NEW_TAG": "tag",
    "TAG_UPDATED": "tag",
    "TAG_DELETED": "tag",
    "NEW_TASK": "task",
    "TASK_UPDATED": "task",
    "TASK_DELETED": "task",
}
# Deleted in Clockify: the record stays, marked `deleted` (a project's, client's, tag's or
# task's entries then report "Without ..."; a user's time stays under the user). A later NEW_
# or _UPDATED event for the id replaces the record whole, which restores it.
DELETED_EVENTS = frozenset(
    (
        "PROJECT_DELETED",
        "CLIENT_DELETED",
        "TAG_DELETED",
        "TASK_DELETED",
        "USER_DELETED_FROM_WORKSPACE",
    )
)
# Clockify re-applied a billable or cost rate to past entries (payload type RATE_UPDATED): the
# amounts held for them may be stale, so the workspace is marked for the poller to re-read.
RATE_EVENTS = frozenset(("BILLABLE_RATE_UPDATED", "COST_RATE_UPDATED"))
# Clockify's other documented events: answered "ignored", but counted under their own names.
OTHER_EVENTS = {
    "NEW_INVOICE",
    "INVOICE_UPDATED",
    "NEW_APPROVAL_REQUEST",
    "APPROVAL_REQUEST_STATUS_UPDATED",
    "TIME_OFF_REQUESTED",
    "TIME_OFF_REQUEST_APPROVED",
    "TIME_OFF_REQUEST_REJECTED",
    "TIME_OFF_REQUEST_WITHDRAWN",
    "TIME_OFF_REQUEST_UPDATED",
    "TIME_OFF_REQUEST_STARTED",
    "BALANCE_UPDATED",
    "EXPENSE_CREATED",
    "EXPENSE_UPDATED",
    "EXPENSE_DELETED",
    "EXPENSE_RESTORED",
    "ASSIGNMENT_CREATED",
    "ASSIGNMENT_UPDATED",
    "ASSIGNMENT_DELETED",
    "ASSIGNMENT_PUBLISHED",
    "USER_GROUP_CREATED",
    "USER_GROUP_UPDATED",
    "USER_GROUP_DELETED",
    "USERS_INVITED_TO_WORKSPACE",
    "LIMITED_USERS_ADDED_TO_WORKSPACE",
}
# The metric's event label comes from this fixed set only, so no sender can add series by
# inventing names: a refused token counts as "unauthenticated", an unknown name as "other".
KNOWN_EVENTS = (
    frozenset(ENTRY_KINDS) | DELETE_EVENTS | frozenset(NAME_EVENTS) | RATE_EVENTS | OTHER_EVENTS
)
UNAUTHENTICATED = "unauthenticated"
OTHER = "other"
INVALID = "invalid"
_EVENT_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")


class WebhookEndpoint:
    def __init__(
        self,
        settings: Settings,
        store: TotalsStore,
        metrics: Metrics,
        on_store_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.verifier = TokenVerifier(settings.webhook_tokens)
        self.on_store_error = on_store_error
        self._counters: dict[tuple[str, str], Any] = {}
        self.rates = RatesMarker(store.redis)
        self._rates_warned = False
        # Webhook-only mode (no poller backfills): the first delivery applied marks the day the
        # data is complete from (coverage `from`), once per workspace and process.
        polls = bool(settings.api_key) and settings.effective_mode in ("poll", "hybrid")
        self._coverage_pending = not polls
        self._covered: set[str] = set()

    def _count(self, event: str, outcome: str) -> None:
        # labels() hashes its arguments and takes a lock on every call: keep the children.
        child = self._counters.get((event, outcome))
        if child is None:
            child = self.metrics.webhooks.labels(event=event, outcome=outcome)
            if len(self._counters) < 4096:
                self._counters[(event, outcome)] = child
        child.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route as a plain ASGI app (no Request or Response objects on the hot path);
        `ClockwallApp` calls it before any middleware, so it guards itself against errors."""
        event = signature = declared = None
        for name, value in scope["headers"]:
            if name == b"clockify-webhook-event-type":
                event = event if event is not None else value
            elif name == b"clockify-signature":
                signature = signature if signature is not None else value
            elif name == b"content-length":
                declared = declared if declared is not None else value
        started = False

        async def respond(response: JSONAnswer) -> None:
            nonlocal started
            started = True
            await response(scope, receive, send)

        try:
            await respond(await self.handle(event, signature, declared, receive))
        except Exception:
            log.exception("webhook delivery failed")
            if not started:
                await error_answer(
                    500, "clockwall failed on this delivery", "resend it; the log says why"
                )(scope, receive, send)

    async def handle(
        self,
        event_header: bytes | None,
        signature: bytes | None,
        declared: bytes | None,
        receive: Receive,
    ) -> JSONAnswer:
        event = (event_header or b"").decode("latin-1").strip().upper()
        token = self.verifier.match(signature)
        if token is None:
            self._count(UNAUTHENTICATED, "rejected:token")
            if not self.verifier:
                hint = "no webhook tokens are configured; set CLOCKIFY_WEBHOOK_TOKENS"
            else:
                hint = (
                    "send the webhook's signing secret in the clockify-signature header; "
                    "add it to CLOCKIFY_WEBHOOK_TOKENS (run `clockwall setup` to list them)"
                )
            return error_answer(401, "missing or unknown webhook token", hint)
        if not event or len(event) > 64 or not set(event) <= _EVENT_CHARS:
            event_label = INVALID
        else:
            event_label = event if event in KNOWN_EVENTS else OTHER

        limit = self.settings.webhook_max_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            self._count(event_label, "rejected:size")
            return _too_large(limit)
        timeout_s = self.settings.webhook_body_timeout_s
        try:
            if body_is_in(receive):
                # The usual delivery: the whole body came with the headers, and reading it
                # cannot wait (no deadline to arm, a measurable share of a webhook's cost).
                body = await self._read_body(receive, event_label, limit)
            else:
                # A body that trickles in (or stops) must not hold a connection and its task
                # for ever: the whole body has one deadline, however it is split.
                async with asyncio.timeout(timeout_s):
                    body = await self._read_body(receive, event_label, limit)
        except _BodyRefused as refused:
            return refused.answer
        except TimeoutError:
            self._count(event_label, "rejected:timeout")
            return error_answer(
                408,
                f"the body did not arrive within {timeout_s:g} s",
                "resend the delivery; raise CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S if Clockify's "
                "deliveries really take this long to arrive",
                headers={"Connection": "close"},
            )

        if event_label == INVALID:
            self._count(event_label, "rejected:event")
            return error_answer(
                400,
                "missing or malformed clockify-webhook-event-type header",
                "Clockify sends the event name (e.g. TIMER_STOPPED) in that header",
            )
        return await self.apply(event, body, token.workspace_id)

    async def apply(self, event: str, body: bytes, bound: str | None) -> JSONAnswer:
        """A verified delivery's body into the store, answered as the endpoint answers it: the
        one apply path, which deliveries replayed from Clockify's log (app/webhook_health.py)
        take too. `event` is upper case; `bound`, the workspace the token is bound to."""
        event_label = event if event in KNOWN_EVENTS else OTHER
        if not self.store.settled:
            # Applying in a provisional zone would put entries on days no rebuild corrects.
            self._count(event_label, "unavailable")
            return error_answer(
                503,
                "the store is not ready: the reporting time zone is not settled yet, "
                "nothing was recorded",
                "resend this delivery shortly; /readyz says what clockwall is waiting for "
                "(Redis, or the API key owner's Clockify profile; CLOCKWALL_TIMEZONE skips it)",
                headers={"Retry-After": "5"},
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self._count(event_label, "rejected:json")
            return error_answer(
                400, f"the body is not valid JSON ({exc.msg})", "send the entity as JSON"
            )

        try:
            # A Redis that stops answering fails the write within the store's deadline
            # (STORE_DEADLINE_S), so the delivery gets a 503, never a hung request.
            if event in ENTRY_KINDS or event in DELETE_EVENTS:
                return await self._entries(event, payload, bound)
            if event in NAME_EVENTS:
                return await self._names(event, payload, bound)
            if event in RATE_EVENTS:
                return await self._rates(event, payload, bound)
        except PayloadError as exc:
            self._count(event, "rejected:payload")
            return error_answer(
                400,
                f"malformed {event} body: {exc}",
                "send the entity exactly as Clockify does (see clockify-facts.md section 3)",
            )
        except WorkspaceError as exc:
            self._count(event, "rejected:workspace")
            return error_answer(403, str(exc), exc.hint)
        except ApplyError as exc:
            # Not an outage (a 503 would say "resend later", and a resend fails the same way).
            self._count(event, "error")
            log.exception("clockwall could not apply a %s delivery: %s", event, exc.what)
            if exc.written:
                hint = (
                    "this is not a Redis outage: the log has the store's error; fix its cause "
                    "(e.g. a key of the wrong type in Redis), then resend the delivery"
                )
            else:
                hint = (
                    "this is not a Redis outage, and resending fails the same way until the "
                    "total the error names is corrected in Redis; the log has the details"
                )
            return error_answer(500, f"clockwall could not apply this entry: {exc.what}", hint)
        except (RedisError, TimeoutError) as exc:
            self._count(event, "unavailable")
            log.warning(
                "store unavailable while applying %s (%s): answered 503 so it can be resent; "
                "check that Redis runs and that REDIS_URL points at it",
                event,
                type(exc).__name__,
            )
            if self.on_store_error:
                self.on_store_error(exc)
            return error_answer(
                503,
                "the store (Redis) is unavailable, nothing was recorded",
                "resend this delivery once Redis is back; /readyz shows the store's state",
                headers={"Retry-After": "5"},
            )
        self._count(event_label, "ignored")
        return json_answer({"outcome": "ignored", "event": event})

    async def _read_body(self, receive: Receive, event_label: str, limit: int) -> bytes:
        body: bytes = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                self._count(event_label, "rejected:disconnect")
                raise _BodyRefused(
                    error_answer(400, "the client went away mid-body", "resend the delivery")
                )
            body += message.get("body", b"")
            if len(body) > limit:
                self._count(event_label, "rejected:size")
                raise _BodyRefused(_too_large(limit))
            if not message.get("more_body", False):
                return body

    def _workspace(self, claimed: str | None, bound: str | None) -> str:
        configured = self.settings.workspace_ids
        ws = claimed or bound or (configured[0] if len(configured) == 1 else None)
        if ws is None:
            raise PayloadError("workspaceId is required")
        if configured and ws not in configured:
            raise WorkspaceError(
                f"workspace {ws} is not configured here",
                "add it to CLOCKIFY_WORKSPACE_ID, or point that workspace's webhooks elsewhere",
            )
        if bound is not None and bound != ws:
            raise WorkspaceError(
                f"this token belongs to another workspace, not {ws}",
                "use the token of the webhook created in this workspace",
            )
        return ws

    async def _entries(self, event: str, payload: Any, bound: str | None) -> JSONAnswer:
        items = payload if isinstance(payload, list) else [payload]
        if not items or len(items) > 1000:
            raise PayloadError("the body must be a time entry (or a list of 1 to 1000)")
        # Parse and check every item before applying any, so a rejected body changes nothing.
        parsed: list[TimeEntry | tuple[str, str]] = []
        for item in items:
            if event in DELETE_EVENTS:
                try:
                    entry = parse_time_entry(item)
                except PayloadError:
                    entry_id, claimed = parse_entry_id(item)
                    parsed.append((self._workspace(claimed, bound), entry_id))
                    continue
            else:
                entry = parse_time_entry(item)
            self._workspace(entry.workspace_id, bound)
            parsed.append(entry)
        kind = "delete" if event in DELETE_EVENTS else ENTRY_KINDS[event]
        results: list[ApplyResult] = []
        for target in parsed:
            started = time.perf_counter()
            if isinstance(target, TimeEntry):
                results.append(await self.store.apply_entry(target, kind))
            else:
                results.append(await self.store.delete_entry(*target))
            self.metrics.apply_seconds.observe(time.perf_counter() - started)
        for result in results:
            self._count(event, "accepted" if result.changed else result.outcome)
        if self._coverage_pending:
            await self._note_coverage(
                {t.workspace_id if isinstance(t, TimeEntry) else t[0] for t in parsed}
            )
        if len(results) == 1:
            return json_answer({"outcome": results[0].outcome, "changeId": results[0].stream_id})
        return json_answer({"outcomes": [r.outcome for r in results]})

    async def _note_coverage(self, workspaces: set[str]) -> None:
        """The first entry delivery applied in webhook-only mode: the data is complete from
        today (HSETNX: an earlier `from`, or another process's, stays). After one success per
        workspace this process never asks Redis again."""
        for ws in workspaces - self._covered:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(STORE_DEADLINE_S):
                    await note_first_webhook(self.store.redis, ws, self.store.today())
                self._covered.add(ws)
        if len(self._covered) >= max(1, len(self.settings.workspace_ids)):
            self._coverage_pending = False

    async def _names(self, event: str, payload: Any, bound: str | None) -> JSONAnswer:
        kind = NAME_EVENTS[event]
        named = parse_named(kind, payload, "body")
        if named is None:
            raise PayloadError("body must be an object, got null")
        records: list[Named] = [named]
        claimed = (
            payload.get("workspaceId") if isinstance(payload.get("workspaceId"), str) else None
        )
        if kind == "project":
            client_name = payload.get("clientName")
            if named.client_id and isinstance(client_name, str) and client_name:
                # Partial: it fills a gap only, never restores a client Clockify deleted.
                records.append(Named("client", named.client_id, client_name[:200], partial=True))
        if event in DELETED_EVENTS:
            records[0] = replace(named, deleted=True)
        elif event == "USER_DEACTIVATED_ON_WORKSPACE":
            records[0] = replace(named, archived=True)
        if claimed is None and bound is None and kind == "user":
            targets = list(self.settings.workspace_ids) or [self.settings.default_workspace]
        else:
            targets = [self._workspace(claimed, bound)]
        outcome = "unchanged"
        for ws in targets:
            result = await self.store.apply_names(ws, records)
            if result.changed:
                outcome = "names"
        self._count(event, "accepted" if outcome == "names" else "duplicate")
        return json_answer({"outcome": outcome})

    async def _rates(self, event: str, payload: Any, bound: str | None) -> JSONAnswer:
        """Mark the workspace's amounts stale from the day the rate applies from. The body's
        shape is not documented: whatever it names is used, and nothing in it fails the
        delivery. No day named: from the current month's (or week's) first day, see
        app/rates.default_since; an instant is its day in the reporting zone."""
        store = self.store
        change = parse_rate_change(payload, store.zone)
        if change.workspace_id is None and bound is None:
            targets = list(self.settings.workspace_ids) or [self.settings.default_workspace]
        else:
            targets = [self._workspace(change.workspace_id, bound)]
        now = store.clock()
        today = store.today()
        default = default_since(today, store.current_week()[0])
        since: date = min(change.since or default, today)
        marked = since
        async with asyncio.timeout(STORE_DEADLINE_S):
            for ws in targets:
                marked = await self.rates.mark(ws, since, now, default)
        log.info(
            "%s for workspace %s (users %s, projects %s, from %s): past amounts are re-read "
            "from %s",
            event,
            ",".join(targets),
            ",".join(change.user_ids) or "any",
            ",".join(change.project_ids) or "any",
            change.since or "an unnamed day",
            marked,
        )
        self._warn_without_poller()
        self._count(event, "accepted")
        return json_answer({"outcome": "rates", "since": since.isoformat()})

    def _warn_without_poller(self) -> None:
        settings = self.settings
        polls = bool(settings.api_key) and settings.effective_mode in ("poll", "hybrid")
        if polls or self._rates_warned:
            return
        self._rates_warned = True
        fix = (
            "set CLOCKWALL_MODE to hybrid (or auto) so the poller re-reads them"
            if settings.api_key
            else "set CLOCKIFY_API_KEY so clockwall re-reads them from Clockify's reports"
        )
        log.warning(
            "Clockify re-applied a billable or cost rate to past entries, and nothing here "
            "re-reads them: the amounts shown for those entries may be stale until each is "
            "edited in Clockify; %s",
            fix,
        )


class _BodyRefused(Exception):
    """Ends a body read with the answer to send instead."""

    def __init__(self, answer: JSONAnswer) -> None:
        super().__init__()
        self.answer = answer


class WorkspaceError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _too_large(limit: int) -> JSONAnswer:
    return error_answer(
        413,
        f"the body is larger than {limit} bytes",
        "raise CLOCKWALL_WEBHOOK_MAX_BYTES if Clockify really sends bodies this large",
    )
