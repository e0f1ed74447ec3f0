"""Webhook ingest: clockwall's POST /webhooks/clockify against a floor (read body, one EVALSHA,
small JSON) under the same load in the same run; then checks clockwall's totals.

    python -m bench.ingest [--requests 5000] [--concurrency 16] [--seconds 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from bench.common import (
    REDIS_URL,
    Entry,
    LoadRequest,
    LoadResult,
    ServerProcess,
    Team,
    entry_body,
    flush_bench_db,
    make_entry,
    make_team,
    percentile,
    print_table,
    redis_cpu_s,
    reset_stats,
    row,
    run_load,
    script_time,
    webhook_request,
)
from bench.serve_target import FLOOR_KEY, LOOP

MARCH = datetime(2024, 3, 2, tzinfo=UTC)  # entries start 2024-03-02 .. 03-29: no edge days
FEBRUARY = datetime(2024, 2, 2, tzinfo=UTC)  # warm-up entries, outside the checked range
TIMER_SHARE = 0.3  # of requests: 30 % started, 30 % stopped, 40 % manual entries


@dataclass(frozen=True)
class Op:
    event: str  # NEW_TIME_ENTRY | NEW_TIMER_STARTED | TIMER_STOPPED
    entry: Entry
    request: LoadRequest


def make_ops(
    rng: random.Random, team: Team, count: int, id_tag: int, first_day: datetime, lag: int
) -> list[Op]:
    """`count` webhook deliveries with distinct entry ids: manual entries and timers, each
    timer's stop `lag` deliveries after its start (so it almost always lands after it)."""
    timers = int(count * TIMER_SHARE)
    primaries: list[tuple[str, Entry]] = []
    for i in range(count - timers):
        entry = make_entry(rng, team, f"{id_tag:06x}{i:018x}", first_day, 28)
        kind = "NEW_TIMER_STARTED" if i < timers else "NEW_TIME_ENTRY"
        primaries.append((kind, entry))
    rng.shuffle(primaries)
    ops: list[Op] = []
    pending: list[tuple[int, Entry]] = []  # (emit at or after this position, entry)
    for kind, entry in primaries:
        while pending and pending[0][0] <= len(ops):
            _, stopped = pending.pop(0)
            ops.append(_op("TIMER_STOPPED", stopped))
        ops.append(_op(kind, entry))
        if kind == "NEW_TIMER_STARTED":
            pending.append((len(ops) + lag, entry))
    ops.extend(_op("TIMER_STOPPED", entry) for _, entry in pending)
    return ops


def _op(event: str, entry: Entry) -> Op:
    body = entry_body(entry, running=event == "NEW_TIMER_STARTED")
    return Op(event, entry, webhook_request(event, body))


@dataclass
class Measured:
    kind: str
    results: list[LoadResult]
    server_cpu_s: float
    redis_cpu_s: float
    script_calls: int = 0
    script_us: int = 0

    @property
    def completed(self) -> int:
        return sum(r.completed for r in self.results)

    @property
    def throughput(self) -> float:
        return self.completed / sum(r.elapsed_s for r in self.results)

    def latency_ms(self, q: float) -> float:
        return percentile([x for r in self.results for x in r.latencies_s], q) * 1000

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.completed * 1e6

    @property
    def client_cpu_s(self) -> float:
        return sum(r.client_cpu_s for r in self.results)

    @property
    def statuses(self) -> Counter[int | str]:
        total: Counter[int | str] = Counter()
        for r in self.results:
            total.update(r.statuses)
        return total


async def _measure_one(
    server: ServerProcess,
    ops: list[Op],
    concurrency: int,
    seconds: float,
    client: str,
    into: Measured,
) -> LoadResult:
    reset_stats()  # only this server runs now: its scripts are all that INFO counts
    cpu0, rcpu0 = server.cpu_s(), redis_cpu_s()
    requests = [o.request for o in ops]
    result = await run_load(server.base_url, requests, concurrency, seconds, client)
    into.server_cpu_s += server.cpu_s() - cpu0
    into.redis_cpu_s += redis_cpu_s() - rcpu0
    calls, usec = script_time()
    into.script_calls += calls
    into.script_us += usec
    into.results.append(result)
    return result


def check_totals(
    server: ServerProcess, rounds: list[tuple[list[Op], LoadResult]]
) -> dict[str, Any]:
    """Stopped seconds in the March summary equal the durations of the stopped entries sent
    (accepted), and the running timers are exactly the started ones whose stop was not sent."""
    stopped: dict[str, int] = {}
    started: set[str] = set()
    for ops, result in rounds:
        for index, op in enumerate(ops):
            if index not in result.ok:
                continue
            if op.event == "NEW_TIMER_STARTED":
                started.add(op.entry.id)
            else:
                stopped[op.entry.id] = op.entry.duration_s
    expected_s = sum(stopped.values())
    expected_running = len(started - stopped.keys())
    summary = httpx.get(
        f"{server.base_url}/api/summary",
        params={"start": "2024-03-01", "end": "2024-03-31", "groupBy": "DATE"},
        timeout=30,
    ).json()
    running = httpx.get(f"{server.base_url}/api/running", timeout=30).json()["running"]
    got_s = summary["totalSeconds"] - summary["runningSeconds"]
    got_running = sum(1 for r in running if r["start"].startswith("2024-03"))
    return {
        "expected_s": expected_s,
        "got_s": got_s,
        "expected_running": expected_running,
        "got_running": got_running,
        "ok": expected_s == got_s and expected_running == got_running,
    }


async def measure(
    requests: int,
    concurrency: int,
    seconds: float,
    rounds: int,
    warmup: int,
    client: str = "raw",
    verbose: bool = False,
) -> list[dict[str, Any]]:
    flush_bench_db()
    rng = random.Random(20240301)
    team = make_team(rng)
    lag = max(4 * concurrency, 64)
    floor = Measured("floor", [], 0.0, 0.0)
    clockwall = Measured("clockwall", [], 0.0, 0.0)
    piped = Measured("floor-pipe", [], 0.0, 0.0)
    applied: list[tuple[list[Op], LoadResult]] = []
    with (
        ServerProcess("floor") as floor_server,
        ServerProcess("clockwall") as cw_server,
        ServerProcess("floor-pipe") as piped_server,
    ):
        servers = {"floor": floor_server, "clockwall": cw_server, "floor-pipe": piped_server}
        targets = {"floor": floor, "clockwall": clockwall, "floor-pipe": piped}
        warm = make_ops(rng, team, warmup, 0xFFFFFF, FEBRUARY, lag)
        warm_ok = {}
        for kind, server in servers.items():
            requests_ = [o.request for o in warm]
            warmed = await run_load(server.base_url, requests_, concurrency, 60, client)
            warm_ok[kind] = len(warmed.ok)
        for n in range(rounds):
            ops = make_ops(rng, team, requests, n + 1, MARCH, lag)
            # ABBA order across rounds, so a drift of the shared machine hits both alike
            # (the reference floor last, then first).
            order = ("floor", "clockwall") if n % 2 == 0 else ("clockwall", "floor")
            order = (*order, "floor-pipe") if n % 2 == 0 else ("floor-pipe", *order)
            for kind in order:
                result = await _measure_one(
                    servers[kind], ops, concurrency, seconds, client, targets[kind]
                )
                if kind == "clockwall":
                    applied.append((ops, result))
                if verbose:
                    print(
                        f"  round {n + 1} {kind:9s}: {result.completed} requests in "
                        f"{result.elapsed_s:.2f} s = {result.throughput:,.0f} req/s "
                        f"{dict(result.statuses)}"
                    )
        check = check_totals(cw_server, applied)
    counter = redis.Redis.from_url(REDIS_URL)
    floor_count = int(counter.hget(FLOOR_KEY, "n") or 0)
    piped_count = int(counter.hget(FLOOR_KEY, "p") or 0)
    counter.close()
    floor_ok = sum(len(r.ok) for r in floor.results) + warm_ok["floor"]
    piped_ok = sum(len(r.ok) for r in piped.results) + warm_ok["floor-pipe"]
    if verbose:
        print()
        print(
            f"client={client}, loop={LOOP}, concurrency={concurrency}, rounds={rounds}, lag={lag}"
        )
        head = ("kind", "req/s", "p50 ms", "p95 ms", "p99 ms", "srv CPU us/req")
        head += ("Redis CPU us/req", "client CPU us/req", "statuses")
        print("  ".join(f"{h:>17s}" for h in head))
        for m in (floor, clockwall, piped):
            cells = (
                m.kind,
                f"{m.throughput:,.0f}",
                f"{m.latency_ms(50):.2f}",
                f"{m.latency_ms(95):.2f}",
                f"{m.latency_ms(99):.2f}",
                f"{m.per_request_us(m.server_cpu_s):.0f}",
                f"{m.per_request_us(m.redis_cpu_s):.0f}",
                f"{m.per_request_us(m.client_cpu_s):.0f}",
                str(dict(m.statuses)),
            )
            print("  ".join(f"{c:>17s}" for c in cells))
        print(
            f"\nfloor counter: {floor_count} increments for {floor_ok} accepted requests "
            f"-> {'OK' if floor_count == floor_ok else 'MISMATCH'}; floor-pipe: {piped_count} "
            f"for {piped_ok} -> {'OK' if piped_count == piped_ok else 'MISMATCH'}"
        )
        print(
            f"clockwall March stopped seconds: expected {check['expected_s']}, summary "
            f"{check['got_s']}; running timers expected {check['expected_running']}, "
            f"/api/running {check['got_running']} -> {'OK' if check['ok'] else 'MISMATCH'}\n"
        )
    return [
        row(
            "ingest throughput clockwall/floor",
            clockwall.throughput,
            floor.throughput,
            ">= 0.8",
            "req/s",
        ),
        row(
            "ingest capacity per server core (1 / server CPU per request)",
            1e6 / clockwall.per_request_us(clockwall.server_cpu_s),
            1e6 / floor.per_request_us(floor.server_cpu_s),
            ">= 0.8",
            "req/s",
        ),
        row(
            "reference: clockwall / floor whose EVALSHA uses clockwall's pipe",
            clockwall.throughput,
            piped.throughput,
            "",
            "req/s",
        ),
        row("ingest p50 latency", clockwall.latency_ms(50), floor.latency_ms(50), "", "ms"),
        row("ingest p99 latency", clockwall.latency_ms(99), floor.latency_ms(99), "", "ms"),
        row(
            "ingest server CPU per request",
            clockwall.per_request_us(clockwall.server_cpu_s),
            floor.per_request_us(floor.server_cpu_s),
            "",
            "us",
        ),
        row(
            "ingest Redis CPU per request",
            clockwall.per_request_us(clockwall.redis_cpu_s),
            floor.per_request_us(floor.redis_cpu_s),
            "",
            "us",
        ),
        row(
            "Redis time per applied entry (INFO commandstats, EVALSHA)",
            clockwall.script_us / max(1, clockwall.script_calls),
            floor.script_us / max(1, floor.script_calls),
            "<= 30",
            "us",
        ),
        row(
            "ingest totals after load",
            "OK" if check["ok"] else "MISMATCH",
            None,
            "OK",
            f"{check['got_s']}/{check['expected_s']} s",
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    if quick:
        return asyncio.run(measure(1500, 16, 8.0, 1, 200))
    return asyncio.run(measure(5000, 16, 20.0, 2, 500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000, help="per round and server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="time cap per round")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA-alternated rounds")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="raw",
        help="load generator: httpx.AsyncClient, or bare asyncio streams (less client CPU)",
    )
    args = parser.parse_args()
    rows = asyncio.run(
        measure(
            args.requests,
            args.concurrency,
            args.seconds,
            args.rounds,
            args.warmup,
            client=args.client,
            verbose=True,
        )
    )
    print_table(rows)


if __name__ == "__main__":
    main()
