"""Access control: loopback open, dashboard token off loopback, scoped share links, CSP."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app.config import Secret
from app.main import create_app
from app.share import ShareLinkError, ShareScope, sign_scope, verify_token
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import client_for

SECRET = "s3cret-signing-key-for-tests-only"
DASH = "dash-token-0123456789"


def hx(name: str) -> str:
    """A readable name as a Clockify id (24 hexadecimal characters), as the webhook demands."""
    return name.encode().hex().rjust(24, "0")


def entry(entry_id: str, project: str, client: str, hours: int, start_hour: int) -> dict:
    return {
        "id": hx(entry_id),
        "workspaceId": WS,
        "userId": hx("u1"),
        "user": {"id": hx("u1"), "name": "Ana"},
        "description": f"work on {project}",
        "billable": True,
        "hourlyRate": {"amount": 10000, "currency": "EUR"},
        "timeInterval": {
            "start": f"2026-03-24T{start_hour:02d}:00:00Z",
            "end": f"2026-03-24T{start_hour + hours:02d}:00:00Z",
            "duration": f"PT{hours}H",
        },
        "project": {
            "id": hx(project),
            "name": f"Project {project}",
            "color": "#336699",
            "clientId": hx(client),
            "clientName": f"Client {client}",
        },
        "tags": [],
    }


async def post(client: httpx.AsyncClient, body: dict, event: str = "NEW_TIME_ENTRY") -> None:
    from tests.conftest import TOKEN

    response = await client.post(
        "/webhooks/clockify",
        content=orjson.dumps(body),
        headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": event},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def seeded(redis: Redis, clock: FixedClock) -> dict[str, object]:
    settings = make_settings(
        host="0.0.0.0", dashboard_token=Secret(DASH), secret_key=Secret(SECRET)
    )
    app = create_app(settings, redis=redis, clock=clock)
    async with client_for(app) as client:
        await post(client, entry("e-a1", "pA", "cX", 2, 8))
        await post(client, entry("e-b1", "pB", "cY", 3, 11))
    return {"app": app, "settings": settings}


async def test_loopback_is_open(redis: Redis, clock: FixedClock) -> None:
    app = create_app(make_settings(host="127.0.0.1"), redis=redis, clock=clock)
    async with client_for(app) as client:
        assert (await client.get("/api/summary")).status_code == 200


async def test_off_loopback_without_configured_token_refuses(
    redis: Redis, clock: FixedClock
) -> None:
    app = create_app(make_settings(host="0.0.0.0"), redis=redis, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/summary", "/api/running", "/events", "/", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 403, path
            assert "CLOCKWALL_DASHBOARD_TOKEN" in response.json()["hint"]
        # Health and webhooks stay reachable.
        assert (await client.get("/healthz")).status_code == 200


async def test_dashboard_token_cookie_flow(seeded: dict[str, object]) -> None:
    async with client_for(seeded["app"]) as client:
        refused = await client.get("/api/summary?start=2026-03-23&end=2026-03-29")
        assert refused.status_code == 401
        assert DASH not in refused.text
        wrong = await client.get("/api/summary?token=nope")
        assert wrong.status_code == 401
        visit = await client.get("/api/summary?token=" + DASH + "&start=2026-03-23")
        assert visit.status_code == 303
        assert visit.headers["location"] == "/api/summary?start=2026-03-23"
        cookie = visit.headers["set-cookie"]
        assert "HttpOnly" in cookie and DASH not in cookie
        ok = await client.get("/api/summary?start=2026-03-23&end=2026-03-29")
        assert ok.status_code == 200
        assert ok.json()["totalSeconds"] == 5 * 3600
    async with client_for(seeded["app"]) as fresh:
        bearer = await fresh.get("/api/running", headers={"authorization": f"Bearer {DASH}"})
        assert bearer.status_code == 200


async def test_security_headers(seeded: dict[str, object]) -> None:
    async with client_for(seeded["app"]) as client:
        response = await client.get("/healthz")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def link(scope_kind: str, ident: str, expires_in_s: int = 3600, hide: bool = False) -> str:
    scope = ShareScope(WS, scope_kind, hx(ident), int(time.time()) + expires_in_s, hide)
    return sign_scope(Secret(SECRET), scope)


async def test_share_link_for_project_never_shows_other_projects(
    seeded: dict[str, object],
) -> None:
    token = link("project", "pA")
    async with client_for(seeded["app"]) as client:
        report = await client.get(
            f"/api/share/report?share={token}&start=2026-03-23&end=2026-03-29"
        )
        assert report.status_code == 200
        data = report.json()
        assert data["totalSeconds"] == 2 * 3600
        assert data["amounts"] == [{"currency": "EUR", "amount": 200.0}]
        assert [p["id"] for p in data["projects"]] == [hx("pA")]
        text = report.text
        assert hx("pB") not in text and "Project pB" not in text and hx("e-b1") not in text
        # The share token opens nothing else.
        for path in ("/api/summary", "/api/entries", "/api/team", "/api/running", "/metrics"):
            response = await client.get(f"{path}?share={token}")
            assert response.status_code == 403, path


async def test_share_link_for_client_and_hidden_amounts(seeded: dict[str, object]) -> None:
    token = link("client", "cY", hide=True)
    async with client_for(seeded["app"]) as client:
        data = (
            await client.get(f"/api/share/report?share={token}&start=2026-03-23&end=2026-03-29")
        ).json()
    assert data["scope"] == {"kind": "client", "name": "Client cY"}
    assert data["totalSeconds"] == 3 * 3600
    assert "amounts" not in data
    assert all("billableAmount" not in e for e in data["entries"])
    assert "pA" not in orjson.dumps(data).decode() and hx("pA") not in orjson.dumps(data).decode()


async def test_expired_and_tampered_links_are_refused(seeded: dict[str, object]) -> None:
    expired = link("project", "pA", expires_in_s=-10)
    good = link("project", "pA")
    mac = good.partition(".")[2]
    other = link("project", "pB")
    tampered = other.partition(".")[0] + "." + mac  # pB's scope with pA's signature
    async with client_for(seeded["app"]) as client:
        response = await client.get(f"/api/share/report?share={expired}")
        assert response.status_code == 403 and "expired" in response.json()["error"]
        response = await client.get(f"/api/share/report?share={tampered}")
        assert response.status_code == 403 and "altered" in response.json()["error"]
        response = await client.get("/api/share/report?share=garbage")
        assert response.status_code == 403
        response = await client.get("/api/share/report")
        assert response.status_code == 403


def test_verify_token_rejects_other_secret() -> None:
    token = link("project", "pA")
    with pytest.raises(ShareLinkError):
        verify_token(Secret("another-secret-key-entirely"), token)
    scope = verify_token(Secret(SECRET), token)
    assert (scope.kind, scope.id, scope.workspace) == ("project", hx("pA"), WS)


async def test_head_of_the_event_stream_answers_headers_and_holds_nothing(
    redis: Redis, clock: FixedClock
) -> None:
    app = create_app(make_settings(), redis=redis, clock=clock)
    async with client_for(app) as client:
        response = await client.head("/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    assert not app.state.service.hub.subscribers
