"""Two real `clockwall serve` processes behind a real nginx running deploy/nginx.conf (the
Compose proxy's configuration, with its upstreams pointed at loopback ports): webhooks sent
through the proxy land on either process, and every SSE client of the proxy, whichever process
serves it, sees one consistent wall: the same changes, in order, promptly (nginx must not
buffer the stream), and the same totals.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app.stream import parse_stream_id
from tests import dbs
from tests.conftest import redis_db, redis_url
from tests.consistency import read_ids_until, stream_ids
from tests.processes import AppProcess, NginxProcess, serve_env
from tests.sse_client import SSEClient
from tests.webhook_load import RANGE, WebhookLoad, build_scripts

DB = dbs.PROXY

pytestmark = pytest.mark.slow


async def open_after_snapshot(port: int) -> tuple[SSEClient, str]:
    client = await SSEClient.connect(port)
    while True:
        message = await client.next_event(10)
        if message.event == "snapshot":
            assert message.id is not None
            return client, message.id


async def test_two_processes_behind_the_compose_proxy_serve_one_wall(tmp_path: Path) -> None:
    async with redis_db(redis_url(DB)) as redis:
        env = serve_env(redis_url(DB))
        apps = [AppProcess(env, tmp_path / f"app{i}.log") for i in range(2)]
        proxy = NginxProcess(tmp_path, [app.port for app in apps])
        port = proxy.port
        clients: list[SSEClient] = []
        try:
            await asyncio.gather(*(app.astart() for app in apps))
            await proxy.start()
            async with httpx.AsyncClient(base_url=proxy.base_url, timeout=5) as http:
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
            await proxy.stop(graceful=False)
            await asyncio.gather(*(app.astop() for app in apps))
