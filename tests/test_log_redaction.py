"""No secret reaches a log: not the dashboard token of `/?token=`, not a share link of
`/share?share=` or `/events?share=`, not the API key, webhook token or signing key, in text or
JSON logs of a real `clockwall serve`, nor in the access log of deploy/nginx.conf; the access
lines themselves stay, with their paths."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import orjson
import pytest

from app.config import Secret
from app.logs import JsonFormatter, RedactingFilter, redact_urls
from app.share import ShareScope, sign_scope
from tests import dbs
from tests.conftest import TOKEN, WS, redis_db, redis_url
from tests.payloads import entry_2024
from tests.processes import AppProcess, NginxProcess, serve_env

DB = dbs.LOG_REDACTION
API_KEY = "apikey-that-must-never-be-logged-0123456789"
DASHBOARD_TOKEN = "dashboard-token-that-must-never-be-logged"
SECRET_KEY = "secret-key-that-must-never-be-logged-0123456789"
PROJECT = "65f0a0a0a0a0a0a0a0a0a0b1"
ENTRY = "65f0a0a0a0a0a0a0a0a0a0c1"


def share_link() -> str:
    # The server checks the expiry against its own clock; an hour ahead is valid throughout.
    return sign_scope(
        Secret(SECRET_KEY), ShareScope(WS, "project", PROJECT, int(time.time()) + 3600)
    )


def access_record(path_with_query: str) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it: the format and arguments of
    uvicorn.protocols.*.RequestResponseCycle.send."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:51234", "GET", path_with_query, "1.1", 200),
        None,
    )


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("/?token=abc123", "/?token=[redacted]"),
        ("/share?share=eyJ3Ijoi.c2lnbmF0dXJl", "/share?share=[redacted]"),
        ("/events?share=x.y&lastEventId=1-0", "/events?share=[redacted]&lastEventId=[redacted]"),
        ("/api/report?from=2026-03-01&token=&x", "/api/report?from=[redacted]&token=&[redacted]"),
        ("/?s3cr3t-without-a-name", "/?[redacted]"),
        ("/healthz", "/healthz"),
        ("/static/app.js?", "/static/app.js?"),
    ],
)
def test_every_query_value_of_an_access_line_is_redacted_and_its_path_kept(
    logged: str, shown: str
) -> None:
    record = access_record(logged)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f'127.0.0.1:51234 - "GET {shown} HTTP/1.1" 200'


def test_urls_anywhere_in_a_message_lose_their_query_values_and_other_question_marks_stay() -> None:
    text = "fetched https://wall.example.com/share?share=abc.def; why? see /events?share=x"
    assert redact_urls(text) == (
        "fetched https://wall.example.com/share?share=[redacted] why? see /events?share=[redacted]"
    )


def test_a_malformed_log_call_still_reaches_the_handler_that_reports_it() -> None:
    record = access_record("/?token=abc")
    record.args = ("too", "few")
    assert RedactingFilter().filter(record)  # no exception from the filter itself


def test_the_json_formatter_shows_the_redacted_message() -> None:
    record = access_record("/?token=abc123")
    RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == '127.0.0.1:51234 - "GET /?token=[redacted] HTTP/1.1" 200'


async def visit_with_every_secret(base_url: str, link: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10, follow_redirects=True) as http:
        # Trades the token for a cookie (a 303 to `/`) or, where the wall is open, shows it.
        assert (await http.get(f"/?token={DASHBOARD_TOKEN}")).status_code == 200
        assert (await http.get("/share", params={"share": link})).status_code == 200
        report = await http.get("/api/share/report", params={"share": link})
        assert report.status_code == 200, report.text
        async with http.stream("GET", "/events", params={"share": link}) as events:
            assert events.status_code == 200
            async for _ in events.aiter_bytes():
                break  # the first bytes of the stream are enough for its access line
        stray = {"key": API_KEY, "secret": SECRET_KEY, "auth_token": TOKEN}
        assert (await http.get("/healthz", params=stray)).status_code == 200
        body = entry_2024(ENTRY, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
        webhook = await http.post(
            "/webhooks/clockify",
            content=orjson.dumps(body),
            headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"},
        )
        assert webhook.status_code == 200, webhook.text


ACCESS_LINES = (
    '"GET /?token=[redacted] HTTP/1.1"',
    '"GET /share?share=[redacted] HTTP/1.1" 200',
    '"GET /api/share/report?share=[redacted] HTTP/1.1" 200',
    '"GET /events?share=[redacted] HTTP/1.1" 200',
    '"GET /healthz?key=[redacted]&secret=[redacted]&auth_token=[redacted] HTTP/1.1" 200',
    '"POST /webhooks/clockify HTTP/1.1" 200',
)


@pytest.mark.slow
@pytest.mark.parametrize("log_json", [False, True], ids=["text logs", "JSON logs"])
async def test_no_secret_or_share_link_reaches_the_log_of_clockwall_serve(
    tmp_path: Path, log_json: bool
) -> None:
    link = share_link()
    async with redis_db(redis_url(DB)):
        env = serve_env(
            redis_url(DB),
            CLOCKWALL_LOG_JSON="1" if log_json else "0",
            CLOCKIFY_API_KEY=API_KEY,
            CLOCKWALL_DASHBOARD_TOKEN=DASHBOARD_TOKEN,
            CLOCKWALL_SECRET_KEY=SECRET_KEY,
        )
        app = await AppProcess(env, tmp_path / "app.log").astart()
        try:
            await visit_with_every_secret(app.base_url, link)
            await app.astop()
        finally:
            app.kill()

    text = app.log_text()
    for secret in (TOKEN, API_KEY, DASHBOARD_TOKEN, SECRET_KEY, link, link.partition(".")[2]):
        assert secret not in text
    if log_json:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        access = [r["message"] for r in records if r["logger"] == "uvicorn.access"]
    else:
        access = [line for line in text.splitlines() if " uvicorn.access: " in line]
    for expected in ACCESS_LINES:  # still there, path and parameter names visible
        assert any(expected in line for line in access), (expected, access)


@pytest.mark.slow
async def test_the_proxy_access_log_names_the_path_but_not_the_query(tmp_path: Path) -> None:
    link = share_link()
    async with redis_db(redis_url(DB)):
        env = serve_env(
            redis_url(DB),
            CLOCKIFY_API_KEY=API_KEY,
            CLOCKWALL_DASHBOARD_TOKEN=DASHBOARD_TOKEN,
            CLOCKWALL_SECRET_KEY=SECRET_KEY,
        )
        app = await AppProcess(env, tmp_path / "app.log").astart()
        proxy = NginxProcess(tmp_path, [app.port, app.port])
        try:
            await proxy.start()
            try:
                await visit_with_every_secret_through_proxy(proxy.base_url, link)
            finally:
                await proxy.stop(graceful=True)  # every finished request is logged
            await app.astop()
        finally:
            proxy.kill()
            app.kill()

    text = proxy.access_log.read_text()
    for secret in (TOKEN, API_KEY, DASHBOARD_TOKEN, SECRET_KEY, link, link.partition(".")[2]):
        assert secret not in text
    for expected in ('"GET / HTTP/1.1"', '"GET /share HTTP/1.1" 200', '"GET /healthz HTTP'):
        assert expected in text, text


async def visit_with_every_secret_through_proxy(base_url: str, link: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10, follow_redirects=True) as http:
        referer = {"referer": f"{base_url}/?token={DASHBOARD_TOKEN}"}
        assert (await http.get(f"/?token={DASHBOARD_TOKEN}")).status_code == 200
        response = await http.get("/share", params={"share": link}, headers=referer)
        assert response.status_code == 200
        stray = {"key": API_KEY, "secret": SECRET_KEY, "auth_token": TOKEN}
        assert (await http.get("/healthz", params=stray, headers=referer)).status_code == 200
