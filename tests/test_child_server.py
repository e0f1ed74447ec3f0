"""The child-server helper the process tests and the benchmarks share (app/child_server.py):
ready once GET /healthz answers, a child that dies or never answers is reported with its log
and never left running, a stop ends it by its own pid, a restart adds to the same log.

The child here is Python's own http.server serving a folder with a `healthz` file: a process
that starts in a tenth of a second, so these stay in the fast loop.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import pytest

from app.child_server import ChildServer, ChildServerError, free_port


class FolderServer(ChildServer):
    """`python -m http.server PORT` on loopback serving `folder` (its request log on stderr)."""

    def __init__(self, folder: Path, log_path: Path) -> None:
        super().__init__("http.server", log_path=log_path)
        self.folder = folder

    def command(self) -> list[str]:
        return [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                "--directory", str(self.folder)]  # fmt: skip


class Sleeper(ChildServer):
    """A child that runs and never listens."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    served = tmp_path / "served"
    served.mkdir()
    (served / "healthz").write_text("ok")
    return served


def test_free_port_is_a_loopback_port_nothing_listens_on() -> None:
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_child_server_is_ready_once_healthz_answers_and_stops_by_its_pid(
    folder: Path, tmp_path: Path
) -> None:
    with FolderServer(folder, tmp_path / "server.log") as server:
        assert httpx.get(f"{server.base_url}/healthz").text == "ok"
        proc = server.proc
        assert proc is not None and proc.pid == server.pid
    assert proc.poll() is not None  # SIGTERM ended it


async def test_a_restart_on_the_same_port_adds_to_the_same_log(
    folder: Path, tmp_path: Path
) -> None:
    server = FolderServer(folder, tmp_path / "server.log")
    async with server:
        port = server.port
    async with server:
        assert server.port == port
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/healthz")).status_code == 200
    assert server.log_text().count('"GET /healthz HTTP/1.1" 200') >= 3  # two lives' probes
    assert server.proc is not None and server.proc.poll() is not None


def test_a_child_that_exits_at_once_says_so_with_the_tail_of_its_log(tmp_path: Path) -> None:
    # `python -m http.server` takes its port positionally, so `--port P` makes it exit (code 2).
    server = ChildServer("http.server", log_path=tmp_path / "server.log")
    with pytest.raises(ChildServerError, match=r"exited \(code 2\)") as caught:
        server.start(timeout_s=10)
    assert "unrecognized arguments: --port" in str(caught.value)


@pytest.mark.parametrize("blocking", [True, False], ids=["start", "astart"])
async def test_a_child_that_never_answers_is_killed_at_its_deadline(
    tmp_path: Path, blocking: bool
) -> None:
    server = Sleeper("unused", log_path=tmp_path / "sleeper.log")
    with pytest.raises(ChildServerError, match=r"did not answer GET /healthz within 0\.3 s"):
        if blocking:
            server.start(timeout_s=0.3)
        else:
            await server.astart(timeout_s=0.3)
    assert server.proc is not None and server.proc.poll() is not None
