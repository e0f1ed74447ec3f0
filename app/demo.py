"""`clockwall demo`: the whole product with nothing installed. The embedded store, a simulated
Clockify (app/sim/) in its own thread and event loop, like the remote service it stands
for, with a team that starts, stops, edits and deletes entries through real signed webhooks,
and a week of history that clockwall backfills through the API.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import uvicorn

from app.child_server import free_port
from app.config import Secret, Settings, WebhookToken
from app.main import create_app
from app.runtime import SHUTDOWN_GRACE_S, run_server, tune_gc
from app.sim import SimulatedWorkspace, WebhookSender, create_simulator_app

log = logging.getLogger(__name__)

DEMO_EVENTS = (
    "NEW_TIMER_STARTED",
    "TIMER_STOPPED",
    "NEW_TIME_ENTRY",
    "TIME_ENTRY_UPDATED",
    "TIME_ENTRY_DELETED",
)


@dataclass
class DemoTeam:
    """The simulated Clockify and the loop that makes its team work."""

    sim: SimulatedWorkspace
    port: int
    wall_url: str
    pace_s: tuple[float, float] = (1.5, 5.0)
    seed: int = 42

    async def serve(self, ready: threading.Event) -> None:
        config = uvicorn.Config(
            create_simulator_app(self.sim),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        ready.set()
        try:
            await self.work()
        finally:
            server.should_exit = True
            await task

    async def work(self) -> None:
        rng = random.Random(self.seed)
        async with httpx.AsyncClient(timeout=10) as http:
            sender = WebhookSender(http)
            while True:
                await asyncio.sleep(rng.uniform(*self.pace_s))
                try:
                    self.act(rng)
                    await self.sim.deliver_webhooks(sender)
                except Exception:  # the demo team must keep working whatever happens
                    log.exception("demo: a simulated action failed")

    def act(self, rng: random.Random) -> None:
        roll = rng.random()
        stopped = [e for e in self.sim.entries.values() if e.end is not None]
        if roll < 0.04 and stopped:
            self.sim.delete_entry(rng.choice(stopped[-20:]).id)
        elif roll < 0.08 and stopped:
            entry = rng.choice(stopped[-20:])
            self.sim.update_entry(entry.id, description=rng.choice(["Review", "Fixes", "Call"]))
        else:
            self.sim.simulate_step(rng)


def build_demo(port: int, users: int, plan: str = "STANDARD_2021") -> tuple[Settings, DemoTeam]:
    sim = SimulatedWorkspace(plan=plan, rng=random.Random(7))
    sim.seed_demo_team(users, random.Random(7))
    wall_url = f"http://127.0.0.1:{port}"
    tokens = []
    for event in DEMO_EVENTS if plan != "FREE" else DEMO_EVENTS[:2] + DEMO_EVENTS[3:4]:
        hook = sim.add_webhook(f"{wall_url}/webhooks/clockify", event)
        tokens.append(WebhookToken(Secret(hook.auth_token)))
    sim_port = free_port()
    settings = Settings(
        redis_url=None,
        api_key=Secret(sim.api_key),
        workspace_ids=(sim.id,),
        webhook_tokens=tuple(tokens),
        api_url=f"http://127.0.0.1:{sim_port}/api/v1",
        reports_url=f"http://127.0.0.1:{sim_port}/reports/v1",
        mode="hybrid",
        host="127.0.0.1",
        port=port,
    )
    return settings, DemoTeam(sim, sim_port, wall_url)


def run_demo(port: int, users: int, announce: Callable[[str], None]) -> int:
    settings, team = build_demo(port, users)
    ready = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(team.serve(ready)), name="simulated-clockify", daemon=True
    )
    thread.start()
    if not ready.wait(15):
        log.error("demo: the simulated Clockify did not start; is port %d free?", team.port)
        return 1
    log.info(
        "demo: a simulated Clockify workspace with %d people runs at http://127.0.0.1:%d "
        "and sends signed webhooks",
        users,
        team.port,
    )
    announce(f"clockwall demo: the wall is at http://localhost:{port}/  (Ctrl-C stops)")
    tune_gc()
    app = create_app(settings)
    run_server(
        app,
        app.state.exiting,
        header_timeout_s=settings.header_timeout_s,
        host=settings.host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0
