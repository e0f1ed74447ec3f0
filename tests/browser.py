"""Browser-test helpers: the real app under uvicorn on a loopback port (in a thread, so a test can
stop and restart it on the same port), signed Clockify webhooks, and a headless Chromium.

The page routes (`/`, `/summary`, `/team`, `/weekly`) are added here when app/main.py does not
serve them yet, and every response gets a strict Content-Security-Policy, so a page that needs
inline script or inline style attributes fails its test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

from app.child_server import free_port
from tests.conftest import TOKEN, WS, make_settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "/": "wall.html",
    "/summary": "summary.html",
    "/team": "team.html",
    "/weekly": "weekly.html",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def add_page_routes(app: Starlette) -> None:
    """Serve the pages at their routes unless the app already does."""
    served = {getattr(route, "path", None) for route in app.router.routes}
    for path, filename in PAGES.items():
        if path in served:
            continue

        async def page(request: Any, filename: str = filename) -> FileResponse:
            return FileResponse(STATIC_DIR / filename, headers={"Cache-Control": "no-cache"})

        app.router.routes.insert(0, Route(path, page))


class StrictCsp:
    """ASGI wrapper adding the Content-Security-Policy the pages must live with."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_csp(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_csp)


class LiveServer:
    """The app under uvicorn in a background thread. `stop()` then `start()` restarts it on the
    same port with a freshly built app (a new process would see the same Redis and nothing else)."""

    def __init__(self, build_app: Callable[[], Starlette], port: int | None = None) -> None:
        self.build_app = build_app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        app = self.build_app()
        add_page_routes(app)
        config = uvicorn.Config(
            StrictCsp(app),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError("uvicorn did not stop in time")
        self._server = None
        self._thread = None

    # Clockify, as seen by the app ------------------------------------------------------------
    def webhook(self, event: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/webhooks/clockify",
            json=body,
            headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": event},
            timeout=5,
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def api(self, path: str, **query: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}{path}", params=query, timeout=5)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


# Test data -------------------------------------------------------------------------------------
USERS = {
    "ana": ("5a0000000000000000000001", "Ana Lima"),
    "ben": ("5a0000000000000000000002", "Ben Ito"),
    "cleo": ("5a0000000000000000000003", "Cleo Park"),
    "dev": ("5a0000000000000000000004", "Dev Rao"),
}
CLIENTS = {
    "acme": ("5c0000000000000000000001", "Acme"),
    "globex": ("5c0000000000000000000002", "Globex"),
}
PROJECTS: dict[str, dict[str, Any]] = {
    "web": {
        "id": "5b0000000000000000000001",
        "name": "Website redesign",
        "color": "#E91E63",
        "client": "acme",
        "estimate": "PT20H",
    },
    "support": {
        "id": "5b0000000000000000000002",
        "name": "Support",
        "color": "#03A9F4",
        "client": "globex",
    },
    "app": {
        "id": "5b0000000000000000000003",
        "name": "Mobile app",
        "color": "#8BC34A",
        "client": "acme",
        "estimate": "PT6H",
    },
    "ops": {
        "id": "5b0000000000000000000004",
        "name": "Internal ops",
        "color": "#FF9800",
        "client": None,
    },
}

_ids = iter(range(1, 1_000_000))


def new_entry_id() -> str:
    return f"5e{next(_ids):022x}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_body(
    entry_id: str,
    user: str,
    project: str | None,
    start: datetime,
    end: datetime | None,
    *,
    description: str = "",
    rate: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """A time entry as Clockify's webhooks send it (hydrated user and project)."""
    user_id, user_name = USERS[user]
    body: dict[str, Any] = {
        "id": entry_id,
        "workspaceId": WS,
        "userId": user_id,
        "user": {"id": user_id, "name": user_name, "status": "ACTIVE"},
        "description": description,
        "billable": rate is not None,
        "hourlyRate": {"amount": rate[0], "currency": rate[1]} if rate else None,
        "timeInterval": {
            "start": iso(start),
            "end": iso(end) if end else None,
            "duration": f"PT{int((end - start).total_seconds())}S" if end else None,
        },
        "currentlyRunning": end is None,
        "tags": [],
        "type": "REGULAR",
        "projectId": None,
        "project": None,
    }
    if project is not None:
        body["projectId"] = PROJECTS[project]["id"]
        body["project"] = project_body(project)
    return body


def project_body(project: str) -> dict[str, Any]:
    """A NEW_PROJECT / PROJECT_UPDATED body: the project with its client and time estimate."""
    p = PROJECTS[project]
    client_id, client_name = CLIENTS[p["client"]] if p["client"] else (None, None)
    return {
        "id": p["id"],
        "name": p["name"],
        "color": p["color"],
        "clientId": client_id,
        "clientName": client_name,
        "workspaceId": WS,
        "archived": False,
        "timeEstimate": {"estimate": p.get("estimate"), "active": bool(p.get("estimate"))},
    }


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now between 10:00 and 14:00, so a test that spans a few
    hours of the current day never crosses a local midnight (or a week boundary)."""
    for hours in range(-12, 15):
        name = "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
        if 10 <= now.astimezone(ZoneInfo(name)).hour < 14:
            return name
    raise AssertionError("unreachable: some offset always has midday")


def local_midnight(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def week_days_so_far(now: datetime, zone: str) -> list[datetime]:
    """Local midnights from the week's Monday up to today."""
    today = local_midnight(now, zone)
    monday = today - timedelta(days=today.weekday())
    return [monday + timedelta(days=i) for i in range((today - monday).days + 1)]


class PageProblems:
    """Uncaught errors and CSP violations seen by a page; a test ends with none."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.items.append(f"CSP: {message.text}")

    def page_error(self, error: Error) -> None:
        self.items.append(f"uncaught: {error}")


@contextlib.contextmanager
def watched_tab(browser: Browser) -> Iterator[Page]:
    """A 1920x1080 tab (en-US, Europe/Berlin) that fails the test on an uncaught error or a
    CSP violation when it closes."""
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="en-US", timezone_id="Europe/Berlin"
    )
    context.set_default_timeout(10_000)
    problems = PageProblems()
    tab = context.new_page()
    tab.on("console", problems.console)
    tab.on("pageerror", problems.page_error)
    yield tab
    context.close()
    assert problems.items == []


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, as every browser test runs it."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def flushed_db(url: str) -> Iterator[Any]:
    """A (sync) client of the Redis database at `url`, emptied before and after."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def start_live(url: str, clock: Any = None, **overrides: Any) -> LiveServer:
    """A started LiveServer of the real app on the Redis at `url` (heartbeats every 5 s; the
    settings `overrides` such as timezone, secret_key or report_rounding)."""
    from app.main import create_app

    settings = make_settings(redis_url=url, heartbeat_s=5.0, **overrides)
    extra = {"clock": clock} if clock is not None else {}
    server = LiveServer(lambda: create_app(settings, **extra))
    server.start()
    return server
