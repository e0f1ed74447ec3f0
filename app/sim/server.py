"""Serve the fake Clockify (or any ASGI app) on a real loopback port, for tests and benchmarks.

    async with run_simulator(sim) as url:
        api_url, reports_url = f"{url}/api/v1", f"{url}/reports/v1"

The listening socket is bound before the server starts, so the URL is usable at once (the
kernel queues early connections): no waiting, no sleeps. `run_simulator` serves on the caller's
event loop; `run_simulator_in_thread` serves from a thread for synchronous callers. Here, not in
tests/, because `python -m bench` uses it too and must run without pytest installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from app.sim.app import create_simulator_app
from app.sim.state import SimulatedWorkspace


class _Server(uvicorn.Server):
    """uvicorn that leaves the runner's signal handlers alone and stops in milliseconds
    (stock uvicorn checks for exit every 100 ms and pauses 100 ms more while shutting down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        while not self.should_exit:
            await asyncio.sleep(0.002)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        tasks = list(self.server_state.tasks)
        if tasks:  # requests still being answered (a delay fault): give them a moment
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
        for server in self.servers:
            await server.wait_closed()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted sockets inherit TCP_NODELAY; without it Nagle + delayed ACK add ~40 ms a request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _server(app: Any) -> _Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        ws="none",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    return _Server(config)


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1:<free port> in this event loop; yields `http://127.0.0.1:PORT`."""
    sock = _listening_socket()
    server = _server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def run_simulator(sim: SimulatedWorkspace) -> AsyncIterator[str]:
    """The fake Clockify for `sim`; API at `<url>/api/v1`, Reports at `<url>/reports/v1`."""
    async with serve_app(create_simulator_app(sim)) as url:
        yield url


@contextlib.contextmanager
def run_simulator_in_thread(sim: SimulatedWorkspace) -> Iterator[str]:
    """Like `run_simulator`, served from a background thread (mutate `sim` between requests)."""
    sock = _listening_socket()
    server = _server(create_simulator_app(sim))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def client_for(
    sim: SimulatedWorkspace,
    http: Any,
    base_url: str,
    budget: Any = None,
    sleep: Any = None,
    seed: int = 3,
) -> Any:
    """A ClockifyClient that talks to `sim` at `base_url` (a served simulator's URL, or any
    base for an `httpx.ASGITransport` client) with the simulator's API key, over `http`, within
    `budget`; `sleep` and a seeded random source make its back-off deterministic."""
    import random

    from app.clockify import ClockifyClient
    from app.config import Secret

    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return ClockifyClient(
        Secret(sim.api_key),
        budget=budget,
        api_url=f"{base_url}/api/v1",
        reports_url=f"{base_url}/reports/v1",
        http=http,
        rng=random.Random(seed),
        **extra,
    )
