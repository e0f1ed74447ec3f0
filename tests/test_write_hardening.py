"""The webhook write path under hostile or broken conditions (clockwall issue 9).

- Unauthenticated or invented event names add no metric series.
- A total that would leave the exact range (or is not an integer) refuses the whole entry before
  Redis writes anything, through the pipelined connection, redis-py and the embedded store; a
  script error is a 500 that says so, never a 503 "store unavailable".
- Ids that are not Clockify ids (`__proto__`, a trailing newline, ...) are refused.
- A webhook body that stops or trickles is answered 408 within its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import string
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys
from app.config import ConfigError, Settings
from app.main import WEBHOOK_PATH, create_app
from app.models import PayloadError, parse_time_entry
from app.pipe import ScriptPipe
from app.projection import Basis, contribution
from app.store import ApplyError, TotalsStore
from app.webhooks import KNOWN_EVENTS
from tests import dbs
from tests.browser import LiveServer
from tests.conftest import TOKEN, WS, FixedClock, make_settings, redis_url
from tests.payloads import (
    ANA,
    URGENT,
    WEBSITE,
    client_for,
    close_app,
    entry_2024,
    new_project,
    new_tag,
    post_webhook,
    rate,
)
from tests.test_webhooks import dump

E1 = "65f0a0a0a0a0a0a0a0a0a0e1"
E2 = "65f0a0a0a0a0a0a0a0a0a0e2"
# The cell of `entry()`: Ana on the website, no task, billable, REGULAR, EUR, no tags, at
# 105.00 an hour with no cost rate.
CELL = f"{ANA.id}|{WEBSITE.id}|-|1|R|EUR|-|10500|0"
DAY_ALL = keys.cells_day(WS, 0, "2026-03-24")
# The apps here round reports up to 15 minutes, so an entry changes two totals: its rounded
# seconds after its seconds, and a refusal there undoes the seconds.
ROUNDED = f"{CELL}|r"
ROUNDING = "up:15"
EXACT = 2**53  # the largest magnitude a total may reach


def entry(entry_id: str = E1, **fields: Any) -> dict[str, Any]:
    """One hour on 2026-03-24 (Berlin), billable at 105.00 EUR."""
    body = entry_2024(
        entry_id, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", hourly_rate=rate(10500)
    )
    body.update(fields)
    return body


@pytest.fixture
async def client(redis: Redis, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(report_rounding=ROUNDING)
    async with client_for(create_app(settings, redis=redis, clock=clock)) as http:
        yield http


@pytest.fixture
async def embedded(clock: FixedClock) -> AsyncIterator[tuple[httpx.AsyncClient, Redis]]:
    """An app on the embedded store (fakeredis, the same Lua, redis-py's script calls)."""
    app = create_app(make_settings(redis_url=None, report_rounding=ROUNDING), clock=clock)
    service = app.state.service
    assert service.embedded and service.pipe is None
    try:
        async with client_for(app) as http:
            yield http, service.redis
    finally:
        await service.redis.aclose()


async def metric_lines(client: httpx.AsyncClient, name: str) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


# Metrics: a fixed set of event labels ------------------------------------------------------
async def test_random_event_names_with_or_without_a_token_add_no_metric_series(
    client: httpx.AsyncClient,
) -> None:
    rng = random.Random(9)
    alphabet = string.ascii_uppercase + string.digits + "_"

    def invented() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64)))

    async def deliver(count: int) -> None:
        for _ in range(count):
            assert (await post_webhook(client, invented(), b"{}", token=None)).status_code == 401
            assert (await post_webhook(client, invented(), b"{}", token="x" * 32)).status_code == (
                401
            )
            assert (await post_webhook(client, invented(), b"{}")).json()["outcome"] == "ignored"
            odd = invented() + rng.choice(" -.!/") + "A"
            assert (await post_webhook(client, odd, b"{}")).status_code == 400

    await deliver(5)
    first = await metric_lines(client, "clockwall_webhooks_total")
    await deliver(2000)
    after = await metric_lines(client, "clockwall_webhooks_total")
    assert after.keys() == first.keys()
    assert sorted(after) == [
        'clockwall_webhooks_total{event="invalid",outcome="rejected:event"}',
        'clockwall_webhooks_total{event="other",outcome="ignored"}',
        'clockwall_webhooks_total{event="unauthenticated",outcome="rejected:token"}',
    ]
    assert after['clockwall_webhooks_total{event="unauthenticated",outcome="rejected:token"}'] == (
        2 * 2005
    )


async def test_a_known_event_is_counted_by_name_only_when_its_token_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    assert (await post_webhook(client, "NEW_TIME_ENTRY", entry(), token=None)).status_code == 401
    assert (await post_webhook(client, "NEW_TIME_ENTRY", entry())).status_code == 200
    assert (await post_webhook(client, "new_invoice", {})).json()["outcome"] == "ignored"
    lines = await metric_lines(client, "clockwall_webhooks_total")
    assert set(lines) == {
        'clockwall_webhooks_total{event="unauthenticated",outcome="rejected:token"}',
        'clockwall_webhooks_total{event="NEW_TIME_ENTRY",outcome="accepted"}',
        'clockwall_webhooks_total{event="NEW_INVOICE",outcome="ignored"}',
    }
    assert "NEW_INVOICE" in KNOWN_EVENTS and "TIME_OFF_REQUEST_STARTED" in KNOWN_EVENTS


# Totals out of range: refused before any write --------------------------------------------
@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(2**63 - 1000, id="near-int64-where-HINCRBY-failed-half-way"),
        pytest.param(EXACT - 1000, id="past-2^53"),
        pytest.param("12.5", id="not-an-integer"),
        pytest.param("1e9", id="exponent"),
    ],
)
@pytest.mark.parametrize("field", [f"{CELL}|s", ROUNDED], ids=["seconds", "rounded"])
async def test_an_entry_that_would_break_a_total_is_a_500_that_changes_nothing(
    client: httpx.AsyncClient,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
    stored: Any,
    field: str,
) -> None:
    # The rounded total is changed after the seconds: an older script changed one, then failed.
    key = DAY_ALL
    await redis.hset(key, field, stored)
    before = await dump(redis)
    for _ in range(3):  # a resend fails the same way and widens no gap
        response = await post_webhook(client, "NEW_TIME_ENTRY", entry())
        assert response.status_code == 500, response.text
        answer = response.json()
        assert answer["error"].startswith(
            f"clockwall could not apply this entry: the total {field} in "
        )
        assert key in answer["error"] and "nothing was recorded" in answer["error"]
        assert "not a Redis outage" in answer["hint"]
        assert TOKEN not in response.text
        assert await dump(redis) == before
    assert "store unavailable" not in caplog.text
    [*_, record] = [r for r in caplog.records if r.name == "app.webhooks"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    lines = await metric_lines(client, "clockwall_webhooks_total")
    assert lines['clockwall_webhooks_total{event="NEW_TIME_ENTRY",outcome="error"}'] == 3
    assert (await client.get("/readyz")).status_code == 200  # the store is not "down"


async def test_a_total_may_reach_2_to_the_53_exactly(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await redis.hset(DAY_ALL, ROUNDED, 0)  # a stored zero is an integer too
    await redis.hset(DAY_ALL, f"{CELL}|s", EXACT - 3600)
    assert (await post_webhook(client, "NEW_TIME_ENTRY", entry())).status_code == 200
    assert int(await redis.hget(DAY_ALL, f"{CELL}|s")) == EXACT
    assert int(await redis.hget(DAY_ALL, ROUNDED)) == 3600
    # Deleting the entry takes the totals back down, and a total of zero is removed.
    assert (await post_webhook(client, "TIME_ENTRY_DELETED", entry())).status_code == 200
    assert int(await redis.hget(DAY_ALL, f"{CELL}|s")) == EXACT - 3600
    assert await redis.hget(DAY_ALL, ROUNDED) is None


async def test_the_embedded_store_refuses_the_same_entry_and_changes_nothing(
    embedded: tuple[httpx.AsyncClient, Redis],
) -> None:
    http, store_redis = embedded
    await store_redis.hset(DAY_ALL, ROUNDED, 2**63 - 1000)
    before = await dump(store_redis)
    response = await post_webhook(http, "NEW_TIME_ENTRY", entry())
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert "would overflow" in error and "nothing was recorded" in error
    assert await dump(store_redis) == before
    await store_redis.hset(DAY_ALL, ROUNDED, EXACT - 3600)
    assert (await post_webhook(http, "NEW_TIME_ENTRY", entry())).status_code == 200
    assert int(await store_redis.hget(DAY_ALL, ROUNDED)) == EXACT


@pytest.fixture(params=["pipe", "redis-py"])
async def store(request: pytest.FixtureRequest, redis: Redis) -> AsyncIterator[TotalsStore]:
    pipe = ScriptPipe.for_client(redis) if request.param == "pipe" else None
    yield TotalsStore(redis, ZoneInfo("Europe/Berlin"), pipe=pipe)
    if pipe is not None:
        await pipe.aclose()


async def test_the_store_refuses_an_overflow_on_both_paths_before_any_write(
    store: TotalsStore, redis: Redis
) -> None:
    await redis.hset(DAY_ALL, f"{CELL}|s", 2**63 - 1000)  # no rounding: the only total
    before = await dump(redis)
    with pytest.raises(ApplyError, match=r"would overflow\); nothing was recorded") as caught:
        await store.apply_entry(parse_time_entry(entry()), "create")
    assert caught.value.written is False
    assert await dump(redis) == before
    # The names it carried were not marked as written either: once the total is fixed, they go.
    await redis.hdel(DAY_ALL, f"{CELL}|s")
    assert (await store.apply_entry(parse_time_entry(entry()), "create")).outcome == "created"
    assert await redis.hget(keys.names(WS, "project"), WEBSITE.id) is not None


async def test_a_script_error_is_an_apply_error_on_both_paths_even_after_a_script_flush(
    store: TotalsStore, redis: Redis
) -> None:
    await redis.set(keys.running(WS), "not a hash")
    await redis.script_flush()  # the pipe meets NOSCRIPT and falls back to EVAL
    timer = parse_time_entry(entry_2024(E2, "2026-03-24T08:00:00Z", None))
    with pytest.raises(ApplyError, match=r"the store's script failed .*WRONGTYPE") as caught:
        await store.apply_entry(timer, "create")
    assert caught.value.written is True
    assert not isinstance(caught.value, RedisError)


async def test_redis_refusing_writes_for_now_is_still_an_outage_on_both_paths(
    store: TotalsStore, redis: Redis
) -> None:
    before = await dump(redis)
    await redis.config_set("min-replicas-to-write", 1)  # every write: NOREPLICAS
    try:
        with pytest.raises(RedisError, match="NOREPLICAS"):
            await store.apply_entry(parse_time_entry(entry()), "create")
    finally:
        await redis.config_set("min-replicas-to-write", 0)
    assert await dump(redis) == before


async def test_a_script_error_answers_500_and_a_write_refusal_503(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await redis.set(keys.running(WS), "not a hash")
    response = await post_webhook(
        client, "NEW_TIMER_STARTED", entry_2024(E2, "2026-03-24T08:00:00Z", None)
    )
    assert response.status_code == 500, response.text
    assert response.json()["error"].startswith("clockwall could not apply this entry: ")
    assert "WRONGTYPE" in response.json()["error"]
    await redis.delete(keys.running(WS))
    await redis.config_set("min-replicas-to-write", 1)
    try:
        response = await post_webhook(client, "NEW_TIME_ENTRY", entry(E1))
    finally:
        await redis.config_set("min-replicas-to-write", 0)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


# Input bounds -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("hourlyRate.amount", 10**7 + 1, r"hourlyRate\.amount must be .* \(at most 10000000\)"),
        ("timeInterval.duration", "PT87900H", r"timeInterval\.duration spans more than ten years"),
        ("timeInterval.duration", 10**12, r"timeInterval\.duration spans more than ten years"),
        ("timeInterval.duration", "9" * 5000, r"timeInterval\.duration must be an ISO-8601"),
        ("timeInterval.duration", "PT" + "9" * 5000 + "H", r"timeInterval\.duration must be"),
        ("timeInterval.duration", "²", r"timeInterval\.duration must be an ISO-8601"),
    ],
)
async def test_values_past_the_bounds_are_a_400_naming_the_field(
    client: httpx.AsyncClient, redis: Redis, path: str, value: Any, message: str
) -> None:
    body = entry()
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[last] = value
    response = await post_webhook(client, "NEW_TIME_ENTRY", body)
    assert response.status_code == 400, response.text
    assert re.search(message, response.json()["error"])
    assert await redis.dbsize() == 0


def test_the_largest_rate_over_ten_years_stays_inside_2_to_the_53() -> None:
    body = entry(billable=True)
    body["hourlyRate"] = rate(10**7)
    # The longest span taken, 3660 days.
    body["timeInterval"] = {"start": "2000-01-01T00:00:00Z", "end": "2010-01-08T00:00:00Z"}
    entry_ = parse_time_entry(body)
    found = contribution(entry_.to_state(), Basis(ZoneInfo("UTC")))
    largest = max(delta for _field, delta in found["f"])
    assert largest == 3660 * 86400 * 10**7  # the exact amount: rate_minor x seconds
    assert largest * 2 < EXACT  # room for two such entries in one month's total


# Ids -----------------------------------------------------------------------------------------
NOT_IDS = [
    "__proto__",
    "constructor",
    "prototype",
    E1 + "\n",
    E1[:-1],
    E1 + "0",
    "g" * 24,
    E1[:-1] + "|",
    E1[:-1] + " ",
    "\uff16" * 24,  # full-width digits are digits to str.isdigit, not to Clockify
]


@pytest.mark.parametrize("bad", NOT_IDS, ids=repr)
@pytest.mark.parametrize("field", ["id", "userId", "projectId", "workspaceId", "tagIds"])
def test_an_id_that_is_not_a_clockify_id_is_refused(field: str, bad: str) -> None:
    body = entry(**{field: [bad] if field == "tagIds" else bad})
    body.pop("project")  # projectId alone
    with pytest.raises(PayloadError, match=f"{field} must be"):
        parse_time_entry(body)


@pytest.mark.parametrize("bad", ["__proto__", "constructor", E1 + "\n"], ids=repr)
async def test_webhooks_with_such_ids_are_400_and_change_nothing(
    client: httpx.AsyncClient, redis: Redis, bad: str
) -> None:
    bodies = [
        ("NEW_TIME_ENTRY", entry(bad)),
        ("NEW_TIME_ENTRY", {**entry(), "tags": [{"id": bad, "name": "x"}]}),
        ("TIME_ENTRY_DELETED", {"id": bad, "workspaceId": WS}),
        ("NEW_PROJECT", {**new_project(WEBSITE), "id": bad}),
        ("NEW_TAG", {**new_tag(URGENT), "id": bad}),
        ("USER_UPDATED", {"id": bad, "name": "Mallory", "workspaceId": WS}),
    ]
    for event, body in bodies:
        response = await post_webhook(client, event, body)
        assert response.status_code == 400, (event, response.text)
        assert "24 hexadecimal characters" in response.json()["error"]
    assert await redis.dbsize() == 0


async def test_ids_in_upper_case_hex_are_clockify_ids(client: httpx.AsyncClient) -> None:
    body = entry(E1.upper(), userId="65A1B2C3D4E5F60718293A4B")
    body.pop("user")
    assert (await post_webhook(client, "NEW_TIME_ENTRY", body)).json()["outcome"] == "created"


# The body deadline --------------------------------------------------------------------------
def http_scope(length: int | None) -> dict[str, Any]:
    headers = [
        (b"clockify-signature", TOKEN.encode()),
        (b"clockify-webhook-event-type", b"NEW_TIME_ENTRY"),
        (b"content-type", b"application/json"),
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": WEBHOOK_PATH,
        "raw_path": WEBHOOK_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def run_delivery(app: Any, scope: dict[str, Any], receive: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        async with asyncio.timeout(10):  # a guard against a hang, far above the deadline
            await app(scope, receive, send)
    finally:
        await close_app(app)
    return sent


async def test_a_body_that_stops_arriving_is_answered_408_within_the_deadline(
    redis: Redis, clock: FixedClock
) -> None:
    app = create_app(make_settings(webhook_body_timeout_s=0.05), redis=redis, clock=clock)
    first = [{"type": "http.request", "body": b'{"id": "', "more_body": True}]
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if first:
            return first.pop()
        await never.wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    sent = await run_delivery(app, http_scope(1000), receive)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    body = sent[1]["body"].decode()
    assert "did not arrive within 0.05 s" in body and "CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S" in body
    assert await redis.dbsize() == 0


async def test_a_body_that_trickles_in_for_ever_is_answered_408(
    redis: Redis, clock: FixedClock
) -> None:
    # Every receive brings one more byte at once: only a deadline on the whole body ends it.
    app = create_app(make_settings(webhook_body_timeout_s=0.05), redis=redis, clock=clock)
    chunks = 0

    async def receive() -> dict[str, Any]:
        nonlocal chunks
        chunks += 1
        await asyncio.sleep(0)
        return {"type": "http.request", "body": b" ", "more_body": True}

    sent = await run_delivery(app, http_scope(None), receive)
    assert sent[0]["status"] == 408
    assert chunks > 1
    async with client_for(app) as http:
        lines = await metric_lines(http, "clockwall_webhooks_total")
    assert lines == {
        'clockwall_webhooks_total{event="NEW_TIME_ENTRY",outcome="rejected:timeout"}': 1
    }


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    settings = make_settings(redis_url=redis_url(dbs.CORE), webhook_body_timeout_s=0.2)
    server = LiveServer(lambda: create_app(settings))
    server.start()
    yield server
    server.stop()


def test_over_a_real_socket_a_stalled_body_gets_408_and_the_connection_is_closed(
    live_server: LiveServer,
) -> None:
    head = (
        "POST /webhooks/clockify HTTP/1.1\r\nHost: localhost\r\n"
        f"clockify-signature: {TOKEN}\r\nclockify-webhook-event-type: NEW_TIME_ENTRY\r\n"
        "content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(head.encode() + b'{"id": "')
        answer = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.2 s" in answer


def test_the_body_deadline_is_a_setting() -> None:
    env = {"CLOCKIFY_WORKSPACE_ID": WS}
    assert Settings.from_env(env).webhook_body_timeout_s == 10.0
    assert (
        Settings.from_env({**env, "CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S": "2.5"}).webhook_body_timeout_s
        == 2.5
    )
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ConfigError, match="CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S"):
            Settings.from_env({**env, "CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S": bad})
