"""Two real `clockwall serve` processes on one Redis (dbs.MULTIPROCESS), polling a simulated
Clockify served by this test: a webhook into either reaches the SSE clients of both, in the same
order with the same ids; exactly one process holds the poller lease, and when it is SIGKILLed the
other takes over within the lease's lifetime.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.sim import SimulatedWorkspace
from app.sim.server import run_simulator
from app.stream import parse_stream_id
from tests import dbs
from tests.conftest import redis_db, redis_url, wait_until
from tests.consistency import read_ids_until, stream_ids
from tests.processes import AppProcess, serve_env
from tests.sse_client import SSEClient
from tests.webhook_load import WebhookLoad, build_scripts

DB = dbs.MULTIPROCESS

pytestmark = pytest.mark.slow
LEASE_TTL_S = 10.0  # Poller's default lease; a standby looks every third of it


async def roles(http: httpx.AsyncClient, app: AppProcess) -> list[str]:
    answer = await http.get(f"{app.base_url}/readyz")
    return [p["role"] for p in answer.json().get("pollers", [])]


async def open_after_snapshot(port: int) -> tuple[SSEClient, str]:
    client = await SSEClient.connect(port)
    while True:
        message = await client.next_event()
        if message.event == "snapshot":
            assert message.id is not None
            return client, message.id


async def test_two_processes_share_changes_and_one_poller_lease(tmp_path: Path) -> None:
    sim = SimulatedWorkspace(plan="PRO_2021", rng=random.Random(1))
    sim.seed_demo_team(6, rng=random.Random(2), days=2)
    async with redis_db(redis_url(DB)) as redis, run_simulator(sim) as sim_url:
        env = serve_env(
            redis_url(DB),
            CLOCKIFY_WORKSPACE_ID=sim.id,
            CLOCKIFY_API_KEY=sim.api_key,
            CLOCKIFY_API_URL=f"{sim_url}/api/v1",
            CLOCKIFY_REPORTS_URL=f"{sim_url}/reports/v1",
            CLOCKWALL_MODE="hybrid",
        )
        apps = [AppProcess(env, tmp_path / f"app{i}.log") for i in range(2)]
        await asyncio.gather(*(app.astart() for app in apps))
        clients: list[SSEClient] = []
        try:
            async with httpx.AsyncClient(timeout=5) as http:

                async def one_leader() -> bool:
                    seen = [await roles(http, app) for app in apps]
                    return sorted(r for rs in seen for r in rs) == ["leader", "standby"]

                await wait_until(one_leader, 20, "one leader and one standby in /readyz", 0.2)

                # Changes: webhooks into each process in turn reach both processes' clients.
                opened = [await open_after_snapshot(app.port) for app in apps]
                clients = [client for client, _ in opened]
                since = max((parse_stream_id(s) or (0, 0)) for _, s in opened)
                acked: list[str] = []
                for index, app in enumerate(apps):
                    load = WebhookLoad(
                        app.base_url, build_scripts(15, seed=10 + index, prefix=index, ws=sim.id)
                    )
                    try:
                        await load.run(rate_per_s=20)
                    finally:
                        await load.aclose()
                    assert load.outcomes.by_status.keys() == {200}, load.outcomes
                    acked += load.change_ids
                final = parse_stream_id(acked[-1])
                assert final is not None
                seen = [await read_ids_until(client, final, 20) for client in clients]
                in_redis = [
                    i
                    for i in await stream_ids(redis, sim.id)
                    if since < (parse_stream_id(i) or (0, 0)) <= final
                ]
                for ids in seen:
                    parsed = [parse_stream_id(i) for i in ids]
                    assert parsed == sorted(set(parsed)), "ids not strictly increasing"
                    common = [i for i in ids if since < (parse_stream_id(i) or (0, 0)) <= final]
                    assert common == in_redis  # same ids, same order, no gap, on both
                assert set(acked) <= set(in_redis)

                # The lease: SIGKILL the leader, the standby takes over within the lease's life.
                leader, standby = apps if "leader" in await roles(http, apps[0]) else apps[::-1]
                killed_at = time.monotonic()
                leader.kill()
                requests_at_kill = len(sim.requests)

                async def took_over() -> bool:
                    return await roles(http, standby) == ["leader"]

                async def polls() -> bool:
                    return len(sim.requests) > requests_at_kill

                await wait_until(took_over, LEASE_TTL_S + 10, "the standby to take the lease", 0.2)
                takeover_s = time.monotonic() - killed_at
                assert takeover_s < LEASE_TTL_S + LEASE_TTL_S / 3 + 2
                await wait_until(polls, 10, "the new leader to call the simulated Clockify")

                # The survivor still takes webhooks and its clients still get them.
                survivor = clients[apps.index(standby)]
                load = WebhookLoad(standby.base_url, build_scripts(3, seed=12, prefix=2, ws=sim.id))
                try:
                    await load.run(rate_per_s=20)
                finally:
                    await load.aclose()
                last = parse_stream_id(load.change_ids[-1])
                assert last is not None
                after: Any = await read_ids_until(survivor, last, 20)
                assert set(load.change_ids) <= set(after)
                print(f"{len(in_redis)} changes seen alike on both; takeover in {takeover_s:.1f} s")
        finally:
            for client in clients:
                await client.close()
            await asyncio.gather(*(app.astop() for app in apps))
