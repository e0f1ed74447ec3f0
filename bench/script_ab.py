"""apply_entry.lua's own cost, without HTTP: the EVALSHA calls the store makes for bench.ingest's
deliveries are recorded once (an in-process TotalsStore on the bench database), then replayed
pipelined, so that Redis is busy and nothing else runs between its scripts. The replay goes
block by block, alternating between this tree's script and each variant (every script on a
workspace of its own), and sums Redis's own time per EVALSHA (INFO commandstats) per script, so
a drift of the shared machine hits all of them alike. A variant must take the same KEYS and ARGV.

    python -m bench.script_ab [VARIANT.lua ...] [--stages] [--block 250] [--requests 10000]

--stages adds this tree's script cut short (an early return) before each of its stages: where
the time of an apply goes. Not part of `python -m bench` (it prints no target figure).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis
from redis.asyncio import Redis

from app import keys
from app.child_server import ROOT
from app.models import parse_time_entry
from app.store import TotalsStore
from app.webhooks import ENTRY_KINDS
from bench.common import REDIS_URL, TIMEZONE, WS, flush_bench_db, make_team, print_table, row
from bench.ingest import FEBRUARY, MARCH, Op, make_ops

SCRIPT = ROOT / "app" / "lua" / "apply_entry.lua"
# (what has run when the script returns there, the line it returns before)
STAGES = (
    ("the call and its arguments", "local prefix, id, kind, status, fp = ARGV[1]"),
    ("+ the meta record and generations read", "-- Names ride along with every delivery"),
    ("+ the contributions collected", "if netting then\n"),
    ("+ the totals changed (HINCRBY, day versions)", "write_names()\n\nfor i, g in ipairs"),
    ("+ names and the day index", "local day = (news[1] and news[1].day)"),
    ("+ the meta, state and running writes", "local action\n"),
)
Call = tuple[list[bytes], list[bytes]]


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


async def record(ops_lists: list[list[Op]]) -> tuple[list[list[Call]], dict[Any, Any]]:
    """The apply script's (KEYS, ARGV) for each delivery of each list, as the store sends them
    applying the deliveries in order; and the projection hash they were computed against."""
    flush_bench_db()
    client = Redis.from_url(REDIS_URL)
    store = TotalsStore(client, ZoneInfo(TIMEZONE))
    calls: list[Call] = []
    send = store._script

    async def capture(script: Any, keys: list[Any], args: list[Any]) -> Any:
        if script is store._apply:
            calls.append(([_bytes(k) for k in keys], [_bytes(a) for a in args]))
        return await send(script, keys, args)

    store._script = capture  # type: ignore[method-assign]
    recorded: list[list[Call]] = []
    try:
        for ops in ops_lists:
            calls = []
            for op in ops:
                entry = parse_time_entry(orjson.loads(op.request.body))
                await store.apply_entry(entry, ENTRY_KINDS[op.event])
            recorded.append(calls)
        projection: dict[Any, Any] = await client.hgetall(keys.projection(WS))
    finally:
        await client.aclose()
    return recorded, projection


def moved(calls: list[Call], ws: str) -> list[Call]:
    """The same calls on workspace `ws` (same length as WS: ids, keys and states keep their
    sizes)."""
    old, new = WS.encode(), ws.encode()
    return [
        ([k.replace(old, new) for k in keys_], [a.replace(old, new) for a in args])
        for keys_, args in calls
    ]


def cut_short(text: str, before: str) -> str | None:
    """The script returning "duplicate" before the first line starting with `before`; None
    when the script has no such line (it changed since the stages were listed)."""
    if before not in text:
        return None
    return text.replace(before, "if true then return {'duplicate', ''} end\n" + before, 1)


def measure(
    scripts: list[tuple[str, str]],
    warm: list[Call],
    calls: list[Call],
    projection: dict[Any, Any],
    block: int,
) -> list[float]:
    """Redis time per EVALSHA of each script over `calls`, replayed in alternating blocks."""
    client = redis.Redis.from_url(REDIS_URL)
    flush_bench_db()
    runs: list[tuple[str, list[Call], list[Call]]] = []
    for n, (_label, text) in enumerate(scripts):
        ws = f"{n:02x}{WS[2:]}"
        client.hset(keys.projection(ws), mapping=projection)
        runs.append((client.script_load(text), moved(warm, ws), moved(calls, ws)))

    def replay(sha: str, part: list[Call]) -> None:
        pipe = client.pipeline(transaction=False)
        for i, (keys_, args) in enumerate(part, 1):
            pipe.evalsha(sha, len(keys_), *keys_, *args)
            if i % 50 == 0:
                pipe.execute()
        pipe.execute()

    for sha, warm_calls, _ in runs:
        replay(sha, warm_calls)
    usec = [0] * len(runs)
    count = [0] * len(runs)
    for b, start in enumerate(range(0, len(calls), block)):
        order = list(range(len(runs)))
        if b % 2:
            order.reverse()
        for i in order:
            sha, _, mine = runs[i]
            client.config_resetstat()
            replay(sha, mine[start : start + block])
            stats = client.info("commandstats")["cmdstat_evalsha"]
            usec[i] += int(stats["usec"])
            count[i] += int(stats["calls"])
    client.close()
    flush_bench_db()
    return [u / c for u, c in zip(usec, count, strict=True)]


def run(variants: list[Path], stages: bool, block: int, requests: int) -> list[dict[str, Any]]:
    rng = random.Random(20240301)
    team = make_team(rng)
    warm_ops = make_ops(rng, team, 1000, 0xFFFFFF, FEBRUARY, 64)
    ops = make_ops(rng, team, requests, 1, MARCH, 64)
    (warm, calls), projection = asyncio.run(record([warm_ops, ops]))
    text = SCRIPT.read_text()
    scripts = [("this tree's apply_entry.lua", text)]
    scripts += [(str(path), path.read_text()) for path in variants]
    if stages:
        for label, before in STAGES:
            short = cut_short(text, before)
            if short is None:
                print(f"  stage {label!r}: its line is no longer in the script, left out")
            else:
                scripts.append((f"stage: {label}", short))
    per_call = measure(scripts, warm, calls, projection, block)
    base = per_call[0]
    return [
        row(f"Redis time per EVALSHA, {label}", us, base, "", "us")
        for (label, _), us in zip(scripts, per_call, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variants", nargs="*", type=Path, help="edited copies of apply_entry.lua")
    parser.add_argument(
        "--stages", action="store_true", help="the script cut short at each stage too"
    )
    parser.add_argument("--block", type=int, default=250, help="calls per block")
    parser.add_argument("--requests", type=int, default=10000, help="deliveries replayed")
    args = parser.parse_args()
    print_table(run(args.variants, args.stages, args.block, args.requests))


if __name__ == "__main__":
    main()
