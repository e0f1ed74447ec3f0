"""Logs of a real `clockwall serve` process with CLOCKWALL_LOG_JSON=1, through a Redis outage:
every line is one JSON object (uvicorn's included), each problem is one warning that says what
went wrong, and no secret from the environment appears anywhere. JSON lines keep tracebacks."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from app.logs import JsonFormatter
from tests.conftest import TOKEN
from tests.payloads import entry_2024
from tests.processes import AppProcess, RedisProcess, serve_env

API_KEY = "apikey-that-must-never-be-logged-0123456789"
DASHBOARD_TOKEN = "dashboard-token-that-must-never-be-logged"
SECRET_KEY = "secret-key-that-must-never-be-logged-0123456789"


async def post(http: httpx.AsyncClient, entry_id: str) -> httpx.Response:
    body = entry_2024(entry_id, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
    return await http.post(
        "/webhooks/clockify",
        content=orjson.dumps(body),
        headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"},
    )


@pytest.mark.slow
async def test_json_logs_through_an_outage_name_each_problem_and_no_secret(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis", appendonly=False)
    await server.start()
    env = serve_env(
        server.url(0),
        CLOCKWALL_LOG_JSON="1",
        CLOCKIFY_API_KEY=API_KEY,
        CLOCKWALL_DASHBOARD_TOKEN=DASHBOARD_TOKEN,
        CLOCKWALL_SECRET_KEY=SECRET_KEY,
    )
    app = await AppProcess(env, tmp_path / "app.log").astart()
    try:
        async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
            assert (await post(http, "65f0a0a0a0a0a0a0a0a0a0c1")).status_code == 200
            await server.stop()
            for n in range(3):
                response = await post(http, f"65f0a0a0a0a0a0a0a0a0a0d{n}")
                assert response.status_code == 503, response.text
        await app.astop()
    finally:
        app.kill()
        server.kill()

    text = app.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)  # the server's lines too
    refused = [r for r in records if "store unavailable while applying" in r["message"]]
    assert len(refused) == 3  # one line per refused delivery
    for record in refused:  # what went wrong, and what to do
        assert record["level"] == "WARNING"
        assert "NEW_TIME_ENTRY" in record["message"] and "503" in record["message"]
        assert "REDIS_URL" in record["message"]
    for secret in (TOKEN, API_KEY, DASHBOARD_TOKEN, SECRET_KEY):
        assert secret not in text


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON lines to a buffer (the root logger stays pytest's)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.json_log")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log, out
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        log.propagate = True


def fail_deep_inside() -> None:
    raise ValueError("the cause, named")


def test_a_json_log_line_carries_the_traceback_of_a_logged_exception(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = json_log
    try:
        fail_deep_inside()
    except ValueError:
        log.exception("poller: the cycle failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # the traceback's newlines are escaped inside the one object
    record = json.loads(lines[0])
    assert record["message"] == "poller: the cycle failed"
    assert record["level"] == "ERROR"
    assert record["exc"].startswith("Traceback (most recent call last):")
    assert "in fail_deep_inside" in record["exc"]
    assert record["exc"].endswith("ValueError: the cause, named")
    assert "stack" not in record


def test_a_json_log_line_carries_the_stack_when_asked_and_nothing_extra_otherwise(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = json_log
    log.warning("where am I", stack_info=True)
    log.info("plain")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["stack"].startswith("Stack (most recent call last):")
    assert "test_a_json_log_line_carries_the_stack" in first["stack"]
    assert set(second) == {"time", "level", "logger", "message"}
