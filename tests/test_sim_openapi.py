"""The simulator speaks Clockify's real shapes: every answer it serves is checked against the
schema of its operation in Clockify's published OpenAPI (`../shared/clockify-openapi/`), and
Detailed report rows and entity changes against the row facts the OpenAPI leaves out.

A small validator covers the JSON Schema the files use (type, enum, $ref, properties, items,
required, oneOf, nullable, format date-time, min/max length, minimum, minItems); `jsonschema`
is not a dependency. An optional property may be null: Clockify writes unset ids and objects as
null, which the files do not mark. The app is served through httpx.ASGITransport, no port.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.sim import (
    ManualClock,
    SimulatedWorkspace,
    create_simulator_app,
)

SPEC_DIRS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "clockify-openapi",
    Path("/work/shared/clockify-openapi"),
)
SPEC_DIR = next((d for d in SPEC_DIRS if d.is_dir()), None)
pytestmark = pytest.mark.skipif(
    SPEC_DIR is None,
    reason="Clockify's OpenAPI files are not here (../shared/clockify-openapi/ next to the "
    "repository); these checks run where that folder exists",
)
BASE = "http://clockify.test"
HEADERS = {"X-Api-Key": "sim-api-key-0123456789"}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


class Spec:
    """Every operation of the OpenAPI files: (method, path template) -> 200/201 schema."""

    def __init__(self, folder: Path) -> None:
        self.operations: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        for path in sorted(folder.glob("*.yml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            schemas = doc.get("components", {}).get("schemas", {})
            for template, item in doc.get("paths", {}).items():
                for method, operation in item.items():
                    if not isinstance(operation, dict) or "responses" not in operation:
                        continue
                    for status in ("200", "201"):
                        content = operation["responses"].get(status, {}).get("content", {})
                        for media in content.values():
                            key = (method.upper(), template.removeprefix("/v1"))
                            self.operations[key] = (media.get("schema", {}), schemas)

    def schema_for(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for (op_method, template), found in self.operations.items():
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if op_method == method and re.match(pattern, path):
                return found
        raise AssertionError(f"no operation for {method} {path} in the OpenAPI files")


def check(
    value: Any,
    schema: dict[str, Any],
    schemas: dict[str, Any],
    where: str,
    chain: tuple[str, ...] = (),
) -> list[str]:
    """The ways `value` breaks `schema` (empty when it fits). `chain`: the $refs followed for
    this value, so a schema naming itself (the files' `FeaturePlan`) constrains nothing."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in chain:
            return []
        return check(value, schemas[name], schemas, where, (*chain, name))
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null"]
    if "oneOf" in schema:
        # The files draw an enum as `type: object` + `oneOf: [string enum]`: the oneOf rules.
        fits = [s for s in schema["oneOf"] if not check(value, s, schemas, where, chain)]
        return [] if len(fits) == 1 else [f"{where}: fits {len(fits)} of oneOf, not 1"]
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        allowed = _TYPES[kind]
        if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, allowed):
            return [f"{where}: {type(value).__name__}, not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{where}: shorter than {schema['minLength']}")
        if len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{where}: longer than {schema['maxLength']}")
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                problems.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, int | float) and value < schema.get("minimum", value):
        problems.append(f"{where}: {value} below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            problems += check(item, schema.get("items", {}), schemas, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if value.get(name) is None:
                problems.append(f"{where}.{name}: required")
        for name, sub in properties.items():
            if value.get(name) is not None:
                problems += check(value[name], sub, schemas, f"{where}.{name}")
    return problems


def check_answer(spec: Spec, response: httpx.Response) -> None:
    assert response.status_code in (200, 201), response.text
    path = response.request.url.path.removeprefix("/api").removeprefix("/reports")
    path = path.removeprefix("/v1")
    schema, schemas = spec.schema_for(response.request.method, path)
    data = response.json()
    if schema.get("type") == "string" and not isinstance(data, str):
        # /entities/created and /updated declare a bare string: the files' own error. Their
        # items are time-entry documents, checked against the row facts instead.
        return
    if isinstance(data, list) and "response" in check_target(schema, schemas):
        # The schema wraps the list in `{"response": [...]}`; Clockify's guide shows it bare.
        data = {"response": data}
    if isinstance(data, dict) and "timeentries" in data:
        # Clockify answers `timeentries` (lower case), which the schema names `timeEntries`.
        data = {**data, "timeEntries": data["timeentries"]}
    problems = check(data, schema, schemas, response.request.url.path)
    assert not problems, "\n".join(problems[:20])


def check_target(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The properties of `schema`, its $ref followed."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    properties: dict[str, Any] = schema.get("properties", {})
    return properties


# The rig --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec() -> Spec:
    assert SPEC_DIR is not None
    return Spec(SPEC_DIR)


@pytest.fixture
def sim() -> SimulatedWorkspace:
    clock = ManualClock()
    workspace = SimulatedWorkspace(plan="PRO_2021", clock=clock, rng=random.Random(4))
    workspace.seed_demo_team(6, rng=random.Random(5), days=5)
    clock.advance(600)
    return workspace


@pytest.fixture
async def http(sim: SimulatedWorkspace) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=HEADERS) as client:
        yield client


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Every REST answer ---------------------------------------------------------------------------
async def test_every_rest_answer_fits_its_operation_in_the_openapi(
    spec: Spec, sim: SimulatedWorkspace, http: httpx.AsyncClient
) -> None:
    ws = f"/api/v1/workspaces/{sim.id}"
    user_id = next(iter(sim.users))
    entry_id = next(iter(sim.entries))
    window = {"start": stamp(sim.now() - timedelta(days=3)), "end": stamp(sim.now())}
    answers = [
        await http.get("/api/v1/user"),
        await http.get("/api/v1/workspaces"),
        await http.get(ws),
        await http.get(f"{ws}/users"),
        await http.get(f"{ws}/projects"),
        await http.get(f"{ws}/clients"),
        await http.get(f"{ws}/tags"),
        await http.get(f"{ws}/user/{user_id}/time-entries", params={**window, "hydrated": "true"}),
        await http.get(f"{ws}/user/{user_id}/time-entries", params=window),
        await http.get(f"{ws}/time-entries/status/in-progress", params={"page-size": 100}),
        await http.get(f"{ws}/time-entries/{entry_id}"),
    ]
    hook = {
        "name": "stops",
        "url": "https://clockwall.example/webhooks/clockify",
        "webhookEvent": "TIMER_STOPPED",
        "triggerSourceType": "WORKSPACE_ID",
        "triggerSource": [],
    }
    created = await http.post(f"{ws}/webhooks", json=hook)
    webhook_id = created.json()["id"]
    answers += [
        created,
        await http.get(f"{ws}/webhooks"),
        await http.get(f"{ws}/webhooks/{webhook_id}"),
        await http.put(f"{ws}/webhooks/{webhook_id}", json={**hook, "name": "stops too"}),
        await http.patch(f"{ws}/webhooks/{webhook_id}/token"),
    ]
    for answer in answers:
        check_answer(spec, answer)


@pytest.mark.parametrize(
    ("rounding", "duration_format"),
    [(("UP", 15), "DECIMAL"), (("NEAREST", 30), "COMPACT"), ("off", "FULL")],
)
async def test_the_workspaces_report_settings_are_where_the_openapi_puts_them(
    spec: Spec,
    sim: SimulatedWorkspace,
    http: httpx.AsyncClient,
    rounding: Any,
    duration_format: str,
) -> None:
    sim.set_workspace_settings(rounding=rounding, duration_format=duration_format)
    answer = await http.get(f"/api/v1/workspaces/{sim.id}")
    check_answer(spec, answer)
    _, schemas = spec.schema_for("GET", f"/workspaces/{sim.id}")
    declared = schemas["WorkspaceSettingsDtoV1"]["properties"]
    assert {"timeRoundingInReports", "round", "durationFormat"} <= set(declared)
    found = answer.json()["workspaceSettings"]
    assert found["durationFormat"] == duration_format
    assert found["timeRoundingInReports"] is (rounding != "off")
    # RoundDto: both strings, as Clockify sends them; the rule stays while rounding is off.
    assert isinstance(found["round"]["round"], str) and found["round"]["minutes"].isdigit()
    if rounding != "off":
        assert found["round"]["minutes"] == str(rounding[1])


# Entity changes --------------------------------------------------------------------------------
@pytest.mark.parametrize("wrapped", [False, True])
async def test_entity_changes_fit_the_openapi_and_the_facts(
    spec: Spec, sim: SimulatedWorkspace, http: httpx.AsyncClient, wrapped: bool
) -> None:
    sim.entities_wrapped = wrapped
    since = sim.now()
    sim.clock.advance(60)  # type: ignore[attr-defined]
    user_id = next(iter(sim.users))
    new = sim.add_manual_entry(user_id, since - timedelta(hours=2), since - timedelta(hours=1))
    old = next(e for e in sim.entries.values() if e.end is not None and e.id != new.id)
    sim.update_entry(old.id, description="edited")
    doomed = next(
        e for e in sim.entries.values() if e.end is not None and e.id not in (new.id, old.id)
    )
    sim.delete_entry(doomed.id)
    sim.clock.advance(120)  # type: ignore[attr-defined]
    params = {"type": "TIME_ENTRY", "start": stamp(since), "end": stamp(sim.now())}
    base = f"/api/v1/workspaces/{sim.id}/entities"
    answers = {
        which: await http.get(f"{base}/{which}", params=params)
        for which in ("created", "updated", "deleted")
    }
    zero = await http.get(f"{base}/updated", params={**params, "page": 0})

    def items(answer: httpx.Response) -> list[dict[str, Any]]:
        data = answer.json()
        assert isinstance(data, dict) == wrapped
        return data["response"] if wrapped else data

    for answer in answers.values():
        check_answer(spec, answer)
        assert answer.headers["Last-Page"] == "true"
    assert [d["id"] for d in items(answers["created"])] == [new.id]
    assert [d["id"] for d in items(answers["updated"])] == [old.id]
    (gone,) = items(answers["deleted"])
    assert set(gone) == {"id", "deletedAt", "document", "documentCode"}
    assert gone["document"]["id"] == doomed.id and gone["id"] != doomed.id
    assert gone["documentCode"] == "TIME_ENTRY"
    for doc in [*items(answers["created"]), *items(answers["updated"]), gone["document"]]:
        assert {"id", "userId", "workspaceId", "timeInterval", "hourlyRate", "type"} <= set(doc)
    assert zero.status_code == 400, "pages are 1-indexed"


# The Detailed report -----------------------------------------------------------------------------
ROW_FACTS = {
    "_id": str,
    "description": str,
    "userId": str,
    "userName": str,
    "userEmail": str,
    "billable": bool,
    "type": str,
    "isLocked": bool,
    "tags": list,
    "timeInterval": dict,
    "rate": int,
    "amount": int,
    "costRate": int,
    "costAmount": int,
    "currency": str,
}


async def test_detailed_report_rows_are_clockify_rows(
    spec: Spec, sim: SimulatedWorkspace, http: httpx.AsyncClient
) -> None:
    now = sim.now()
    body = {
        "dateRangeStart": (now - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%S.000"),
        "dateRangeEnd": now.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "timeZone": "Europe/Berlin",
        "detailedFilter": {"page": 1, "pageSize": 1000},
        "amountShown": "EARNED",
        "exportType": "JSON",
    }
    answer = await http.post(f"/reports/v1/workspaces/{sim.id}/reports/detailed", json=body)
    check_answer(spec, answer)
    rows = answer.json()["timeentries"]
    assert rows and answer.headers["Last-Page"] == "true"
    billed = 0
    for row in rows:
        for name, kind in ROW_FACTS.items():
            assert isinstance(row.get(name), kind), f"{name} of {row['_id']}: {row.get(name)!r}"
        assert "hourlyRate" not in row and "id" not in row
        seconds = row["timeInterval"]["duration"]
        assert isinstance(seconds, int)
        if row["billable"] and row["rate"]:
            assert row["amount"] == (seconds * row["rate"] + 1800) // 3600
            billed += 1
    assert billed, "no billable row with a rate to check"


async def test_cost_rates_are_served_in_clockifys_shapes(
    spec: Spec, sim: SimulatedWorkspace, http: httpx.AsyncClient
) -> None:
    """Entries carry `costRate` {amount, currency} (REST, webhooks), rows flat `costRate` and
    `costAmount` (seconds x cost, billable or not), a project its own cost rate."""
    user_id = next(iter(sim.users))
    project = next(p for p in sim.projects.values() if p.hourly_rate_minor)
    sim.apply_rate("cost", 2500, project=project, notify=False)
    costed = {e.id for e in sim.entries.values() if e.project_id == project.id}
    sim.apply_rate("cost", 1800, user=user_id, notify=False)
    assert project.cost_rate_minor == 2500
    ws = f"/api/v1/workspaces/{sim.id}"
    window = {"start": stamp(sim.now() - timedelta(days=6)), "end": stamp(sim.now())}
    answers = [
        await http.get(f"{ws}/projects"),
        await http.get(f"{ws}/user/{user_id}/time-entries", params=window),
    ]
    for answer in answers:
        check_answer(spec, answer)
    [served] = [p for p in answers[0].json() if p["id"] == project.id]
    assert served["costRate"] == {"amount": 2500, "currency": project.currency}
    mine = answers[1].json()
    assert mine and all(e["costRate"]["amount"] == 1800 for e in mine)
    body = {
        "dateRangeStart": (sim.now() - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%S.000"),
        "dateRangeEnd": sim.now().strftime("%Y-%m-%dT%H:%M:%S.000"),
        "timeZone": "UTC",
        "detailedFilter": {"page": 1, "pageSize": 1000},
    }
    answer = await http.post(f"/reports/v1/workspaces/{sim.id}/reports/detailed", json=body)
    rows = answer.json()["timeentries"]
    seen = 0
    for row in rows:
        cost = 1800 if row["userId"] == user_id else 2500 if row["_id"] in costed else 0
        assert row["costRate"] == cost
        seconds = row["timeInterval"]["duration"]
        assert row["costAmount"] == (seconds * cost + 1800) // 3600
        seen += bool(cost)
    assert seen, "no row with a cost rate"


async def test_detailed_report_windows_are_wall_clock_times_in_the_time_zone(
    sim: SimulatedWorkspace, http: httpx.AsyncClient
) -> None:
    # One entry 08:30-09:00 UTC, which is 09:30-10:00 in Berlin (winter, UTC+1).
    user_id = next(iter(sim.users))
    day = sim.now().replace(hour=8, minute=30, second=0) - timedelta(days=1)
    entry = sim.add_manual_entry(user_id, day, day + timedelta(minutes=30))
    url = f"/reports/v1/workspaces/{sim.id}/reports/detailed"

    async def ids(start: str, end: str, zone: str) -> set[str]:
        body = {
            "dateRangeStart": start,
            "dateRangeEnd": end,
            "timeZone": zone,
            "detailedFilter": {"page": 1, "pageSize": 1000},
        }
        answer = await http.post(url, json=body)
        assert answer.status_code == 200, answer.text
        return {row["_id"] for row in answer.json()["timeentries"]}

    date = day.date().isoformat()
    assert entry.id in await ids(f"{date}T09:00:00.000", f"{date}T10:00:00.000", "Europe/Berlin")
    assert entry.id not in await ids(
        f"{date}T08:00:00.000", f"{date}T09:00:00.000", "Europe/Berlin"
    )
    # A trailing Z is not honoured: the same digits are still read in the time zone.
    assert entry.id not in await ids(f"{date}T08:00:00Z", f"{date}T09:00:00Z", "Europe/Berlin")
    assert entry.id in await ids(f"{date}T08:00:00.000", f"{date}T09:00:00.000", "UTC")


async def test_free_reports_cover_at_most_31_days_a_request() -> None:
    free = SimulatedWorkspace(plan="FREE", clock=ManualClock(), rng=random.Random(3))
    free.add_user("Owner")
    transport = httpx.ASGITransport(app=create_simulator_app(free))
    url = f"/reports/v1/workspaces/{free.id}/reports/detailed"

    def body(days: float) -> dict[str, Any]:
        start = datetime(2026, 1, 1)
        return {
            "dateRangeStart": start.isoformat(timespec="milliseconds"),
            "dateRangeEnd": (start + timedelta(days=days)).isoformat(timespec="milliseconds"),
            "timeZone": "UTC",
            "detailedFilter": {"page": 1, "pageSize": 1000},
        }

    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=HEADERS) as http:
        month = await http.post(url, json=body(31))
        longer = await http.post(url, json=body(31.5))
        too_big_page = await http.post(url, json={**body(1), "detailedFilter": {"pageSize": 1001}})
    assert month.status_code == 200
    assert longer.status_code == 400 and "31 days" in longer.json()["message"]
    assert too_big_page.status_code == 400
