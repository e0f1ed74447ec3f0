"""Processes the process and fault tests start: our own redis-server (stopped, paused, restarted
on the same port and data), real `clockwall serve` processes (app/child_server.py) and the
environment they run with, and nginx running deploy/nginx.conf in front of them.

Every wait is a bounded poll; every subprocess is ended by its own pid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from app.child_server import ROOT, ChildServer, free_port
from tests.conftest import TOKEN, WS, wait_until

TIMEZONE = "Europe/Berlin"


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    async def exited() -> bool:
        return proc.poll() is not None

    await wait_until(exited, timeout_s, f"pid {proc.pid} to exit")
    return int(proc.returncode)


class RedisProcess:
    """A redis-server of our own on a free loopback port, stoppable and restartable on the same
    port and data directory (AOF on, everysec, as docker-compose.yml runs it)."""

    def __init__(
        self,
        data_dir: Path,
        appendonly: bool = True,
        extra_args: tuple[str, ...] = (),
        password: str = "",
    ) -> None:
        self.extra_args = extra_args
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    async def start(self, timeout_s: float = 10.0) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec"]
        if self.password:
            args += ["--requirepass", self.password]
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


class AppProcess(ChildServer):
    """`python -m app serve --port P` with `env` (serve_env), its output appended to
    `log_path`; `await astart()`, `await astop()`, `kill()` (SIGKILL)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        super().__init__("app", "serve", log_path=log_path, env=env, port=port)


def proxy_config(tmp: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx.conf with loopback upstreams and port, inside a minimal nginx.conf."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"server app1:8000", f"server 127.0.0.1:{upstreams[0]}", site)
    site = re.sub(r"server app2:8000", f"server 127.0.0.1:{upstreams[1]}", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert f"127.0.0.1:{upstreams[1]}" in site and f"127.0.0.1:{port}" in site
    (tmp / "site.conf").write_text(site)
    main = f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(main)
    return path


class NginxProcess:
    """nginx in the foreground running deploy/nginx.conf on a free loopback port, its two
    upstreams pointed at `upstreams`; its stdout (where deploy/nginx.conf sends the access log)
    goes to `access_log`, its errors to `error.log` in `data_dir`."""

    def __init__(self, data_dir: Path, upstreams: list[int]) -> None:
        self.dir = data_dir
        self.port = free_port()
        self.conf = proxy_config(data_dir, self.port, upstreams)
        self.access_log = data_dir / "access.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 15.0) -> NginxProcess:
        """Start it, then wait until GET /healthz answers 200 through it."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            pytest.fail("nginx is not installed; tests/run.sh installs it (apt)")
        with open(self.access_log, "ab") as out:
            self.proc = subprocess.Popen(
                [nginx, "-c", str(self.conf), "-p", str(self.dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:

            async def up() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError((self.dir / "error.log").read_text())
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await wait_until(up, timeout_s, "nginx in front of clockwall", 0.1)
            except BaseException:
                self.kill()
                raise
        return self

    async def stop(self, graceful: bool, timeout_s: float = 10.0) -> None:
        """`graceful`: SIGQUIT, which lets open requests finish and logs each; else SIGTERM, at
        once (an open stream would hold a graceful stop for proxy_read_timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
        try:
            await wait_exit(self.proc, timeout_s)
        except AssertionError:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
