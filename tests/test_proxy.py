"""Two real `clockwall serve` processes behind a real nginx running deploy/nginx.conf (the
Compose proxy's configuration, with its upstreams pointed at loopback ports): webhooks sent
through the proxy land on either process, and every SSE client of the proxy, whichever process
serves it, sees one consistent wall: the same changes, in order, promptly (nginx must not
buffer the stream), and the same totals.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from app.stream import parse_stream_id
from tests.conftest import redis_db, redis_url
from tests.fault_helpers import (
    RANGE,
    ROOT,
    AppProcess,
    WebhookLoad,
    build_scripts,
    free_port,
    read_ids_until,
    serve_env,
    stream_ids,
    wait_until,
)
from tests.sse_client import SSEClient

DB = 2


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


async def open_after_snapshot(port: int) -> tuple[SSEClient, str]:
    client = await SSEClient.connect(port)
    while True:
        message = await client.next_event(10)
        if message.event == "snapshot":
            assert message.id is not None
            return client, message.id


async def test_two_processes_behind_the_compose_proxy_serve_one_wall(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed; tests/run.sh installs it (apt)")
    async with redis_db(redis_url(DB)) as redis:
        env = serve_env(redis_url(DB))
        apps = [AppProcess(env, tmp_path / f"app{i}.log") for i in range(2)]
        await asyncio.gather(*(app.start() for app in apps))
        port = free_port()
        conf = proxy_config(tmp_path, port, [app.port for app in apps])
        proxy = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        clients: list[SSEClient] = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

                async def proxy_up() -> bool:
                    if proxy.poll() is not None:
                        raise AssertionError((tmp_path / "error.log").read_text())
                    try:
                        return (await http.get("/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(proxy_up, 15, "nginx in front of two clockwall processes", 0.1)

                # Round robin spreads these clients over both processes.
                opened = [await open_after_snapshot(port) for _ in range(4)]
                clients = [client for client, _ in opened]
                since = max((parse_stream_id(s) or (0, 0)) for _, s in opened)

                load = WebhookLoad(f"http://127.0.0.1:{port}", build_scripts(12, seed=31))
                try:
                    await load.run(rate_per_s=20)
                finally:
                    await load.aclose()
                assert load.outcomes.by_status.keys() == {200}, load.outcomes
                # Both processes took deliveries (uvicorn's access log of each).
                for app in apps:
                    assert "POST /webhooks/clockify" in app.log_text(), app.log_tail()

                final = parse_stream_id(load.change_ids[-1])
                assert final is not None
                # Promptly, through the proxy (buffering is off in deploy/nginx.conf, and the
                # stream says X-Accel-Buffering: no besides).
                seen = [await read_ids_until(client, final, 10) for client in clients]
                in_redis = [
                    i
                    for i in await stream_ids(redis)
                    if since < (parse_stream_id(i) or (0, 0)) <= final
                ]
                assert in_redis and set(load.change_ids) <= set(in_redis)
                for ids in seen:
                    common = [i for i in ids if since < (parse_stream_id(i) or (0, 0)) <= final]
                    assert common == in_redis  # same ids, same order, no gap, on every client

                # One set of totals, whichever process answers (running timers tick, so
                # compare the stopped time).
                def stopped(answer: dict[str, int]) -> int:
                    return answer["totalSeconds"] - answer["runningSeconds"]

                via_proxy = [
                    stopped(
                        (await http.get("/api/summary", params={**RANGE, "groupBy": "USER"})).json()
                    )
                    for _ in range(4)
                ]
                direct = [
                    stopped(
                        httpx.get(
                            f"{app.base_url}/api/summary", params={**RANGE, "groupBy": "USER"}
                        ).json()
                    )
                    for app in apps
                ]
                assert via_proxy[0] > 0
                assert set(via_proxy) == set(direct) == {via_proxy[0]}
        finally:
            for client in clients:
                await client.close()
            proxy.terminate()
            proxy.wait(10)
            await asyncio.gather(*(app.stop() for app in apps))
