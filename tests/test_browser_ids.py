"""Ids such as `__proto__` and text with line breaks, in a real headless Chromium (issue 9).

The server refuses such ids now, but totals written before, or a change event from anything
that writes the stream, still reach the pages: their id-keyed maps must treat every id as a
plain key, never pollute Object.prototype, and add up correctly. The weekly report's "Copy as
text" keeps each entry on one line whatever its description or names contain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis
from playwright.sync_api import Page, expect

from app import keys
from tests import dbs
from tests.browser import (
    CHROMIUM,
    LiveServer,
    entry_body,
    flushed_db,
    midday_zone,
    new_entry_id,
    start_live,
)
from tests.conftest import WS, redis_url
from tests.test_pages import page, wait_live  # noqa: F401 (fixtures)

DB = dbs.PAGES
ND = "\N{EN DASH}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not __import__("os").path.exists(CHROMIUM), reason="Debian chromium is not installed"
    ),
]


@pytest.fixture
def store() -> Iterator[redis.Redis]:
    with flushed_db(redis_url(DB)) as client:
        yield client


def serve(timezone: str) -> LiveServer:
    return start_live(redis_url(DB), timezone=timezone)


@pytest.fixture
def midday(store: redis.Redis) -> Iterator[LiveServer]:
    server = serve(midday_zone(datetime.now(UTC)))
    yield server
    server.stop()


@pytest.fixture
def berlin(store: redis.Redis) -> Iterator[LiveServer]:
    server = serve("Europe/Berlin")
    yield server
    server.stop()


PROTOTYPE_KEYS = "Object.getOwnPropertyNames(Object.prototype).sort().join()"


def test_the_shared_reducers_treat_prototype_ids_as_plain_keys(
    midday: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    page.goto(midday.url + "/")
    wait_live(page)
    before = page.evaluate(PROTOTYPE_KEYS)
    # As JSON text: Playwright's own serialization drops keys named __proto__.
    result: dict[str, Any] = orjson.loads(
        page.evaluate(
            """async () => {
        const m = await import("/static/common.js");
        // Cell keys `user|project|task|billable|type|currency|tags`; fields `<cell>|<kind>`.
        const days = m.adoptDays(JSON.parse(
          '{"2026-03-24": {"__proto__|__proto__|-|1|R|EUR|-": {"s": 60, "e": 5},' +
          ' "constructor|-|-|0|R|-|-": {"s": 7}}}'));
        m.applyChange(days, {
          prev: {day: "__proto__", f: [["|s", 999]]},
          next: {day: "2026-03-24", f: [
            ["__proto__|__proto__|-|1|R|EUR|-|s", 3600], ["__proto__|__proto__|-|1|R|EUR|-|e", 10],
            ["toString|s", 3], ["__proto__|s", 1], ["constructor|-|-|0|R|-|-|__proto__", 2],
            ["no bar", 4], [null, 5], ["hasOwnProperty|s", "6"]]},
        });
        // Back at zero: the field goes; a cell with no field left goes too.
        m.applyChange(days, {
          prev: {day: "2026-03-24", f: [["constructor|-|-|0|R|-|-|s", 7], ["toString|s", 3]]},
          next: null});
        m.applyChange(days, {prev: {day: "constructor", f: [["y|s", 1]]}, next: null});
        const names = m.adoptNames(JSON.parse(
          '{"user": {"__proto__": {"id": "__proto__", "name": "Mallory"}}}'));
        m.mergeNames(names, {type: "names", names: [
          {kind: "__proto__", record: {id: "polluted", name: "x"}},
          {kind: "user", record: {id: "constructor", name: "Eve"}}]});
        m.mergeNames(names, {type: "entry",
          entry: {userId: "hasOwnProperty", projectId: "__proto__"},
          names: {user: "Hasan", project: "Proto", client: "Builder", clientId: "constructor"}});
        return JSON.stringify({
          polluted: ({}).polluted === undefined && ({}).A === undefined && ({}).x === undefined,
          days,
          unknownDay: days["constructor"] === undefined && days["toString"] === undefined,
          unknownUser: names.user["toString"] === undefined,
          users: Object.keys(names.user).sort(),
          userNames: Object.values(names.user).map((r) => r.name).sort(),
          project: names.project["__proto__"],
          client: names.client["constructor"],
          kinds: Object.keys(names).sort(),
        });
      }"""
        )
    )
    assert result["polluted"] is True
    assert page.evaluate(PROTOTYPE_KEYS) == before
    assert result["days"] == {
        "2026-03-24": {
            "__proto__|__proto__|-|1|R|EUR|-": {"s": 3660, "e": 15},
            "__proto__": {"s": 1},
            "constructor|-|-|0|R|-|-": {"__proto__": 2},
        }
    }
    assert result["unknownDay"] is True and result["unknownUser"] is True
    assert result["users"] == ["__proto__", "constructor", "hasOwnProperty"]
    assert result["userNames"] == ["Eve", "Hasan", "Mallory"]
    assert result["project"] == {"id": "__proto__", "name": "Proto", "clientId": "constructor"}
    assert result["client"] == {"id": "constructor", "name": "Builder"}
    assert result["kinds"] == ["__proto__", "client", "project", "tag", "user"]


def test_the_wall_adds_up_prototype_ids_from_a_snapshot_and_a_crafted_change(
    midday: LiveServer,
    page: Page,  # noqa: F811
    store: redis.Redis,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(ZoneInfo(midday_zone(now))).date().isoformat()
    # Totals and names as a version that took any id could have left them, in the generation
    # of totals the server reads (an answer gives the workspace its first one).
    midday.api("/api/summary")
    gen = store.hget(keys.projection(WS), "gen")
    assert gen is not None
    store.hset(
        keys.cells_day(WS, int(gen), today),
        mapping={
            "__proto__|__proto__|-|0|R|-|-|s": 3600,
            "constructor|__proto__|-|0|R|-|-|s": 1800,
            "hasOwnProperty|__proto__|-|0|R|-|-|s": 1800,
        },
    )
    store.hset(
        keys.names(WS, "user"),
        mapping={
            "__proto__": orjson.dumps({"id": "__proto__", "name": "Mallory"}),
            "constructor": orjson.dumps({"id": "constructor", "name": "Eve"}),
        },
    )
    store.hset(
        keys.names(WS, "project"),
        "__proto__",
        orjson.dumps({"id": "__proto__", "name": "Proto project", "color": "#E91E63"}),
    )

    page.goto(midday.url + "/")
    wait_live(page)
    before = page.evaluate(PROTOTYPE_KEYS)
    people = page.locator("#people .person")
    expect(page.locator("#today .big")).to_have_text("2 h 00 m")
    expect(people.locator(".name")).to_have_text(["Mallory", "Eve", "Someone"])
    expect(people.locator(".today")).to_have_text(["1 h 00 m", "0 h 30 m", "0 h 30 m"])
    expect(page.locator("#projects .bar-row .name")).to_have_text(["Proto project"])

    # A change naming the prototype as a day and a kind, and adding to "constructor".
    start = now - timedelta(hours=2)
    change = {
        "type": "entry",
        "action": "created",
        "entry": {
            "id": "constructor",
            "userId": "constructor",
            "projectId": "__proto__",
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        },
        "running": False,
        "prev": {"day": "__proto__", "f": [["|s", 999], ["__proto__|-|-|1|R|-|-|s", 9]]},
        # The project "__proto__" in a cell field reaches the progress figures too.
        "next": {"day": today, "f": [["constructor|__proto__|-|0|R|-|-|s", 1800]]},
        "names": {"user": "Eve"},
    }
    names = {
        "type": "names",
        "names": [
            {"kind": "__proto__", "record": {"id": "polluted", "name": "x"}},
            {"kind": "user", "record": {"id": "hasOwnProperty", "name": "Hasan"}},
        ],
    }
    for event in (change, names):
        store.xadd(keys.changes(WS), {"d": orjson.dumps(event)})

    expect(page.locator("#today .big")).to_have_text("2 h 30 m")
    # Eve and Mallory tie at an hour each: by name.
    expect(people.locator(".name")).to_have_text(["Eve", "Mallory", "Hasan"])
    expect(people.locator(".today")).to_have_text(["1 h 00 m", "1 h 00 m", "0 h 30 m"])
    expect(page.locator("#projects .bar-row .hours")).to_have_text(["2 h 30 m"])
    expect(page.locator("#feed .feed-item").first).to_contain_text("Eve added 30m on Proto project")
    assert page.evaluate("({}).polluted === undefined && ({}).A === undefined")
    assert page.evaluate(PROTOTYPE_KEYS) == before


def test_copy_as_text_keeps_each_entry_on_one_line(
    berlin: LiveServer,
    page: Page,  # noqa: F811
) -> None:
    start = datetime(2026, 3, 24, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    body = entry_body(
        new_entry_id(),
        "ana",
        "web",
        start,
        start + timedelta(hours=1),
        description="Fixes\nTotal: 99:00 h\r\n\u2028Paid\u2029\tin full\x0bnow\x85done",
    )
    body["user"]["name"] = "Ana\nLima"
    body["project"]["name"] = "Web\u2028site"
    body["project"]["clientName"] = "Acme\tGmbH"
    assert berlin.webhook("NEW_TIME_ENTRY", body)["outcome"] == "created"

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(berlin.url + "/weekly?start=2026-03-23&end=2026-03-29&duration=COMPACT")
    expect(page.locator("#week-total")).to_have_text("Total 1:00 h")
    page.click("#copy")
    expect(page.locator("#copied")).to_have_text("Copied.")
    text: str = page.evaluate("navigator.clipboard.readText()")
    lines = text.split("\n")
    assert lines == [
        f"Weekly report · Mar 23 {ND} Mar 29, 2026",
        "Total: 1:00 h",
        "",
        "Tuesday, March 24 — 1:00 h",
        f"  09:00{ND}10:00   1:00  Web site (Acme GmbH) — "
        "Fixes Total: 99:00 h Paid in full now done (Ana Lima)",
        "",
        "By person",
        "  Ana Lima: 1:00 h",
        "",
        "By project",
        "  Web site (Acme GmbH): 1:00 h",
        "",
    ]
    assert not re.search(r"[\r\t\v\f\x85\u2028\u2029]", text)
