"""A clockwall app, its store and one poller wired to an in-process simulated Clockify
(httpx.ASGITransport, no port), on a manual clock: what the polling tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from app.budget import RequestBudget
from app.config import Settings
from app.main import create_app
from app.metrics import Metrics
from app.poller import Poller
from app.sim import ManualClock, SimulatedWorkspace, WebhookSender, create_simulator_app
from app.sim.server import client_for as sim_client
from app.store import TotalsStore
from tests.conftest import redis_db
from tests.payloads import AppClient

API = "http://clockify.test"


@dataclass
class Wired:
    redis: Redis
    store: TotalsStore
    poller: Poller
    sender: WebhookSender


@contextlib.asynccontextmanager
async def wired(
    sim: SimulatedWorkspace,
    settings: Settings,
    clock: ManualClock,
    db_url: str,
    record: Callable[[httpx.Request], Awaitable[None]],
) -> AsyncIterator[Wired]:
    """The app on `db_url` (webhooks through `sender`) and a hybrid poller whose Clockify
    requests go to `sim`, each passed to `record`, within a 30-an-hour budget."""

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    transport = httpx.ASGITransport(app=create_simulator_app(sim))
    async with (
        redis_db(db_url) as redis,
        httpx.AsyncClient(transport=transport, event_hooks={"request": [record]}) as api,
    ):
        app = create_app(settings, redis=redis, clock=now)
        async with AppClient(app) as hook_http:
            budget = RequestBudget(redis, sim.id, 30, clock=clock)
            client = sim_client(sim, api, API, budget, sleep)
            store = app.state.service.store
            poller = Poller(
                sim.id, client, store, redis, Metrics(), mode="hybrid", budget=budget, clock=now
            )
            yield Wired(redis, store, poller, WebhookSender(hook_http))
