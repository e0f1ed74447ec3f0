"""POST /webhooks/clockify end to end into the real Redis, read back through the JSON API.

Every expected number is worked out by hand in the test. Bad input must answer 4xx with a
message, change nothing in Redis and append nothing to the change stream.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.main import create_app
from tests.conftest import OTHER_TOKEN, OTHER_WS, TOKEN, WS, FixedClock, make_settings
from tests.payloads import (
    ACME,
    ANA,
    BEN,
    CHLOE,
    GLOBEX,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBHOOK_PATH,
    WEBSITE,
    client_for,
    entry_2022,
    entry_2024,
    new_client,
    new_project,
    new_tag,
    post_webhook,
    rate,
    report_row,
    rest_row,
    running_timer,
    user_updated,
    without_project,
)

WEEK = {"start": "2026-03-23", "end": "2026-03-29"}  # the clock's week (Mon..Sun)
E1 = "65f0a0a0a0a0a0a0a0a0a0e1"
E2 = "65f0a0a0a0a0a0a0a0a0a0e2"
E3 = "65f0a0a0a0a0a0a0a0a0a0e3"
UNKNOWN_WS = "7a0e1a2b3c4d5e6f7a8b9c0f"


async def accept(client: httpx.AsyncClient, event: str, body: Any) -> dict[str, Any]:
    response = await post_webhook(client, event, body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def get(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def summary(
    client: httpx.AsyncClient, group: str, start: str = WEEK["start"], end: str = WEEK["end"]
) -> dict[str, Any]:
    answer = await get(client, "/api/summary", groupBy=group, start=start, end=end)
    if group == "DATE":
        # The Date grouping lists every day of the range, as Clockify's does; these tests
        # look at the days that hold time.
        days = answer["groups"]
        assert [g["id"] for g in days] == sorted(g["id"] for g in days)
        assert len(days) == (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
        answer["groups"] = [g for g in days if g["totalSeconds"] or g["runningSeconds"]]
    return dict(answer)


def by_id(answer: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {g["id"]: g for g in answer["groups"]}


async def xlen(redis: Redis, ws: str = WS) -> int:
    return int(await redis.xlen(keys.changes(ws)))


# Time-entry events, end to end -----------------------------------------------------------
async def test_manual_entry_reaches_every_total(client: httpx.AsyncClient, redis: Redis) -> None:
    # 1h30m at 105.00 EUR/h, billable, two tags: 5400 s and 1.5 h x 105.00 = 157.50 EUR.
    body = entry_2024(
        E1,
        "2026-03-24T08:00:00Z",
        "2026-03-24T09:30:00Z",
        tags=(URGENT, ONSITE),
        hourly_rate=rate(10500, "EUR"),
    )
    answer = await accept(client, "NEW_TIME_ENTRY", body)
    assert answer["outcome"] == "created"
    assert answer["changeId"]
    assert await xlen(redis) == 1

    money = {
        "totalSeconds": 5400,
        "totalHours": 1.5,
        "billableSeconds": 5400,
        "billableAmount": 157.5,
        "currency": "EUR",
        "amounts": [{"currency": "EUR", "amount": 157.5}],
    }
    projects = await summary(client, "PROJECT")
    assert projects["includesRunning"] is False
    assert projects["dateRange"] == WEEK
    assert {k: projects[k] for k in money} == money
    [group] = projects["groups"]
    assert group["id"] == WEBSITE.id
    assert group["name"] == WEBSITE.name
    assert group["color"] == WEBSITE.color
    assert {k: group[k] for k in money} == money

    [user] = (await summary(client, "USER"))["groups"]
    assert (user["id"], user["name"], user["totalSeconds"]) == (ANA.id, ANA.name, 5400)
    [client_group] = (await summary(client, "CLIENT"))["groups"]
    assert (client_group["id"], client_group["name"]) == (ACME.id, ACME.name)
    assert client_group["billableAmount"] == 157.5

    tags = await summary(client, "TAG")
    assert {g["id"]: (g["name"], g["totalSeconds"]) for g in tags["groups"]} == {
        URGENT.id: ("urgent", 5400),
        ONSITE.id: ("on-site", 5400),
    }
    # The entry has two tags but counts once in the TAG total.
    assert {k: tags[k] for k in money} == money

    [day] = (await summary(client, "DATE"))["groups"]
    assert (day["id"], day["totalSeconds"], day["billableAmount"]) == ("2026-03-24", 5400, 157.5)

    team = await get(client, "/api/team", **WEEK)
    assert [u["id"] for u in team["users"]] == [ANA.id]
    assert [p["id"] for p in team["projects"]] == [WEBSITE.id]
    assert team["cells"] == [[5400]]
    assert team["totalSeconds"] == 5400
    assert team["includesRunning"] is False

    entries = (await get(client, "/api/entries", **WEEK))["entries"]
    assert len(entries) == 1
    assert entries[0]["id"] == E1
    assert entries[0]["day"] == "2026-03-24"
    assert entries[0]["durationSeconds"] == 5400
    assert entries[0]["billableAmount"] == 157.5
    assert entries[0]["currency"] == "EUR"
    assert entries[0]["running"] is False
    assert entries[0]["project"]["name"] == WEBSITE.name
    assert entries[0]["client"]["name"] == ACME.name
    assert {t["name"] for t in entries[0]["tags"]} == {"urgent", "on-site"}
    assert (await get(client, "/api/running"))["running"] == []


async def test_timer_started_ticks_then_stops(
    client: httpx.AsyncClient, redis: Redis, clock: FixedClock
) -> None:
    # Started 10:00 UTC, the clock says 12:00: 2 h elapsed, 2 h x 105.00 = 210.00 EUR.
    start = running_timer(E1, "2026-03-25T10:00:00Z", hourly_rate=rate(10500))
    assert (await accept(client, "NEW_TIMER_STARTED", start))["outcome"] == "started"

    [timer] = (await get(client, "/api/running"))["running"]
    assert timer["id"] == E1
    assert timer["user"] == {"id": ANA.id, "name": ANA.name}
    assert timer["project"] == {"id": WEBSITE.id, "name": WEBSITE.name, "color": WEBSITE.color}
    assert timer["client"] == {"id": ACME.id, "name": ACME.name}
    assert timer["elapsedSeconds"] == 7200
    assert timer["billable"] is True
    assert timer["start"] == "2026-03-25T10:00:00Z"

    projects = await summary(client, "PROJECT")
    assert projects["includesRunning"] is True
    assert projects["totalSeconds"] == 7200
    assert projects["runningSeconds"] == 7200
    assert projects["billableAmount"] == 210.0
    team = await get(client, "/api/team", **WEEK)
    assert team["includesRunning"] is True
    assert team["cells"] == [[7200]]
    [row] = (await get(client, "/api/entries", **WEEK))["entries"]
    assert (row["running"], row["durationSeconds"], row["end"]) == (True, 7200, None)

    clock.now = datetime(2026, 3, 25, 12, 30, tzinfo=UTC)  # 2.5 h: 262.50 EUR
    projects = await summary(client, "PROJECT")
    assert (projects["totalSeconds"], projects["billableAmount"]) == (9000, 262.5)
    # A range that does not cover the start day leaves the timer out of the totals...
    other_week = await summary(client, "PROJECT", "2026-03-16", "2026-03-22")
    assert (other_week["totalSeconds"], other_week["includesRunning"]) == (0, False)
    # ...but "working now" shows it whatever the range.
    assert len((await get(client, "/api/running"))["running"]) == 1

    # Stopped at 12:15: 2 h 15 min = 8100 s, 2.25 h x 105.00 = 236.25 EUR.
    stop = entry_2024(E1, "2026-03-25T10:00:00Z", "2026-03-25T12:15:00Z", hourly_rate=rate(10500))
    assert (await accept(client, "TIMER_STOPPED", stop))["outcome"] == "stopped"
    assert (await get(client, "/api/running"))["running"] == []
    projects = await summary(client, "PROJECT")
    assert projects["includesRunning"] is False
    assert (projects["totalSeconds"], projects["billableAmount"]) == (8100, 236.25)
    assert await xlen(redis) == 2

    # A late duplicate of the start does not undo the stop.
    assert (await accept(client, "NEW_TIMER_STARTED", start))["outcome"] == "stale"
    assert (await get(client, "/api/running"))["running"] == []
    assert (await summary(client, "PROJECT"))["totalSeconds"] == 8100
    assert await xlen(redis) == 2


async def test_running_timer_with_absent_end_keys(client: httpx.AsyncClient) -> None:
    body = running_timer(E1, "2026-03-25T11:59:00Z", keys_absent=True, billable=False)
    await accept(client, "NEW_TIMER_STARTED", body)
    [timer] = (await get(client, "/api/running"))["running"]
    assert timer["elapsedSeconds"] == 60
    answer = await summary(client, "USER")
    assert (answer["totalSeconds"], answer["billableSeconds"]) == (60, 0)
    assert answer["billableAmount"] == 0
    assert answer["currency"] is None


async def test_update_replaces_never_double_counts(client: httpx.AsyncClient, redis: Redis) -> None:
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:30:00Z", hourly_rate=rate(10500)),
    )
    # Moved to another project, 2 h, not billable, to another day.
    moved = entry_2024(
        E1, "2026-03-26T13:00:00Z", "2026-03-26T15:00:00Z", project=MOBILE, billable=False
    )
    assert (await accept(client, "TIME_ENTRY_UPDATED", moved))["outcome"] == "updated"
    projects = await summary(client, "PROJECT")
    assert {g["id"]: g["totalSeconds"] for g in projects["groups"]} == {MOBILE.id: 7200}
    assert (projects["totalSeconds"], projects["billableSeconds"]) == (7200, 0)
    assert projects["amounts"] == []
    clients = await summary(client, "CLIENT")
    assert {g["id"]: g["totalSeconds"] for g in clients["groups"]} == {GLOBEX.id: 7200}
    days = await summary(client, "DATE")
    assert {g["id"]: g["totalSeconds"] for g in days["groups"]} == {"2026-03-26": 7200}
    entries = (await get(client, "/api/entries", **WEEK))["entries"]
    assert [(e["day"], e["durationSeconds"]) for e in entries] == [("2026-03-26", 7200)]
    assert (await get(client, "/api/team", **WEEK))["cells"] == [[7200]]
    assert await xlen(redis) == 2
    # The same update again is a duplicate: 2xx, no change event.
    assert (await accept(client, "TIME_ENTRY_UPDATED", moved))["outcome"] == "duplicate"
    assert await xlen(redis) == 2


async def test_delete_then_restore_and_late_events(client: httpx.AsyncClient, redis: Redis) -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", hourly_rate=rate(6000))
    await accept(client, "NEW_TIME_ENTRY", body)
    assert (await summary(client, "PROJECT"))["billableAmount"] == 60.0

    assert (await accept(client, "TIME_ENTRY_DELETED", body))["outcome"] == "deleted"
    for group in ("PROJECT", "USER", "CLIENT", "TAG", "DATE"):
        answer = await summary(client, group)
        assert (answer["groups"], answer["totalSeconds"], answer["amounts"]) == ([], 0, [])
    assert (await get(client, "/api/entries", **WEEK))["entries"] == []
    assert (await get(client, "/api/team", **WEEK))["cells"] == []
    assert await xlen(redis) == 2

    # Late events about the deleted entry change nothing and emit nothing.
    assert (await accept(client, "TIME_ENTRY_DELETED", body))["outcome"] == "duplicate"
    assert (await accept(client, "NEW_TIME_ENTRY", body))["outcome"] in ("duplicate", "stale")
    later = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T10:00:00Z")
    assert (await accept(client, "TIME_ENTRY_UPDATED", later))["outcome"] == "deleted-before"
    assert (await summary(client, "PROJECT"))["totalSeconds"] == 0
    assert await xlen(redis) == 2

    assert (await accept(client, "TIME_ENTRY_RESTORED", body))["outcome"] == "restored"
    answer = await summary(client, "PROJECT")
    assert (answer["totalSeconds"], answer["billableAmount"]) == (3600, 60.0)
    assert await xlen(redis) == 3


async def test_delete_with_only_an_id(client: httpx.AsyncClient, redis: Redis) -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
    await accept(client, "NEW_TIME_ENTRY", body)
    answer = await accept(client, "TIME_ENTRY_DELETED", {"id": E1, "workspaceId": WS})
    assert answer["outcome"] == "deleted"
    assert (await summary(client, "USER"))["totalSeconds"] == 0
    assert (await get(client, "/api/entries", **WEEK))["entries"] == []


async def test_delete_of_a_running_timer(client: httpx.AsyncClient) -> None:
    await accept(client, "NEW_TIMER_STARTED", running_timer(E1, "2026-03-25T11:00:00Z"))
    assert (await summary(client, "USER"))["totalSeconds"] == 3600
    await accept(client, "TIME_ENTRY_DELETED", running_timer(E1, "2026-03-25T11:00:00Z"))
    assert (await get(client, "/api/running"))["running"] == []
    answer = await summary(client, "USER")
    assert (answer["totalSeconds"], answer["includesRunning"]) == (0, False)


async def test_split_keeps_the_total(client: httpx.AsyncClient) -> None:
    # 08:00-12:00 split at 10:00: the original shrinks, the second half is a new entry.
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T12:00:00Z", hourly_rate=rate(10000)),
    )
    first = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T10:00:00Z", hourly_rate=rate(10000))
    second = entry_2024(E2, "2026-03-24T10:00:00Z", "2026-03-24T12:00:00Z", hourly_rate=rate(10000))
    assert (await accept(client, "TIME_ENTRY_SPLIT", first))["outcome"] == "updated"
    await accept(client, "TIME_ENTRY_SPLIT", second)
    answer = await summary(client, "PROJECT")
    assert (answer["totalSeconds"], answer["billableAmount"]) == (4 * 3600, 400.0)
    entries = (await get(client, "/api/entries", **WEEK))["entries"]
    assert [(e["id"], e["durationSeconds"]) for e in entries] == [(E1, 7200), (E2, 7200)]


async def test_stop_before_start_then_late_start(client: httpx.AsyncClient) -> None:
    stop = entry_2024(E1, "2026-03-25T09:00:00Z", "2026-03-25T09:45:00Z")
    await accept(client, "TIMER_STOPPED", stop)
    await accept(client, "NEW_TIMER_STARTED", running_timer(E1, "2026-03-25T09:00:00Z"))
    answer = await summary(client, "USER")
    assert (answer["totalSeconds"], answer["includesRunning"]) == (2700, False)
    assert (await get(client, "/api/running"))["running"] == []


@pytest.mark.parametrize("empty_string", [False, True])
async def test_entry_without_project(client: httpx.AsyncClient, empty_string: bool) -> None:
    body = without_project(
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T08:20:00Z"), empty_string
    )
    await accept(client, "NEW_TIME_ENTRY", body)
    [project] = (await summary(client, "PROJECT"))["groups"]
    assert (project["id"], project["name"], project["totalSeconds"]) == (
        None,
        "(Without project)",
        1200,
    )
    [client_group] = (await summary(client, "CLIENT"))["groups"]
    assert (client_group["id"], client_group["name"]) == (None, "(Without client)")
    [tag] = (await summary(client, "TAG"))["groups"]
    assert (tag["id"], tag["name"]) == (None, "(Without tag)")
    team = await get(client, "/api/team", **WEEK)
    assert team["projects"][0]["id"] is None
    assert team["cells"] == [[1200]]
    [row] = (await get(client, "/api/entries", **WEEK))["entries"]
    assert row["project"] is None and row["client"] is None


async def test_2022_body_rest_row_and_report_row(client: httpx.AsyncClient) -> None:
    # 2022: 1 h at 90.00 USD = 90.00; REST row: 45 min, not billable; Reports row: 2 h at
    # 50.00 GBP = 100.00.
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2022(
            E1, "2026-03-23T08:00:00Z", "2026-03-23T09:00:00Z", hourly_rate=rate(9000, "USD")
        ),
    )
    await accept(
        client, "NEW_TIME_ENTRY", rest_row(E2, "2026-03-23T10:00:00Z", "2026-03-23T10:45:00Z")
    )
    await accept(
        client,
        "NEW_TIME_ENTRY",
        report_row(
            E3, "2026-03-23T12:00:00Z", "2026-03-23T14:00:00Z", hourly_rate=rate(5000, "GBP")
        ),
    )
    users = by_id(await summary(client, "USER"))
    assert users[BEN.id]["totalSeconds"] == 3600
    assert users[BEN.id]["amounts"] == [{"currency": "USD", "amount": 90.0}]
    assert users[CHLOE.id]["totalSeconds"] == 2700
    assert users[CHLOE.id]["billableSeconds"] == 0
    assert users[ANA.id]["amounts"] == [{"currency": "GBP", "amount": 100.0}]
    assert users[ANA.id]["name"] == ANA.name  # from the Reports row's userName
    projects = by_id(await summary(client, "PROJECT"))
    assert projects[INTERNAL.id]["name"] == INTERNAL.id  # a REST row carries no names
    assert projects[WEBSITE.id]["name"] == WEBSITE.name


async def test_multi_currency_amounts(client: httpx.AsyncClient) -> None:
    # Ana: 1h30m at 105.00 EUR = 157.50 EUR on Website; 2 h at 90.00 USD = 180.00 USD on Mobile;
    # 25 min at 10.01 EUR = 4.17083.. -> 4.17 EUR (rounded per entry) on Website.
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:30:00Z", hourly_rate=rate(10500)),
    )
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(
            E2,
            "2026-03-24T10:00:00Z",
            "2026-03-24T12:00:00Z",
            project=MOBILE,
            hourly_rate=rate(9000, "USD"),
        ),
    )
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E3, "2026-03-25T08:00:00Z", "2026-03-25T08:25:00Z", hourly_rate=rate(1001)),
    )
    user = await summary(client, "USER")
    [ana] = user["groups"]
    # EUR 157.50 + 4.17 = 161.67; USD 180.00 is the larger amount, so the primary currency.
    assert ana["amounts"] == [
        {"currency": "USD", "amount": 180.0},
        {"currency": "EUR", "amount": 161.67},
    ]
    assert (ana["currency"], ana["billableAmount"]) == ("USD", 180.0)
    assert user["amounts"] == ana["amounts"]
    assert user["totalSeconds"] == 5400 + 7200 + 1500
    projects = by_id(await summary(client, "PROJECT"))
    assert projects[WEBSITE.id]["amounts"] == [{"currency": "EUR", "amount": 161.67}]
    assert projects[MOBILE.id]["amounts"] == [{"currency": "USD", "amount": 180.0}]
    days = by_id(await summary(client, "DATE"))
    assert days["2026-03-25"]["amounts"] == [{"currency": "EUR", "amount": 4.17}]


async def test_time_zone_bucketing(client: httpx.AsyncClient) -> None:
    # Europe/Berlin: 23:30 UTC on 24 March (CET, +1) is 00:30 on the 25th; 22:30 UTC on 29
    # March (CEST after the switch that night, +2) is 00:30 on the 30th.
    await accept(
        client, "NEW_TIME_ENTRY", entry_2024(E1, "2026-03-24T23:30:00Z", "2026-03-25T00:15:00Z")
    )
    await accept(
        client, "NEW_TIME_ENTRY", entry_2024(E2, "2026-03-29T22:30:00Z", "2026-03-29T23:00:00Z")
    )
    assert (await summary(client, "DATE", "2026-03-24", "2026-03-24"))["totalSeconds"] == 0
    days = by_id(await summary(client, "DATE", "2026-03-20", "2026-04-05"))
    assert {d: g["totalSeconds"] for d, g in days.items()} == {
        "2026-03-25": 2700,
        "2026-03-30": 1800,
    }
    assert (await summary(client, "PROJECT"))["totalSeconds"] == 2700  # the 30th is next week
    entries = (await get(client, "/api/entries", start="2026-03-30", end="2026-03-30"))["entries"]
    assert [(e["id"], e["day"]) for e in entries] == [(E2, "2026-03-30")]


async def test_month_totals_follow_edits_across_the_month_boundary(
    client: httpx.AsyncClient,
) -> None:
    # 28 Feb 23:30 UTC is 1 March in Berlin; 31 March 22:30 UTC is 1 April (CEST, +2).
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-02-28T23:30:00Z", "2026-03-01T00:30:00Z", hourly_rate=rate(10500)),
    )
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E2, "2026-03-31T22:30:00Z", "2026-03-31T23:00:00Z", hourly_rate=rate(10500)),
    )

    async def month(start: str, end: str) -> tuple[int, float]:
        answer = await summary(client, "PROJECT", start, end)
        return answer["totalSeconds"], answer["billableAmount"]

    assert await month("2026-02-01", "2026-02-28") == (0, 0)
    assert await month("2026-03-01", "2026-03-31") == (3600, 105.0)
    assert await month("2026-04-01", "2026-04-30") == (1800, 52.5)
    assert await month("2026-02-01", "2026-04-30") == (5400, 157.5)
    # Moved back by an hour: 21:30 UTC on 31 March is still March in Berlin.
    await accept(
        client,
        "TIME_ENTRY_UPDATED",
        entry_2024(E2, "2026-03-31T21:30:00Z", "2026-03-31T22:00:00Z", hourly_rate=rate(10500)),
    )
    assert await month("2026-03-01", "2026-03-31") == (5400, 157.5)
    assert await month("2026-04-01", "2026-04-30") == (0, 0)
    await accept(client, "TIME_ENTRY_DELETED", {"id": E1, "workspaceId": WS})
    assert await month("2026-03-01", "2026-03-31") == (1800, 52.5)
    assert await month("2026-01-01", "2026-12-31") == (1800, 52.5)


async def test_name_events_rename(client: httpx.AsyncClient, redis: Redis) -> None:
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", tags=(URGENT,)),
    )
    before = await xlen(redis)
    for event, body in (
        ("USER_UPDATED", user_updated(ANA, name="Ana L.")),
        ("NEW_PROJECT", new_project(WEBSITE, name="Website 2026", color="#FF5722")),
        ("NEW_CLIENT", new_client(ACME, name="ACME Group")),
        ("NEW_TAG", new_tag(URGENT, name="asap")),
    ):
        assert (await accept(client, event, body))["outcome"] == "names"
    assert await xlen(redis) == before + 4
    assert (await accept(client, "NEW_TAG", new_tag(URGENT, name="asap")))["outcome"] == (
        "unchanged"
    )
    assert await xlen(redis) == before + 4

    [user] = (await summary(client, "USER"))["groups"]
    assert user["name"] == "Ana L."
    [project] = (await summary(client, "PROJECT"))["groups"]
    assert (project["name"], project["color"]) == ("Website 2026", "#FF5722")
    assert project["estimateSeconds"] == 120 * 3600
    [client_group] = (await summary(client, "CLIENT"))["groups"]
    assert client_group["name"] == "ACME Group"
    [tag] = (await summary(client, "TAG"))["groups"]
    assert tag["name"] == "asap"
    [timerless] = (await get(client, "/api/entries", **WEEK))["entries"]
    assert timerless["user"]["name"] == "Ana L."


async def test_new_project_sets_the_client_of_later_rest_rows(client: httpx.AsyncClient) -> None:
    await accept(client, "NEW_PROJECT", new_project(MOBILE))
    row = rest_row(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", project=MOBILE)
    await accept(client, "NEW_TIME_ENTRY", row)
    [group] = (await summary(client, "CLIENT"))["groups"]
    assert (group["id"], group["name"], group["totalSeconds"]) == (GLOBEX.id, GLOBEX.name, 3600)


async def test_batch_body(client: httpx.AsyncClient) -> None:
    rows = [
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z"),
        entry_2024(E2, "2026-03-24T09:00:00Z", "2026-03-24T09:30:00Z"),
    ]
    answer = await accept(client, "TIME_ENTRY_BATCH_DELETED", rows)
    assert answer["outcomes"] == ["deleted", "deleted"]
    await accept(client, "NEW_TIME_ENTRY", rows[0])
    assert (await summary(client, "USER"))["totalSeconds"] == 0


async def test_duplicate_delivery(client: httpx.AsyncClient, redis: Redis) -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
    first = await accept(client, "NEW_TIME_ENTRY", body)
    second = await accept(client, "NEW_TIME_ENTRY", body)
    assert (first["outcome"], second["outcome"]) == ("created", "duplicate")
    assert second["changeId"] is None
    assert await xlen(redis) == 1
    assert (await summary(client, "USER"))["totalSeconds"] == 3600


async def test_unknown_event_is_counted_and_ignored(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    response = await post_webhook(client, "NEW_INVOICE", {"id": "inv1", "workspaceId": WS})
    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored", "event": "NEW_INVOICE"}
    assert await redis.dbsize() == 0
    metrics = (await client.get("/metrics")).text
    assert 'clockwall_webhooks_total{event="NEW_INVOICE",outcome="ignored"} 1.0' in metrics


async def test_metrics_count_outcomes_and_time_each_apply(client: httpx.AsyncClient) -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z")
    await accept(client, "NEW_TIME_ENTRY", body)
    await accept(client, "NEW_TIME_ENTRY", body)  # a duplicate delivery
    await post_webhook(client, "NEW_TIME_ENTRY", body, token="wrong")
    metrics = (await client.get("/metrics")).text
    assert 'clockwall_webhooks_total{event="NEW_TIME_ENTRY",outcome="accepted"} 1.0' in metrics
    assert 'clockwall_webhooks_total{event="NEW_TIME_ENTRY",outcome="duplicate"} 1.0' in metrics
    assert (
        'clockwall_webhooks_total{event="unauthenticated",outcome="rejected:token"} 1.0' in metrics
    )
    assert "clockwall_apply_seconds_count 2.0" in metrics


# Bad input: 4xx with a message, nothing changed ------------------------------------------
async def dump(redis: Redis) -> dict[bytes, Any]:
    """Every key and value of the test database, to prove that nothing changed. The
    projection hash (the generations of totals, created with a workspace's first write) is
    left out: it is not data."""
    out: dict[bytes, Any] = {}
    async for key in redis.scan_iter():
        if key.endswith(b":proj"):
            continue
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            out[key] = await redis.xrange(key)
        elif kind == "string":
            out[key] = await redis.get(key)
        else:
            out[key] = kind
    return out


@pytest.fixture
async def seeded(client: httpx.AsyncClient, redis: Redis) -> dict[str, Any]:
    await accept(
        client,
        "NEW_TIME_ENTRY",
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:30:00Z", hourly_rate=rate(10500)),
    )
    await accept(client, "NEW_TIMER_STARTED", running_timer(E2, "2026-03-25T11:00:00Z"))
    return {
        "db": await dump(redis),
        "summary": await summary(client, "PROJECT"),
        "xlen": await xlen(redis),
    }


async def assert_unchanged(client: httpx.AsyncClient, redis: Redis, seeded: dict[str, Any]) -> None:
    assert await xlen(redis) == seeded["xlen"]
    assert await xlen(redis, OTHER_WS) == 0
    assert await summary(client, "PROJECT") == seeded["summary"]
    assert await dump(redis) == seeded["db"]


def good_body() -> dict[str, Any]:
    return entry_2024(E3, "2026-03-24T10:00:00Z", "2026-03-24T11:00:00Z", hourly_rate=rate(100))


def with_field(path: str, value: Any) -> dict[str, Any]:
    body = good_body()
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[last] = value
    return body


def raw(body: Any) -> bytes:
    return orjson.dumps(body)


BAD_BODIES: list[tuple[str, str, bytes, str]] = [
    ("not-json", "NEW_TIME_ENTRY", b"id=1&start=now", "not valid JSON"),
    ("truncated-json", "NEW_TIME_ENTRY", raw(good_body())[:-5], "not valid JSON"),
    ("empty", "NEW_TIME_ENTRY", b"", "not valid JSON"),
    ("number", "NEW_TIME_ENTRY", b"42", "must be a JSON object"),
    ("string", "TIMER_STOPPED", b'"entry"', "must be a JSON object"),
    ("null", "TIME_ENTRY_UPDATED", b"null", "must be a JSON object"),
    ("bool", "NEW_TIMER_STARTED", b"true", "must be a JSON object"),
    ("empty-list", "NEW_TIME_ENTRY", b"[]", "list of 1 to 1000"),
    ("delete-null", "TIME_ENTRY_DELETED", b"null", "must be a JSON object"),
    ("delete-bad-id", "TIME_ENTRY_DELETED", raw({"id": 5, "workspaceId": WS}), "id must be"),
    ("project-null", "NEW_PROJECT", b"null", "must be an object"),
    ("project-number", "NEW_PROJECT", b"7", "must be an object"),
    ("tag-list", "NEW_TAG", b"[]", "must be an object"),
    ("user-no-id", "USER_UPDATED", raw({"name": "x"}), "id is required"),
    ("client-string", "NEW_CLIENT", b'"ACME"', "must be an object"),
    ("deep-list", "NEW_TIME_ENTRY", b"[" * 100_000, "not valid JSON"),
    ("deep-object", "NEW_TIME_ENTRY", b'{"a":' * 100_000, "not valid JSON"),
    ("huge-number", "NEW_TIME_ENTRY", b"1e400", "not valid JSON"),
    (
        "batch-with-one-bad",
        "NEW_TIME_ENTRY",
        raw([good_body(), {**good_body(), "id": E1, "billable": "yes"}]),
        "billable must be true or false",
    ),
]
for path, value, message in [
    ("id", 123, "id must be a string"),
    ("id", None, "id is required"),
    ("workspaceId", ["x"], "workspaceId must be a string"),
    ("userId", {"id": 1}, "userId must be a string"),
    ("userId", "ana|65d0000000000000000000b1", "userId must be an id"),
    ("timeInterval", None, "timeInterval is required"),
    ("timeInterval", [], "timeInterval must be an object"),
    ("timeInterval.start", None, "timeInterval.start is required"),
    ("timeInterval.start", 1711267200, "timeInterval.start must be a timestamp"),
    ("timeInterval.start", "0001-01-01T00:00:00+01:00", "timeInterval.start must be between"),
    ("timeInterval.end", "2026-03-24T09:00:00Z", "end is before"),
    ("timeInterval.end", "not a time", "timeInterval.end must be a timestamp"),
    ("timeInterval.duration", "90 minutes", "timeInterval.duration must be"),
    ("billable", 1, "billable must be true or false"),
    ("description", {"text": "x"}, "description must be a string"),
    ("projectId", 4, "projectId must be a string"),
    ("project", "Website", "project must be an object"),
    ("task", 3, "task must be an object"),
    ("user", [], "user must be an object"),
    ("tags", {"id": "t"}, "tags must be a list"),
    ("tags", ["urgent"], "tags[0] must be an object"),
    ("tagIds", "t1,t2", "tagIds must be a list"),
    ("hourlyRate", 10500, "hourlyRate must be an object"),
    ("hourlyRate.amount", "105.00", "hourlyRate.amount must be"),
    ("hourlyRate.amount", 10**15, "hourlyRate.amount must be"),
    ("hourlyRate.amount", 1e30, "hourlyRate.amount must be"),
    ("hourlyRate.currency", 978, "hourlyRate.currency must be"),
    ("type", ["REGULAR"], "type must be a string"),
]:
    for event in ("NEW_TIME_ENTRY", "TIME_ENTRY_UPDATED"):
        BAD_BODIES.append(
            (f"{event}-{path}={value!r}"[:60], event, raw(with_field(path, value)), message)
        )


@pytest.mark.parametrize(
    ("event", "body", "message"),
    [pytest.param(e, b, m, id=name) for name, e, b, m in BAD_BODIES],
)
async def test_malformed_body_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
    redis: Redis,
    seeded: dict[str, Any],
    event: str,
    body: bytes,
    message: str,
) -> None:
    response = await post_webhook(client, event, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert response.json()["hint"]
    await assert_unchanged(client, redis, seeded)


@pytest.mark.parametrize(
    ("token", "event", "body", "status", "message"),
    [
        pytest.param(None, "NEW_TIME_ENTRY", good_body(), 401, "token", id="missing-token"),
        pytest.param("", "NEW_TIME_ENTRY", good_body(), 401, "token", id="empty-token"),
        pytest.param(
            "Zq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u",
            "NEW_TIME_ENTRY",
            good_body(),
            401,
            "token",
            id="wrong-token",
        ),
        pytest.param(TOKEN[:-1], "NEW_TIME_ENTRY", good_body(), 401, "token", id="prefix"),
        pytest.param(None, "NEW_TIME_ENTRY", b"not json", 401, "token", id="no-token-bad-body"),
        pytest.param(
            OTHER_TOKEN,
            "NEW_TIME_ENTRY",
            good_body(),
            403,
            "another workspace",
            id="other-token-ws-body",
        ),
        pytest.param(
            OTHER_TOKEN,
            "TIME_ENTRY_DELETED",
            {"id": E1, "workspaceId": WS},
            403,
            "another workspace",
            id="other-token-delete",
        ),
        pytest.param(
            OTHER_TOKEN,
            "NEW_PROJECT",
            new_project(MOBILE),
            403,
            "another workspace",
            id="other-token-project",
        ),
        pytest.param(
            TOKEN,
            "NEW_TIME_ENTRY",
            {**good_body(), "workspaceId": UNKNOWN_WS},
            403,
            "not configured",
            id="unconfigured-workspace",
        ),
        pytest.param(
            TOKEN,
            "TIME_ENTRY_DELETED",
            {"id": E1, "workspaceId": UNKNOWN_WS},
            403,
            "not configured",
            id="unconfigured-workspace-delete",
        ),
        pytest.param(
            TOKEN,
            "NEW_TAG",
            new_tag(URGENT, ws=UNKNOWN_WS),
            403,
            "not configured",
            id="unconfigured-workspace-tag",
        ),
        pytest.param(
            TOKEN,
            "NEW_TIME_ENTRY",
            [good_body(), {**good_body(), "workspaceId": UNKNOWN_WS}],
            403,
            "not configured",
            id="batch-with-unconfigured-workspace",
        ),
        pytest.param(TOKEN, "", good_body(), 400, "event-type header", id="no-event"),
        pytest.param(TOKEN, "NEW TIME ENTRY", good_body(), 400, "event-type", id="odd-event"),
    ],
)
async def test_rejected_delivery_changes_nothing(
    client: httpx.AsyncClient,
    redis: Redis,
    seeded: dict[str, Any],
    token: str | None,
    event: str,
    body: Any,
    status: int,
    message: str,
) -> None:
    response = await post_webhook(client, event, body, token=token)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert TOKEN not in response.text and OTHER_TOKEN not in response.text
    await assert_unchanged(client, redis, seeded)


async def test_missing_event_header_changes_nothing(
    client: httpx.AsyncClient, redis: Redis, seeded: dict[str, Any]
) -> None:
    response = await client.post(
        WEBHOOK_PATH, content=raw(good_body()), headers={"clockify-signature": TOKEN}
    )
    assert response.status_code == 400
    assert "clockify-webhook-event-type" in response.json()["error"]
    await assert_unchanged(client, redis, seeded)


async def test_body_over_the_limit_with_content_length(
    client: httpx.AsyncClient, redis: Redis, seeded: dict[str, Any]
) -> None:
    body = good_body()
    body["description"] = "x" * (1024 * 1024)
    response = await post_webhook(client, "NEW_TIME_ENTRY", body)
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["error"]
    await assert_unchanged(client, redis, seeded)


async def test_body_over_the_limit_chunked(
    client: httpx.AsyncClient, redis: Redis, seeded: dict[str, Any]
) -> None:
    sent: list[int] = []

    async def chunks() -> Any:
        yield b'{"id": "' + E3.encode() + b'", "description": "'
        for _ in range(64):
            sent.append(1)
            yield b"x" * 65536
        yield b'"}'

    request = client.build_request(
        "POST",
        WEBHOOK_PATH,
        content=chunks(),
        headers={"clockify-signature": TOKEN, "clockify-webhook-event-type": "NEW_TIME_ENTRY"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await client.send(request)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert len(sent) < 64  # the endpoint stopped reading early
    await assert_unchanged(client, redis, seeded)


async def test_lying_content_length_is_413(
    client: httpx.AsyncClient, redis: Redis, seeded: dict[str, Any]
) -> None:
    response = await client.post(
        WEBHOOK_PATH,
        content=raw(good_body()),
        headers={
            "clockify-signature": TOKEN,
            "clockify-webhook-event-type": "NEW_TIME_ENTRY",
            "content-length": "99999999999",
        },
    )
    assert response.status_code == 413
    await assert_unchanged(client, redis, seeded)


async def test_body_just_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    body = good_body()
    size = len(raw(body))
    body["customFieldValues"] = [{"value": "y" * (1024 * 1024 - size - 200)}]
    assert len(raw(body)) <= 1024 * 1024
    assert (await accept(client, "NEW_TIME_ENTRY", body))["outcome"] == "created"


async def test_other_token_accepted_in_its_own_workspace(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", ws=OTHER_WS)
    response = await post_webhook(client, "NEW_TIME_ENTRY", body, token=OTHER_TOKEN)
    assert response.status_code == 200, response.text
    assert await xlen(redis, OTHER_WS) == 1
    assert await xlen(redis, WS) == 0
    answer = await get(
        client,
        "/api/summary",
        groupBy="USER",
        workspace=OTHER_WS,
        start=WEEK["start"],
        end=WEEK["end"],
    )
    assert answer["totalSeconds"] == 3600
    assert (await summary(client, "USER"))["totalSeconds"] == 0


async def test_bad_group_by_is_400(client: httpx.AsyncClient) -> None:
    for bad in ("PHASE", "PROJECT,USER,DATE", "USER,USER", ","):
        response = await client.get("/api/summary", params={"groupBy": bad})
        assert response.status_code == 400, bad
        assert "groupBy" in response.json()["error"]


async def test_embedded_store_runs_the_same_path(clock: FixedClock) -> None:
    """REDIS_URL unset: the in-process store (fakeredis + the same Lua) gives the same answers."""
    app = create_app(make_settings(redis_url=None), clock=clock)
    service = app.state.service
    assert service.embedded is True
    body = entry_2024(
        E1,
        "2026-03-24T08:00:00Z",
        "2026-03-24T09:30:00Z",
        tags=(URGENT, ONSITE),
        hourly_rate=rate(10500),
    )
    try:
        async with client_for(app) as http:
            assert (await accept(http, "NEW_TIME_ENTRY", body))["outcome"] == "created"
            assert (await accept(http, "NEW_TIME_ENTRY", body))["outcome"] == "duplicate"
            await accept(http, "NEW_TIMER_STARTED", running_timer(E2, "2026-03-25T11:00:00Z"))
            tags = await summary(http, "TAG")
            # 5400 s + the timer's 3600 s elapsed; 157.50 EUR; two tags, counted once.
            assert (tags["totalSeconds"], tags["billableAmount"]) == (9000, 157.5)
            assert tags["includesRunning"] is True
            assert await service.redis.xlen(keys.changes(WS)) == 2
            await accept(http, "TIME_ENTRY_DELETED", body)
            assert (await summary(http, "USER"))["totalSeconds"] == 3600
            assert (await get(http, "/readyz"))["embeddedStore"] is True
    finally:
        await service.redis.aclose()
