"""CSV exports (`format=csv`), the names endpoint and the API's 400s and 503s, through the real
app into the real Redis: every CSV parses with the csv module and holds the very figures of the
JSON answer to the same query (every grouping, one and two levels, with filters), durations in
the workspace's format and in decimal hours, amounts per currency, text made inert for
spreadsheets.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import api, keys
from app.child_server import free_port
from app.export import format_duration, text
from app.main import create_app
from app.models import Named
from app.reporting import ReportingSettings
from app.reports import DIMENSIONS
from tests.conftest import WS, FixedClock, make_settings
from tests.payloads import (
    ANA,
    BEN,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBSITE,
    Tag,
    User,
    client_for,
    entry_2024,
    post_webhook,
    rate,
)

WEEK = {"start": "2026-03-23", "end": "2026-03-29"}  # the clock's week in Europe/Berlin
BERLIN = ZoneInfo("Europe/Berlin")
EVE = User("65a1b2c3d4e5f60718293a4e", "@Eve Evil", "eve@example.com")
TRICK = Tag("64e0000000000000000000c3", "-trick")
FORMULA = '=HYPERLINK("http://evil.example","click")'


def ids(n: int) -> str:
    return f"65f0a0a0a0a0a0a0a0a0b{n:03d}"


def with_cost(body: dict[str, Any], cost: dict[str, Any]) -> dict[str, Any]:
    return {**body, "costRate": cost}


ENTRIES = [
    # Ana on the website (ACME), a task, 1 h at 100.00 EUR, a description that is a formula.
    entry_2024(
        ids(1),
        "2026-03-24T08:00:00Z",
        "2026-03-24T09:00:00Z",
        tags=(URGENT,),
        hourly_rate=rate(10000),
        description=FORMULA,
        with_task=True,
    ),
    # Ben on the mobile app (Globex), 1:30:17 at 500.00 USD and 20.00 USD cost, two tags.
    with_cost(
        entry_2024(
            ids(2),
            "2026-03-24T10:00:00Z",
            "2026-03-24T11:30:17Z",
            user=BEN,
            project=MOBILE,
            tags=(URGENT, ONSITE),
            hourly_rate=rate(50000, "USD"),
            description="Café crème",
        ),
        rate(2000, "USD"),
    ),
    # Eve ("@Eve Evil"), no project, not billable, 45:30, a tag named "-trick".
    entry_2024(
        ids(3),
        "2026-03-25T07:00:00Z",
        "2026-03-25T07:45:30Z",
        user=EVE,
        project=None,
        tags=(TRICK,),
        billable=False,
        description="Reading",
    ),
    # Ana, internal, 2 h not billable at 30.00 EUR cost: a loss of 60.00.
    with_cost(
        entry_2024(
            ids(4),
            "2026-03-26T09:00:00Z",
            "2026-03-26T11:00:00Z",
            project=INTERNAL,
            billable=False,
            description="Planning",
        ),
        rate(3000),
    ),
    # Ben on the website from 23:30 to 01:15 Berlin time: it ends on the next local day.
    entry_2024(
        ids(5),
        "2026-03-27T22:30:00Z",
        "2026-03-28T00:15:00Z",
        user=BEN,
        hourly_rate=rate(10000),
        description="Launch night",
    ),
]
# Running since 11:00 UTC; the clock says 12:00.
RUNNING = entry_2024(
    ids(6), "2026-03-25T11:00:00Z", None, user=EVE, project=MOBILE, description="Support"
)


@pytest.fixture
async def app(redis: Redis, clock: FixedClock) -> Any:
    return create_app(make_settings(), redis=redis, clock=clock)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture
async def team(client: httpx.AsyncClient) -> httpx.AsyncClient:
    for body in ENTRIES:
        response = await post_webhook(client, "NEW_TIME_ENTRY", body)
        assert response.status_code == 200, response.text
    response = await post_webhook(client, "NEW_TIMER_STARTED", RUNNING)
    assert response.status_code == 200, response.text
    return client


async def use_duration_format(redis: Redis, duration_format: str) -> None:
    stored = ReportingSettings(BERLIN, "MONDAY", "stored", None, duration_format)
    await redis.set(keys.reporting_settings(WS), stored.to_json())


async def get_json(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await client.get(path, params={**WEEK, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


async def get_csv(client: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, str]]:
    response = await client.get(path, params={**WEEK, **params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def seconds_of(full: str) -> int:
    hours, minutes, seconds = (int(part) for part in full.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def money_of(bucket: dict[str, Any], field: str = "amounts") -> dict[str, str]:
    return {item["currency"]: f"{item['amount']:.2f}" for item in bucket.get(field, [])}


def figures(row: dict[str, str], currencies: list[str]) -> dict[str, Any]:
    """What a CSV row says: seconds, billable seconds, amounts, cost and profit by currency."""
    out: dict[str, Any] = {
        "seconds": seconds_of(row["Duration (h:mm:ss)"]),
        "hours": row["Hours (decimal)"],
        "billable": seconds_of(row["Billable duration (h:mm:ss)"]),
    }
    for kind in ("Amount", "Cost", "Profit"):
        out[kind] = {
            c: row[f"{kind} ({c})"]
            for c in currencies
            if row.get(f"{kind} ({c})", "0.00") != "0.00"
        }
    return out


def expected(bucket: dict[str, Any], with_cost: bool) -> dict[str, Any]:
    """The same figures from a JSON summary bucket; profit (earned less cost) where the
    answer has cost."""
    profit = money_of(bucket, "profitAmounts" if "profitAmounts" in bucket else "amounts")
    return {
        "seconds": bucket["totalSeconds"],
        "hours": f"{bucket['totalHours']:.2f}",
        "billable": bucket["billableSeconds"],
        "Amount": money_of(bucket),
        "Cost": money_of(bucket, "costAmounts"),
        "Profit": {c: a for c, a in profit.items() if a != "0.00"} if with_cost else {},
    }


def currencies_of(header: list[str]) -> list[str]:
    return [h[len("Amount (") : -1] for h in header if h.startswith("Amount (")]


GROUPINGS = [(level,) for level in DIMENSIONS] + list(itertools.permutations(DIMENSIONS, 2))
FILTERS: list[dict[str, str]] = [
    {},
    {"users": BEN.id},
    {"projects": f"{WEBSITE.id},none", "billable": "true"},
    {"tags": URGENT.id, "type": "REGULAR"},
    {"description": "a"},
]


async def test_every_summary_csv_holds_the_json_rows_subtotals_and_totals_for_every_grouping(
    team: httpx.AsyncClient,
) -> None:
    for levels, filters in itertools.product(GROUPINGS, FILTERS):
        group_by = ",".join(levels)
        answer = await get_json(team, "/api/summary", groupBy=group_by, **filters)
        rows = await get_csv(team, "/api/summary", groupBy=group_by, **filters)
        what = f"groupBy={group_by} {filters}"
        currencies = currencies_of(list(rows[0]) if rows else [])
        names = [
            {"PROJECT": "Project", "USER": "Person", "CLIENT": "Client", "TAG": "Tag"}.get(
                level, level.title()
            )
            for level in levels
        ]
        *body, total = rows
        cost = bool(answer["costAmounts"])
        assert total[names[0]] == "Total", what
        assert figures(total, currencies) == expected(answer, cost), what
        want: list[tuple[Any, ...]] = []
        got: list[tuple[Any, ...]] = []
        for group in answer["groups"]:
            for child in group.get("children", []):
                want.append((group["name"], child["name"], expected(child, cost)))
            if len(levels) == 2:
                want.append((group["name"], "Subtotal", expected(group, cost)))
            else:
                want.append((group["name"], expected(group, cost)))
        for row in body:
            label = tuple(row[n].removeprefix("'") for n in names)
            got.append((*label, figures(row, currencies)))
        assert got == want, what
        if "TAG" in levels:
            continue  # an entry with two tags counts under both
        # The rows add up to the total: seconds exactly, money to a cent per row.
        leaves = [r for r in body if len(levels) == 1 or r[names[1]] != "Subtotal"]
        assert sum(seconds_of(r["Duration (h:mm:ss)"]) for r in leaves) == answer["totalSeconds"]
        for currency, amount in money_of(answer).items():
            summed = sum(float(r[f"Amount ({currency})"]) for r in leaves)
            assert abs(summed - float(amount)) <= 0.005 * len(leaves) + 1e-9, what


async def test_summary_csv_lists_currencies_largest_first_with_cost_and_profit_and_clients(
    team: httpx.AsyncClient,
) -> None:
    response = await team.get("/api/summary", params={**WEEK, "format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "Project",
        "Client",
        "Duration (h:mm:ss)",
        "Hours (decimal)",
        "Billable duration (h:mm:ss)",
        "Billable hours (decimal)",
        # USD 752.36 before EUR 275.00: the larger total first, not the alphabet.
        "Amount (USD)",
        "Amount (EUR)",
        "Cost (USD)",
        "Cost (EUR)",
        "Profit (USD)",
        "Profit (EUR)",
    ]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["Website relaunch"][1:4] == ["ACME GmbH", "2:45:00", "2.75"]
    assert by_name["Internal"][1] == ""
    assert by_name["Internal"][-1] == "-60.00"  # a number, never quoted as text
    assert by_name["(Without project)"][2] == "0:45:30"
    # Mobile: 1:30:17 stopped and the hour running until the clock's noon.
    assert by_name["Mobile app"][1:4] == ["Globex Ltd", "2:30:17", "2.50"]
    assert by_name["Mobile app"][6:12] == ["752.36", "0.00", "30.09", "0.00", "722.27", "0.00"]
    assert rows[-1][:3] == ["Total", "", "8:00:47"]


async def test_two_level_csv_puts_the_parent_first_with_a_subtotal_per_parent(
    team: httpx.AsyncClient,
) -> None:
    rows = await get_csv(team, "/api/summary", groupBy="CLIENT,PROJECT")
    assert [(r["Client"], r["Project"], r["Duration (h:mm:ss)"]) for r in rows] == [
        ("(Without client)", "Internal", "2:00:00"),
        ("(Without client)", "(Without project)", "0:45:30"),
        ("(Without client)", "Subtotal", "2:45:30"),
        ("ACME GmbH", "Website relaunch", "2:45:00"),
        ("ACME GmbH", "Subtotal", "2:45:00"),
        ("Globex Ltd", "Mobile app", "2:30:17"),
        ("Globex Ltd", "Subtotal", "2:30:17"),
        ("Total", "", "8:00:47"),
    ]
    # With the project first, its client stands beside it; a subtotal row has none.
    rows = await get_csv(team, "/api/summary", groupBy="PROJECT,USER")
    website = [r for r in rows if r["Project"] == "Website relaunch"]
    assert [(r["Person"], r["Client"]) for r in website] == [
        ("Ben Okafor", "ACME GmbH"),
        ("Ana Lopez", "ACME GmbH"),
        ("Subtotal", "ACME GmbH"),
    ]


async def test_team_csv_has_a_row_per_person_a_column_per_project_and_both_totals(
    team: httpx.AsyncClient,
) -> None:
    for filters in ({}, {"billable": "false"}, {"projects": MOBILE.id}):
        answer = await get_json(team, "/api/team", **filters)
        response = await team.get("/api/team", params={**WEEK, **filters, "format": "csv"})
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        header, *people, total, total_hours = rows
        projects = [p["name"] for p in answer["projects"]]
        assert header == ["Person", *projects, "Total (h:mm:ss)", "Total (decimal hours)"]
        assert [row[0].removeprefix("'") for row in people] == [u["name"] for u in answer["users"]]
        for row, user, cells in zip(people, answer["users"], answer["cells"], strict=True):
            assert [seconds_of(c) for c in row[1:-1]] == [*cells, user["totalSeconds"]]
            assert row[-1] == f"{user['totalHours']:.2f}"
            assert sum(cells) == user["totalSeconds"]
        columns = [p["totalSeconds"] for p in answer["projects"]]
        assert [seconds_of(c) for c in total[1:-1]] == [*columns, answer["totalSeconds"]]
        assert sum(columns) == answer["totalSeconds"]
        assert total[0] == "Total" and total[-1] == f"{answer['totalHours']:.2f}"
        assert total_hours == [
            "Total (decimal hours)",
            *(f"{p['totalHours']:.2f}" for p in answer["projects"]),
            f"{answer['totalHours']:.2f}",
            f"{answer['totalHours']:.2f}",
        ]


async def test_entries_csv_rows_are_the_json_entries_in_local_time(
    team: httpx.AsyncClient,
) -> None:
    for filters in ({}, {"users": f"{ANA.id},{EVE.id}"}, {"tags": "none"}):
        answer = await get_json(team, "/api/entries", **filters)
        rows = await get_csv(team, "/api/entries", **filters)
        assert len(rows) == len(answer["entries"]) > 0
        for row, entry in zip(rows, answer["entries"], strict=True):
            assert row["Date"] == entry["day"]
            assert seconds_of(row["Duration (h:mm:ss)"]) == entry["durationSeconds"]
            assert row["Hours (decimal)"] == f"{entry['durationSeconds'] / 3600:.2f}"
            assert row["Person"].removeprefix("'") == entry["user"]["name"]
            assert row["Project"] == (entry["project"] or {}).get("name", "")
            assert row["Client"] == (entry["client"] or {}).get("name", "")
            assert row["Task"] == (entry["task"] or {}).get("name", "")
            tags = ", ".join(t["name"] for t in entry["tags"])
            assert row["Tags"].removeprefix("'") == tags
            assert row["Description"].removeprefix("'") == entry["description"]
            assert row["Billable"] == ("Yes" if entry["billable"] else "No")
            assert row["Type"] == entry["type"]
            assert row["Amount"] == f"{entry['billableAmount']:.2f}"
            assert row["Cost"] == f"{entry['costAmount']:.2f}"
            assert row["Currency"] == (entry["currency"] or "")
    rows = {r["Description"]: r for r in await get_csv(team, "/api/entries")}
    # Berlin is UTC+1 in March until the 29th.
    assert (rows["Planning"]["Start"], rows["Planning"]["End"]) == ("10:00:00", "12:00:00")
    night = rows["Launch night"]
    assert (night["Date"], night["Start"], night["End"]) == (
        "2026-03-27",
        "23:30:00",
        "2026-03-28 01:15:00",
    )
    assert (rows["Support"]["End"], rows["Support"]["Duration (h:mm:ss)"]) == (
        "(running)",
        "1:00:00",
    )
    assert rows["Café crème"]["Task"] == ""
    assert rows["'" + FORMULA]["Task"] == "Design review"


async def test_entries_csv_has_no_cost_column_where_no_entry_has_a_cost(
    team: httpx.AsyncClient,
) -> None:
    rows = await get_csv(team, "/api/entries", users=EVE.id)
    assert "Cost" not in rows[0]
    assert [r["Amount"] for r in rows] == ["0.00", "0.00"]


async def test_an_entries_export_larger_than_one_file_holds_says_how_to_narrow_it(
    team: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "CSV_ENTRY_LIMIT", 3)
    response = await team.get("/api/entries", params={**WEEK, "format": "csv"})
    assert response.status_code == 400
    assert "more than 3 entries" in response.json()["error"]
    assert "shorter range" in response.json()["error"]
    assert len(await get_csv(team, "/api/entries", users=BEN.id)) == 2  # within the limit


def test_durations_in_each_of_clockifys_formats() -> None:
    assert [format_duration(s, "FULL") for s in (0, 59, 3661, 360000)] == [
        "0:00:00",
        "0:00:59",
        "1:01:01",
        "100:00:00",
    ]
    # h:mm to the nearest minute, so rows and their total round the same way.
    assert [format_duration(s, "COMPACT") for s in (29, 30, 3661, 3599)] == [
        "0:00",
        "0:01",
        "1:01",
        "1:00",
    ]
    assert [format_duration(s, "DECIMAL") for s in (0, 900, 3661, 5400)] == [
        "0.00",
        "0.25",
        "1.02",
        "1.50",
    ]


@pytest.mark.parametrize(
    ("duration_format", "unit", "website"),
    [("FULL", "h:mm:ss", "2:45:00"), ("COMPACT", "h:mm", "2:45"), ("DECIMAL", "decimal", "2.75")],
)
async def test_the_workspaces_duration_format_shapes_the_csv_and_is_in_every_json_answer(
    team: httpx.AsyncClient, redis: Redis, duration_format: str, unit: str, website: str
) -> None:
    await use_duration_format(redis, duration_format)
    for path in ("/api/summary", "/api/team", "/api/entries"):
        assert (await get_json(team, path))["durationFormat"] == duration_format
    [row] = [r for r in await get_csv(team, "/api/summary") if r["Project"] == "Website relaunch"]
    assert (row[f"Duration ({unit})"], row["Hours (decimal)"]) == (website, "2.75")
    team_rows = await get_csv(team, "/api/team")
    assert f"Total ({unit})" in team_rows[0]
    entry_rows = await get_csv(team, "/api/entries")
    assert f"Duration ({unit})" in entry_rows[0]


async def test_without_stored_reporting_settings_durations_are_full(
    client: httpx.AsyncClient,
) -> None:
    assert (await get_json(client, "/api/summary"))["durationFormat"] == "FULL"
    response = await client.get("/api/summary", params={**WEEK, "format": "csv"})
    assert response.status_code == 200
    assert response.content.decode("utf-8-sig").splitlines() == [
        "Project,Client,Duration (h:mm:ss),Hours (decimal),Billable duration (h:mm:ss),"
        "Billable hours (decimal)",
        "Total,,0:00:00,0.00,0:00:00,0.00",
    ]


def test_a_cell_a_spreadsheet_would_run_as_a_formula_gets_a_leading_quote() -> None:
    for raw in ("=1+2", "+49 30 1234", "-trick", "@SUM(A1)", "\tx", "\rx"):
        assert text(raw) == "'" + raw
    for raw in ("Ana", "1+2", "", "Café", "a=b"):
        assert text(raw) == raw
    assert text(None) == ""


async def test_names_values_and_descriptions_are_inert_in_every_csv(
    team: httpx.AsyncClient,
) -> None:
    people = await get_csv(team, "/api/summary", groupBy="USER")
    assert "'@Eve Evil" in [r["Person"] for r in people]
    tags = await get_csv(team, "/api/summary", groupBy="TAG")
    assert "'-trick" in [r["Tag"] for r in tags]
    response = await team.get("/api/team", params={**WEEK, "format": "csv"})
    assert "\r\n'@Eve Evil," in response.content.decode("utf-8-sig")
    entries = await get_csv(team, "/api/entries")
    assert "'" + FORMULA in [r["Description"] for r in entries]
    assert "'-trick" in [r["Tags"] for r in entries]
    for rows in (people, tags, entries):
        for row in rows:
            assert not any(v.startswith(("=", "+", "@")) for v in row.values())


async def test_csv_is_utf8_with_a_bom_and_downloads_under_the_reports_name_and_range(
    team: httpx.AsyncClient,
) -> None:
    for report in ("summary", "team", "entries"):
        response = await team.get(
            f"/api/{report}",
            params={"start": "2026-03-01", "end": "2026-03-31", "format": "csv"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"] == (
            f'attachment; filename="clockwall-{report}-2026-03-01-2026-03-31.csv"'
        )
        assert response.content[:3] == b"\xef\xbb\xbf"
    response = await team.get("/api/entries", params={**WEEK, "format": "CSV"})
    assert "Café crème" in response.content.decode("utf-8")


async def test_the_names_endpoint_lists_live_names_sorted_with_archived_flagged(
    client: httpx.AsyncClient, app: Any
) -> None:
    store = app.state.service.store
    names = [
        Named("user", ANA.id, "ana Lopez"),
        Named("user", BEN.id, "Ben Okafor"),
        Named("user", EVE.id, "Eve", deleted=True),
        Named("client", "c1", "Zeta AG"),
        Named("client", "c2", "alpha Ltd"),
        Named("client", "c3", "Gone Inc", deleted=True),
        Named("project", "p1", "Website", "#03A9F4", client_id="c1"),
        Named("project", "p2", "Archive", "#8BC34A", client_id="c3", archived=True),
        Named("project", "p3", "Deleted", "#9E9E9E", deleted=True),
        Named("tag", "t1", "urgent"),
        Named("tag", "t2", "Old", deleted=True),
        Named("task", "k1", "Review", project_id="p1"),
        Named("task", "k2", "Orphan", project_id="p3"),
        Named("task", "k3", "Cancelled", project_id="p1", deleted=True),
    ]
    await store.apply_names(WS, names)
    response = await client.get("/api/names", params={"workspace": WS})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "users": [{"id": ANA.id, "name": "ana Lopez"}, {"id": BEN.id, "name": "Ben Okafor"}],
        "projects": [
            # Its client was deleted: the project reports "Without client", as here.
            {"id": "p2", "name": "Archive", "color": "#8BC34A", "clientId": None, "archived": True},
            {"id": "p1", "name": "Website", "color": "#03A9F4", "clientId": "c1"},
        ],
        "clients": [{"id": "c2", "name": "alpha Ltd"}, {"id": "c1", "name": "Zeta AG"}],
        "tags": [{"id": "t1", "name": "urgent"}],
        "tasks": [{"id": "k1", "name": "Review", "projectId": "p1"}],
    }
    # Without `workspace`, the first configured one's.
    assert (await client.get("/api/names")).json() == response.json()
    refused = await client.get("/api/names", params={"workspace": "elsewhere"})
    assert refused.status_code == 400
    assert "not configured here" in refused.json()["error"]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"billable": "maybe"}, "is not true or false"),
        ({"groupBy": "COLOUR"}, "is not one of PROJECT, USER, CLIENT, TAG, TASK, DATE, TYPE"),
        ({"groupBy": "PROJECT,USER,DATE"}, "groupBy takes one or two of PROJECT, USER"),
        ({"type": "LUNCH"}, "is not one of REGULAR, BREAK, HOLIDAY, TIME_OFF"),
        ({"start": "2026-13-01", "end": "2026-03-31"}, "is not a date; use YYYY-MM-DD"),
        ({"start": "2026-03-31", "end": "2026-03-01"}, "is before start"),
        ({"start": "2026-03-01"}, "give both start and end"),
        ({"start": "2025-01-01", "end": "2026-03-01"}, "longer than 366 days"),
        ({"format": "xlsx"}, "format='xlsx' is not one of json, csv"),
    ],
)
async def test_every_malformed_query_gets_a_400_saying_what_is_allowed(
    client: httpx.AsyncClient, params: dict[str, str], says: str
) -> None:
    for path in ("/api/summary", "/api/team", "/api/entries"):
        if "groupBy" in params and path != "/api/summary":
            continue
        for fmt in ({}, {"format": "csv"}):
            response = await client.get(path, params={**fmt, **params})
            assert response.status_code == 400, (path, params, response.text)
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert set(body) == {"error", "hint"}
            assert says in body["error"], (path, body)
            assert "retry" not in body["hint"] and "change" in body["hint"]


async def test_a_malformed_range_on_the_event_stream_is_the_same_400(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/events", params={"start": "2026-03-31", "end": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "end='x' is not a date; use YYYY-MM-DD or an ISO datetime",
        "hint": api.QUERY_HINT,
    }


async def test_a_redis_outage_is_a_503_with_retry_after_on_every_report_and_format(
    clock: FixedClock,
) -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    app = create_app(make_settings(redis_url=None), redis=down, clock=clock)
    async with client_for(app) as client:
        for path in ("/api/summary", "/api/team", "/api/entries", "/api/names", "/api/running"):
            for fmt in ({}, {"format": "csv"}):
                response = await client.get(path, params=fmt)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "5"
                assert response.json() == {
                    "error": "the store (Redis) is unavailable",
                    "hint": "retry shortly; /readyz shows the store's state",
                }
    await down.aclose()


async def test_a_read_past_the_deadline_is_a_503_not_a_hung_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    never = asyncio.Event()

    async def stuck(request: Request) -> Response:
        await never.wait()
        return Response()

    monkeypatch.setattr(api, "READ_DEADLINE_S", 0.01)
    app = Starlette(
        routes=[Route("/", api.within_deadline(stuck))], exception_handlers=api.EXCEPTION_HANDLERS
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    ) as client:
        response = await client.get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
