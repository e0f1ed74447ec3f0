"""A server in a child process, for the tests and the benchmarks: `python -m MODULE ARGS --port P`
on loopback, ready once GET /healthz answers 200, stopped by its own pid, its output in a log
file. Here, not in tests/, because `python -m bench` uses it too and must run without pytest.

`start`/`stop` block; `astart`/`astop` wait on the event loop, so a test's SSE clients and
webhook load keep running while a server starts or stops beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

# The checkout: `python -m app` and `python -m bench...` resolve from here.
ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.1
PROBE_TIMEOUT_S = 2.0


def free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, free until someone binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildServerError(RuntimeError):
    """The child exited, or did not answer GET /healthz in time; the message ends with the tail
    of its log, which says why."""


class ChildServer:
    """`python -m MODULE *ARGS --port PORT` with `env` (None: this process's environment), run
    from the checkout (`cwd`: another tree, whose modules then come first), stdout and stderr
    appended to `log_path` (a restart adds to the same log)."""

    def __init__(
        self,
        module: str,
        *args: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.module = module
        self.cwd = cwd
        self.args = args
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ChildServerError(f"python -m {self.module} was never started")
        return self.proc.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args, "--port", str(self.port)]

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _check_alive(self, deadline: float, timeout_s: float) -> None:
        """ChildServerError if the child has exited, or (killed first) once past `deadline`."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise ChildServerError(
                f"python -m {self.module} exited (code {code}) before answering GET /healthz; "
                f"its log ends:\n{self.log_tail()}"
            )
        if time.monotonic() > deadline:
            self.kill()
            raise ChildServerError(
                f"python -m {self.module} on port {self.port} did not answer GET /healthz "
                f"within {timeout_s} s; its log ends:\n{self.log_tail()}"
            )

    def start(self, timeout_s: float = 30.0) -> Self:
        """Launch, then wait until GET /healthz answers 200."""
        self.launch()
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base_url, timeout=PROBE_TIMEOUT_S) as http:
            while True:
                self._check_alive(deadline, timeout_s)
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/healthz").status_code == 200:
                        return self
                time.sleep(POLL_S)

    async def astart(self, timeout_s: float = 30.0) -> Self:
        """`start` on the event loop."""
        self.launch()
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=PROBE_TIMEOUT_S) as http:
            while True:
                self._check_alive(deadline, timeout_s)
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return self
                await asyncio.sleep(POLL_S)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease release, sockets reset by the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, the graceful shutdown; SIGKILL if it has not exited within `timeout_s`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    async def astop(self, timeout_s: float = 10.0) -> None:
        """`stop` on the event loop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                return
            await asyncio.sleep(POLL_S / 2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
