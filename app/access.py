"""Access control and security headers, as pure ASGI middleware (streams pass untouched).

On a loopback bind without a dashboard token everything is open, but only to a Host of
localhost, 127.0.0.1, [::1] or CLOCKWALL_PUBLIC_URL's host, so neither a page on another origin
resolved to 127.0.0.1 (DNS rebinding) nor a proxy forwarding a public name reads the data.
Otherwise pages, `/events`, `/api/*` and `/metrics` need the dashboard token (a `?token=` visit
sets an HttpOnly cookie), or a share link that is neither expired nor revoked, which opens only
the share page, `/api/share/report` and a scoped `/events`. Webhooks carry their own token;
`/healthz`, `/readyz` and static assets hold no data and need no token. A browser opening the
share page with a link that does not work gets a page saying so (static/share-error.html), not
JSON; the API and the stream keep their JSON answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import keys
from app.config import Settings
from app.errors import error_response
from app.share import ScopedChanges, ShareLinkError, verify_token

log = logging.getLogger(__name__)

COOKIE = "clockwall_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
OPEN_PATHS = ("/webhooks/", "/healthz", "/readyz", "/static/", "/favicon.ico")
SHARE_PATHS = ("/share", "/api/share/report", "/events")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# A Host header: a name or an IPv4 address, or an IPv6 address in brackets; an optional port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::[0-9]{1,5})?")
REVOCATION_DEADLINE_S = 2.0  # a Redis that stops answering gets a 503, not a hung share page
ASK_SENDER = "Ask the sender for a new link."
SHARE_ERROR_PAGE = Path(__file__).resolve().parent.parent / "static" / "share-error.html"

IsRevoked = Callable[[str, str], Awaitable[bool]]


class ShareRevocations:
    """The revoked share links of each workspace, kept in Redis (keys.revoked_shares) so every
    process refuses them at once; each id is dropped a day after its link would have expired
    anyway (the day covers clocks that disagree)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def is_revoked(self, ws: str, link_id: str) -> bool:
        return await self.redis.zscore(keys.revoked_shares(ws), link_id) is not None

    async def revoke(self, ws: str, link_id: str, expires_at: float, now_s: float) -> None:
        key = keys.revoked_shares(ws)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {link_id: expires_at}, gt=True)
            pipe.zremrangebyscore(key, "-inf", now_s - 86400)
            await pipe.execute()


class AccessMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, is_revoked: IsRevoked) -> None:
        self.app = app
        self.settings = settings
        self.is_revoked = is_revoked
        self.token = settings.dashboard_token.reveal().encode()
        # A configured token is asked for on loopback too: behind a proxy on the same host
        # every visitor comes from 127.0.0.1.
        self.open = settings.on_loopback and not self.token
        self.hosts = LOOPBACK_HOSTS | {settings.public_host or "localhost"}
        self.secure_cookie = settings.public_https
        # The cookie holds a digest of the token, so the token itself never sits in a cookie jar.
        self.cookie_value = hashlib.sha256(b"clockwall-cookie:" + self.token).hexdigest().encode()
        if self.open and settings.public_host not in (None, *LOOPBACK_HOSTS):
            log.warning(
                "CLOCKWALL_PUBLIC_URL names %s but there is no CLOCKWALL_DASHBOARD_TOKEN: "
                "anyone who reaches that name sees the wall; set a dashboard token",
                settings.public_host,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/webhooks/"):
            await self.app(scope, receive, send)  # the hot path: its own token, no headers
            return
        secured = _secure(send, path)
        if self.open and path != "/healthz" and _host(scope) not in self.hosts:
            await error_response(
                421,
                "this wall is open only to its own machine, and this request named another "
                "host (a proxy, or a page of another site)",
                f"open it as http://localhost:{self.settings.port}/; to serve it under another "
                "name or behind a proxy, set CLOCKWALL_DASHBOARD_TOKEN and CLOCKWALL_PUBLIC_URL",
            )(scope, receive, secured)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        share_token = query.get("share")
        if share_token is not None:
            await self._share(share_token, scope, receive, send)
            return
        if path.startswith("/share") or path.startswith("/api/share/"):
            await share_refusal(
                scope,
                403,
                "a share link is required",
                "open the full link you were sent",
                page=(
                    "This page needs a share link",
                    "The address is missing the part that says which report to show.",
                    "Open the full link you were sent.",
                ),
            )(scope, receive, secured)
            return
        if self.open or path.startswith(OPEN_PATHS):
            await self.app(scope, receive, secured)
            return
        if not self.token:
            await error_response(
                403,
                "this server is reachable from the network but has no dashboard token",
                "set CLOCKWALL_DASHBOARD_TOKEN, or bind to 127.0.0.1",
            )(scope, receive, secured)
            return
        given = query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token):
            # Trade the token in the URL for an HttpOnly cookie and drop it from the URL.
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = _same_site(path) + (f"?{rest}" if rest else "")
            # Behind a TLS-terminating proxy the scheme is https only if uvicorn trusts the
            # proxy's X-Forwarded-Proto; an https CLOCKWALL_PUBLIC_URL says so regardless.
            secure = scope.get("scheme") == "https" or self.secure_cookie
            cookie = (
                f"{COOKIE}={self.cookie_value.decode()}; HttpOnly; SameSite=Strict; Path=/; "
                f"Max-Age=31536000{'; Secure' if secure else ''}"
            )
            headers = [
                (b"location", location.encode()),
                (b"set-cookie", cookie.encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if self._authorized(scope):
            await self.app(scope, receive, secured)
            return
        await error_response(
            401,
            "this wall needs the dashboard token",
            "open the page once with ?token=<CLOCKWALL_DASHBOARD_TOKEN>, or send "
            "'Authorization: Bearer <token>'",
        )(scope, receive, secured)

    async def _share(self, token: str, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        secured = _secure(send, path)
        try:
            share = verify_token(self.settings.secret_key, token)
        except ShareLinkError as exc:
            await share_refusal(
                scope,
                410 if exc.reason == "expired" else 403,
                str(exc),
                "ask the sender for a new link",
                page=_link_problem(exc),
                json_status=403,
            )(scope, receive, secured)
            return
        if not path.startswith(SHARE_PATHS):
            await error_response(
                403, "a share link opens only its own report", "open the link you were sent"
            )(scope, receive, secured)
            return
        try:
            async with asyncio.timeout(REVOCATION_DEADLINE_S):
                revoked = await self.is_revoked(share.workspace, share.link_id)
        except (RedisError, OSError, TimeoutError):
            # Unknown is not "not revoked": a link is let in only when Redis says so.
            await share_refusal(
                scope,
                503,
                "the store (Redis) is unavailable, so this share link cannot be checked",
                "retry in a minute",
                headers={"Retry-After": "5"},
                page=(
                    "This report cannot be opened right now",
                    "The server cannot check the link at the moment.",
                    "Try again in a minute.",
                ),
            )(scope, receive, secured)
            return
        if revoked:
            await share_refusal(
                scope,
                410,
                "this share link was revoked; ask the sender for a new one",
                "ask the sender for a new link",
                page=(
                    "This link was withdrawn",
                    "The sender has revoked this link.",
                    ASK_SENDER,
                ),
                json_status=403,
            )(scope, receive, secured)
            return
        state = scope.setdefault("state", {})
        state["share"] = share
        state["change_filter"] = ScopedChanges(share)
        await self.app(scope, receive, secured)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value.startswith(b"Bearer "):
                if hmac.compare_digest(value[7:].strip(), self.token):
                    return True
            elif name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is just not a token
                    continue
                morsel = cookie.get(COOKIE)
                if morsel is not None and hmac.compare_digest(
                    morsel.value.encode(), self.cookie_value
                ):
                    return True
        return False


def share_refusal(
    scope: Scope,
    status: int,
    error: str,
    hint: str,
    *,
    page: tuple[str, str, str],
    json_status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Why a share link was refused: for a browser opening the share page, a page with `page`
    (a title, what happened, what to do); for the API and the stream, the JSON error (with
    `json_status`, the status those answers have always had)."""
    if scope["path"] == "/share" and _wants_html(scope):
        try:
            template = SHARE_ERROR_PAGE.read_text(encoding="utf-8")
        except OSError:
            log.warning("%s is missing: share errors are answered as JSON", SHARE_ERROR_PAGE)
        else:
            title, message, todo = page
            body = (
                template.replace("{{title}}", html.escape(title))
                .replace("{{message}}", html.escape(message))
                .replace("{{hint}}", html.escape(todo))
            )
            return HTMLResponse(
                body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
            )
    return error_response(json_status or status, error, hint, headers=headers)


def _link_problem(exc: ShareLinkError) -> tuple[str, str, str]:
    """The share error page's title, message and advice for a link verify_token refused."""
    if exc.reason == "expired" and exc.expires_at is not None:
        moment = time.gmtime(exc.expires_at)
        when = f"{moment.tm_mday} {time.strftime('%B %Y, %H:%M UTC', moment)}"
        return "This link has expired", f"It stopped working on {when}.", ASK_SENDER
    if exc.reason == "disabled":
        return (
            "Shared reports are switched off",
            "This server does not open shared reports at the moment.",
            ASK_SENDER,
        )
    return (
        "This link does not work",
        "The link is incomplete or was changed on the way; a copy and paste may have cut it.",
        "Open the full link again, or ask the sender for a new one.",
    )


def _wants_html(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in value
    return False


def _host(scope: Scope) -> str | None:
    """The host named by the request's Host header, lowercase, without the port."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            match = _HOST.fullmatch(value.decode("latin-1").strip().lower())
            return match.group(1) if match else None
    return None


def _same_site(path: str) -> str:
    """`path` as a Location that stays on this site: `//host` and `/\\host` would send the
    browser to another host, so those become `/`; the rest is percent-encoded, so no control
    character can turn it into one either."""
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    return quote(path, safe="/-._~!$&'()*+,;=:@")


def _secure(send: Send, path: str) -> Send:
    """Add the security headers to every answer that carries data or a page; API answers are
    never stored by a browser or a proxy. The event stream is no document (nothing to frame or
    script) and sets its own no-store headers; leaving its thousands of long-lived sends
    unwrapped saves a call per write per screen."""
    if path == "/events":
        return send
    api = path.startswith("/api/")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("content-security-policy", CSP)
            headers.setdefault("x-content-type-options", "nosniff")
            headers.setdefault("referrer-policy", "no-referrer")
            headers.setdefault("x-frame-options", "DENY")
            headers.setdefault("permissions-policy", PERMISSIONS_POLICY)
            if api:
                headers.setdefault("cache-control", "no-store")
        await send(message)

    return wrapped
