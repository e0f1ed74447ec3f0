"""The totals as a projection of the entries (app/projection.py, app/reports.py, app/rebuild.py),
checked against a brute-force model of Clockify's Summary report written here from the rules in
facts section 0, independent of the code under test:

- an entry counts on the local day it starts, in the reporting zone;
- with report rounding on, each entry's duration is rounded first, then summed, and money uses
  the rounded time;
- a group's earned amount is the sum of rate x seconds, rounded once to the cent; cost likewise
  (billable or not); profit = earned - cost;
- a project's client is its current one; a deleted project, client or tag reads "Without ...";
- an entry with two tags counts in both tag groups, once in the total.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from redis.asyncio import Redis

from app import keys
from app.main import create_app
from app.models import Named, parse_time_entry
from app.projection import Basis
from app.rebuild import request_rebuild, run_rebuild
from app.reports import Filters, parse_filters
from app.store import TotalsStore
from tests.conftest import WS, FixedClock, make_settings
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
    WEBSITE,
    client_for,
    entry_2024,
    post_webhook,
    rate,
)

BERLIN = ZoneInfo("Europe/Berlin")
START, END = date(2026, 3, 1), date(2026, 3, 31)
PROJECTS = (WEBSITE, MOBILE, INTERNAL, None)
TASK = "64f0000000000000000000d1"


def random_entry(rng: random.Random, n: int) -> dict[str, Any]:
    """A stopped entry in March 2026 (some starting near midnight, where zones disagree)."""
    day = rng.randrange(1, 31)
    start = datetime(2026, 3, day, rng.choice((0, 9, 14, 22, 23)), rng.randrange(60), tzinfo=UTC)
    seconds = rng.choice((10, 59, 600, 899, 901, 3600, 5400, 7261))
    body = entry_2024(
        f"65f0a0a0a0a0a0a0a0{n:06x}",
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        user=rng.choice((ANA, BEN, CHLOE)),
        project=rng.choice(PROJECTS),
        tags=rng.choice(((), (URGENT,), (URGENT, ONSITE))),
        billable=rng.random() < 0.7,
        hourly_rate=rng.choice((None, rate(10000), rate(4550))),
        description=rng.choice(("Homepage layout", "Standup", "Invoice review")),
    )
    if body["projectId"] and rng.random() < 0.3:
        body["taskId"] = TASK
    if rng.random() < 0.5:
        body["costRate"] = {"amount": rng.choice((2500, 3333)), "currency": "EUR"}
    body["type"] = rng.choice(("REGULAR", "REGULAR", "BREAK", "HOLIDAY"))
    return body


# The model ------------------------------------------------------------------------------------
def _live(names: dict[str, dict[str, dict[str, Any]]], kind: str, ident: str | None) -> str | None:
    if not ident or names.get(kind, {}).get(ident, {}).get("deleted"):
        return None
    return ident


def group_ids(
    state: dict[str, Any], names: dict[str, dict[str, dict[str, Any]]], zone: ZoneInfo, level: str
) -> list[Any]:
    """The groups of `level` an entry counts in (None: "Without ..."), by Clockify's rules."""
    project = _live(names, "project", state.get("projectId"))
    client = _live(names, "client", names["project"].get(project or "", {}).get("clientId"))
    start = datetime.fromisoformat(state["start"])
    return {
        "PROJECT": [project],
        "CLIENT": [client if project else None],
        "USER": [state["userId"]],
        "TAG": [t for t in state.get("tagIds") or [] if _live(names, "tag", t)] or [None],
        "TASK": [_live(names, "task", state.get("taskId")) if project else None],
        "TYPE": [state.get("type") or "REGULAR"],
        "DATE": [start.astimezone(zone).date().isoformat()],
    }[level]


def model(
    states: list[dict[str, Any]],
    names: dict[str, dict[str, dict[str, Any]]],
    zone: ZoneInfo,
    rounding: tuple[str, int] | None,
    level: str,
    keep: Any = None,
) -> dict[Any, tuple[int, int, int]]:
    """group id (None for "without"; "total") -> (seconds, earned cents, cost cents)."""
    sums: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for state in states:
        if state.get("end") is None or (keep and not keep(state)):
            continue
        start = datetime.fromisoformat(state["start"])
        if not START <= start.astimezone(zone).date() <= END:
            continue  # the range is of local days
        seconds = int((datetime.fromisoformat(state["end"]) - start).total_seconds())
        if seconds == 0:
            continue
        if rounding:
            step = rounding[1] * 60
            seconds = {
                "UP": -(-seconds // step) * step,
                "DOWN": seconds // step * step,
                "NEAREST": (seconds + step // 2) // step * step,
            }[rounding[0]]
        earned = seconds * state["rate"] if state.get("billable") and state.get("rate") else 0
        cost = seconds * (state.get("costRate") or 0)
        # An entry counts once in the total, in every group it belongs to (two tags: both).
        for ident in [*group_ids(state, names, zone, level), "total"]:
            sums[ident][0] += seconds
            sums[ident][1] += earned
            sums[ident][2] += cost
    return {k: (v[0], (v[1] + 1800) // 3600, (v[2] + 1800) // 3600) for k, v in sums.items()}


def shown(answer: dict[str, Any]) -> dict[Any, tuple[int, int, int]]:
    def cents(row: dict[str, Any], key: str) -> int:
        return sum(round(a["amount"] * 100) for a in row.get(key, []))

    out = {
        g["id"]: (g["totalSeconds"], cents(g, "amounts"), cents(g, "costAmounts"))
        for g in answer["groups"]
        if g["totalSeconds"] or g.get("amounts")
    }
    out["total"] = (
        answer["totalSeconds"],
        cents(answer, "amounts"),
        cents(answer, "costAmounts"),
    )
    return out


def expected(
    states: list[dict[str, Any]],
    names: dict[str, dict[str, dict[str, Any]]],
    basis: Basis,
    level: str,
    keep: Any = None,
) -> dict[Any, tuple[int, int, int]]:
    found = model(states, names, basis.zone, basis.rounding, level, keep)
    found.setdefault("total", (0, 0, 0))
    return {k: v for k, v in found.items() if k == "total" or v[0] or v[1]}


async def stored(store: TotalsStore) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    meta = await store.redis.hgetall(keys.entry_meta(WS))
    raw = await store.redis.hgetall(keys.entry_states(WS))
    states = [orjson.loads(v) for k, v in raw.items() if not meta[k].startswith(b"D")]
    names = {k: await store.read_names(WS, k) for k in ("project", "client", "tag", "task")}
    return states, names


@pytest.fixture
async def store(redis: Redis, clock: FixedClock) -> TotalsStore:
    store = TotalsStore(redis, BERLIN, clock=clock)
    await store.init_generations(WS, Basis(BERLIN))
    return store


async def fill(store: TotalsStore, count: int, seed: int = 7) -> random.Random:
    rng = random.Random(seed)
    for n in range(count):
        result = await store.apply_entry(parse_time_entry(random_entry(rng, n)), "create")
        assert result.outcome == "created"
    return rng


LEVELS = ("PROJECT", "CLIENT", "USER", "TAG", "TASK", "TYPE", "DATE")


async def assert_all_levels(
    store: TotalsStore, basis: Basis, filters: Filters | None = None, keep: Any = None
) -> None:
    states, names = await stored(store)
    for level in LEVELS:
        answer = await store.read_summary(WS, START, END, level, filters=filters)
        want = expected(states, names, basis, level, keep)
        assert shown(answer) == want, level


async def test_every_grouping_equals_the_model(store: TotalsStore) -> None:
    await fill(store, 120)
    await assert_all_levels(store, Basis(BERLIN))
    states, _ = await stored(store)
    assert any(s.get("costRate") for s in states), "cost rates must be kept"


@pytest.mark.parametrize(
    "levels",
    [
        ("PROJECT", "USER"),
        ("CLIENT", "PROJECT"),
        ("USER", "DATE"),
        ("PROJECT", "TASK"),
        ("USER", "TAG"),
        ("TAG", "TYPE"),
    ],
)
async def test_two_levels_equal_the_model_under_each_parent(
    store: TotalsStore, levels: tuple[str, str]
) -> None:
    await fill(store, 90)
    states, names = await stored(store)
    answer = await store.read_summary(WS, START, END, levels)
    first, second = levels
    assert shown(answer) == expected(states, names, Basis(BERLIN), first)
    assert answer["groups"]
    for group in answer["groups"]:
        ident = group["id"]

        def under(state: dict[str, Any], ident: Any = ident) -> bool:
            return ident in group_ids(state, names, BERLIN, first)

        children = shown({**group, "groups": group["children"]})
        assert children == expected(states, names, Basis(BERLIN), second, under), ident


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ({"users": ANA.id}, lambda s: s["userId"] == ANA.id),
        ({"projects": f"{WEBSITE.id},none"}, lambda s: s.get("projectId") in (WEBSITE.id, None)),
        ({"clients": ACME.id}, lambda s: s.get("projectId") == WEBSITE.id),
        ({"tags": "none"}, lambda s: not s.get("tagIds")),
        ({"tags": ONSITE.id}, lambda s: ONSITE.id in (s.get("tagIds") or [])),
        ({"tasks": TASK}, lambda s: s.get("taskId") == TASK and s.get("projectId")),
        ({"billable": "false"}, lambda s: not s.get("billable")),
        ({"type": "BREAK,HOLIDAY"}, lambda s: s.get("type") in ("BREAK", "HOLIDAY")),
        ({"description": "stand"}, lambda s: "stand" in s["description"].lower()),
        (
            {"users": f"{BEN.id},{CHLOE.id}", "billable": "true", "type": "REGULAR"},
            lambda s: s["userId"] != ANA.id and s.get("billable") and s["type"] == "REGULAR",
        ),
        ({"users": "65a1b2c3d4e5f60718293fff"}, lambda s: False),  # unknown: empty, no error
    ],
)
async def test_filters_equal_the_model(
    store: TotalsStore, query: dict[str, str], keep: Any
) -> None:
    await fill(store, 90)
    await assert_all_levels(store, Basis(BERLIN), parse_filters(query), keep)


async def test_names_are_resolved_when_answering(store: TotalsStore, redis: Redis) -> None:
    await fill(store, 60)
    # The website moves to Globex: its hours move with it, in every range already stored.
    moved = Named("project", WEBSITE.id, WEBSITE.name, WEBSITE.color, GLOBEX.id)
    await store.apply_names(WS, [moved])
    clients = await store.read_summary(WS, START, END, "CLIENT")
    assert ACME.id not in {g["id"] for g in clients["groups"]}
    # Deleted in Clockify: the mobile app's time stays, under "Without project"; a deleted tag
    # leaves its entries' other tags.
    for kind, ident in (("project", MOBILE.id), ("tag", URGENT.id)):
        record = orjson.loads(await redis.hget(keys.names(WS, kind), ident) or b"{}")
        await redis.hset(keys.names(WS, kind), ident, orjson.dumps({**record, "deleted": True}))
    projects = await store.read_summary(WS, START, END, "PROJECT")
    assert MOBILE.id not in {g["id"] for g in projects["groups"]}
    without = next(g for g in projects["groups"] if g["id"] is None)
    assert without["name"] == "(Without project)"
    await assert_all_levels(store, Basis(BERLIN))


async def test_a_rebuild_under_live_webhooks_answers_old_or_new_never_a_mix(
    store: TotalsStore, redis: Redis, clock: FixedClock
) -> None:
    """Webhooks keep arriving (through the endpoint, into the same Redis) while a rebuild to
    another zone and report rounding runs in small batches: every answer equals the model under
    the old or the new settings, and after the switch nothing applied meanwhile is lost."""
    rng = await fill(store, 150)
    app = create_app(make_settings(), redis=redis, clock=clock)
    http = client_for(app)
    old, new = Basis(BERLIN), Basis(ZoneInfo("America/New_York"), ("UP", 15))
    assert await request_rebuild(store.redis, WS, new, "test") is not None
    checks = 0
    done = asyncio.Event()

    async def live() -> None:
        nonlocal checks
        n = 150
        while not done.is_set() or checks < 5:
            roll = rng.random()
            if roll < 0.6:  # a new entry
                body = random_entry(rng, n)
                n += 1
                event = "NEW_TIME_ENTRY"
            else:  # an edit or a delete of an earlier one
                body = random_entry(random.Random(rng.randrange(n)), rng.randrange(n))
                event = "TIME_ENTRY_UPDATED" if roll < 0.85 else "TIME_ENTRY_DELETED"
            response = await post_webhook(http, event, body)
            assert response.status_code == 200, response.text
            states, names = await stored(store)
            for level in ("PROJECT", "DATE"):
                answer = shown(await store.read_summary(WS, START, END, level))
                want_old = expected(states, names, old, level)
                want_new = expected(states, names, new, level)
                assert answer in (want_old, want_new), (level, answer, want_old, want_new)
            checks += 1

    async def rebuild() -> None:
        try:
            assert await run_rebuild(store, WS, grace_s=0, batch=10)
        finally:
            done.set()

    try:
        await asyncio.gather(live(), rebuild())
    finally:
        await http.aclose()
    assert checks >= 5
    gens = await store.generations(WS, fresh=True)
    assert (gens.basis.key(), gens.next) == (new.key(), None)
    await assert_all_levels(store, new)  # nothing applied during the rebuild was lost
    # The old generation's keys are gone.
    assert not [k async for k in store.redis.scan_iter(match=f"{keys.generation_prefix(WS, 0)}*")]


async def test_rounding_counts_each_entry_rounded_for_time_and_money(store: TotalsStore) -> None:
    body = entry_2024(
        "65f0a0a0a0a0a0a0a0a0a0f1",
        "2026-03-10T09:00:00Z",
        "2026-03-10T09:00:10Z",
        hourly_rate=rate(10000),
    )
    await store.apply_entry(parse_time_entry(body), "create")
    await request_rebuild(store.redis, WS, Basis(BERLIN, ("UP", 15)), "test")
    assert await run_rebuild(store, WS, grace_s=0)
    answer = await store.read_summary(WS, START, END, "PROJECT")
    # Ten seconds rounded up to 15 minutes: 900 s, 25.00 EUR at 100.00/h.
    assert (answer["totalSeconds"], answer["billableAmount"]) == (900, 25.0)
    entries = await store.read_entries(WS, START, END)
    assert [(e["durationSeconds"], e["rawSeconds"]) for e in entries["entries"]] == [(900, 10)]


async def test_cost_and_profit_are_answered_per_currency(store: TotalsStore) -> None:
    body = entry_2024(
        "65f0a0a0a0a0a0a0a0a0a0f2",
        "2026-03-10T09:00:00Z",
        "2026-03-10T10:00:00Z",
        hourly_rate=rate(10000),
    )
    body["costRate"] = {"amount": 4000, "currency": "EUR"}
    await store.apply_entry(parse_time_entry(body), "create")
    answer = await store.read_summary(WS, START, END, "PROJECT")
    assert answer["costAmounts"] == [{"currency": "EUR", "amount": 40.0}]
    assert answer["profitAmounts"] == [{"currency": "EUR", "amount": 60.0}]


async def test_a_workspace_upgraded_from_the_old_layout_is_rebuilt_from_its_entries(
    redis: Redis, clock: FixedClock
) -> None:
    store = TotalsStore(redis, BERLIN, clock=clock)
    await store.init_generations(WS, Basis(BERLIN))
    await fill(store, 30)
    want = await store.read_summary(WS, START, END, "USER")
    # What an older clockwall left: entries, no generations, totals in the old keys.
    await redis.delete(keys.projection(WS))
    await redis.hset(f"{keys.workspace_prefix(WS)}d:2026-03-10:P", "x|s", 5)
    from app.rebuild import ensure_projection

    fresh = TotalsStore(redis, BERLIN, clock=clock)
    await ensure_projection(fresh, WS, Basis(BERLIN))
    assert await run_rebuild(fresh, WS, grace_s=0)
    assert await fresh.read_summary(WS, START, END, "USER") == want
    assert not await redis.exists(f"{keys.workspace_prefix(WS)}d:2026-03-10:P")


async def test_the_meta_hash_copy_of_the_generations_follows_every_change_of_them(
    redis: Redis, clock: FixedClock
) -> None:
    # apply_entry.lua reads which generations to write from the meta hash's copy; a copy that
    # lagged behind the projection hash would leave a generation being built without an entry.
    store = TotalsStore(redis, BERLIN, clock=clock)
    copy = keys.entry_meta(WS), keys.GENS_FIELD
    rng = random.Random(3)

    async def apply(n: int) -> None:
        assert (await store.apply_entry(parse_time_entry(random_entry(rng, n)), "create")).changed

    # A projection hash deleted under a copy that names other generations (a reset, or the
    # layout before generations): the store starts generation 0 and the copy agrees with it.
    await redis.hset(*copy, "3,4")
    await apply(0)
    assert await redis.hget(*copy) == b"0"
    # A meta hash from before the copy: the first apply makes it from the projection hash.
    await redis.hdel(*copy)
    await apply(1)
    assert await redis.hget(*copy) == b"0"
    # A rebuild requested: both generations from the next apply on, and after the switch only
    # the new one, by a process whose own view of the generations was not refreshed.
    other = TotalsStore(redis, BERLIN, clock=clock)
    assert await request_rebuild(redis, WS, Basis(BERLIN), "test", force=True) == "1"
    assert await redis.hget(*copy) is None
    await apply(2)
    assert await redis.hget(*copy) == b"0,1"
    assert await redis.hexists(keys.entry_contributions(WS, "1"), "65f0a0a0a0a0a0a0a0000002")
    assert await run_rebuild(other, WS, grace_s=0)
    assert await redis.hget(*copy) is None
    await apply(3)
    assert await redis.hget(*copy) == b"1"
    assert await redis.hlen(keys.entry_contributions(WS, "1")) == 4
    await assert_all_levels(store, Basis(BERLIN))


async def test_cells_of_the_older_layout_answer_alike_and_are_rebuilt_in_the_new_one(
    redis: Redis, clock: FixedClock
) -> None:
    # Layout 1 (before 2026-12): seven-part cells, earned and cost kept as fields.
    old = Basis(BERLIN, None, 1)
    store = TotalsStore(redis, BERLIN, clock=clock)
    await store.init_generations(WS, old)
    await fill(store, 80)
    day_fields = [
        field.decode()
        for day in store.days(START, END)
        for field in await redis.hkeys(keys.cells_day(WS, 0, day))
    ]
    assert day_fields and all(f.count("|") == 7 for f in day_fields)
    assert any(f.endswith("|e") for f in day_fields) and any(f.endswith("|c") for f in day_fields)
    await assert_all_levels(store, old)
    before = await store.read_summary(WS, START, END, ("PROJECT", "USER"))
    week = date(2026, 3, 23), date(2026, 3, 29)
    _, old_wall = await store.reports.wall(WS, *week)

    # This version wants layout 2: the start-up check asks for a rebuild, which switches.
    assert (
        old.key() == "Europe/Berlin|off|cell layout 1"
        and Basis(BERLIN).key() == "Europe/Berlin|off"
    )
    from app.rebuild import ensure_projection

    await ensure_projection(store, WS, Basis(BERLIN))
    assert await run_rebuild(store, WS, grace_s=0)
    new_fields = [
        field.decode()
        for day in store.days(START, END)
        for field in await redis.hkeys(keys.cells_day(WS, 1, day))
    ]
    # Nine parts (rates closing the key) and only seconds kept: amounts come from the rates.
    assert new_fields and all(f.count("|") == 9 and f.endswith("|s") for f in new_fields)
    await assert_all_levels(store, Basis(BERLIN))
    assert await store.read_summary(WS, START, END, ("PROJECT", "USER")) == before
    _, new_wall = await store.reports.wall(WS, *week)

    def day_sums(snapshot: dict[str, Any]) -> dict[str, list[int]]:
        return {
            day: [sum(cell.get(k, 0) for cell in cells.values()) for k in ("s", "e", "c")]
            for day, cells in snapshot["days"].items()
        }

    assert day_sums(new_wall) == day_sums(old_wall)
    assert new_wall["progress"] == old_wall["progress"]


async def test_the_day_lists_only_grow_and_readers_list_an_entry_where_it_is(
    store: TotalsStore, redis: Redis
) -> None:
    rng = random.Random(5)
    body = random_entry(rng, 1)
    body["description"] = "Moved around"
    entry_id = body["id"]

    async def listed(day: date) -> list[str]:
        found = await store.read_entries(WS, day, day)
        described = await store.read_summary(
            WS, day, day, "USER", filters=parse_filters({"description": "moved"})
        )
        assert len(found["entries"]) == (1 if described["totalSeconds"] else 0)
        return [e["id"] for e in found["entries"]]

    body["timeInterval"] = {"start": "2026-03-10T10:00:00Z", "end": "2026-03-10T11:00:00Z"}
    await store.apply_entry(parse_time_entry(body), "create")
    body["timeInterval"] = {"start": "2026-03-12T10:00:00Z", "end": "2026-03-12T11:00:00Z"}
    await store.apply_entry(parse_time_entry(body), "update")  # moved to another day
    assert await listed(date(2026, 3, 10)) == [] and await listed(date(2026, 3, 12)) == [entry_id]
    old_list = await redis.get(keys.day_list(WS, 0, "2026-03-10"))
    assert old_list is not None and entry_id.encode() in old_list  # still a candidate there
    await store.delete_entry(WS, entry_id)
    assert await listed(date(2026, 3, 12)) == []
    await store.apply_entry(parse_time_entry(body), "restore")
    await store.apply_entry(parse_time_entry(body), "sync")  # the same day again: not appended
    assert await listed(date(2026, 3, 12)) == [entry_id]  # listed twice, shown once
    assert (await redis.get(keys.day_list(WS, 0, "2026-03-12"))).split().count(
        entry_id.encode()
    ) == 2


async def test_a_generation_indexed_by_sorted_sets_before_the_lists_reads_the_same(
    store: TotalsStore, redis: Redis
) -> None:
    await fill(store, 60)
    want = await store.read_entries(WS, START, END)
    described = await store.read_summary(
        WS, START, END, "PROJECT", filters=parse_filters({"description": "standup"})
    )
    assert len(want["entries"]) == 60 and described["totalSeconds"] > 0
    # What clockwall kept before 2026-12: each day's ids in a sorted set, no lists.
    for day in store.days(START, END):
        raw = await redis.get(keys.day_list(WS, 0, day))
        if raw:
            await redis.zadd(keys.day_index(WS, 0, day), {i: 0 for i in raw.split()})
            await redis.delete(keys.day_list(WS, 0, day))
    fresh = TotalsStore(redis, BERLIN, clock=store.clock)
    assert await fresh.read_entries(WS, START, END) == want
    assert (
        await fresh.read_summary(
            WS, START, END, "PROJECT", filters=parse_filters({"description": "standup"})
        )
        == described
    )


async def test_every_answer_says_from_which_day_its_data_is_complete(
    store: TotalsStore, redis: Redis
) -> None:
    await fill(store, 10)
    for answer in (
        await store.read_summary(WS, START, END, "PROJECT"),
        await store.read_team(WS, START, END),
        await store.read_entries(WS, START, END),
    ):
        assert answer["coverage"] == {"from": None, "complete": False}
    progress = {"since": "2026-02-01", "next": "2026-02-15", "until": "2026-03-31"}
    await redis.hset(
        keys.coverage(WS),
        mapping={"from": "2026-03-10", "import": orjson.dumps({**progress, "state": "running"})},
    )
    before = await store.read_summary(WS, START, END, "PROJECT")
    assert before["coverage"] == {
        "from": "2026-03-10",
        "complete": False,
        "importing": {**progress, "state": "running", "rows": None, "message": None},
    }
    after = await store.read_entries(WS, date(2026, 3, 10), END)
    assert after["coverage"]["complete"] is True
    await redis.hset(keys.coverage(WS), "import", orjson.dumps({**progress, "state": "done"}))
    team = await store.read_team(WS, date(2026, 3, 10), END)
    assert team["coverage"] == {"from": "2026-03-10", "complete": True}


def test_clockwall_rebuild_rebuilds_with_a_progress_bar_and_the_same_totals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main
    from tests import dbs
    from tests.conftest import redis_url

    url = redis_url(dbs.CORE)

    async def seed() -> dict[str, Any]:
        redis = Redis.from_url(url)
        try:
            await redis.flushdb()
            store = TotalsStore(redis, BERLIN, clock=FixedClock())
            await store.init_generations(WS, Basis(BERLIN))
            await fill(store, 40)
            return await store.read_summary(WS, START, END, "USER")
        finally:
            await redis.aclose()

    async def after() -> tuple[dict[str, Any], bytes | None]:
        redis = Redis.from_url(url)
        try:
            store = TotalsStore(redis, BERLIN, clock=FixedClock())
            gen = await redis.hget(keys.projection(WS), "gen")
            answer = await store.read_summary(WS, START, END, "USER")
            await redis.flushdb()
            return answer, gen
        finally:
            await redis.aclose()

    want = asyncio.run(seed())
    for name in ("CLOCKIFY_API_KEY", "CLOCKWALL_TIMEZONE", "CLOCKWALL_REPORT_ROUNDING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("CLOCKIFY_WORKSPACE_ID", WS)
    assert main(["rebuild"]) == 0
    out = capsys.readouterr().out
    assert f"workspace {WS} answers from generation 1 (Europe/Berlin|off)" in out
    got, gen = asyncio.run(after())
    assert (got, gen) == (want, b"1")
    monkeypatch.delenv("REDIS_URL")
    assert main(["rebuild"]) == 2
    assert "REDIS_URL is not set" in capsys.readouterr().err


async def test_the_description_filter_sees_every_change_to_a_month_it_has_read(
    store: TotalsStore,
) -> None:
    await fill(store, 60)
    query = parse_filters({"description": "REVIEW"})
    keep = lambda s: "review" in s["description"].lower()  # noqa: E731

    async def check() -> None:
        states, names = await stored(store)
        for level in ("PROJECT", "DATE"):
            answer = await store.read_summary(WS, START, END, level, filters=query)
            assert shown(answer) == expected(states, names, Basis(BERLIN), level, keep), level

    await check()  # the month is read and kept
    body = random_entry(random.Random(99), 500)
    body["description"] = "Invoice review for ACME"
    await store.apply_entry(parse_time_entry(body), "create")
    await check()  # a new entry in it
    body["description"] = "Standup"
    await store.apply_entry(parse_time_entry(body), "update")
    await check()  # an edit that takes it out
