"""Share links: a signed, expiring scope (one project or one client) that a freelancer can send
to a client. The scope is enforced here, on the server: a share link reads only
`/api/share/report` and a scoped `/events`, and nothing outside its scope is ever sent. The
link also carries how its page opens (sender, default range, running timers left out), and
`clockwall share` finds what it shares by id or name here (TargetCatalog).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.api import parse_range
from app.config import Secret, Settings
from app.errors import error_response, json_response
from app.reports import NO_NAME, Filters
from app.store import TotalsStore
from app.stream import Change, encode_sse

_DURATION = re.compile(r"([+-]?[0-9]{1,9})([dhm])")
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 366 * 86400  # a leaked link stays useful for a year at most
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{8,32}")
# The ranges a link may open on (the page offers the same presets, plus a custom range).
RANGES = ("this-week", "last-week", "this-month", "last-month")
# On the first days of a month "this month" is nearly empty: a client opening the link then
# wants the month just finished, not 0:00.
FIRST_DAYS_OF_MONTH = 3
MAX_SENDER_CHARS = 80
_SENDER = re.compile(r"[^\x00-\x1f\x7f]{1,80}")


class ShareLinkError(ValueError):
    """A share link is malformed, tampered with, expired or (in the CLI) badly asked for; the
    message says which, and `reason` says it to code: malformed, altered, expired, disabled or
    invalid (a bad request to sign one). A revoked link is refused by the access middleware,
    which asks Redis."""

    def __init__(self, message: str, reason: str = "invalid", expires_at: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.expires_at = expires_at


@dataclass(frozen=True)
class ShareScope:
    workspace: str
    kind: str  # "project" | "client"
    id: str
    expires_at: int  # epoch seconds
    hide_amounts: bool = False
    # What the link is revoked by; sign_scope draws a random one when it is empty.
    link_id: str = ""
    # Shown on the page ("Sent by ..."); "" for none.
    sender: str = ""
    # A forgotten timer must not reach a client as 16 hours: such links count stopped time only.
    no_running: bool = False
    # The range the page opens on (one of RANGES); "" for the default (default_preset).
    default_range: str = ""

    def covers(self, state: dict[str, Any] | None, client_id: str | None = None) -> bool:
        """Whether an entry state is in the scope; `client_id`: its project's client (a
        change event names the one its delivery carried)."""
        if not state:
            return False
        if self.kind == "project":
            return bool(state.get("projectId") == self.id)
        return client_id == self.id


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
    if scope.sender and not _SENDER.fullmatch(scope.sender):
        raise ShareLinkError(
            f"--sender must be 1 to {MAX_SENDER_CHARS} characters on one line, "
            f"not {scope.sender[:100]!r}"
        )
    if scope.default_range and scope.default_range not in RANGES:
        raise ShareLinkError(f"--range {scope.default_range!r} is not one of {', '.join(RANGES)}")
    body: dict[str, Any] = {
        "w": scope.workspace,
        "k": scope.kind,
        "i": scope.id,
        "e": scope.expires_at,
        "h": scope.hide_amounts,
        "n": scope.link_id,
    }
    # Written only when set, so a link without them reads as links always did.
    if scope.sender:
        body["s"] = scope.sender
    if scope.no_running:
        body["x"] = True
    if scope.default_range:
        body["d"] = scope.default_range
    payload = _b64(orjson.dumps(body))
    mac = hmac.new(secret.reveal().encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify_token(secret: Secret, token: str, now_s: float | None = None) -> ShareScope:
    if not secret:
        raise ShareLinkError(
            "share links are disabled on this server (no CLOCKWALL_SECRET_KEY)", "disabled"
        )
    malformed = ShareLinkError("this share link is malformed; ask for a new one", "malformed")
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
        raise ShareLinkError(
            "this share link is not valid (it was altered); ask for a new one", "altered"
        )
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
            data.get("s", ""),
            bool(data.get("x", False)),
            data.get("d", ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError):
        raise malformed from None
    if (
        scope.kind not in ("project", "client")
        or not (isinstance(link_id, str) and _LINK_ID.fullmatch(link_id))
        or not isinstance(scope.sender, str)
        or len(scope.sender) > MAX_SENDER_CHARS
        or scope.default_range not in ("", *RANGES)
    ):
        raise malformed
    if (time.time() if now_s is None else now_s) >= scope.expires_at:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
        raise ShareLinkError(
            f"this share link expired on {when}; ask for a new one", "expired", scope.expires_at
        )
    return scope


def default_preset(scope: ShareScope, today: date) -> str:
    """The range a link opens on: its own, else this month, or last month in the month's first
    FIRST_DAYS_OF_MONTH days."""
    if scope.default_range:
        return scope.default_range
    return "last-month" if today.day <= FIRST_DAYS_OF_MONTH else "this-month"


def preset_range(preset: str, today: date, week_start_index: int) -> tuple[date, date]:
    """The days of a preset (RANGES) around `today`, as the page computes them (report.js)."""
    if preset in ("this-week", "last-week"):
        first = today - timedelta(days=(today.weekday() - week_start_index) % 7)
        if preset == "last-week":
            first -= timedelta(days=7)
        return first, first + timedelta(days=6)
    first = today.replace(day=1)
    if preset == "last-month":
        first = (first - timedelta(days=1)).replace(day=1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


class ShareReport:
    """The client report behind a share link, computed from the same totals as the reports:
    totals per project, task, week and day, and the entries (time and earned money only)."""

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
        # Every number comes from the totals through the reports' own project filter, so none
        # depends on how many entries are listed; only the entry list stops at entry_limit.
        scoped = Filters(projects=frozenset(wanted))
        running = not scope.no_running
        weeks = _weeks(start, end, self.store.week_start_index)

        def summary(a: date, b: date, levels: tuple[str, ...]) -> Awaitable[dict[str, Any]]:
            return self.store.read_summary(ws, a, b, levels, running, scoped)

        by_task, by_day, *by_week = await asyncio.gather(
            summary(start, end, ("PROJECT", "TASK")),
            summary(start, end, ("DATE",)),
            *(summary(a, b, ("PROJECT",)) for _, a, b in weeks),
        )

        def keep(state: dict[str, Any]) -> bool:
            if state.get("projectId") not in wanted:
                return False
            return not (scope.no_running and state.get("end") is None)

        # Scoped before the limit: the rest of the workspace never crowds the scope out.
        entries_all = await self.store.read_entries(ws, start, end, self.entry_limit, keep=keep)
        listed = [
            e for e in entries_all["entries"] if e["project"] and e["project"]["id"] in wanted
        ]
        money = not scope.hide_amounts
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
                "task": e["task"]["name"] if e["task"] else None,
                "user": e["user"]["name"],
                **(
                    {"billableAmount": e["billableAmount"], "currency": e["currency"]}
                    if money
                    else {}
                ),
            }
            for e in listed
        ]
        task_names = await self.store.read_names(ws, "task")
        tasks = []
        for project in by_task["groups"]:
            for task in project["children"]:
                if task["id"] is None:
                    name = NO_NAME["TASK"]
                else:  # a task known by its id only (a poll row) has no name to show yet
                    name = task_names.get(task["id"], {}).get("name") or "Unnamed task"
                tasks.append(
                    {
                        "id": task["id"],
                        "name": name,
                        "project": {"id": project["id"], "name": project["name"]},
                    }
                    | _client_view(task, money)
                )
        # Named tasks first, largest first; the time without a task last.
        tasks.sort(key=lambda r: (r["id"] is None, -r["totalSeconds"], str(r["name"]).lower()))
        groups = [
            {k: g[k] for k in ("id", "name", "color") if k in g} | _client_view(g, money)
            for g in by_task["groups"]
        ]
        week_rows = [
            {"weekStart": week_start.isoformat(), "start": a.isoformat(), "end": b.isoformat()}
            | _client_view(found, money)
            for (week_start, a, b), found in zip(weeks, by_week, strict=True)
        ]
        daily = [
            {
                "day": g["id"],
                "totalSeconds": g["totalSeconds"],
                "billableSeconds": g["billableSeconds"],
            }
            for g in by_day["groups"]
        ]
        totals = _client_view(by_task, money)
        coverage = by_task.get("coverage") or {}
        return {
            "scope": {"kind": scope.kind, "name": title},
            "sender": scope.sender or None,
            "hideAmounts": scope.hide_amounts,
            "excludesRunning": scope.no_running,
            "expiresAt": scope.expires_at,
            "dateRange": {"start": start.isoformat(), "end": end.isoformat()},
            "projects": groups,
            "weeks": week_rows,
            "tasks": tasks,
            # `days`: the days with time; `daily`: every day of the range (the chart's bars).
            "days": [
                {"day": d["day"], "totalSeconds": d["totalSeconds"]}
                for d in daily
                if d["totalSeconds"]
            ],
            "daily": daily,
            "entries": entries,
            "includesRunning": any(e["running"] for e in entries) or totals["runningSeconds"] > 0,
            "truncated": entries_all["truncated"],
            # Whether the range reaches before the data clockwall holds (the page says so).
            "coverage": {"from": coverage.get("from"), "complete": coverage.get("complete", True)},
            **totals,
        }

    async def handle(self, request: Request) -> Response:
        scope: ShareScope | None = getattr(request.state, "share", None)
        if scope is None:
            return error_response(403, "a share link is required", "open the link you were sent")
        params = dict(request.query_params)
        preset = None
        if not params.get("start") and not params.get("end"):
            today = self.store.today()
            preset = default_preset(scope, today)
            start, end = preset_range(preset, today, self.store.week_start_index)
        else:  # a malformed range raises QueryError: a 400 (app.api.EXCEPTION_HANDLERS)
            start, end = parse_range(params, self.store)
        return json_response({**await self.read(scope, start, end), "preset": preset})


def _weeks(start: date, end: date, week_start_index: int) -> list[tuple[date, date, date]]:
    """(week start, first day, last day) of each week that [start, end] touches, clipped."""
    out = []
    week = start - timedelta(days=(start.weekday() - week_start_index) % 7)
    while week <= end:
        out.append((week, max(week, start), min(week + timedelta(days=6), end)))
        week += timedelta(days=7)
    return out


# What a client may see of a summary row: time, and earned money unless the link hides it.
# Never cost or profit (a freelancer's own rates), so the fields are listed, not filtered out.
_TIME_FIELDS = ("totalSeconds", "totalHours", "billableSeconds", "runningSeconds")
_MONEY_FIELDS = ("billableAmount", "currency", "amounts")


def _client_view(row: dict[str, Any], money: bool) -> dict[str, Any]:
    fields = _TIME_FIELDS + _MONEY_FIELDS if money else _TIME_FIELDS
    return {k: row[k] for k in fields}


class ScopedChanges:
    """The change filter of a shared `/events` stream: for an entry that is (or was) in scope
    it sends only `{"type": "refresh", "days": [...]}`; everything else is withheld. The
    snapshot is replaced by the scope's name and range, so the page fetches its own report."""

    def __init__(self, scope: ShareScope) -> None:
        self.scope = scope

    def __call__(self, change: Change) -> bytes | None:
        data = change.data
        if data.get("type") == "rebuilt":  # every total changed (new settings): refetch
            body = orjson.dumps({"type": "refresh", "days": [], "all": True})
            return encode_sse("change", body, change.id_text)
        if data.get("type") != "entry":
            return None
        entry = data.get("entry")
        was_in = data.get("prev") is not None and self._was_in(data)
        client_id = (data.get("names") or {}).get("clientId")
        if not (self.scope.covers(entry, client_id) or was_in):
            return None
        if self.scope.no_running and not any(
            part and part["f"] for part in (data.get("prev"), data.get("next"))
        ):
            return None  # a running timer (which adds to no total yet): such a link omits it
        days = sorted({part["day"] for part in (data.get("prev"), data.get("next")) if part})
        body = orjson.dumps({"type": "refresh", "days": days})
        return encode_sse("change", body, change.id_text)

    def _was_in(self, data: dict[str, Any]) -> bool:
        # The previous contribution's cells name the project it counted under (a cell key is
        # user|project|...). A client-scoped link learns of an entry leaving one of its projects
        # through `covers` of the entry's stored client only.
        if self.scope.kind != "project":
            return False
        needle = f"|{self.scope.id}|"
        return any(needle in str(item[0]) for item in data["prev"]["f"])


# Finding what a link shares (`clockwall share --project NAME_OR_ID`) ----------------------
_CLOCKIFY_ID = re.compile(r"[0-9a-fA-F]{24}")
MAX_SUGGESTIONS = 5


@dataclass(frozen=True)
class ShareTarget:
    """A project or client a link can share, as a source knows it."""

    id: str
    name: str
    client: str = ""  # a project's client name

    def describe(self) -> str:
        client = f", client {self.client}" if self.client else ""
        return f"{self.name or '(no name)'} (id {self.id}{client})"


@dataclass
class TargetCatalog:
    """The projects or clients of a workspace, from every source that answered (Clockify,
    the store's names); `consulted` names those sources, `problems` says why others did not
    answer."""

    kind: str
    workspace: str
    targets: dict[str, ShareTarget]
    consulted: list[str]
    problems: list[str]

    def find(self, text: str) -> tuple[ShareTarget, str | None]:
        """The target `text` names (an id, or a name in any case); raises ShareLinkError when
        it is unknown or names several. With no source to ask, an id is taken on trust and
        the second item is the warning to print."""
        text = text.strip()
        if not self.consulted:
            why = "; ".join(self.problems) or "set CLOCKIFY_API_KEY or REDIS_URL to have it checked"
            if _CLOCKIFY_ID.fullmatch(text):
                return ShareTarget(text, ""), (
                    f"could not check that {self.kind} {text} exists ({why}); the link is made "
                    "anyway, so check that it opens the right report"
                )
            raise ShareLinkError(
                f"{text!r} is not a {self.kind} id, and names can be looked up only in Clockify "
                f"or the store ({why}); give the {self.kind}'s id"
            )
        if text in self.targets:
            return self.targets[text], None
        wanted = text.casefold()
        named = [t for t in self.targets.values() if t.name.strip().casefold() == wanted]
        if len(named) == 1:
            return named[0], None
        where = " and ".join(self.consulted)
        if named:
            listed = "\n".join(f"  {t.describe()}" for t in sorted(named, key=lambda t: t.id))
            raise ShareLinkError(
                f"{len(named)} {self.kind}s are named {text!r} in workspace {self.workspace}; "
                f"give the id of the one to share:\n{listed}"
            )
        close = sorted(
            (t for t in self.targets.values() if wanted and wanted in t.name.casefold()),
            key=lambda t: t.name.casefold(),
        )[:MAX_SUGGESTIONS]
        hint = (
            "; did you mean " + ", ".join(t.describe() for t in close) + "?"
            if close
            else f"; check the spelling, or copy the {self.kind}'s id from Clockify"
        )
        raise ShareLinkError(
            f"no {self.kind} with the id or name {text!r} in workspace {self.workspace} "
            f"(looked in {where}){hint}"
        )


def targets_from_clockify(kind: str, rows: list[dict[str, Any]]) -> dict[str, ShareTarget]:
    """Clockify's project or client list as targets."""
    out = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            client = row.get("clientName") if kind == "project" else ""
            out[row["id"]] = ShareTarget(
                row["id"], str(row.get("name") or ""), client if isinstance(client, str) else ""
            )
    return out


def targets_from_names(
    kind: str, records: dict[str, dict[str, Any]], clients: dict[str, dict[str, Any]]
) -> dict[str, ShareTarget]:
    """The store's name records (store.read_names) as targets."""
    out = {}
    for ident, record in records.items():
        client = ""
        if kind == "project" and record.get("clientId"):
            client = clients.get(record["clientId"], {}).get("name") or record["clientId"]
        out[ident] = ShareTarget(ident, str(record.get("name") or ""), client)
    return out
