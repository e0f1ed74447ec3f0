"""Access control and security headers, as pure ASGI middleware (streams pass untouched).

On a loopback bind everything is open. Otherwise pages, `/events`, `/api/*` and `/metrics`
need the dashboard token (a `?token=` visit sets an HttpOnly cookie), or a share link, which
opens only the share page, `/api/share/report` and a scoped `/events`. Webhooks carry their own
token; `/healthz`, `/readyz` and static assets hold no data and stay open.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import error_response
from app.share import ScopedChanges, ShareLinkError, verify_token

COOKIE = "clockwall_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
OPEN_PATHS = ("/webhooks/", "/healthz", "/readyz", "/static/", "/favicon.ico")
SHARE_PATHS = ("/share", "/api/share/report", "/events")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.open = settings.on_loopback
        self.token = settings.dashboard_token.reveal().encode()
        # The cookie holds a digest of the token, so the token itself never sits in a cookie jar.
        self.cookie_value = hashlib.sha256(b"clockwall-cookie:" + self.token).hexdigest().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/webhooks/"):
            await self.app(scope, receive, send)  # the hot path: its own token, no headers
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        share_token = query.get("share")
        if share_token is not None:
            try:
                share = verify_token(self.settings.secret_key, share_token)
            except ShareLinkError as exc:
                await error_response(403, str(exc), "ask the sender for a new link")(
                    scope, receive, send
                )
                return
            if not path.startswith(SHARE_PATHS):
                await error_response(
                    403, "a share link opens only its own report", "open the link you were sent"
                )(scope, receive, send)
                return
            state = scope.setdefault("state", {})
            state["share"] = share
            state["change_filter"] = ScopedChanges(share)
            await self.app(scope, receive, _secure(send, path))
            return
        if path.startswith("/share") or path.startswith("/api/share/"):
            await error_response(
                403, "a share link is required", "open the full link you were sent"
            )(scope, receive, send)
            return
        if self.open or path.startswith(OPEN_PATHS):
            await self.app(scope, receive, _secure(send, path))
            return
        if not self.token:
            await error_response(
                403,
                "this server is reachable from the network but has no dashboard token",
                "set CLOCKWALL_DASHBOARD_TOKEN, or bind to 127.0.0.1",
            )(scope, receive, send)
            return
        given = query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token):
            # Trade the token in the URL for an HttpOnly cookie and drop it from the URL.
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = path + (f"?{rest}" if rest else "")
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            cookie = (
                f"{COOKIE}={self.cookie_value.decode()}; HttpOnly; SameSite=Strict; Path=/; "
                f"Max-Age=31536000{secure}"
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
            await self.app(scope, receive, _secure(send, path))
            return
        await error_response(
            401,
            "this wall needs the dashboard token",
            "open the page once with ?token=<CLOCKWALL_DASHBOARD_TOKEN>, or send "
            "'Authorization: Bearer <token>'",
        )(scope, receive, send)

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


def _secure(send: Send, path: str) -> Send:
    """Add the security headers to every answer that carries data or a page. The event
    stream is no document (nothing to frame or script) and sets its own no-store headers;
    leaving its thousands of long-lived sends unwrapped saves a call per write per screen."""
    if path == "/events":
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("content-security-policy", CSP)
            headers.setdefault("x-content-type-options", "nosniff")
            headers.setdefault("referrer-policy", "no-referrer")
            headers.setdefault("x-frame-options", "DENY")
        await send(message)

    return wrapped
