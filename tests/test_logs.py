"""Logs of a real `clockwall serve` process with CLOCKWALL_LOG_JSON=1, through a Redis outage:
every line is one JSON object (uvicorn's included), each problem is one warning that says what
went wrong, and no secret from the environment appears anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson

from tests.conftest import TOKEN
from tests.fault_helpers import AppProcess, RedisProcess, serve_env
from tests.payloads import entry_2024

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
    app = await AppProcess(env, tmp_path / "app.log").start()
    try:
        async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
            assert (await post(http, "65f0a0a0a0a0a0a0a0a0a0c1")).status_code == 200
            await server.stop()
            for n in range(3):
                response = await post(http, f"65f0a0a0a0a0a0a0a0a0a0d{n}")
                assert response.status_code == 503, response.text
        await app.stop()
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
