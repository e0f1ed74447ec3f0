"""The webhook ingest of this working tree against an earlier commit's, side by side in one run:
each round starts each tree's own bench server (`bench.serve_target --kind clockwall`, the
commit checked out in a temporary git worktree), sends both the same deliveries and reads
Redis's own time per EVALSHA (INFO commandstats, reset before each measured run), so a figure
stated against "the code when the issue was filed" is measured on one machine at one time.

    python -m bench.against REV [--rounds 4] [--requests 10000] [--concurrency 16]

REV must have `bench/serve_target.py` taking `--kind clockwall --port P` and using Redis
database 13 of CLOCKWALL_BENCH_REDIS (true since the pipelined ingest, 2024-era bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import redis

from app.child_server import ROOT, ChildServer
from bench.common import (
    REDIS_URL,
    flush_bench_db,
    make_team,
    print_table,
    reset_stats,
    row,
    run_load,
    script_time,
)
from bench.ingest import FEBRUARY, MARCH, make_ops


def checkout(rev: str, into: Path) -> None:
    """REV's tree in `into` (a detached git worktree of this repository)."""
    result = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(into), rev],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"cannot check out {rev!r}: {result.stderr.strip()}")


def remove_worktree(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(path, ignore_errors=True)


def tree_server(tree: Path, log_dir: Path) -> ChildServer:
    """One tree's clockwall bench server on 127.0.0.1, run from that tree (its modules first
    on the path, as `python -m` puts the working directory there)."""
    return ChildServer(
        "bench.serve_target",
        "--kind",
        "clockwall",
        log_path=log_dir / f"{tree.name}.log",
        env=dict(os.environ, PYTHONPATH=str(tree)),
        cwd=tree,
    )


async def measure(
    rev: str, rounds: int, requests: int, concurrency: int, verbose: bool = True
) -> list[dict[str, Any]]:
    rng = random.Random(20240301)
    team = make_team(rng)
    warm = [op.request for op in make_ops(rng, team, 1000, 0xFFFFFF, FEBRUARY, 64)]
    per_tree: dict[str, list[tuple[float, float]]] = {rev: [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="clockwall-against-") as tmp:
        old_tree = Path(tmp) / "tree"
        checkout(rev, old_tree)
        try:
            trees = {rev: old_tree, "this tree": ROOT}
            for n in range(rounds):
                requests_ = [op.request for op in make_ops(rng, team, requests, n + 1, MARCH, 64)]
                order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
                for label, tree in order:  # ABBA, so a drift of the machine hits both alike
                    flush_bench_db()
                    with tree_server(tree, Path(tmp)) as server:
                        await run_load(server.base_url, warm, concurrency, 60, "raw")
                        reset_stats()
                        result = await run_load(server.base_url, requests_, concurrency, 60, "raw")
                    calls, usec = script_time()
                    per_call = usec / calls if calls else float("nan")
                    per_tree[label].append((per_call, result.throughput))
                    if verbose:
                        print(
                            f"  round {n + 1} {label:>12s}: {per_call:6.1f} us per EVALSHA "
                            f"({calls} calls), {result.throughput:,.0f} req/s "
                            f"{dict(result.statuses)}",
                            flush=True,
                        )
        finally:
            remove_worktree(old_tree)
    now, then = per_tree["this tree"], per_tree[rev]
    if verbose:
        ratios = ", ".join(f"{a[0] / b[0]:.2f}" for a, b in zip(now, then, strict=True))
        print(f"  Redis time this tree / {rev}, round by round: {ratios}")
    return [
        row(
            f"Redis time per applied entry, this tree vs {rev} (median of rounds)",
            median([x[0] for x in now]),
            median([x[0] for x in then]),
            "(issue 10: 30 of 64 us, <= 0.47)",
            "us",
        ),
        row(
            f"ingest throughput, this tree vs {rev} (median of rounds)",
            median([x[1] for x in now]),
            median([x[1] for x in then]),
            "",
            "req/s",
        ),
    ]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("rev", help="the commit to compare with, e.g. b368aaf")
    parser.add_argument("--rounds", type=int, default=4, help="ABBA-alternated rounds")
    parser.add_argument("--requests", type=int, default=10000, help="per round and tree")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    redis.Redis.from_url(REDIS_URL).ping()  # say at once when there is no Redis to measure
    print_table(asyncio.run(measure(args.rev, args.rounds, args.requests, args.concurrency)))


if __name__ == "__main__":
    main()
