"""Access hardening (issue 9, items 4 and 11), through the real app on a real Redis: the open
loopback wall answers only to its own host names, the token swap redirects only on this site,
share links have one spelling, can be revoked and live at most 366 days, short secrets stop
start-up, and every answer carries the cache and permission headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.child_server import free_port
from app.cli import main
from app.config import ConfigError, Secret, Settings
from app.main import create_app
from app.share import ShareScope, sign_scope, verify_token
from tests import dbs
from tests.conftest import TOKEN, WS, FixedClock, make_settings, redis_url
from tests.payloads import client_for, entry_2024, post_webhook

SECRET = "hardening-test-signing-key-0123456789"
DASH = "hardening-dashboard-token-0123"
PROJECT = "64d0000000000000000000b1"  # WEBSITE in tests/payloads.py
OTHER_PROJECT = "64d0000000000000000000b2"
SHARE_PATHS = ("/share", "/api/share/report", "/events")


def link(ident: str = PROJECT, expires_in_s: int = 3600) -> str:
    scope = ShareScope(WS, "project", ident, int(time.time()) + expires_in_s)
    return sign_scope(Secret(SECRET), scope)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def legacy_link(ident: str = PROJECT) -> str:
    """A link as clockwall signed them before links had ids (no `n` in the payload)."""
    body = {"w": WS, "k": "project", "i": ident, "e": int(time.time()) + 3600, "h": False}
    payload = b64(orjson.dumps(body))
    return payload + "." + b64(hmac.new(SECRET.encode(), payload.encode(), "sha256").digest())


# The open loopback wall and the Host header ------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io"]
)
async def test_an_open_loopback_wall_refuses_a_host_of_another_name(
    redis: Redis, clock: FixedClock, host: str
) -> None:
    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/running", "/api/summary", "/", "/events", "/metrics", "/readyz"):
            response = await client.get(path, headers={"host": host})
            assert response.status_code == 421, (path, response.text)
            answer = response.json()
            assert "another host" in answer["error"]
            assert "CLOCKWALL_DASHBOARD_TOKEN" in answer["hint"]
            assert "CLOCKWALL_PUBLIC_URL" in answer["hint"]
        # A share link does not get round it either.
        response = await client.get(f"/api/share/report?share={link()}", headers={"host": host})
        assert response.status_code == 421
        # Liveness holds no data, and webhooks carry their own token.
        assert (await client.get("/healthz", headers={"host": host})).status_code == 200
        body = entry_2024(
            "65f0a0a0a0a0a0a0a0a0a0b1", "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z"
        )
        client.headers["host"] = host
        delivered = await post_webhook(client, "NEW_TIME_ENTRY", body)
        assert delivered.status_code == 200, delivered.text


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8000",
        "LocalHost:8000",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]",
        "[::1]:8000",
    ],
)
async def test_an_open_loopback_wall_answers_to_its_own_names(
    redis: Redis, clock: FixedClock, host: str
) -> None:
    app = create_app(make_settings(), redis=redis, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/running", "/", "/readyz"):
            response = await client.get(path, headers={"host": host})
            assert response.status_code == 200, (path, response.text)


async def test_an_open_loopback_wall_answers_to_the_host_of_its_public_url(
    redis: Redis, clock: FixedClock
) -> None:
    settings = make_settings(public_url="https://wall.example.com")
    app = create_app(settings, redis=redis, clock=clock)
    async with client_for(app) as client:
        for host in ("wall.example.com", "WALL.example.com:443", "localhost:8000"):
            response = await client.get("/api/running", headers={"host": host})
            assert response.status_code == 200, host
        refused = await client.get("/api/running", headers={"host": "other.example.com"})
        assert refused.status_code == 421


async def test_a_dashboard_token_is_asked_for_on_loopback_too(
    redis: Redis, clock: FixedClock
) -> None:
    # Behind a proxy on the same host every visitor comes from 127.0.0.1: the token must hold.
    settings = make_settings(host="127.0.0.1", dashboard_token=Secret(DASH))
    app = create_app(settings, redis=redis, clock=clock)
    async with client_for(app) as client:
        assert (await client.get("/api/running")).status_code == 401
        bearer = {"authorization": f"Bearer {DASH}", "host": "wall.example.com"}
        assert (await client.get("/api/running", headers=bearer)).status_code == 200


# The token swap and its cookie -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("http://localhost//evil.example?token={t}", "/"),
        ("http://localhost/\\evil.example?token={t}", "/"),
        ("http://localhost/%5Cevil.example?token={t}", "/"),
        ("http://localhost/%09/evil.example?token={t}", "/%09/evil.example"),
        ("http://localhost/summary?token={t}&groupBy=USER", "/summary?groupBy=USER"),
    ],
)
async def test_the_token_swap_redirects_only_to_a_path_of_this_site(
    redis: Redis, clock: FixedClock, url: str, location: str
) -> None:
    settings = make_settings(host="0.0.0.0", dashboard_token=Secret(DASH))
    app = create_app(settings, redis=redis, clock=clock)
    async with client_for(app) as client:
        response = await client.get(url.format(t=DASH))
    assert response.status_code == 303
    assert response.headers["location"] == location


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    redis: Redis, clock: FixedClock
) -> None:
    async def cookie_of(settings: Settings, base_url: str) -> str:
        app = create_app(settings, redis=redis, clock=clock)
        async with client_for(app) as client:
            response = await client.get(f"{base_url}/?token={DASH}")
        assert response.status_code == 303
        return response.headers["set-cookie"]

    plain = make_settings(host="0.0.0.0", dashboard_token=Secret(DASH))
    behind_tls = make_settings(
        host="0.0.0.0", dashboard_token=Secret(DASH), public_url="https://wall.example.com"
    )
    assert "Secure" not in await cookie_of(plain, "http://wall.example.com")
    assert "; Secure" in await cookie_of(plain, "https://wall.example.com")
    # The Compose proxy talks plain HTTP to the app; the public URL says the browser uses TLS.
    assert "; Secure" in await cookie_of(behind_tls, "http://wall.example.com")


# Share links: one spelling -----------------------------------------------------------------


def other_spelling(text: str) -> str:
    """The same bytes in a non-canonical spelling: the last character with a changed unused
    low bit (urlsafe_b64decode reads it as the same bytes)."""
    unused_bits = len(text) * 6 % 8
    assert unused_bits, "a length whose last character carries unused bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    changed = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    padded = "=" * (-len(text) % 4)
    assert base64.urlsafe_b64decode(changed + padded) == base64.urlsafe_b64decode(text + padded)
    return changed


async def test_a_share_link_in_any_but_its_canonical_spelling_is_refused(
    redis: Redis, clock: FixedClock
) -> None:
    good = link()
    payload, _, mac = good.partition(".")
    assert len(mac) == 43  # 32 bytes: the last character carries two unused bits
    variants = [
        f"{payload}.{mac}=",  # padding
        f"{payload}=.{mac}",  # padding on the payload
        f"{payload}.{other_spelling(mac)}",  # a changed unused bit
        f"{payload}.{mac[:20]}!{mac[20:]}",  # a character outside the alphabet
        f"{payload}.{mac[:20]}\n{mac[20:]}",
        f"{payload}.{mac.replace('-', '+').replace('_', '/')}" if set(mac) & set("-_") else "",
        f"{payload}.{mac}.{mac}",
    ]
    if len(payload) * 6 % 8:
        variants.append(f"{other_spelling(payload)}.{mac}")
    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        assert (await client.get("/api/share/report", params={"share": good})).status_code == 200
        for variant in filter(None, variants):
            response = await client.get("/api/share/report", params={"share": variant})
            assert response.status_code == 403, variant
            assert "ask" in response.json()["hint"]


# Share links: revocation -------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The CLI's environment: ours only, nothing a developer's shell could point elsewhere."""
    for name in list(os.environ):
        if name.startswith(("CLOCKIFY_", "CLOCKWALL_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLOCKIFY_WORKSPACE_ID", WS)
    monkeypatch.setenv("CLOCKWALL_SECRET_KEY", SECRET)
    monkeypatch.setenv("REDIS_URL", redis_url(dbs.CORE))
    return monkeypatch


async def cli(*argv: str) -> int:
    # The CLI runs its own event loop (asyncio.run), so it runs beside this one.
    return await asyncio.to_thread(main, list(argv))


async def assert_revoked(client: httpx.AsyncClient, token: str) -> None:
    for path in SHARE_PATHS:
        response = await client.get(path, params={"share": token})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == (
            "this share link was revoked; ask the sender for a new one"
        )


async def test_a_link_revoked_by_its_id_is_refused_on_every_share_path(
    redis: Redis, clock: FixedClock, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("share", "--project", PROJECT, "--base-url", "https://wall.example.com/") == 0
    out, err = capsys.readouterr()
    shared_url = out.strip()
    assert shared_url.startswith("https://wall.example.com/share?share=")
    token = shared_url.split("share=", 1)[1]
    scope = verify_token(Secret(SECRET), token)
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
    assert f"link id {scope.link_id}, expires {expires}" in err
    assert 29 * 86400 < scope.expires_at - time.time() <= 30 * 86400  # the default 30d
    kept = link()

    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        report = await client.get("/api/share/report", params={"share": token})
        assert report.status_code == 200
        assert await cli("share", "--revoke", scope.link_id) == 0
        assert f"revoked share link {scope.link_id}" in capsys.readouterr().out
        await assert_revoked(client, token)
        # Only that link: another one to the same project still opens.
        report = await client.get("/api/share/report", params={"share": kept})
        assert report.status_code == 200
    assert await redis.zscore(keys.revoked_shares(WS), scope.link_id) == float("inf")


async def test_a_link_revoked_by_the_link_itself_is_refused_and_kept_until_it_expires(
    redis: Redis, clock: FixedClock, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = link()
    legacy = legacy_link()
    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        for shared in (token, legacy):
            report = await client.get("/api/share/report", params={"share": shared})
            assert report.status_code == 200
            assert (
                await cli("share", "--revoke", f"https://wall.example.com/share?share={shared}")
                == 0
            )
            await assert_revoked(client, shared)
    # Listed until the link would have expired anyway, then dropped by a later revocation.
    scope = verify_token(Secret(SECRET), token)
    assert await redis.zscore(keys.revoked_shares(WS), scope.link_id) == scope.expires_at
    # A link from before link ids is known by a digest of its signature.
    legacy_id = verify_token(Secret(SECRET), legacy).link_id
    assert legacy_id == b64(
        hashlib.sha256(base64.urlsafe_b64decode(legacy.split(".")[1] + "=")).digest()[:9]
    )
    assert await redis.zscore(keys.revoked_shares(WS), legacy_id) is not None


async def test_revoking_needs_redis_and_a_link_or_an_id(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("share", "--revoke", "no good!") == 2
    assert "neither a share link nor a link id" in capsys.readouterr().err
    tampered = link().partition(".")[0] + "." + link(OTHER_PROJECT).partition(".")[2]
    assert await cli("share", "--revoke", tampered) == 2
    assert "altered" in capsys.readouterr().err
    expired = link(expires_in_s=-10)
    assert await cli("share", "--revoke", expired) == 0
    assert "already expired" in capsys.readouterr().out
    cli_env.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert await cli("share", "--revoke", "abcdefgh1234") == 1
    err = capsys.readouterr().err
    assert "Redis did not answer" in err and "REDIS_URL" in err
    cli_env.delenv("REDIS_URL")
    assert await cli("share", "--revoke", "abcdefgh1234") == 2
    assert "REDIS_URL is not set" in capsys.readouterr().err


async def test_a_share_link_is_refused_with_503_while_redis_cannot_say_it_is_not_revoked(
    clock: FixedClock,
) -> None:
    # A Redis that refuses connections: no answer must never mean "not revoked".
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    settings = make_settings(secret_key=Secret(SECRET), redis_url=None)
    app = create_app(settings, redis=down, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/share/report", "/share"):
            response = await client.get(path, params={"share": link()})
            assert response.status_code == 503, response.text
            assert "cannot be checked" in response.json()["error"]
            assert response.headers["retry-after"] == "5"
    await down.aclose()


# Share links: expiry bounds in the CLI -----------------------------------------------------


@pytest.mark.parametrize("expires", ["0d", "0m", "-1d", "-90m", "367d", "8785h", "999999999m"])
def test_share_refuses_an_expiry_outside_one_minute_to_366_days(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], expires: str
) -> None:
    assert main(["share", "--project", PROJECT, f"--expires={expires}"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "--expires must be between 1m and 366d" in err


@pytest.mark.parametrize(("expires", "seconds"), [("1m", 60), ("366d", 366 * 86400)])
def test_share_accepts_the_expiry_bounds(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], expires: str, seconds: int
) -> None:
    before = int(time.time())
    assert main(["share", "--client", "64c0ffee00000000000000a1", "--expires", expires]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("http://localhost:8000/share?share=")
    scope = verify_token(Secret(SECRET), out.strip().split("share=", 1)[1])
    assert before + seconds <= scope.expires_at <= int(time.time()) + seconds


def test_share_links_default_to_the_public_url(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CLOCKWALL_PUBLIC_URL", "https://wall.example.com/")
    assert main(["share", "--project", PROJECT]) == 0
    assert capsys.readouterr().out.startswith("https://wall.example.com/share?share=")


# Start-up refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CLOCKWALL_DASHBOARD_TOKEN", "CLOCKWALL_SECRET_KEY"])
def test_a_dashboard_token_or_secret_key_under_16_characters_stops_start_up(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: "fifteen-chars15"})
    message = str(refused.value)
    assert name in message and "16" in message
    assert "secrets.token_urlsafe(32)" in message
    assert "fifteen-chars15" not in message
    Settings.from_env({name: "sixteen-chars-16"})  # 16 is enough


def test_clockwall_serve_refuses_a_short_dashboard_token(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CLOCKWALL_DASHBOARD_TOKEN", "short")
    assert main(["serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "CLOCKWALL_DASHBOARD_TOKEN" in err and "short" not in err.replace("shorter", "")


@pytest.mark.parametrize(
    "url",
    [
        "wall.example.com",
        "ftp://wall.example.com",
        "https://",
        "https://u:p@wall.example.com",
        "https://wall.example.com/?x=1",
        "http://[::1",
    ],
)
def test_a_public_url_that_is_no_site_address_stops_start_up(url: str) -> None:
    with pytest.raises(ConfigError, match="CLOCKWALL_PUBLIC_URL"):
        Settings.from_env({"CLOCKWALL_PUBLIC_URL": url})


def test_the_public_url_gives_the_public_host_and_scheme() -> None:
    settings = Settings.from_env({"CLOCKWALL_PUBLIC_URL": "https://Wall.Example.com:8443/"})
    assert settings.public_url == "https://Wall.Example.com:8443"
    assert (settings.public_host, settings.public_https) == ("wall.example.com", True)
    ipv6 = Settings.from_env({"CLOCKWALL_PUBLIC_URL": "http://[2001:db8::1]:8000"})
    assert (ipv6.public_host, ipv6.public_https) == ("[2001:db8::1]", False)


# Headers -----------------------------------------------------------------------------------


async def test_api_answers_are_never_stored_and_every_answer_has_a_permissions_policy(
    redis: Redis, clock: FixedClock
) -> None:
    app = create_app(make_settings(secret_key=Secret(SECRET)), redis=redis, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/running", "/api/summary", f"/api/share/report?share={link()}"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["cache-control"] == "no-store", path
            assert "camera=()" in response.headers["permissions-policy"], path
        refused = await client.get("/api/summary", params={"start": "nonsense"})
        assert refused.status_code == 400 and refused.headers["cache-control"] == "no-store"
        page = await client.get("/")
        assert "microphone=()" in page.headers["permissions-policy"]
        assert page.headers["cache-control"] == "no-cache"  # the page's own, kept
    closed = create_app(make_settings(host="0.0.0.0", dashboard_token=Secret(DASH)), redis=redis)
    async with client_for(closed) as client:
        refused = await client.get("/api/running")
        assert refused.status_code == 401
        assert refused.headers["cache-control"] == "no-store"
        assert "geolocation=()" in refused.headers["permissions-policy"]


def test_clockwall_setup_prints_tokens_bound_to_the_workspace() -> None:
    from app.admin import SetupResult

    result = SetupResult("FREE", WS, tokens=[TOKEN, TOKEN[::-1]])
    line = result.token_line()
    assert line == f"CLOCKIFY_WEBHOOK_TOKENS={WS}:{TOKEN},{WS}:{TOKEN[::-1]}"
    tokens = Settings.from_env(
        {"CLOCKIFY_WORKSPACE_ID": WS, "CLOCKIFY_WEBHOOK_TOKENS": line.split("=", 1)[1]}
    ).webhook_tokens
    assert {t.workspace_id for t in tokens} == {WS}
