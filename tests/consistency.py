"""Consistency checks against a live server and its Redis: every total agrees with the entries
it is made of, every entry's state with its contribution, the entries with the load's model,
and SSE clients with the change stream.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.stream import parse_stream_id
from tests.conftest import WS
from tests.sse_client import SSEClient
from tests.webhook_load import RANGE, EntryScript


async def read_views(http: httpx.AsyncClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    entries = await http.get("/api/entries", params=RANGE)
    assert entries.status_code == 200, entries.text
    out["entries"] = entries.json()
    for group in ("PROJECT", "USER", "CLIENT", "TAG", "DATE"):
        answer = await http.get("/api/summary", params={**RANGE, "groupBy": group})
        assert answer.status_code == 200, answer.text
        out[group] = answer.json()
    team = await http.get("/api/team", params=RANGE)
    assert team.status_code == 200, team.text
    out["team"] = team.json()
    return out


def _stopped(group: dict[str, Any]) -> int:
    return int(group["totalSeconds"]) - int(group.get("runningSeconds", 0))


def assert_views_agree(views: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every total agrees with the entries it is made of (stopped time only: a running timer's
    elapsed time depends on when each answer was computed). Returns the entries by id."""
    entries = {e["id"]: e for e in views["entries"]["entries"]}
    assert not views["entries"]["truncated"]
    stopped = [e for e in entries.values() if not e["running"]]
    total = sum(e["durationSeconds"] for e in stopped)
    by: dict[str, dict[Any, int]] = {"PROJECT": {}, "USER": {}, "DATE": {}, "CLIENT": {}}
    for e in stopped:
        for group, ident in (
            ("PROJECT", (e["project"] or {}).get("id")),
            ("USER", e["user"]["id"]),
            ("DATE", e["day"]),
            ("CLIENT", (e["client"] or {}).get("id")),
        ):
            by[group][ident] = by[group].get(ident, 0) + e["durationSeconds"]
    for group, sums in by.items():
        answer = views[group]
        assert _stopped(answer) == total, (group, _stopped(answer), total)
        got = {g["id"]: _stopped(g) for g in answer["groups"] if _stopped(g)}
        assert got == {k: v for k, v in sums.items() if v}, group
    assert _stopped(views["TAG"]) == total
    if not any(e["running"] for e in entries.values()):
        assert views["team"]["totalSeconds"] == total
    return entries


async def assert_contributions_agree(redis: Redis, ws: str = WS) -> int:
    """Straight from Redis: for every entry, its stored state, its status in the meta hash and
    the contribution it holds agree (no half-applied entry). Returns the entries checked."""
    meta: Any = await redis.hgetall(keys.entry_meta(ws))
    states: Any = await redis.hgetall(keys.entry_states(ws))
    gen = (await redis.hget(keys.projection(ws), "gen") or b"0").decode()
    # The meta hash's copy of the generations, when it holds one, is the projection hash's.
    copy = meta.pop(keys.GENS_FIELD.encode(), None)
    if copy is not None:
        nxt = await redis.hget(keys.projection(ws), "next")
        assert copy.decode() == (f"{gen},{nxt.decode()}" if nxt else gen), copy
    contribs: Any = await redis.hgetall(keys.entry_contributions(ws, gen))
    running: Any = await redis.hgetall(keys.running(ws))
    # Every entry holding a contribution is listed on its day (the lists only grow: an entry
    # may be listed where it no longer is, which readers check).
    days = {orjson.loads(raw)["day"] for raw in contribs.values()} - {""}
    listed = {
        day: set((await redis.get(keys.day_list(ws, gen, day)) or b"").split()) for day in days
    }
    for raw_id, raw in contribs.items():
        day = orjson.loads(raw)["day"]
        assert not day or raw_id in listed[day], (raw_id, day)
    for raw_id, raw_meta in meta.items():
        status = raw_meta.decode().split("|", 1)[0]
        state = orjson.loads(states[raw_id])
        contrib = orjson.loads(contribs.get(raw_id, b'{"f": []}'))
        seconds = sum(v for f, v in contrib["f"] if f.endswith("|s"))
        if status == "L":
            start = datetime.fromisoformat(state["start"])
            end = datetime.fromisoformat(state["end"])
            assert seconds == int((end - start).total_seconds()), (raw_id, state, contrib)
            assert raw_id not in running
        elif status == "R":
            assert state["end"] is None and seconds == 0 and raw_id in running, raw_id
        else:
            assert status == "D" and raw_id not in contribs and raw_id not in running, raw_id
    return len(meta)


def assert_matches_model(
    entries: dict[str, dict[str, Any]], scripts: list[EntryScript], exact: bool
) -> None:
    """Each entry the API shows is in a state its deliveries allow; with `exact`, every life
    was acknowledged and the API shows exactly the model."""
    for script in scripts:
        shown = entries.get(script.id)
        seen: dict[str, Any] | None = None
        if shown is not None:
            seen = {
                "start": shown["start"],
                "running": shown["running"],
                "project": (shown["project"] or {}).get("id"),
                "user": shown["user"]["id"],
            }
            if not shown["running"]:
                seen["seconds"] = shown["durationSeconds"]
        allowed = []
        for state in script.possible_states() if not exact else [script.steps[-1].state]:
            if state is None:
                allowed.append(None)
            else:
                want = {k: state[k] for k in ("start", "running", "project", "user")}
                if not state["running"]:
                    want["seconds"] = state["seconds"]
                allowed.append(want)
        assert seen in allowed, (script.id, seen, allowed, script.acked, script.sent)


async def read_ids_until(client: SSEClient, final: tuple[int, int], timeout_s: float) -> list[str]:
    """The ids of the events read (after the snapshot) until one reaches `final`."""
    ids: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not ids or (parse_stream_id(ids[-1]) or (0, 0)) < final:
        message = await client.next_event(max(0.1, deadline - time.monotonic()))
        if message.id is not None and message.event != "snapshot":
            ids.append(message.id)
    return ids


async def stream_ids(redis: Redis, ws: str = WS) -> list[str]:
    rows: Any = await redis.xrange(keys.changes(ws))
    return [(r[0].decode() if isinstance(r[0], bytes) else str(r[0])) for r in rows]
