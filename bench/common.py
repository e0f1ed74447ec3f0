"""What every benchmark shares: the server under test in a uvicorn subprocess, realistic Clockify
payloads (2024-era webhook bodies, clockify-facts.md section 3), a keep-alive HTTP load
generator with per-request latencies, percentiles, CPU counters and the table printer.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import redis

from app.child_server import ChildServer
from app.sim import format_duration as iso_duration  # one formatter for all
from tests.dbs import BENCH

REDIS_BASE = os.environ.get("CLOCKWALL_BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_DB = BENCH
REDIS_URL = f"{REDIS_BASE}/{REDIS_DB}"
WS = "65f1a2b3c4d5e6f7a8b9c0d1"
TOKEN = "Bn4kWq8RzT2mYc7HpL5sXd9JfG3aVe6u"
TIMEZONE = "Europe/Berlin"
CURRENCIES = ("EUR", "USD", "GBP", "CHF")


# Redis ---------------------------------------------------------------------------------------
def flush_bench_db() -> None:
    """Benchmarks own database BENCH (tests/dbs.py) and start from empty."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_cpu_s() -> float:
    """CPU seconds the Redis server has used so far (user + system)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def script_time() -> tuple[int, int]:
    """(EVALSHA calls, microseconds spent in them) since the last CONFIG RESETSTAT: Redis's
    own time per script call (INFO commandstats), the commands inside it included."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
    finally:
        client.close()
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def reset_stats() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.config_resetstat()
    finally:
        client.close()


# The server under test -----------------------------------------------------------------------
def process_cpu_s(pid: int) -> float:
    """utime + stime of another process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ServerProcess(ChildServer):
    """`python -m bench.serve_target --kind K ... --port P` on 127.0.0.1, started and stopped
    by this process, so the load generator and the server never share an interpreter."""

    def __init__(self, kind: str, *extra_args: str, ready_timeout_s: float = 20.0) -> None:
        self._log_dir = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        log_path = Path(self._log_dir.name) / "server.log"
        super().__init__("bench.serve_target", "--kind", kind, *extra_args, log_path=log_path)
        self.kind = kind
        self.ready_timeout_s = ready_timeout_s

    def cpu_s(self) -> float:
        return process_cpu_s(self.pid)

    def start(self, timeout_s: float | None = None) -> Self:
        return super().start(self.ready_timeout_s if timeout_s is None else timeout_s)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log_dir.cleanup()


# Realistic payloads --------------------------------------------------------------------------
def object_id(rng: random.Random) -> str:
    """A 24-hex id like Clockify's Mongo ObjectIds."""
    return f"{rng.getrandbits(96):024x}"


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    currency: str


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    color: str
    client: Client | None
    rate_minor: int
    billable: bool
    estimate_h: int


@dataclass(frozen=True)
class User:
    id: str
    name: str


@dataclass(frozen=True)
class Tag:
    id: str
    name: str


@dataclass
class Team:
    """A workspace's people and things, each with a stable id."""

    users: list[User]
    projects: list[Project]
    clients: list[Client]
    tags: list[Tag]
    # user id -> the projects that person books on (empty: anyone books on any project)
    focus: dict[str, list[Project]] = field(default_factory=dict)


FIRST = ("Ada", "Linus", "Grace", "Ken", "Barbara", "Dennis", "Margaret", "Guido", "Radia", "Tim")
LAST = ("Lovelace", "Torvalds", "Hopper", "Thompson", "Liskov", "Ritchie", "Hamilton", "Perlman")
WORDS = ("Website", "Mobile app", "Audit", "Migration", "Support", "Design", "Research", "API")


def make_team(
    rng: random.Random,
    users: int = 200,
    projects: int = 50,
    clients: int = 10,
    tags: int = 12,
    focus: int = 0,
) -> Team:
    """`focus`: each person books on that many projects (their team's), not on all of them."""
    client_list = [
        Client(object_id(rng), f"Client {i:02d} GmbH", CURRENCIES[i % len(CURRENCIES)])
        for i in range(clients)
    ]
    project_list = []
    for i in range(projects):
        client = client_list[i % clients] if i % 12 != 11 else None  # a few without a client
        project_list.append(
            Project(
                id=object_id(rng),
                name=f"{WORDS[i % len(WORDS)]} {i:02d}",
                color=f"#{rng.getrandbits(24):06X}",
                client=client,
                rate_minor=rng.choice((4500, 7250, 9000, 10500, 12000, 15050)),
                billable=i % 5 != 4,
                estimate_h=rng.choice((0, 40, 120, 400)),
            )
        )
    user_list = [
        User(object_id(rng), f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]} {i}")
        for i in range(users)
    ]
    tag_list = [Tag(object_id(rng), f"tag-{i:02d}") for i in range(tags)]
    chosen = {u.id: rng.sample(project_list, focus) for u in user_list} if focus else {}
    return Team(user_list, project_list, client_list, tag_list, chosen)


@dataclass(frozen=True)
class Entry:
    """One time entry as the benchmark knows it: the truth to compare totals with."""

    id: str
    user: User
    project: Project | None
    tags: tuple[Tag, ...]
    start: datetime
    duration_s: int
    billable: bool
    description: str

    @property
    def rate_minor(self) -> int | None:
        return self.project.rate_minor if self.project else None

    @property
    def currency(self) -> str | None:
        if self.project is None:
            return None
        return self.project.client.currency if self.project.client else "EUR"


def make_entry(
    rng: random.Random, team: Team, entry_id: str, first_day: datetime, days: int
) -> Entry:
    """A stopped entry starting within `days` days from `first_day` (UTC), 5 min to 4 h long."""
    user = rng.choice(team.users)
    own = team.focus.get(user.id) or team.projects
    project = rng.choice(own) if rng.random() > 0.05 else None
    n_tags = rng.choices((0, 1, 2), weights=(5, 4, 1))[0]
    start = first_day + timedelta(
        days=rng.randrange(days), hours=rng.randrange(6, 18), minutes=rng.randrange(60)
    )
    return Entry(
        id=entry_id,
        user=user,
        project=project,
        tags=tuple(rng.sample(team.tags, n_tags)),
        start=start,
        duration_s=rng.randrange(300, 4 * 3600),
        billable=bool(project and project.billable and rng.random() < 0.85),
        description=rng.choice(("", "Standup", "Code review", "Fix login bug #412", "Workshop")),
    )


def entry_body(entry: Entry, ws: str = WS, running: bool = False) -> dict[str, Any]:
    """The webhook body Clockify sends for this entry: hydrated project/user/tags objects, no
    taskId/tagIds, hourlyRate in minor units, end/duration null while the timer runs."""
    project = entry.project
    rate = None
    if project is not None:
        rate = {"amount": project.rate_minor, "currency": entry.currency}
    end = entry.start + timedelta(seconds=entry.duration_s)
    return {
        "id": entry.id,
        "description": entry.description,
        "userId": entry.user.id,
        "billable": entry.billable,
        "projectId": project.id if project else None,
        "timeInterval": {
            "start": instant(entry.start),
            "end": None if running else instant(end),
            "duration": None if running else iso_duration(entry.duration_s),
        },
        "workspaceId": ws,
        "isLocked": False,
        "hourlyRate": rate,
        "costRate": {"amount": 3500, "currency": entry.currency} if project else None,
        "customFieldValues": [],
        "type": "REGULAR",
        "kioskId": None,
        "approvalStatus": None,
        "projectCurrency": None,
        "currentlyRunning": running,
        "project": _project_body(project, ws) if project else None,
        "task": None,
        "user": {"id": entry.user.id, "name": entry.user.name, "status": "ACTIVE"},
        "tags": [
            {"id": t.id, "name": t.name, "workspaceId": ws, "archived": False} for t in entry.tags
        ],
    }


def _project_body(project: Project, ws: str) -> dict[str, Any]:
    client = project.client
    estimate = f"PT{project.estimate_h}H" if project.estimate_h else "PT0S"
    return {
        "name": project.name,
        "clientId": client.id if client else "",
        "workspaceId": ws,
        "billable": project.billable,
        "estimate": {"estimate": "PT0S", "type": "AUTO"},
        "color": project.color,
        "archived": False,
        "clientName": client.name if client else "",
        "duration": "PT311H25M",
        "note": "",
        "activeEstimate": "TIME" if project.estimate_h else "NONE",
        "timeEstimate": {
            "includeNonBillable": True,
            "estimate": estimate,
            "type": "MANUAL",
            "resetOption": None,
            "active": bool(project.estimate_h),
        },
        "budgetEstimate": None,
        "estimateReset": None,
        "id": project.id,
        "public": True,
        "template": False,
    }


# Load generator ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadRequest:
    path: str
    headers: dict[str, str]
    body: bytes


def webhook_request(event: str, body: dict[str, Any], token: str = TOKEN) -> LoadRequest:
    return LoadRequest(
        "/webhooks/clockify",
        {
            "clockify-signature": token,
            "clockify-webhook-event-type": event,
            "content-type": "application/json",
        },
        orjson.dumps(body),
    )


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    ok: set[int] = field(default_factory=set)  # indexes of requests answered 2xx
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0

    def record(self, index: int, status: int | str, latency_s: float) -> None:
        self.latencies_s.append(latency_s)
        self.statuses[status] += 1
        if isinstance(status, int) and 200 <= status < 300:
            self.ok.add(index)

    @property
    def completed(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0


async def run_load(
    base_url: str,
    requests: Sequence[LoadRequest],
    concurrency: int,
    max_seconds: float,
    client: str = "httpx",
) -> LoadResult:
    """POST `requests` in order from `concurrency` workers over keep-alive connections; stops
    at the last request or after `max_seconds`, whichever comes first. `client="raw"` speaks
    HTTP/1.1 over bare asyncio streams: some 20x less client CPU than httpx, which matters
    when the load generator and the server share two cores."""
    if client == "raw":
        return await _run_raw(base_url, requests, concurrency, max_seconds)
    result = LoadResult()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    next_index = 0
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0) as http:
        # Open the connections before the clock starts.
        await asyncio.gather(*(http.get("/healthz") for _ in range(concurrency)))
        cpu0 = own_cpu_s()
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(requests) and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                req = requests[index]
                t0 = time.perf_counter()
                status: int | str
                try:
                    response = await http.post(req.path, content=req.body, headers=req.headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                result.record(index, status, time.perf_counter() - t0)

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))), max_seconds + 30
        )
        result.elapsed_s = time.perf_counter() - started
        result.client_cpu_s = own_cpu_s() - cpu0
    return result


def _raw_bytes(host: str, req: LoadRequest) -> bytes:
    lines = [f"POST {req.path} HTTP/1.1", f"host: {host}", f"content-length: {len(req.body)}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + req.body


async def _run_raw(
    base_url: str, requests: Sequence[LoadRequest], concurrency: int, max_seconds: float
) -> LoadResult:
    host_port = base_url.removeprefix("http://")
    host, _, port = host_port.partition(":")
    payloads = [_raw_bytes(host_port, r) for r in requests]
    result = LoadResult()
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    next_index = 0
    cpu0 = own_cpu_s()
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        while next_index < len(payloads) and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            t0 = time.perf_counter()
            writer.write(payloads[index])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            result.record(index, status, time.perf_counter() - t0)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(r, w) for r, w in connections)), max_seconds + 30
        )
    finally:
        result.elapsed_s = time.perf_counter() - started
        result.client_cpu_s = own_cpu_s() - cpu0
        for _, writer in connections:
            writer.close()
    return result


# Figures -------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def row(
    figure: str,
    value: Any,
    baseline: Any = None,
    target: str = "",
    unit: str = "",
    ratio: float | None = None,
) -> dict[str, Any]:
    if ratio is None and isinstance(value, int | float) and isinstance(baseline, int | float):
        ratio = value / baseline if baseline else None
    return {
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "unit": unit,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    columns = ("figure", "value", "baseline", "ratio", "target", "unit")
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
