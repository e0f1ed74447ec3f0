"""The server under test, run by bench.common.ServerProcess in its own interpreter:
`--kind clockwall` is the real app on Redis database 13; `--kind floor` is the least any
webhook receiver must do (read the body, one EVALSHA, a small JSON answer), the floor to
compare with; `--kind floor-pipe` is that floor with its EVALSHA sent over clockwall's
pipelined connection (app/pipe.py) instead of redis-py, for reference. All run under uvicorn
with one worker, the same loop and no access log.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
from collections.abc import AsyncIterator
from datetime import datetime

import orjson
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.config import Secret, Settings, WebhookToken
from app.main import create_app
from app.main import open_redis as app_open_redis
from app.pipe import ScriptPipe
from app.runtime import tune_gc
from bench.common import REDIS_URL, TIMEZONE, TOKEN, WS

LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
FLOOR_SCRIPT = "return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)"
FLOOR_KEY = "bench:floor"


def open_redis() -> Redis:
    # The client clockwall itself opens (app.main.open_redis), so the floor pays the same per
    # redis-py call.
    return app_open_redis(Settings(redis_url=REDIS_URL))


def build_floor(piped: bool = False) -> Starlette:
    """The floor; `piped`: its EVALSHA goes over clockwall's pipelined connection instead of
    redis-py (a reference row: what is left of clockwall's cost once both share that)."""
    client = open_redis()
    script = client.register_script(FLOOR_SCRIPT)
    pipe = ScriptPipe.for_client(client) if piped else None
    field = "p" if piped else "n"

    async def webhook(request: Request) -> Response:
        body = await request.body()
        if pipe is not None:
            count = await pipe.evalsha(script, [FLOOR_KEY], [field])
        else:
            count = await script(keys=[FLOOR_KEY], args=[field])
        return Response(
            orjson.dumps({"outcome": "ok", "n": count, "bytes": len(body)}),
            media_type="application/json",
        )

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if pipe is not None:
                await pipe.aclose()
            await client.aclose()

    return Starlette(
        routes=[
            Route("/webhooks/clockify", webhook, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def build_clockwall(now: str | None) -> Starlette:
    settings = Settings(
        redis_url=REDIS_URL,
        workspace_ids=(WS,),
        webhook_tokens=(WebhookToken(Secret(TOKEN)),),
        timezone=TIMEZONE,
    )
    if now is None:
        return create_app(settings)
    fixed = datetime.fromisoformat(now)
    return create_app(settings, clock=lambda: fixed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("clockwall", "floor", "floor-pipe"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--now", help="fixed clock for clockwall, e.g. 2024-03-28T15:00:00+00:00")
    args = parser.parse_args()
    if args.kind == "clockwall":
        app = build_clockwall(args.now)
    else:
        app = build_floor(piped=args.kind == "floor-pipe")
    tune_gc()  # as `clockwall serve` does (both kinds: it is process set-up)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop=LOOP,
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
