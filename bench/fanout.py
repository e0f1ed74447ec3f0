"""SSE fan-out: N idle clients on one server process, one change published, time until every
client has it; server memory per idle client; webhook -> client latency at a steady webhook rate.

Run: `python -m bench.fanout [--quick]`. Each figure is measured side by side against a NAIVE
`/events` in the same run: the sse-starlette tutorial design, where every client gets its own
unbounded asyncio.Queue and generator, one Redis reader task iterates over all queues for every
change, each client encodes its own events (dicts -> ServerSentEvent), one write per event, and
shutdown is left to sse-starlette's cancellation. Its snapshot comes from the same shared cache
as clockwall's, so both connect the same N clients and the figures compare fan-out and memory,
not snapshot reads. Both servers run the same app (same webhook path, same middleware), one
uvicorn worker each, in a subprocess, against the real Redis, database 13. Clients are raw
asyncio protocols in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import random
import re
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import redis

from bench.common import (
    REDIS_URL,
    TIMEZONE,
    TOKEN,
    WS,
    Entry,
    ServerProcess,
    entry_body,
    make_entry,
    make_team,
    own_cpu_s,
    percentile,
    print_table,
    process_cpu_s,
    row,
)

LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
# Every benchmark entry id (24 hex digits, as the webhook demands) starts with this, so clients
# spot them cheaply.
ENTRY_ID = re.compile(rb"bec0ffee[0-9a-f]{16}")
KINDS = ("clockwall", "naive")


# The servers under test (run in a subprocess: `python -m bench.fanout --serve KIND --port P`) --
def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def build_app(kind: str) -> Any:
    from app.config import Secret, Settings, WebhookToken
    from app.main import create_app

    settings = Settings(
        redis_url=REDIS_URL,
        workspace_ids=(WS,),
        webhook_tokens=(WebhookToken(Secret(TOKEN)),),
        timezone=TIMEZONE,
    )
    app = create_app(settings)
    if kind == "naive":
        from starlette.routing import Route

        naive = NaiveEvents(app.state.service)
        app.router.routes = [
            Route("/events", naive.handle) if getattr(r, "path", "") == "/events" else r
            for r in app.router.routes
        ]
    return app


class NaiveEvents:
    """The typical first SSE endpoint: a queue per client, a publisher looping over them."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.queues: set[asyncio.Queue[tuple[str, str]]] = set()
        self.reader: asyncio.Task[None] | None = None
        from app.snapshot import SnapshotCache

        self.snapshots = SnapshotCache(service.hub)

    async def read_forever(self) -> None:
        from app import keys
        from app.stream import event_of

        stream = keys.changes(WS)
        newest = await self.service.redis.xrevrange(stream, count=1)
        last = newest[0][0].decode() if newest else "0-0"
        while True:
            # Shorter than the client's 5 s socket timeout, or a quiet stream kills this task.
            reply = await self.service.redis.xread({stream: last}, block=2000, count=500)
            for _, entries in reply or []:
                for raw_id, fields in entries:
                    last = raw_id.decode()
                    for queue in list(self.queues):
                        queue.put_nowait((last, (event_of(fields) or b"").decode()))

    async def handle(self, request: Any) -> Any:
        from sse_starlette import EventSourceResponse

        if self.reader is None:
            self.reader = asyncio.create_task(self.read_forever())
        store = self.service.store
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.queues.add(queue)

        async def events() -> AsyncIterator[dict[str, Any]]:
            try:
                start, end = store.current_week()
                snapshot = await self.snapshots.get(store, WS, start, end, {})
                data = snapshot.data.decode()
                yield {"event": "snapshot", "id": snapshot.stream_id, "data": data}
                yield {"event": "status", "data": '{"store":"ok"}'}
                while True:
                    event_id, data = await queue.get()
                    yield {"event": "change", "id": event_id, "data": data}
            finally:
                self.queues.discard(queue)

        return EventSourceResponse(events(), ping=15)


def serve(kind: str, port: int) -> None:
    from app.config import Settings
    from app.runtime import run_server, tune_gc

    raise_fd_limit()
    app = build_app(kind)
    tune_gc()  # as `clockwall serve` does
    run_server(  # as `clockwall serve` does: its header deadline and shutdown signal
        app,
        app.state.exiting,
        header_timeout_s=Settings().header_timeout_s,
        host="127.0.0.1",
        port=port,
        loop=LOOP,
        workers=1,
        backlog=4096,
        access_log=False,
        log_level="warning",
    )


class Server(ServerProcess):
    """`python -m bench.fanout --serve KIND --port P`: the same life as the ingest servers."""

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "bench.fanout", "--serve", self.kind]
        return [*cmd, "--port", str(self.port)]

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


# The clients --------------------------------------------------------------------------------
class Probe(asyncio.Protocol):
    """One SSE client: ready once `event: status` arrived (snapshot first), then it notes when
    it first sees each benchmark entry id (all of them when `sample`, else only `watch`)."""

    def __init__(self, request: bytes, sample: bool) -> None:
        self.request = request
        self.sample = sample
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.tail = b""
        self.watch: bytes | None = None
        self.seen_at: dict[bytes, float] = {}
        self.watch_done: asyncio.Future[float] | None = None
        self.closed = False
        self.clean_end = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.ready.done():
            self.head += data
            if b"event: status" in self.head:
                self.ready.set_result(None)
                self.head = b""
            return
        window = self.tail + data
        self.tail = window[-40:]
        done = self.watch_done
        if self.watch is not None and done is not None and not done.done() and self.watch in window:
            done.set_result(now)
        if self.sample:
            for found in ENTRY_ID.findall(window):
                self.seen_at.setdefault(found, now)
        self.clean_end = window.endswith(b"\r\n0\r\n\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the snapshot"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_clients(
    port: int, count: int, deadline: float, sample_every: int = 0
) -> tuple[list[Probe], float]:
    """`count` clients, at most 200 connecting at once; (the ready ones, seconds taken)."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(200)
    ready: list[Probe] = []
    started = time.perf_counter()

    async def one(index: int) -> None:
        sample = bool(sample_every) and index % sample_every == 0
        async with gate:
            if time.monotonic() > deadline:
                return
            probe = Probe(request, sample)
            try:
                await loop.create_connection(lambda: probe, "127.0.0.1", port)
                await asyncio.wait_for(probe.ready, max(0.1, deadline - time.monotonic()))
            except (OSError, TimeoutError):
                probe.close()
                return
            ready.append(probe)

    await asyncio.gather(*(one(i) for i in range(count)))
    return ready, time.perf_counter() - started


# Publishing ---------------------------------------------------------------------------------
class Publisher:
    """Signed NEW_TIME_ENTRY webhooks over a few raw keep-alive HTTP/1.1 connections (httpx
    costs about 1 ms of client CPU per request, enough to cap the rate on this machine);
    remembers when each request was written."""

    def __init__(self, port: int, connections: int = 16) -> None:
        self.port = port
        self.connections = connections
        self.rng = random.Random(7)
        self.team = make_team(self.rng, users=40, projects=12, clients=4, tags=6)
        self.first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.sent_at: dict[bytes, float] = {}
        self.failures = 0
        self.counter = 0
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._opened = 0

    def next_entry(self) -> Entry:
        self.counter += 1
        entry_id = f"bec0ffee{time.time_ns() % 16**10:010x}{self.counter % 16**6:06x}"
        return make_entry(self.rng, self.team, entry_id, self.first_day - timedelta(days=1), 2)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle.empty() and self._opened < self.connections:
            self._opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self._idle.get()

    async def open_all(self) -> None:
        """Open every connection now, so a timed run does not include TCP set-up."""
        while self._opened < self.connections:
            self._opened += 1
            self._idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def post(self, entry: Entry) -> bytes:
        body = orjson.dumps(entry_body(entry))
        head = (
            f"POST /webhooks/clockify HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"clockify-signature: {TOKEN}\r\nclockify-webhook-event-type: NEW_TIME_ENTRY\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        key = entry.id.encode()
        for attempt in range(2):  # an idle connection may have been closed by the server
            reader, writer = await self._connection()
            try:
                self.sent_at[key] = time.perf_counter()
                writer.write(head.encode() + body)
                status_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
                found = re.search(rb"(?i)content-length: *(\d+)", status_head)
                await reader.readexactly(int(found[1]) if found else 0)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                writer.close()
                self._opened -= 1
                if attempt:
                    self.failures += 1
                continue
            if not status_head.startswith(b"HTTP/1.1 200"):
                self.failures += 1
            self._idle.put_nowait((reader, writer))
            break
        return key

    async def post_at_rate(self, rate_per_s: float, duration_s: float) -> tuple[int, float]:
        """Each webhook at its scheduled time (at most `connections` in flight); a send whose
        time has come while every connection is busy waits for one."""
        total = int(rate_per_s * duration_s)
        started = time.perf_counter()
        tasks: list[asyncio.Task[bytes]] = []
        for index in range(total):
            delay = started + index / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.post(self.next_entry())))
        # Bounded: sends the server has not answered shortly after the schedule are abandoned.
        _, late = await asyncio.wait(tasks, timeout=5.0) if tasks else (set(), set())
        for task in late:
            task.cancel()
        self.failures += len(late)
        return total - len(late), time.perf_counter() - started

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


# One server, all measurements ----------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How many clients, and the most time each phase may take (so a run stops by itself)."""

    clients: int
    budget_s: float  # per server, all phases included
    connect_s: float
    fanout_wait_s: float
    rate_clients: int = 1000
    rate_per_s: float = 500.0
    rate_s: float = 4.0
    drain_s: float = 8.0


QUICK = Plan(500, 11.0, 3.0, 2.0, rate_clients=500, rate_s=1.5, drain_s=2.0)
FULL = Plan(10_000, 84.0, 40.0, 10.0, rate_s=4.0, drain_s=6.0)


async def measure(kind: str, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": plan.clients}
    deadline = time.monotonic() + plan.budget_s

    def within(limit_s: float, keep_s: float) -> float:
        """`limit_s`, or less so that `keep_s` stay for the later phases."""
        return max(0.5, min(limit_s, deadline - keep_s - time.monotonic()))

    server = Server(kind).start()
    publisher = Publisher(server.port)
    probes: list[Probe] = []
    try:
        for _ in range(20):  # a realistic snapshot: some entries, names, a feed
            await publisher.post(publisher.next_entry())
        warm, _ = await open_clients(server.port, 5, time.monotonic() + 10)
        await publisher.post(publisher.next_entry())
        for probe in warm:
            probe.close()
        await asyncio.sleep(0.5)  # let the server settle before the baseline reading
        rss0 = server.rss_kib()

        connect_deadline = time.monotonic() + within(plan.connect_s, 30.0 * plan.budget_s / 84)
        probes, out["connect_s"] = await open_clients(server.port, plan.clients, connect_deadline)
        out["connected"] = len(probes)
        await asyncio.sleep(0.5)
        out["rss0_mib"] = rss0 / 1024
        out["rss_mib"] = server.rss_kib() / 1024
        out["kib_per_client"] = (server.rss_kib() - rss0) / max(1, len(probes))

        # One change to every client.
        loop = asyncio.get_running_loop()
        entry = publisher.next_entry()
        for probe in probes:
            probe.watch = entry.id.encode()
            probe.watch_done = loop.create_future()
        t0 = time.perf_counter()
        await publisher.post(entry)
        waits = [p.watch_done for p in probes if p.watch_done is not None]
        keep_s = plan.rate_s + plan.drain_s + 5
        done, _ = await asyncio.wait(waits, timeout=within(plan.fanout_wait_s, keep_s))
        latencies = [f.result() - t0 for f in done]
        out["fanout_p50_ms"] = ms(latencies, 50)
        out["fanout_p99_ms"] = ms(latencies, 99)
        out["fanout_all_ms"] = max(latencies) * 1000 if len(latencies) == len(waits) else None
        out["fanout_missing"] = len(waits) - len(latencies)

        # Webhooks at a steady rate with fewer clients connected, timed on a sample of them.
        for probe in probes[plan.rate_clients :]:
            probe.close()
        probes = probes[: plan.rate_clients]
        sampled = probes[:: max(1, len(probes) // 50)]
        for probe in probes:
            probe.watch = None
        for probe in sampled:
            probe.sample = True
        await publisher.open_all()
        # ...and as many concurrent deliveries, so the server's Redis pool is warm too.
        warmups = [publisher.post(publisher.next_entry()) for _ in range(publisher.connections)]
        await asyncio.gather(*warmups)
        await asyncio.sleep(0.5)
        before = set(publisher.sent_at)
        cpu0, own0 = process_cpu_s(server.pid), own_cpu_s()
        total, took = await publisher.post_at_rate(plan.rate_per_s, plan.rate_s)
        keys = [k for k in publisher.sent_at if k not in before]
        out["rate_achieved"] = total / took
        drain_until = time.perf_counter() + within(plan.drain_s, 2.0)
        while time.perf_counter() < drain_until:
            if all(p.closed or all(k in p.seen_at for k in keys) for p in sampled):
                break
            await asyncio.sleep(0.05)
        out["rate_server_cpu"] = (process_cpu_s(server.pid) - cpu0) / took
        out["rate_bench_cpu"] = (own_cpu_s() - own0) / took
        lat = [p.seen_at[k] - publisher.sent_at[k] for p in sampled for k in keys if k in p.seen_at]
        out["rate_p50_ms"] = ms(lat, 50)
        out["rate_p99_ms"] = ms(lat, 99)
        out["rate_missing"] = len(sampled) * len(keys) - len(lat)
        out["rate_dropped"] = sum(p.closed for p in probes)
        out["webhook_failures"] = publisher.failures

        # SIGTERM: do the open streams end with their terminating chunk?
        server.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within(5.0, 0.0)):
                while not all(p.closed for p in probes):
                    await asyncio.sleep(0.05)
        out["clean_ends"] = sum(p.clean_end for p in probes)
        out["open_at_term"] = len(probes)
    finally:
        for probe in probes:
            probe.close()
        await publisher.close()
        server.stop()
    return out


def flush() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def ms(values: list[float], q: float) -> float | None:
    return percentile(values, q) * 1000 if values else None


async def measure_all(quick: bool) -> list[dict[str, Any]]:
    limit = raise_fd_limit()
    plan = QUICK if quick else FULL
    if plan.clients > limit - 200:  # the benchmark holds one descriptor per client
        plan = Plan(**{**plan.__dict__, "clients": limit - 200})
    results: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        flush()
        results[kind] = await measure(kind, plan)
    flush()
    return figures(results["clockwall"], results["naive"], plan.rate_clients)


def figures(ours: dict[str, Any], naive: dict[str, Any], rate_clients: int) -> list[dict[str, Any]]:
    n = ours["clients"]

    def both(key: str) -> tuple[Any, Any]:
        return ours.get(key), naive.get(key)

    rows = [
        row("SSE clients connected (of N)", *both("connected"), f"{n:,} in one process", "clients"),
        row(f"connect + snapshot, all {n:,} clients", *both("connect_s"), "", "s"),
        row("one change -> every client, p50", *both("fanout_p50_ms"), "", "ms"),
        row("one change -> every client, p99", *both("fanout_p99_ms"), "< 500 ms", "ms"),
        row("one change -> every client, all", *both("fanout_all_ms"), "", "ms"),
        row("clients that missed the change", *both("fanout_missing"), "0", "clients"),
        row("server RSS with 0 clients", *both("rss0_mib"), "", "MiB"),
        row(f"server RSS with {n:,} idle clients", *both("rss_mib"), "", "MiB"),
        row("server memory per idle client", *both("kib_per_client"), "< 20 KiB", "KiB"),
        row(
            f"webhooks/s achieved ({rate_clients:,} clients)",
            *both("rate_achieved"),
            "500",
            "/s",
        ),
        row("webhook -> client p50 at 500/s", *both("rate_p50_ms"), "", "ms"),
        row("webhook -> client p99 at 500/s", *both("rate_p99_ms"), "< 50 ms", "ms"),
        row("changes not received (sample)", *both("rate_missing"), "0", "events"),
        row("clients dropped during the rate run", *both("rate_dropped"), "", "clients"),
        row("webhooks that failed", *both("webhook_failures"), "0", "requests"),
        row("server CPU during the rate run", *both("rate_server_cpu"), "", "cores"),
        row("benchmark CPU during the rate run", *both("rate_bench_cpu"), "", "cores"),
        row("streams ended cleanly on SIGTERM", *both("clean_ends"), "all open", "streams"),
    ]
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    # The clients run on uvloop too when it is installed: the less CPU the 1,000 readers take
    # on this 2-core machine, the less they stand in the server's way.
    runner = importlib.import_module("uvloop").run if LOOP == "uvloop" else asyncio.run
    rows = runner(measure_all(quick))
    print_table(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 clients, about 20 s")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    started = time.perf_counter()
    run(quick=args.quick)
    print(f"\n({time.perf_counter() - started:.0f} s, loop={LOOP}, Redis db 13)")


if __name__ == "__main__":
    main()
