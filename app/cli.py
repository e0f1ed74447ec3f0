"""The `clockwall` command: serve, demo, setup, check (DESIGN.md section 3)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app.config import ConfigError, Settings
from app.runtime import SHUTDOWN_GRACE_S, tune_gc


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per request to Clockify is noise; problems are logged by the poller itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = Settings.from_env(host=args.host, port=args.port)
    configure_logging(settings.log_json)
    app = create_app(settings)
    url_host = "localhost" if settings.on_loopback else settings.host
    logging.getLogger("app.cli").info("the wall is at http://%s:%d/", url_host, settings.port)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        # uvicorn's own lines go through the handler above, so with CLOCKWALL_LOG_JSON=1
        # every line is a JSON object, not a mix of JSON and plain text.
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0


def share(args: argparse.Namespace) -> int:
    import time

    from app.share import ShareLinkError, ShareScope, parse_expiry_s, sign_scope

    settings = Settings.from_env()
    workspace = args.workspace or settings.default_workspace
    if workspace not in (settings.workspace_ids or (settings.default_workspace,)):
        print(f"clockwall share: workspace {workspace} is not configured", file=sys.stderr)
        return 2
    kind, ident = ("project", args.project) if args.project else ("client", args.client)
    try:
        scope = ShareScope(
            workspace,
            kind,
            ident,
            int(time.time()) + parse_expiry_s(args.expires),
            args.hide_amounts,
        )
        token = sign_scope(settings.secret_key, scope)
    except ShareLinkError as exc:
        print(f"clockwall share: {exc}", file=sys.stderr)
        return 2
    base = (args.base_url or f"http://localhost:{args.port}").rstrip("/")
    print(f"{base}/share?share={token}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    configure_logging(False)
    return run_demo(args.port, args.users, lambda line: print(f"\n  {line}\n", flush=True))


async def _with_clients(settings: Settings, work: Any) -> Any:
    import httpx
    from redis.asyncio import Redis

    redis = (
        Redis.from_url(settings.redis_url, socket_connect_timeout=2) if settings.redis_url else None
    )
    async with httpx.AsyncClient() as http:
        try:
            return await work(http, redis)
        finally:
            if redis is not None:
                await redis.aclose()


def setup(args: argparse.Namespace) -> int:
    from app.admin import SetupError, open_client, run_setup
    from app.clockify import ClockifyError

    settings = Settings.from_env()
    if not settings.api_key or not settings.workspace_ids:
        print(
            "clockwall setup: set CLOCKIFY_API_KEY and CLOCKIFY_WORKSPACE_ID first "
            "(the key of a workspace admin: Profile settings > API)",
            file=sys.stderr,
        )
        return 2

    async def work(http: Any, redis: Any) -> Any:
        return await run_setup(
            open_client(settings, http, redis), settings.workspace_ids[0], args.url
        )

    try:
        result = asyncio.run(_with_clients(settings, work))
    except (SetupError, ClockifyError) as exc:
        print(f"clockwall setup: {exc}", file=sys.stderr)
        return 1
    print(f"plan: {result.plan or 'unknown'}")
    print(f"created: {', '.join(result.created) or 'nothing (all were there)'}")
    print(f"reused: {', '.join(result.reused) or 'none'}")
    print("put this line in clockwall's environment (it is secret):")
    print(result.token_line())
    return 0


def check(args: argparse.Namespace) -> int:
    from app.admin import run_check

    settings = Settings.from_env()
    lines = asyncio.run(
        _with_clients(settings, lambda http, redis: run_check(settings, http, redis))
    )
    for line in lines:
        print(f"{'ok  ' if line.ok else 'FAIL'}  {line.what}: {line.detail}")
    failed = [line for line in lines if not line.ok]
    print("all is well" if not failed else f"{len(failed)} problem(s) found")
    return 0 if not failed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clockwall", description="A live wall and reports for a Clockify workspace."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the service from the environment")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=serve)

    p = sub.add_parser("setup", help="create the Clockify webhooks and print the token line")
    p.add_argument("--url", required=True, help="public URL of this clockwall")
    p.set_defaults(func=setup)

    p = sub.add_parser("check", help="check configuration, Redis, Clockify, plan and budget")
    p.set_defaults(func=check)

    p = sub.add_parser("demo", help="a simulated team on the embedded store; no Redis, no account")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--users", type=int, default=12, help="team size (default 12)")
    p.set_defaults(func=demo)

    p = sub.add_parser("share", help="print a signed live link to one project's or client's report")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", metavar="ID")
    target.add_argument("--client", metavar="ID")
    p.add_argument("--expires", default="30d", help="e.g. 30d, 12h, 90m (default 30d)")
    p.add_argument("--hide-amounts", action="store_true", help="show hours only, no money")
    p.add_argument("--workspace", help="workspace id (default: the first configured)")
    p.add_argument(
        "--base-url", help="public URL of this clockwall (default http://localhost:PORT)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=share)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"clockwall: configuration error: {exc}", file=sys.stderr)
        return 2
    return code
