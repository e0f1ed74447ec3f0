"""Fault-test helpers: our own redis-server and real `clockwall serve` processes (started,
SIGKILLed, restarted), a thousand cheap raw-socket SSE clients, a paced webhook load that keeps
a model of what was acknowledged, and the consistency checks run against the live API.

Every wait is a bounded poll; every subprocess is ended by its own pid.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.stream import parse_stream_id
from tests.conftest import TOKEN, WS
from tests.payloads import (
    ANA,
    BEN,
    CHLOE,
    INTERNAL,
    MOBILE,
    ONSITE,
    URGENT,
    WEBSITE,
    Project,
    User,
    entry_2024,
    rate,
)
from tests.sse_client import SSEClient

ROOT = Path(__file__).resolve().parent.parent
TIMEZONE = "Europe/Berlin"
# Every load entry starts in October 2026, so a query of this range sees all of them.
RANGE = {"start": "2026-09-30", "end": "2026-11-01"}
StreamId = tuple[int, int]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll `check` until it is true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    async def exited() -> bool:
        return proc.poll() is not None

    await wait_until(exited, timeout_s, f"pid {proc.pid} to exit")
    return int(proc.returncode)


# Processes -------------------------------------------------------------------------------
class RedisProcess:
    """A redis-server of our own on a free loopback port, stoppable and restartable on the same
    port and data directory (AOF on, everysec, as docker-compose.yml runs it)."""

    def __init__(
        self, data_dir: Path, appendonly: bool = True, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.extra_args = extra_args
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    async def start(self, timeout_s: float = 10.0) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec"]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log_tail()}")
            client = Redis.from_url(self.url(), socket_connect_timeout=0.5)
            try:
                return bool(await client.ping())
            except OSError:
                return False
            except Exception:  # LOADING while it replays the AOF, refused while binding
                return False
            finally:
                await client.aclose()

        await wait_until(answers, timeout_s, "redis-server to answer PING")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: Redis's own SHUTDOWN, which fsyncs the AOF (what a restart does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await wait_exit(self.proc, timeout_s)
            except AssertionError:
                self.proc.kill()
                self.proc.wait(5)
                raise
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: Redis takes connections' bytes into its socket buffers and answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused one dies only once it runs
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.dir / "redis.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


def serve_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `clockwall serve` process: ours only, nothing inherited that could
    point it elsewhere (a developer's CLOCKIFY_* or REDIS_URL)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOCKIFY_", "CLOCKWALL_", "REDIS_URL", "HYPOTHESIS"))
    }
    env.update(
        REDIS_URL=redis_url,
        CLOCKIFY_WORKSPACE_ID=WS,
        CLOCKIFY_WEBHOOK_TOKENS=TOKEN,
        CLOCKWALL_TIMEZONE=TIMEZONE,
        CLOCKWALL_MODE="webhook",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class AppProcess:
    """`python -m app serve --port P` in a subprocess; its output goes to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout_s: float = 30.0) -> AppProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:

            async def healthy() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"clockwall serve exited:\n{self.log_tail()}")
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy, timeout_s, f"clockwall serve on port {self.port}", 0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease release, sockets reset by the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await wait_exit(self.proc, timeout_s)
        except AssertionError:
            self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# Raw SSE clients ---------------------------------------------------------------------------
class RawSSE(asyncio.Protocol):
    """One /events client on a bare socket: decodes the chunked body and the SSE lines, and keeps
    only what the checks need (snapshot id, a running digest of the event ids in order, store
    status values), so a thousand of them cost little CPU and memory."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.status: int | None = None
        self.snapshot_id: StreamId | None = None
        self.last_id: StreamId = (0, 0)
        self.count = 0
        self.digest = hashlib.blake2b(digest_size=16)
        self.disorder: list[tuple[StreamId, StreamId]] = []  # (previous, received) pairs
        self.stores: list[str] = []  # "store" of every status event, in order
        self.ended: str | None = None  # "clean" | "lost"
        self._raw = bytearray()
        self._head_done = False
        self._text = b""
        self._fields: dict[bytes, bytes] = {}
        self._data: list[bytes] = []
        self.got_snapshot = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._raw += data
        if not self._head_done:
            end = self._raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._raw[:end]).decode("latin-1")
            del self._raw[: end + 4]
            self.status = int(head.split(" ", 2)[1])
            if "transfer-encoding: chunked" not in head.lower():
                raise AssertionError(f"expected a chunked SSE body, got: {head}")
            self._head_done = True
        while True:  # de-chunk: `<hex size>\r\n<data>\r\n`, a zero size ends the body
            line_end = self._raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(self._raw[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                self.ended = "clean"
                self._raw.clear()
                return
            if len(self._raw) < line_end + 2 + size + 2:
                return
            self._lines(bytes(self._raw[line_end + 2 : line_end + 2 + size]))
            del self._raw[: line_end + 2 + size + 2]

    def _lines(self, chunk: bytes) -> None:
        if not self._text and not self._fields and chunk.startswith(b"id: ") and b"\r" not in chunk:
            # The common case, a write of whole `change` events: take each id without splitting
            # the (large) data lines.
            blocks = chunk.split(b"\n\n")
            if blocks[-1] == b"" and all(b.startswith(b"id: ") for b in blocks[:-1]):
                for block in blocks[:-1]:
                    _head, _, rest = block.partition(b"\n")
                    if not rest.startswith(b"event: change\n"):
                        break
                else:
                    for block in blocks[:-1]:
                        self._change(block[4 : block.index(b"\n")])
                    return
        text = (self._text + chunk).replace(b"\r\n", b"\n")
        lines = text.split(b"\n")
        self._text = lines.pop()
        for line in lines:
            if not line:
                self._dispatch()
            elif line.startswith(b":"):
                continue
            else:
                name, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if name == b"data":
                    self._data.append(value)
                else:
                    self._fields[name] = value

    def _dispatch(self) -> None:
        fields, self._fields = self._fields, {}
        data, self._data = self._data, []
        event = fields.get(b"event")
        raw_id = fields.get(b"id")
        if event == b"snapshot":
            assert raw_id is not None, "a snapshot without an id"
            self.snapshot_id = parse_stream_id(raw_id.decode())
            assert self.snapshot_id is not None
            self.last_id = self.snapshot_id
            self.got_snapshot.set()
            return
        if event == b"status":
            self.stores.append(str(orjson.loads(b"\n".join(data)).get("store")))
        if raw_id is None:
            return
        self._change(raw_id)  # a change, or a status with an id (the poller's freshness)

    def _change(self, raw_id: bytes) -> None:
        sid = parse_stream_id(raw_id.decode())
        assert sid is not None, f"an unparsable event id {raw_id!r}"
        if sid <= self.last_id:
            self.disorder.append((self.last_id, sid))
        self.last_id = sid
        self.count += 1
        self.digest.update(raw_id + b",")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is None:
            self.ended = "lost"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_raw_clients(
    port: int,
    count: int,
    path: str = "/events",
    parallel: int = 50,
    timeout_s: float = 60.0,
    headers: dict[str, str] | None = None,
) -> list[RawSSE]:
    """`count` SSE clients, each past its snapshot; at most `parallel` connecting at once."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    clients: list[RawSSE] = []

    async def one() -> None:
        async with gate:
            _, client = await loop.create_connection(lambda: RawSSE(request), "127.0.0.1", port)
            clients.append(client)
            await asyncio.wait_for(client.got_snapshot.wait(), 20)

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout_s)
    return clients


def expected_digest(ids: list[str], after: StreamId) -> tuple[int, str]:
    """Count and digest of the stream ids after `after`, as a gapless client would hold them."""
    parsed = [parse_stream_id(i) or (0, 0) for i in ids]
    digest = hashlib.blake2b(digest_size=16)
    tail = ids[bisect_right(parsed, after) :]
    for raw_id in tail:
        digest.update(raw_id.encode() + b",")
    return len(tail), digest.hexdigest()


async def stream_ids(redis: Redis, ws: str = WS) -> list[str]:
    rows: Any = await redis.xrange(keys.changes(ws))
    return [(r[0].decode() if isinstance(r[0], bytes) else str(r[0])) for r in rows]


def check_clients(clients: list[RawSSE], ids: list[str]) -> list[str]:
    """Problems of every client still connected: disorder, or not exactly the stream after its
    snapshot (a gap, a duplicate, an extra)."""
    problems: list[str] = []
    cache: dict[StreamId, tuple[int, str]] = {}
    for index, client in enumerate(clients):
        if client.ended is not None:
            continue
        assert client.snapshot_id is not None
        if client.disorder:
            problems.append(f"client {index}: ids out of order {client.disorder[:3]}")
        if client.snapshot_id not in cache:
            cache[client.snapshot_id] = expected_digest(ids, client.snapshot_id)
        count, digest = cache[client.snapshot_id]
        if (client.count, client.digest.hexdigest()) != (count, digest):
            problems.append(
                f"client {index}: {client.count} events after snapshot "
                f"{client.snapshot_id}, the stream holds {count} (or other ids)"
            )
    return problems


# The webhook load and its model ------------------------------------------------------------
USERS: tuple[User, ...] = (ANA, BEN, CHLOE)
PROJECTS: tuple[Project | None, ...] = (WEBSITE, MOBILE, INTERNAL, None)
ZONE = ZoneInfo(TIMEZONE)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Step:
    """One delivery of an entry's life: the event, the body, and the state it leaves."""

    event: str
    body: dict[str, Any]
    state: dict[str, Any] | None  # None after a delete; {"running": True} for a timer


@dataclass
class EntryScript:
    """The deliveries of one entry, sent in order (the next only after the previous answered).
    `acked` counts the leading steps answered 2xx; `sent` those sent at all."""

    id: str
    steps: list[Step]
    acked: int = 0
    sent: int = 0

    def possible_states(self) -> list[dict[str, Any] | None]:
        """What the store may hold: the last acknowledged state, or any sent after it."""
        base: list[dict[str, Any] | None] = [
            self.steps[self.acked - 1].state if self.acked else None
        ]
        return base + [s.state for s in self.steps[self.acked : self.sent]]


def _state(body: dict[str, Any], running: bool = False) -> dict[str, Any]:
    interval = body["timeInterval"]
    start = datetime.fromisoformat(interval["start"])
    out: dict[str, Any] = {
        "id": body["id"],
        "start": interval["start"],
        "day": start.astimezone(ZONE).date().isoformat(),
        "user": body["userId"],
        "project": body["projectId"],
        "running": running,
        "seconds": 0,
    }
    if not running:
        end = datetime.fromisoformat(interval["end"])
        out["seconds"] = int((end - start).total_seconds())
    return out


def build_scripts(count: int, seed: int, prefix: int = 0, ws: str = WS) -> list[EntryScript]:
    """`count` entries with seeded lives: manual entries, timers started then stopped, edits
    (other length, project or day) and deletions, all starting in October 2026."""
    rng = random.Random(seed)
    scripts = []
    for n in range(count):
        entry_id = f"{prefix:04x}{n:020x}"
        start = datetime(2026, 10, 1, 6, 0, tzinfo=UTC) + timedelta(
            days=rng.randrange(30), minutes=rng.randrange(16 * 60)
        )
        end = start + timedelta(seconds=rng.randrange(60, 4 * 3600))
        fields: dict[str, Any] = {
            "user": rng.choice(USERS),
            "project": rng.choice(PROJECTS),
            "billable": rng.random() < 0.5,
            "hourly_rate": rate(rng.choice((5000, 10500))),
            "tags": rng.choice(((), (URGENT,), (URGENT, ONSITE))),
            "ws": ws,
        }
        done = entry_2024(entry_id, _iso(start), _iso(end), **fields)
        kind = rng.random()
        steps: list[Step]
        if kind < 0.45:
            steps = [Step("NEW_TIME_ENTRY", done, _state(done))]
        elif kind < 0.7:
            started = entry_2024(entry_id, _iso(start), None, **fields)
            steps = [
                Step("NEW_TIMER_STARTED", started, _state(started, running=True)),
                Step("TIMER_STOPPED", done, _state(done)),
            ]
        elif kind < 0.9:
            fields["project"] = rng.choice(PROJECTS)
            new_start = start + timedelta(hours=rng.choice((0, 0, 20)))
            new_end = new_start + timedelta(seconds=rng.randrange(60, 4 * 3600))
            edited = entry_2024(entry_id, _iso(new_start), _iso(new_end), **fields)
            steps = [
                Step("NEW_TIME_ENTRY", done, _state(done)),
                Step("TIME_ENTRY_UPDATED", edited, _state(edited)),
            ]
        else:
            steps = [
                Step("NEW_TIME_ENTRY", done, _state(done)),
                Step("TIME_ENTRY_DELETED", done, None),
            ]
        scripts.append(EntryScript(entry_id, steps))
    return scripts


@dataclass
class Outcomes:
    by_status: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no answer at all (refused, reset, timeout)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def note(self, status: int | None, error: str = "") -> None:
        if status is None:
            self.errors += 1
            self.error_kinds[error] = self.error_kinds.get(error, 0) + 1
        else:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def acked(self) -> int:
        return sum(n for s, n in self.by_status.items() if 200 <= s < 300)

    def count(self, low: int, high: int) -> int:
        return sum(n for s, n in self.by_status.items() if low <= s < high)


class WebhookLoad:
    """Sends the scripts' deliveries at a steady rate to `base_url`, each entry's steps in
    order, and records what each answer acknowledged."""

    def __init__(self, base_url: str, scripts: list[EntryScript], timeout_s: float = 5.0) -> None:
        self.base_url = base_url
        self.scripts = scripts
        self.outcomes = Outcomes()
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout, so a
            # delivery never goes out on a connection the server is closing at that moment.
            limits=httpx.Limits(
                max_connections=32, max_keepalive_connections=32, keepalive_expiry=1.0
            ),
        )
        self.change_ids: list[str] = []
        self.latencies_s: list[float] = []
        # Deliveries whose request is wholly sent and not yet answered: what a kill cuts off.
        self.in_flight = 0
        self.busy_at: int | None = None  # `busy` is set once this many are in flight at once
        self.busy = asyncio.Event()
        self.gap_s = 0.3  # between one entry's steps: its deliveries interleave with others

    async def aclose(self) -> None:
        await self.http.aclose()

    def latency_text(self) -> str:
        ordered = sorted(self.latencies_s) or [0.0]
        p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
        return f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1]:.2f} s"

    async def send(self, script: EntryScript) -> bool:
        """Send the script's next step; True when it was acknowledged (2xx)."""
        step = script.steps[script.sent]
        script.sent += 1
        started = time.monotonic()
        sent = False

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal sent
            if event == "http11.send_request_body.complete":
                sent = True
                self.in_flight += 1
                if self.busy_at is not None and self.in_flight >= self.busy_at:
                    self.busy.set()

        try:
            response = await self.http.post(
                "/webhooks/clockify",
                content=orjson.dumps(step.body),
                headers={
                    "clockify-signature": TOKEN,
                    "clockify-webhook-event-type": step.event,
                    "content-type": "application/json",
                },
                extensions={"trace": trace},
            )
        except httpx.TransportError as exc:
            self.outcomes.note(None, type(exc).__name__)
            return False
        finally:
            if sent:
                self.in_flight -= 1
        self.outcomes.note(response.status_code)
        self.latencies_s.append(time.monotonic() - started)
        if not 200 <= response.status_code < 300:
            return False
        script.acked = script.sent
        change_id = response.json().get("changeId")
        if change_id:
            self.change_ids.append(change_id)
        return True

    async def _life(self, script: EntryScript) -> None:
        while script.sent < len(script.steps):
            if not await self.send(script):
                return  # like Clockify: no more steps for it now; `resend` finishes it
            if script.sent < len(script.steps):
                await asyncio.sleep(self.gap_s)

    async def run(self, rate_per_s: float, start: int = 0, stop: int | None = None) -> None:
        """Start one entry every 1/rate seconds (scripts[start:stop]); wait for all to finish."""
        t0 = time.monotonic()
        tasks = []
        for index, script in enumerate(self.scripts[start:stop]):
            delay = t0 + index / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing, not synchronisation
            tasks.append(asyncio.create_task(self._life(script)))
        await asyncio.gather(*tasks)

    async def resend(self, rounds: int = 3) -> None:
        """What Clockify or an operator does after a 503: send again every step that was not
        acknowledged (from the first one), until each entry's life is complete."""
        for _ in range(rounds):
            pending = [s for s in self.scripts if s.acked < len(s.steps)]
            if not pending:
                return
            for script in pending:
                script.sent = script.acked
            await asyncio.gather(*(self._life(s) for s in pending))

    def model(self) -> dict[str, dict[str, Any]]:
        """The final state of every entry whose whole life was acknowledged (None: deleted)."""
        out: dict[str, dict[str, Any]] = {}
        for script in self.scripts:
            if script.acked and script.acked == len(script.steps):
                state = script.steps[-1].state
                if state is not None:
                    out[script.id] = state
        return out


# Consistency checks against the live API -------------------------------------------------
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
    contribs: Any = await redis.hgetall(keys.entry_contributions(ws))
    running: Any = await redis.hgetall(keys.running(ws))
    for raw_id, raw_meta in meta.items():
        status = raw_meta.decode().split("|", 1)[0]
        state = orjson.loads(states[raw_id])
        contrib = orjson.loads(contribs.get(raw_id, b"[]"))
        seconds = sum(v for dim, f, v in contrib if dim == keys.DIM_ALL and f.endswith("|s"))
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
