"""Share links: a signed, expiring scope (one project or one client) that a freelancer can send
to a client. The scope is enforced here, on the server: a share link reads only
`/api/share/report` and a scoped `/events`, and nothing outside its scope is ever sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.api import QueryError, parse_range
from app.config import Secret, Settings
from app.errors import error_response, json_response
from app.store import NO_NAME, TotalsStore
from app.stream import Change, encode_sse

_DURATION = re.compile(r"([+-]?[0-9]{1,9})([dhm])")
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 366 * 86400  # a leaked link stays useful for a year at most
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{8,32}")


class ShareLinkError(ValueError):
    """A share link is malformed, tampered with, expired or (in the CLI) badly asked for; the
    message says which. A revoked link is refused by the access middleware, which asks Redis."""


@dataclass(frozen=True)
class ShareScope:
    workspace: str
    kind: str  # "project" | "client"
    id: str
    expires_at: int  # epoch seconds
    hide_amounts: bool = False
    # What the link is revoked by; sign_scope draws a random one when it is empty.
    link_id: str = ""

    def covers(self, state: dict[str, Any] | None) -> bool:
        if not state:
            return False
        key = "projectId" if self.kind == "project" else "clientId"
        return bool(state.get(key) == self.id)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Only the one spelling `_b64` writes: no padding, no other alphabet, no stray low bits
    (which decode to the same bytes), so a link has exactly one form."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical unpadded urlsafe base64")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not canonical unpadded urlsafe base64")
    return raw


def parse_expiry_s(raw: str) -> int:
    """`30d`, `12h`, `90m` -> seconds, between MIN_EXPIRY_S and MAX_EXPIRY_S."""
    match = _DURATION.fullmatch(raw.strip())
    if not match:
        raise ShareLinkError(f"--expires {raw!r} is not a duration; use e.g. 30d, 12h or 90m")
    amount, unit = int(match.group(1)), match.group(2)
    seconds = amount * {"d": 86400, "h": 3600, "m": 60}[unit]
    if not MIN_EXPIRY_S <= seconds <= MAX_EXPIRY_S:
        raise ShareLinkError(f"--expires must be between 1m and 366d, not {raw.strip()!r}")
    return seconds


def sign_scope(secret: Secret, scope: ShareScope) -> str:
    if not secret:
        raise ShareLinkError(
            "CLOCKWALL_SECRET_KEY is not set; set it to a long random string, e.g. the output "
            "of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not scope.link_id:
        scope = replace(scope, link_id=secrets.token_urlsafe(9))
    elif not _LINK_ID.fullmatch(scope.link_id):
        raise ShareLinkError(f"link id {scope.link_id!r} is not 8 to 32 URL-safe characters")
    payload = _b64(
        orjson.dumps(
            {
                "w": scope.workspace,
                "k": scope.kind,
                "i": scope.id,
                "e": scope.expires_at,
                "h": scope.hide_amounts,
                "n": scope.link_id,
            }
        )
    )
    mac = hmac.new(secret.reveal().encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify_token(secret: Secret, token: str, now_s: float | None = None) -> ShareScope:
    if not secret:
        raise ShareLinkError("share links are disabled on this server (no CLOCKWALL_SECRET_KEY)")
    malformed = ShareLinkError("this share link is malformed; ask for a new one")
    payload, sep, mac = token.partition(".")
    if not sep or len(token) > 1024:
        raise malformed
    try:
        given = _unb64(mac)
        raw = _unb64(payload)
    except ValueError:
        raise malformed from None
    expected = hmac.new(secret.reveal().encode(), payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise ShareLinkError("this share link is not valid (it was altered); ask for a new one")
    try:
        data = orjson.loads(raw)
        # Links signed before links had ids are known by a digest of their MAC instead.
        link_id = data.get("n", _b64(hashlib.sha256(given).digest()[:9]))
        scope = ShareScope(
            str(data["w"]),
            str(data["k"]),
            str(data["i"]),
            int(data["e"]),
            bool(data["h"]),
            link_id,
        )
    except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError):
        raise malformed from None
    if scope.kind not in ("project", "client") or not (
        isinstance(link_id, str) and _LINK_ID.fullmatch(link_id)
    ):
        raise malformed
    if (time.time() if now_s is None else now_s) >= scope.expires_at:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
        raise ShareLinkError(f"this share link expired on {when}; ask for a new one")
    return scope


class ShareReport:
    """The client report behind a share link, computed from the same day totals as the wall."""

    def __init__(self, settings: Settings, store: TotalsStore, entry_limit: int = 5000) -> None:
        self.settings = settings
        self.store = store
        self.entry_limit = entry_limit  # entries listed; totals are never cut

    async def read(self, scope: ShareScope, start: date, end: date) -> dict[str, Any]:
        ws = scope.workspace
        projects = await self.store.read_names(ws, "project")
        if scope.kind == "project":
            wanted = {scope.id}
            title = projects.get(scope.id, {}).get("name") or NO_NAME["PROJECT"]
        else:
            wanted = {pid for pid, rec in projects.items() if rec.get("clientId") == scope.id}
            clients = await self.store.read_names(ws, "client")
            title = clients.get(scope.id, {}).get("name") or scope.id
        summary = await self.store.read_summary(ws, start, end, "PROJECT")
        groups = [g for g in summary["groups"] if g["id"] in wanted]
        # Scoped before the limit: the rest of the workspace never crowds the scope out.
        entries_all = await self.store.read_entries(
            ws, start, end, self.entry_limit, keep=lambda state: state.get("projectId") in wanted
        )
        entries = [
            {
                "day": e["day"],
                "start": e["start"],
                "end": e["end"],
                "running": e["running"],
                "durationSeconds": e["durationSeconds"],
                "description": e["description"],
                "billable": e["billable"],
                "project": e["project"],
                "user": e["user"]["name"],
                **(
                    {}
                    if scope.hide_amounts
                    else {"billableAmount": e["billableAmount"], "currency": e["currency"]}
                ),
            }
            for e in entries_all["entries"]
            if e["project"] and e["project"]["id"] in wanted
        ]
        totals: dict[str, Any] = {
            "totalSeconds": sum(g["totalSeconds"] for g in groups),
            "billableSeconds": sum(g["billableSeconds"] for g in groups),
        }
        amounts: dict[str, float] = {}
        for g in groups:
            for item in g["amounts"]:
                amounts[item["currency"]] = round(
                    amounts.get(item["currency"], 0) + item["amount"], 2
                )
        if scope.hide_amounts:
            for g in groups:
                for key in ("billableAmount", "currency", "amounts"):
                    g.pop(key, None)
        else:
            totals["amounts"] = [{"currency": c, "amount": a} for c, a in sorted(amounts.items())]
        days: dict[str, int] = {}
        for e in entries:
            days[e["day"]] = days.get(e["day"], 0) + e["durationSeconds"]
        return {
            "scope": {"kind": scope.kind, "name": title},
            "hideAmounts": scope.hide_amounts,
            "expiresAt": scope.expires_at,
            "dateRange": {"start": start.isoformat(), "end": end.isoformat()},
            "projects": groups,
            "days": [{"day": d, "totalSeconds": s} for d, s in sorted(days.items())],
            "entries": entries,
            "includesRunning": any(e["running"] for e in entries),
            "truncated": entries_all["truncated"],
            **totals,
        }

    async def handle(self, request: Request) -> Response:
        scope: ShareScope | None = getattr(request.state, "share", None)
        if scope is None:
            return error_response(403, "a share link is required", "open the link you were sent")
        params = dict(request.query_params)
        if not params.get("start") and not params.get("end"):
            today = self.store.today()
            params["start"] = today.replace(day=1).isoformat()
            params["end"] = today.isoformat()
        try:
            start, end = parse_range(params, self.store)
        except QueryError as exc:
            return error_response(400, str(exc), "fix the query parameter and retry")
        return json_response(await self.read(scope, start, end))


class ScopedChanges:
    """The change filter of a shared `/events` stream: for an entry that is (or was) in scope
    it sends only `{"type": "refresh", "days": [...]}`; everything else is withheld. The
    snapshot is replaced by the scope's name and range, so the page fetches its own report."""

    def __init__(self, scope: ShareScope) -> None:
        self.scope = scope

    def __call__(self, change: Change) -> bytes | None:
        data = change.data
        if data.get("type") != "entry":
            return None
        entry = data.get("entry")
        was_in = data.get("prev") is not None and self._was_in(data)
        if not (self.scope.covers(entry) or was_in):
            return None
        days = sorted({part["day"] for part in (data.get("prev"), data.get("next")) if part})
        body = orjson.dumps({"type": "refresh", "days": days})
        return encode_sse("change", body, change.id_text)

    def _was_in(self, data: dict[str, Any]) -> bool:
        # The previous contribution names the project and client it counted under.
        dim = "P" if self.scope.kind == "project" else "C"
        prefix = f"{self.scope.id}|"
        return any(item[0] == dim and str(item[1]).startswith(prefix) for item in data["prev"]["f"])
