"""Parsing of every Clockify payload shape into one TimeEntry; errors name the field."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.models import (
    Named,
    PayloadError,
    Rate,
    parse_duration_s,
    parse_entry_id,
    parse_instant,
    parse_named,
    parse_rate_change,
    parse_time_entry,
)
from tests.conftest import WS
from tests.payloads import (
    ACME,
    ANA,
    BEN,
    CHLOE,
    GLOBEX,
    INTERNAL,
    MOBILE,
    ONSITE,
    TASK_ID,
    URGENT,
    WEBSITE,
    entry_2022,
    entry_2024,
    new_client,
    new_project,
    new_tag,
    rate,
    report_row,
    rest_row,
    running_timer,
    task_object,
    user_updated,
    without_project,
)

E1 = "65f0a0a0a0a0a0a0a0a0a0e1"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Durations and timestamps ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("PT19471H16M48S", 19471 * 3600 + 16 * 60 + 48),
        ("PT26S", 26),
        ("PT3H45M", 3 * 3600 + 45 * 60),
        ("PT0S", 0),
        ("PT1H", 3600),
        ("P1DT2H", 26 * 3600),
        ("PT1.5S", 1),
        (5400, 5400),
        ("5400", 5400),
        (None, None),
        ("", None),
    ],
)
def test_durations(raw: Any, seconds: int | None) -> None:
    assert parse_duration_s(raw) == seconds


@pytest.mark.parametrize("raw", ["1h30m", "PT", "P", "PT-5M", "PTXS", True, [1], {"h": 1}, -3])
def test_bad_durations_name_the_field(raw: Any) -> None:
    with pytest.raises(PayloadError, match=r"timeInterval\.duration"):
        parse_duration_s(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-04-21T06:51:17Z", datetime(2022, 4, 21, 6, 51, 17, tzinfo=UTC)),
        ("2025-01-13T18:14:41.671710389Z", datetime(2025, 1, 13, 18, 14, 41, tzinfo=UTC)),
        ("2025-01-13T18:14:41.671710+00:00", datetime(2025, 1, 13, 18, 14, 41, tzinfo=UTC)),
        ("2025-01-13T19:14:41+01:00", datetime(2025, 1, 13, 18, 14, 41, tzinfo=UTC)),
        ("2025-01-13T18:14:41", datetime(2025, 1, 13, 18, 14, 41, tzinfo=UTC)),
        (None, None),
    ],
)
def test_timestamps(raw: str | None, expected: datetime | None) -> None:
    assert parse_instant(raw, "timeInterval.start") == expected


@pytest.mark.parametrize("raw", ["yesterday", "2025-13-01T00:00:00Z", 1700000000, ["x"]])
def test_bad_timestamps_name_the_field(raw: Any) -> None:
    with pytest.raises(PayloadError, match=r"timeInterval\.end"):
        parse_instant(raw, "timeInterval.end")


# Every payload shape -----------------------------------------------------------------------
def test_2024_webhook_body() -> None:
    body = entry_2024(
        E1,
        "2026-03-24T08:00:00Z",
        "2026-03-24T09:30:00Z",
        tags=(URGENT, ONSITE),
        hourly_rate=rate(10500, "EUR"),
        with_task=True,
    )
    entry = parse_time_entry(body)
    assert entry.id == E1
    assert entry.workspace_id == WS
    assert entry.user_id == ANA.id
    assert entry.start == at("2026-03-24T08:00:00Z")
    assert entry.end == at("2026-03-24T09:30:00Z")
    assert entry.duration_s == 5400
    assert not entry.running
    assert entry.project_id == WEBSITE.id
    assert entry.client_id == ACME.id
    assert entry.task_id == TASK_ID
    assert entry.tag_ids == tuple(sorted((URGENT.id, ONSITE.id)))
    assert entry.billable is True
    assert entry.hourly_rate == Rate(10500, "EUR")
    assert entry.entry_type == "REGULAR"
    assert entry.description == "Homepage layout"
    names = {(n.kind, n.id): n for n in entry.names}
    assert names[("user", ANA.id)].name == ANA.name
    assert names[("project", WEBSITE.id)].color == WEBSITE.color
    assert names[("project", WEBSITE.id)].client_id == ACME.id
    assert names[("client", ACME.id)].name == ACME.name
    assert names[("tag", URGENT.id)].name == "urgent"
    assert names[("task", TASK_ID)].name == "Design review"


def test_2022_webhook_body_without_newer_fields() -> None:
    body = entry_2022(E1, "2022-04-21T06:51:17Z", "2022-04-21T07:51:43Z")
    for absent in ("type", "kioskId", "approvalStatus", "projectCurrency", "currentlyRunning"):
        assert absent not in body
    entry = parse_time_entry(body)
    assert entry.user_id == BEN.id
    assert entry.project_id == MOBILE.id
    assert entry.client_id == GLOBEX.id
    assert entry.duration_s == 3600 + 26
    assert entry.entry_type == "REGULAR"
    assert entry.hourly_rate is None
    assert entry.tag_ids == ()


@pytest.mark.parametrize("keys_absent", [False, True])
def test_running_timer(keys_absent: bool) -> None:
    body = running_timer(E1, "2026-03-25T09:00:00Z", keys_absent=keys_absent)
    entry = parse_time_entry(body)
    assert entry.running
    assert entry.end is None
    assert entry.duration_s == 0
    assert entry.start == at("2026-03-25T09:00:00Z")


def test_running_timer_with_zero_duration_stays_running() -> None:
    body = running_timer(E1, "2026-03-25T09:00:00Z")
    body["timeInterval"]["duration"] = "PT0S"
    assert parse_time_entry(body).running


@pytest.mark.parametrize("empty_string", [False, True])
def test_entry_without_project(empty_string: bool) -> None:
    body = without_project(
        entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z"), empty_string
    )
    entry = parse_time_entry(body)
    assert entry.project_id is None
    assert entry.client_id is None
    assert not any(n.kind == "project" for n in entry.names)


def test_without_hourly_rate_and_with_rate_without_amount() -> None:
    body = entry_2024(E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", hourly_rate=None)
    assert parse_time_entry(body).hourly_rate is None
    body["hourlyRate"] = {"amount": None, "currency": "EUR"}
    assert parse_time_entry(body).hourly_rate is None
    body["hourlyRate"] = {"amount": 9000, "currency": "usd"}
    assert parse_time_entry(body).hourly_rate == Rate(9000, "USD")


def test_rest_row_non_hydrated() -> None:
    body = rest_row(
        E1,
        "2026-03-23T07:00:00Z",
        "2026-03-23T07:45:00Z",
        tags=(ONSITE, URGENT),
        billable=True,
        hourly_rate=rate(8000, "GBP"),
    )
    body["taskId"] = TASK_ID
    entry = parse_time_entry(body)
    assert entry.user_id == CHLOE.id
    assert entry.project_id == INTERNAL.id
    assert entry.task_id == TASK_ID
    assert entry.tag_ids == tuple(sorted((ONSITE.id, URGENT.id)))
    assert entry.duration_s == 45 * 60
    assert entry.hourly_rate == Rate(8000, "GBP")
    assert entry.names == ()


def test_rest_row_running() -> None:
    entry = parse_time_entry(rest_row(E1, "2026-03-25T07:00:00Z", None))
    assert entry.running


def test_reports_detailed_row() -> None:
    body = report_row(E1, "2026-03-24T10:00:00Z", "2026-03-24T12:15:00Z", tags=(URGENT,))
    assert "id" not in body
    assert isinstance(body["timeInterval"]["duration"], int)
    entry = parse_time_entry(body)
    assert entry.id == E1
    assert entry.duration_s == 2 * 3600 + 15 * 60
    assert entry.tag_ids == (URGENT.id,)
    names = {(n.kind, n.id): n for n in entry.names}
    assert names[("user", ANA.id)].name == ANA.name
    assert names[("project", WEBSITE.id)].name == WEBSITE.name
    assert names[("project", WEBSITE.id)].color == WEBSITE.color
    assert names[("client", ACME.id)].name == ACME.name


def test_reports_row_with_duration_and_no_end() -> None:
    body = report_row(E1, "2026-03-24T10:00:00Z", "2026-03-24T10:00:26Z")
    body["timeInterval"]["end"] = None
    entry = parse_time_entry(body)
    assert entry.end == at("2026-03-24T10:00:26Z")


def test_state_is_the_same_for_every_shape_of_one_entry() -> None:
    """A webhook body, a REST row and a Reports row of the same entry fingerprint alike."""
    start, end = "2026-03-24T10:00:00Z", "2026-03-24T11:00:00Z"
    hook = entry_2024(E1, start, end, tags=(URGENT,), hourly_rate=rate(10500))
    rest = rest_row(
        E1,
        start,
        end,
        user=ANA,
        project=WEBSITE,
        tags=(URGENT,),
        billable=True,
        hourly_rate=rate(10500),
    )
    rest["description"] = hook["description"]
    assert parse_time_entry(hook).to_state() == parse_time_entry(rest).to_state()


def test_name_bodies() -> None:
    user = parse_named("user", user_updated(ANA, name="Ana L."), "body")
    assert user is not None and (user.id, user.name) == (ANA.id, "Ana L.")
    project = parse_named("project", new_project(WEBSITE), "body")
    assert project is not None
    assert project.client_id == ACME.id
    assert project.estimate_s == 120 * 3600
    assert project.color == WEBSITE.color
    client = parse_named("client", new_client(ACME), "body")
    assert client is not None and client.name == ACME.name
    tag = parse_named("tag", new_tag(URGENT), "body")
    assert tag is not None and tag.name == "urgent"


def test_entry_id_for_deletes() -> None:
    assert parse_entry_id({"id": E1, "workspaceId": WS}) == (E1, WS)
    assert parse_entry_id({"id": E1}) == (E1, None)
    with pytest.raises(PayloadError, match="id is required"):
        parse_entry_id({"workspaceId": WS})


# Errors name the field ---------------------------------------------------------------------
def _good() -> dict[str, Any]:
    return entry_2024(
        E1, "2026-03-24T08:00:00Z", "2026-03-24T09:00:00Z", hourly_rate=rate(10500), tags=(URGENT,)
    )


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = out
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return out


_DELETE = object()

BAD_FIELDS = [
    ("id", _DELETE, "id is required"),
    ("id", 123, "id must be a string"),
    ("id", "x" * 65, "id must be an id of 24 hexadecimal characters"),
    ("userId", "ana|x", "userId must be an id of 24 hexadecimal characters"),
    ("projectId", "web site", "projectId must be an id"),
    ("project.id", "p|1", r"project\.id must be an id"),
    ("tagIds", ["t|1"], "tagIds must be a list of id strings"),
    ("workspaceId", _DELETE, "workspaceId is required"),
    ("workspaceId", 7, "workspaceId must be a string"),
    ("userId", 42, "userId must be a string"),
    ("timeInterval", _DELETE, "timeInterval is required"),
    ("timeInterval", "PT1H", "timeInterval must be an object"),
    ("timeInterval.start", _DELETE, r"timeInterval\.start is required"),
    ("timeInterval.start", 1711267200, r"timeInterval\.start must be a timestamp"),
    ("timeInterval.start", "soon", r"timeInterval\.start must be a timestamp"),
    ("timeInterval.end", "2026-03-24T07:00:00Z", r"timeInterval\.end is before"),
    ("timeInterval.end", False, r"timeInterval\.end must be a timestamp"),
    ("timeInterval.duration", "1 hour", r"timeInterval\.duration must be an ISO-8601"),
    ("billable", "yes", "billable must be true or false"),
    ("description", 5, "description must be a string"),
    ("projectId", 99, "projectId must be a string"),
    ("project", "Website", "project must be an object"),
    ("task", [], "task must be an object"),
    ("user", "Ana", "user must be an object"),
    ("tags", "urgent", "tags must be a list"),
    ("tags", [5], r"tags\[0\] must be an object"),
    ("tags", [{"name": "no id"}], r"tags\[0\]\.id is required"),
    ("tagIds", [1, 2], "tagIds must be a list of id strings"),
    ("hourlyRate", "105 EUR", "hourlyRate must be an object"),
    ("hourlyRate.amount", "10500", r"hourlyRate\.amount must be a non-negative"),
    ("hourlyRate.amount", -1, r"hourlyRate\.amount must be a non-negative"),
    ("hourlyRate.currency", "EURO", r"hourlyRate\.currency must be an ISO currency"),
    ("costRate", "40 EUR", "costRate must be an object"),
    ("costRate", [4000], "costRate must be an object"),
    ("costRate", {"amount": -1, "currency": "EUR"}, r"costRate\.amount must be a non-negative"),
    ("costRate", {"amount": 4000, "currency": 978}, r"costRate\.currency must be an ISO"),
    ("costRate", 40.5, "costRate must be a non-negative whole number"),
    ("type", 3, "type must be a string"),
    # A type that would split a cell key (`user|project|...|type|...`) or run past 20 letters.
    ("type", "REGULAR|1", "type must be a word of letters, digits and '_'"),
    ("type", 'BREAK"', "type must be a word"),
    ("type", "A" * 21, r"type must be a word .*up to 20 characters"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_FIELDS)
def test_bad_field_is_named(path: str, value: Any, message: str) -> None:
    body = _set(_good(), path, value)
    if path == "userId" and value is _DELETE:
        del body["user"]
    with pytest.raises(PayloadError, match=message):
        parse_time_entry(body)


def test_missing_user_id_is_named() -> None:
    body = _good()
    del body["userId"]
    assert parse_time_entry(body).user_id == ANA.id  # taken from the user object
    del body["user"]
    with pytest.raises(PayloadError, match="userId is required"):
        parse_time_entry(body)


@pytest.mark.parametrize("body", [None, 5, "entry", [], True])
def test_body_that_is_not_an_object(body: Any) -> None:
    with pytest.raises(PayloadError, match="the body must be a JSON object"):
        parse_time_entry(body)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("timeInterval.duration", "PT99999999999H"),
        ("timeInterval.duration", 10**15),
        ("timeInterval.start", "0001-01-01T00:00:00+01:00"),
        ("timeInterval.start", "9999-12-31T23:59:59-01:00"),
        ("timeInterval.end", "9999-12-31T23:59:59Z"),
        ("timeInterval.start", "9979-12-31T23:00:00Z"),
        ("hourlyRate.amount", 10**30),
    ],
)
def test_out_of_range_values_are_payload_errors(path: str, value: Any) -> None:
    """Values that would overflow a datetime or a Redis integer are the sender's error."""
    body = _set(_good(), path, value)
    if path == "timeInterval.duration":
        body["timeInterval"]["end"] = None
        body["currentlyRunning"] = False
    with pytest.raises(PayloadError, match=path.split(".")[0]):
        parse_time_entry(body)


# Cost rates --------------------------------------------------------------------------------
def test_a_cost_rate_reads_from_every_shape_into_the_state() -> None:
    start, end = "2026-03-24T10:00:00Z", "2026-03-24T11:00:00Z"
    hook = entry_2024(E1, start, end, hourly_rate=rate(10500))
    hook["costRate"] = rate(4000)
    rest = rest_row(E1, start, end, user=ANA, project=WEBSITE, billable=True)
    rest.update(hourlyRate=rate(10500), costRate=rate(4000), description=hook["description"])
    row = report_row(E1, start, end, description=hook["description"])
    del row["hourlyRate"]  # real rows carry flat rates only
    row.update(rate=10500, amount=10500, costRate=4000, costAmount=4000, currency="EUR")
    states = [parse_time_entry(body).to_state() for body in (hook, rest, row)]
    assert states[0] == states[1] == states[2]
    assert (states[0]["rate"], states[0]["costRate"], states[0]["currency"]) == (10500, 4000, "EUR")
    assert parse_time_entry(hook).cost_rate == Rate(4000, "EUR")


def test_no_cost_rate_is_none_in_every_shape_and_unknown_only_in_a_poll_row() -> None:
    start, end = "2026-03-24T10:00:00Z", "2026-03-24T11:00:00Z"
    hook = entry_2024(E1, start, end, hourly_rate=rate(10500))
    for cost in (None, {"amount": 0, "currency": "EUR"}, {"amount": None}):
        hook["costRate"] = cost
        assert parse_time_entry(hook).cost_rate is None
    del hook["costRate"]  # a webhook body is the whole entry: left out is none
    entry = parse_time_entry(hook)
    assert entry.cost_rate is None and not entry.unknown
    row = report_row(E1, start, end)
    del row["hourlyRate"]  # real rows carry flat rates only
    assert parse_time_entry({**row, "costRate": 0}).cost_rate is None
    bare = parse_time_entry(row)
    assert bare.cost_rate is None and "costRate" in bare.unknown
    filled = bare.fill_unknown({"costRate": 4000, "currency": "EUR"})
    assert filled.cost_rate == Rate(4000, "EUR") and filled.to_state()["costRate"] == 4000
    # A row that says its cost rate keeps it over the stored one.
    said = parse_time_entry({**row, "costRate": 2500, "currency": "EUR"})
    assert said.fill_unknown({"costRate": 4000, "currency": "EUR"}).cost_rate == Rate(2500, "EUR")


def test_the_state_keeps_one_currency_the_billable_rates_else_the_costs() -> None:
    hook = entry_2024(E1, "2026-03-24T10:00:00Z", "2026-03-24T11:00:00Z", hourly_rate=None)
    hook["costRate"] = rate(3000, "USD")
    assert parse_time_entry(hook).to_state()["currency"] == "USD"
    hook["hourlyRate"] = rate(9000, "EUR")
    assert parse_time_entry(hook).to_state()["currency"] == "EUR"
    hook["hourlyRate"] = {"amount": 9000}  # no currency said: the cost rate's
    assert parse_time_entry(hook).to_state()["currency"] == "USD"


# Name records ------------------------------------------------------------------------------
def test_a_deleted_record_says_so_and_a_task_names_its_project() -> None:
    assert Named("tag", URGENT.id, "urgent", deleted=True).to_dict() == {
        "id": URGENT.id,
        "name": "urgent",
        "deleted": True,
    }
    assert "deleted" not in Named("tag", URGENT.id, "urgent").to_dict()
    task = parse_named("task", task_object(WEBSITE), "body")
    assert task is not None
    assert task.to_dict() == {"id": TASK_ID, "name": "Design review", "projectId": WEBSITE.id}
    odd = parse_named("task", {**task_object(WEBSITE), "projectId": "not|an id"}, "body")
    assert odd is not None and "projectId" not in odd.to_dict()


# Rate events -----------------------------------------------------------------------------------
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("body", "since"),
    [
        ({"since": "2026-03-01"}, date(2026, 3, 1)),
        ({"rate": {"amount": 5000, "from": "2026-02-28T23:30:00Z"}}, date(2026, 3, 1)),
        ({"applyFrom": "2026-03-05", "date": "2026-03-02"}, date(2026, 3, 2)),
        ({"since": {"timestamp": 1, "date": "2026-01-15T10:00:00.000+00:00"}}, date(2026, 1, 15)),
        ({"startDate": 1767225600000}, date(2026, 1, 1)),  # epoch milliseconds
        ({"fromDate": 1767225600}, date(2026, 1, 1)),  # epoch seconds
        ({"since": "yesterday", "from": 12, "date": False}, None),
        ({"since": 10**400}, None),
        ({}, None),
    ],
)
def test_a_rate_change_names_the_earliest_day_it_can_read(body: Any, since: date | None) -> None:
    assert parse_rate_change(body, BERLIN).since == since


def test_a_rate_change_reads_ids_where_it_finds_them_and_never_raises() -> None:
    change = parse_rate_change(
        {
            "workspaceId": WS,
            "userId": ANA.id,
            "memberships": [{"userId": BEN.id, "projectId": MOBILE.id}, {"userId": "x|y"}],
            "project": {"id": WEBSITE.id},
        },
        BERLIN,
    )
    assert change.workspace_id == WS
    assert change.user_ids == tuple(sorted((ANA.id, BEN.id)))
    assert change.project_ids == tuple(sorted((MOBILE.id, WEBSITE.id)))
    deep: Any = {}
    for _ in range(5000):
        deep = {"x": [deep]}
    for body in (None, [], "x", 5, {"workspaceId": "nope"}, deep, {"a": list(range(10**5))}):
        assert parse_rate_change(body, BERLIN).workspace_id is None


# Value records: one object per distinct record, compared by what the record holds ---------
def test_a_record_met_again_is_the_same_object_and_a_changed_one_is_not() -> None:
    project = parse_named("project", new_project(WEBSITE), "body")
    assert project is parse_named("project", new_project(WEBSITE), "body")
    renamed = parse_named("project", new_project(WEBSITE, name="Website 2"), "body")
    assert renamed is not None and renamed != project and renamed.name == "Website 2"
    tag = parse_named("tag", new_tag(URGENT), "tags[0]")
    assert tag is parse_named("tag", new_tag(URGENT), "tags[0]")
    assert tag != parse_named("tag", new_tag(URGENT, name="very urgent"), "tags[0]")
    # Tracked time and partiality are not part of what a record is (compare=False), in
    # equality and in hashing alike, so a Named keys dicts by its record.
    assert project is not None
    tracked = Named("project", project.id, project.name, project.color, project.client_id)
    assert tracked == replace(tracked, tracked_s=3600, partial=True)
    assert hash(tracked) == hash(replace(tracked, tracked_s=3600, partial=True))
    assert {tracked: 1}[replace(tracked, partial=True)] == 1
    assert Rate(100, "EUR") == Rate(100, "EUR") and hash(Rate(1, "EUR")) == hash(Rate(1, "EUR"))


def test_a_webhook_instant_in_whole_utc_seconds_reads_as_any_other_spelling_of_it() -> None:
    spellings = ("2024-03-01T09:00:00Z", "2024-03-01T10:00:00.400+01:00", "2024-03-01T09:00:00")
    moments = [parse_instant(text, "timeInterval.start") for text in spellings]
    assert len(set(moments)) == 1 and all(m is not None and m.tzinfo is UTC for m in moments)
