"""Fuzzing the two doors of the service (in process, over httpx.ASGITransport):

- POST /webhooks/clockify with random headers, event types and bodies (random JSON, valid
  Clockify bodies mutated: wrong types, huge numbers, unicode, nesting, missing fields, raw
  bytes): never a 5xx, and a rejected delivery changes nothing at all in Redis;
- the JSON API with random start, end, groupBy and workspace: never a 5xx, never a write.

"Nothing at all" is Redis's own DEBUG DIGEST of the whole dataset, so this runs on a
redis-server of its own (started with the debug command enabled on loopback).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from app import keys
from app.main import create_app
from app.webhooks import DELETE_EVENTS, ENTRY_KINDS, NAME_EVENTS
from tests.conftest import OTHER_TOKEN, OTHER_WS, TOKEN, WS, make_settings
from tests.consistency import assert_contributions_agree
from tests.payloads import (
    ACME,
    ANA,
    BEN,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBSITE,
    AppClient,
    entry_2022,
    entry_2024,
    new_client,
    new_project,
    new_tag,
    rate,
    report_row,
    rest_row,
    running_timer,
    user_updated,
    without_project,
)
from tests.processes import RedisProcess

pytestmark = pytest.mark.slow
T = TypeVar("T")
E1, E2, E3 = "66f0a0a0a0a0a0a0a0a0a0e1", "66f0a0a0a0a0a0a0a0a0a0e2", "66f0a0a0a0a0a0a0a0a0a0e3"
VALID: list[tuple[str, Any]] = [
    ("NEW_TIME_ENTRY", entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:30:00Z",
                                  tags=(URGENT, ONSITE), hourly_rate=rate(10500))),
    ("NEW_TIMER_STARTED", running_timer(E2, "2026-03-25T07:00:00Z", user=BEN)),
    ("NEW_TIMER_STARTED", running_timer(E3, "2026-03-25T07:00:00Z", keys_absent=True)),
    ("TIMER_STOPPED", entry_2024(E2, "2026-03-25T07:00:00Z", "2026-03-25T08:00:00Z", user=BEN)),
    ("TIME_ENTRY_UPDATED", without_project(entry_2024(E1, "2026-03-24T08:00:00Z",
                                                      "2026-03-24T10:00:00Z"))),
    ("NEW_TIME_ENTRY", entry_2022(E3, "2026-03-23T08:00:00Z", "2026-03-23T08:10:00Z")),
    ("TIME_ENTRY_UPDATED", rest_row(E3, "2026-03-23T08:00:00Z", "2026-03-23T09:00:00Z")),
    ("TIME_ENTRY_UPDATED", report_row(E1, "2026-03-24T08:00:00Z", "2026-03-24T08:45:00Z",
                                      hourly_rate=rate(5000, "USD"))),
    ("TIME_ENTRY_DELETED", {"id": E2, "workspaceId": WS}),
    ("TIME_ENTRY_RESTORED", entry_2024(E2, "2026-03-25T07:00:00Z", "2026-03-25T08:00:00Z")),
    ("TIME_ENTRY_BATCH_DELETED", [{"id": E3, "workspaceId": WS}]),
    ("NEW_TIME_ENTRY", [entry_2024(E3, "2026-03-26T08:00:00Z", "2026-03-26T09:00:00Z",
                                   project=INTERNAL)]),
    ("USER_UPDATED", user_updated(ANA, name="Ana L.")),
    ("PROJECT_UPDATED", new_project(MOBILE, name="Mobile app 2")),
    ("NEW_CLIENT", new_client(ACME)),
    ("NEW_TAG", new_tag(URGENT)),
    ("TAG_DELETED", new_tag(ONSITE)),
    ("NEW_PROJECT", new_project(WEBSITE, ws=OTHER_WS)),
]  # fmt: skip
EVENTS = sorted({*ENTRY_KINDS, *DELETE_EVENTS, *NAME_EVENTS, "NEW_INVOICE", "EXPENSE_CREATED"})
SPECIAL: list[Any] = [
    None, "", 0, -1, 1.5, -0.0, 10**19, -(10**19), 2**63, 2**64 + 1, 10**40, 1e308, -1e308,
    True, False, [], {}, [None], "x" * 70, "\u0000", "é", "😀", "\u202e", "a|b", "{ws}",
    "PT99999999999H", "PT0S", "P1D", "-PT1H", "P", "PT", "PT1.5S", "123", "1e3", " ",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-02T00:00:00+14:00",
    "0500-06-01T10:00:00Z", "9979-12-31T23:00:00-14:00", "2026-03-24T09:00:00",
    "2026-03-24T09:00:00.123456789Z", "2026-02-30T00:00:00Z", "2026-03-24", WS, OTHER_WS,
    {"amount": 10**12, "currency": "EUR"}, {"amount": -5, "currency": "eu"},
    {"id": None}, {"id": "x" * 65}, {"nested": {"deep": [1, {"x": None}]}},
]  # fmt: skip


def encode(value: Any) -> bytes:
    """JSON as a sender might write it: big integers beyond 64 bits, raw unicode."""
    return json.dumps(value, ensure_ascii=False).encode()


def _instant_text(moment: datetime, offset_min: int, form: int) -> str:
    aware = moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=offset_min)))
    if form == 0:
        return moment.isoformat() + "Z"
    if form == 1:
        return aware.isoformat()
    return moment.isoformat()  # naive: taken as UTC


instants = st.builds(
    _instant_text,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.integers(0, 2),
)


def json_values() -> st.SearchStrategy[Any]:
    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
        st.sampled_from(SPECIAL),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)
        ),
        max_leaves=12,
    )


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) inside a body, depth first, in a stable order."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from _slots(value[key])
    elif isinstance(value, list):
        for index in range(len(value)):
            yield value, index
            yield from _slots(value[index])


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid Clockify body with one to four fields changed, removed, nested or retyped."""
    event, body = draw(st.sampled_from(VALID))
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(1, 4))):
        slots = list(_slots(body))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(("set", "set", "delete", "nest", "special", "instant")))
        if action == "instant":  # times are where the arithmetic is: any year, any offset
            interval = body.get("timeInterval") if isinstance(body, dict) else None
            if isinstance(interval, dict):
                interval[draw(st.sampled_from(("start", "end")))] = draw(instants)
                continue
        if action == "delete" and isinstance(container, dict):
            del container[key]
        elif action == "nest":
            container[key] = draw(st.sampled_from(([container[key]], {"value": container[key]})))
        elif action == "special":  # copies: SPECIAL's lists and dicts must stay as they are
            container[key] = copy.deepcopy(draw(st.sampled_from(SPECIAL)))
        else:
            container[key] = copy.deepcopy(draw(json_values()))
    if draw(st.booleans()):
        event = draw(st.sampled_from(EVENTS))
    return event, body


header_text = st.text(
    st.characters(exclude_characters="\r\n\x00", exclude_categories=("Cs",)), max_size=40
)
signatures = st.one_of(
    st.sampled_from([TOKEN, OTHER_TOKEN, "", TOKEN[:-1], TOKEN + "x", " " + TOKEN, TOKEN.lower()]),
    st.none(),
    header_text,
)
event_names = st.one_of(
    st.sampled_from(EVENTS),
    st.sampled_from(EVENTS).map(str.lower),
    st.sampled_from(EVENTS).map(lambda e: f" {e} "),
    st.none(),
    header_text,
)
bodies = st.one_of(
    st.sampled_from(VALID).map(lambda v: encode(v[1])),
    mutated_bodies().map(lambda v: encode(v[1])),
    json_values().map(encode),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"[[[[[[[[[[]]]]]]]]]]", b"\xff\xfe", b"1e999"]),
    st.integers(1, 1200).map(lambda n: b"[" + b"{}," * n + b"{}]"),
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers: list[tuple[bytes, bytes]] = []
    if (signature := draw(signatures)) is not None:
        headers.append((b"clockify-signature", signature.encode()))
    if (event := draw(event_names)) is not None:
        headers.append((b"clockify-webhook-event-type", event.encode()))
    if draw(st.booleans()):
        event, body = draw(mutated_bodies())
        headers = [h for h in headers if h[0] != b"clockify-webhook-event-type"]
        headers.append((b"clockify-webhook-event-type", event.encode()))
        content = encode(body)
    else:
        content = draw(bodies)
    if draw(st.integers(0, 9)) == 0:
        headers.append((b"content-type", draw(header_text).encode()))
    return headers, content


class Rig:
    """The app in process on its own Redis, driven from synchronous Hypothesis tests through
    one event loop kept for the whole module."""

    def __init__(self, tmp: Path) -> None:
        self.runner = asyncio.Runner()
        self.server = RedisProcess(
            tmp, appendonly=False, extra_args=("--enable-debug-command", "local")
        )
        self.run(self.server.start())
        url = self.server.url(5)
        self.app = create_app(make_settings(redis_url=url))
        self.client = AppClient(self.app, timeout=10)
        self.redis = Redis.from_url(url)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    async def digest(self) -> bytes:
        value: bytes = await self.redis.execute_command("DEBUG", "DIGEST")
        return value

    def close(self) -> None:
        async def close() -> None:
            await self.client.aclose()
            await self.app.state.service.redis.aclose()
            await self.redis.aclose()

        try:
            self.run(close())
        finally:
            self.server.kill()
            self.runner.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("fuzz-redis"))
    try:
        for event, body in VALID:  # some state for the fuzz to update, delete and read
            rig.run(rig.client.post("/webhooks/clockify", content=orjson.dumps(body), headers={
                "clockify-signature": TOKEN, "clockify-webhook-event-type": event}))  # fmt: skip
        yield rig
    finally:
        rig.close()


async def _deliver(rig: Rig, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
    before = await rig.digest()
    xlen = await rig.redis.xlen(f"cw:{{{WS}}}:changes")
    response = await rig.client.post("/webhooks/clockify", content=content, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    if 200 <= response.status_code < 300:
        assert "outcome" in response.json() or "outcomes" in response.json()
        # Whatever was accepted stays readable: the reads parse every stored state.
        for path in ("/api/summary", "/api/running", "/api/entries"):
            read = await rig.client.get(path)
            assert read.status_code == 200, (path, read.text)
        return
    assert response.json()["error"]
    assert await rig.redis.xlen(f"cw:{{{WS}}}:changes") == xlen
    assert await rig.digest() == before, f"a rejected ({response.status_code}) delivery wrote"


@settings(max_examples=1500)
@given(delivery=deliveries())
@example(delivery=([(b"clockify-signature", TOKEN.encode())], b"{}"))
@example(  # found by this test: a state before the year 1000 was stored as "500-06-01T..."
    delivery=(
        [
            (b"clockify-signature", TOKEN.encode()),
            (b"clockify-webhook-event-type", b"NEW_TIMER_STARTED"),
        ],
        encode(running_timer("66f0a0a0a0a0a0a0a0a0a0f1", "0500-06-01T10:00:00Z")),
    )
)
def test_webhook_fuzz_never_5xx_and_rejections_change_nothing(
    rig: Rig, delivery: tuple[list[tuple[bytes, bytes]], bytes]
) -> None:
    rig.run(_deliver(rig, *delivery))


date_params = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates(min_value=datetime(2026, 3, 1).date(), max_value=datetime(2026, 4, 30).date()).map(
        lambda d: d.isoformat()
    ),
    instants,
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2026-03-24T25:00", "2026-13-01", "2026-3-1",
                     "20260324", "2026-W13-2", "2026-083", " 2026-03-24 ", "", "now", "-1"]),
    st.text(max_size=30),
)  # fmt: skip
params = st.fixed_dictionaries(
    {},
    optional={
        "start": date_params,
        "end": date_params,
        "groupBy": st.one_of(
            st.sampled_from(["PROJECT", "USER", "CLIENT", "TAG", "DATE", "project", "Date"]),
            st.text(max_size=20),
        ),
        "workspace": st.one_of(st.sampled_from([WS, OTHER_WS, "", "demo"]), st.text(max_size=30)),
        "lastEventId": st.text(max_size=20),
    },
)
paths = st.sampled_from(["/api/summary", "/api/team", "/api/entries", "/api/running"])


async def _read(rig: Rig, path: str, query: dict[str, str]) -> None:
    before = await rig.digest()
    response = await rig.client.get(path, params=query)
    assert response.status_code < 500, (response.status_code, response.text)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]
    assert await rig.digest() == before


@settings(max_examples=1500)
@given(path=paths, query=params)
@example(path="/api/summary", query={"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-02"})
@example(path="/api/team", query={"start": "9999-12-31", "end": "9999-12-31T23:59:59-01:00"})
def test_api_fuzz_never_5xx_and_never_writes(rig: Rig, path: str, query: dict[str, str]) -> None:
    rig.run(_read(rig, path, query))


def test_after_the_fuzz_every_entry_agrees_with_its_contribution(rig: Rig) -> None:
    """Whatever the fuzz got accepted is consistent and readable, day by day."""

    async def check() -> None:
        assert await assert_contributions_agree(rig.redis) >= 3
        prefix = keys.day_list(WS, 0, "")
        days = sorted([k.decode()[len(prefix) :] async for k in rig.redis.scan_iter(prefix + "*")])
        assert days  # the entries the fuzz got accepted are listed on their days
        for day in days[:300]:
            answer = await rig.client.get("/api/entries", params={"start": day, "end": day})
            assert answer.status_code == 200, (day, answer.text)
            for group in ("PROJECT", "TAG"):
                params = {"start": day, "end": day, "groupBy": group}
                assert (await rig.client.get("/api/summary", params=params)).status_code == 200

    rig.run(check())


def test_a_whole_month_before_the_year_1000_reads_its_rollup(rig: Rig) -> None:
    body = entry_2024("66f0a0a0a0a0a0a0a0a0a0f4", "0999-06-10T10:00:00Z", "0999-06-10T11:00:00Z")

    async def check() -> tuple[int, int]:
        headers = {"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"}
        posted = await rig.client.post("/webhooks/clockify", content=encode(body), headers=headers)
        assert posted.status_code == 200, posted.text
        totals = []
        for start in ("0999-06-01", "0999-06-02"):  # the whole month, and all but its first day
            answer = await rig.client.get(
                "/api/summary", params={"start": start, "end": "0999-06-30"}
            )
            totals.append(answer.json()["totalSeconds"])
        return totals[0], totals[1]

    whole_month, without_first_day = rig.run(check())
    assert without_first_day == 3600
    assert whole_month == 3600
