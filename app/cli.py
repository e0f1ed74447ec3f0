"""The `clockwall` command: serve, demo, setup, check (DESIGN.md section 3)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from app import keys
from app.config import ConfigError, Settings
from app.logs import configure_logging
from app.runtime import SHUTDOWN_GRACE_S, tune_gc


def serve(args: argparse.Namespace) -> int:
    from app.main import create_app
    from app.runtime import run_server

    settings = Settings.from_env(host=args.host, port=args.port)
    configure_logging(settings.log_json)
    # Set by the server the moment it begins to exit: the app's event streams end on it.
    exiting = asyncio.Event()
    app = create_app(settings, exiting=exiting)
    url_host = "localhost" if settings.on_loopback else settings.host
    logging.getLogger("app.cli").info("the wall is at http://%s:%d/", url_host, settings.port)
    tune_gc()
    started = run_server(
        app,
        exiting,
        header_timeout_s=settings.header_timeout_s,
        host=settings.host,
        port=settings.port,
        log_level="info",
        # uvicorn's own lines go through the handler above, so with CLOCKWALL_LOG_JSON=1
        # every line is a JSON object, not a mix of JSON and plain text.
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0 if started else 3  # uvicorn's own exit status for a server that did not start


def share(args: argparse.Namespace) -> int:
    import time

    from app.share import ShareLinkError, ShareScope, parse_expiry_s, sign_scope, verify_token

    def fail(message: str) -> int:
        print(f"clockwall share: {message}", file=sys.stderr)
        return 2

    settings = Settings.from_env()
    if args.revoke is not None:
        return revoke_share(settings, args.revoke, args.workspace)
    workspace = args.workspace or settings.default_workspace
    if workspace not in (settings.workspace_ids or (settings.default_workspace,)):
        return fail(f"workspace {workspace} is not configured")
    kind, wanted = ("project", args.project) if args.project else ("client", args.client)
    try:
        expires_in_s = parse_expiry_s(args.expires)  # before any lookup: a typo fails at once
        catalog = asyncio.run(_with_clients(settings, _share_catalog(settings, workspace, kind)))
        target, warning = catalog.find(wanted)
        if warning:
            print(f"clockwall share: warning: {warning}", file=sys.stderr)
        scope = ShareScope(
            workspace,
            kind,
            target.id,
            int(time.time()) + expires_in_s,
            args.hide_amounts,
            sender=(args.sender or "").strip(),
            no_running=args.no_running,
            default_range=args.range or "",
        )
        token = sign_scope(settings.secret_key, scope)
        scope = verify_token(settings.secret_key, token)  # to read the link id it was given
    except ShareLinkError as exc:
        return fail(str(exc))
    base = (args.base_url or settings.public_url or f"http://localhost:{args.port}").rstrip("/")
    print(f"{base}/share?share={token}")
    # The link alone on stdout, for scripts; what to keep beside it on stderr.
    if target.name:
        print(f"shares {kind} {target.describe()}", file=sys.stderr)
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
    print(
        f"link id {scope.link_id}, expires {expires} ({_from_now(expires_in_s)}); "
        f"revoke it with: clockwall share --revoke {scope.link_id}",
        file=sys.stderr,
    )
    return 0


SHARE_LOOKUP_DEADLINE_S = 15.0  # per source; a source that does not answer is only a warning


def _share_catalog(settings: Settings, ws: str, kind: str) -> Any:
    """What `clockwall share` checks the project or client against: Clockify when
    CLOCKIFY_API_KEY is set, the store's names when REDIS_URL is set and it holds some."""
    import orjson
    from redis.exceptions import RedisError

    from app import keys
    from app.admin import open_client
    from app.clockify import ClockifyError
    from app.share import TargetCatalog, targets_from_clockify, targets_from_names

    async def work(http: Any, redis: Any) -> TargetCatalog:
        catalog = TargetCatalog(kind, ws, {}, [], [])
        if settings.api_key:
            client = open_client(settings, http, redis)
            try:
                async with asyncio.timeout(SHARE_LOOKUP_DEADLINE_S):
                    rows = await (
                        client.list_projects(ws) if kind == "project" else client.list_clients(ws)
                    )
                catalog.targets.update(targets_from_clockify(kind, rows))
                catalog.consulted.append("Clockify")
            except (ClockifyError, RedisError, OSError, TimeoutError) as exc:
                catalog.problems.append(f"could not ask Clockify: {str(exc) or type(exc).__name__}")
        if redis is not None:

            async def names(of: str) -> dict[str, dict[str, Any]]:
                raw = await redis.hgetall(keys.names(ws, of))
                return {k.decode(): orjson.loads(v) for k, v in raw.items()}

            try:
                async with asyncio.timeout(SHARE_LOOKUP_DEADLINE_S):
                    records = await names(kind)
                    clients = await names("client") if kind == "project" and records else {}
            except (RedisError, OSError, TimeoutError) as exc:
                catalog.problems.append(f"Redis did not answer ({type(exc).__name__})")
            else:
                # An empty store has not heard of any yet: it cannot say one does not exist.
                if records:
                    found = targets_from_names(kind, records, clients)
                    catalog.targets.update(
                        {k: v for k, v in found.items() if k not in catalog.targets}
                    )
                    catalog.consulted.append("the store (REDIS_URL)")
                else:
                    catalog.problems.append(f"the store (REDIS_URL) knows no {kind} names yet")
        return catalog

    return work


def _from_now(seconds: int) -> str:
    if seconds >= 2 * 86400:
        return f"in {seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"in {seconds // 3600} hours"
    return f"in {seconds // 60} minutes"


def revoke_share(settings: Settings, link_or_id: str, workspace: str | None) -> int:
    """`clockwall share --revoke`: put the link's id on the revocation list in REDIS_URL, which
    every clockwall process on that Redis checks before it lets a share link in."""
    import re
    import time
    from urllib.parse import parse_qs, urlsplit

    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from app.access import ShareRevocations
    from app.share import ShareLinkError, verify_token

    def fail(message: str, code: int = 2) -> int:
        print(f"clockwall share --revoke: {message}", file=sys.stderr)
        return code

    if not settings.redis_url:
        return fail(
            "REDIS_URL is not set; revoked links are listed in the Redis clockwall serves "
            "from, so set REDIS_URL to it (a server on the embedded store cannot revoke a "
            "link: change CLOCKWALL_SECRET_KEY instead, which ends every link)"
        )
    now = time.time()
    expires_at = float("inf")  # a bare id: keep it listed for good
    text = link_or_id.strip()
    token = parse_qs(urlsplit(text).query).get("share", [text])[0] if "?" in text else text
    if "." in token:
        try:
            # Any age: an expired link is reported as such, not as invalid.
            scope = verify_token(settings.secret_key, token, now_s=0)
        except ShareLinkError as exc:
            return fail(f"{exc} (is CLOCKWALL_SECRET_KEY the server's?)")
        if scope.expires_at <= now:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(scope.expires_at))
            print(f"link {scope.link_id} already expired on {when}; nothing to revoke")
            return 0
        ws, link_id, expires_at = scope.workspace, scope.link_id, scope.expires_at
    elif re.fullmatch(r"[A-Za-z0-9_-]{8,32}", token):
        ws, link_id = workspace or settings.default_workspace, token
        if ws not in (settings.workspace_ids or (settings.default_workspace,)):
            return fail(f"workspace {ws} is not configured")
    else:
        return fail(
            f"{link_or_id!r} is neither a share link nor a link id; give the full link or the "
            "id `clockwall share` printed with it"
        )

    async def revoke() -> None:
        redis = Redis.from_url(str(settings.redis_url), socket_connect_timeout=2)
        try:
            async with asyncio.timeout(10):
                await ShareRevocations(redis).revoke(ws, link_id, expires_at, now)
        finally:
            await redis.aclose()

    try:
        asyncio.run(revoke())
    except (RedisError, OSError, TimeoutError) as exc:
        return fail(
            f"Redis did not answer ({type(exc).__name__}); check that it runs and that "
            "REDIS_URL points at it, then run this again",
            1,
        )
    print(f"revoked share link {link_id} of workspace {ws}; it is refused from now on")
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


def rebuild(args: argparse.Namespace) -> int:
    """Rebuild the totals of a workspace from its stored entries, online: the service keeps
    answering from the old totals until the new ones are complete."""
    settings = Settings.from_env()
    if not settings.redis_url:
        print(
            "clockwall rebuild: REDIS_URL is not set; the embedded store lives inside the "
            "running process and is rebuilt there when a setting changes",
            file=sys.stderr,
        )
        return 2
    ws = args.workspace or settings.default_workspace
    if ws not in (settings.workspace_ids or (settings.default_workspace,)):
        print(f"clockwall rebuild: workspace {ws} is not configured here", file=sys.stderr)
        return 2
    return asyncio.run(_rebuild(settings, ws))


async def _rebuild(settings: Settings, ws: str) -> int:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError
    from rich.progress import Progress

    from app.projection import Basis
    from app.rebuild import request_rebuild, run_rebuild
    from app.store import TotalsStore, parse_generations

    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        gens = parse_generations(await redis.hgetall(keys.projection(ws)))
        if gens is None:
            print(f"workspace {ws} has no totals yet: start the service once first")
            return 1
        basis: Basis = gens.next_basis or gens.basis
        store = TotalsStore(redis, basis.zone)
        gen = await request_rebuild(redis, ws, basis, "clockwall rebuild", force=gens.next is None)
        with Progress() as bar:
            task = bar.add_task(f"rebuilding workspace {ws} ({basis.key()})", total=None)

            def show(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            ok = await run_rebuild(store, ws, progress=show, grace_s=0)
        if not ok:
            print(f"generation {gen} was replaced or finished by another process")
            return 1
        print(f"workspace {ws} answers from generation {gen} ({basis.key()})")
        return 0
    except (RedisError, OSError) as exc:
        print(
            f"clockwall rebuild: Redis did not answer ({type(exc).__name__}); check that it runs "
            "and that REDIS_URL points at it",
            file=sys.stderr,
        )
        return 1
    finally:
        await redis.aclose()


def import_history(args: argparse.Namespace) -> int:
    """`clockwall import --since`: Clockify's history into the store the service reads, in the
    foreground with a progress bar, within the request budget the service spends (shared
    through Redis: its running-timer poll keeps its share). Ctrl-C stops; the same command, or
    a running service, goes on where it stopped."""
    from datetime import date

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from app.importer import ImportJob, import_in_foreground

    def fail(message: str) -> int:
        print(f"clockwall import: {message}", file=sys.stderr)
        return 2

    settings = Settings.from_env()
    if not settings.api_key:
        return fail(
            "CLOCKIFY_API_KEY is not set; the import reads Clockify's Detailed report, so set "
            "it to the API key of a workspace admin (Clockify > Preferences > Advanced)"
        )
    if not settings.redis_url:
        return fail(
            "REDIS_URL is not set; the import writes into the Redis the service reads, so set "
            "REDIS_URL to it (on the embedded store, `clockwall serve` imports "
            "CLOCKWALL_IMPORT_MONTHS of history by itself)"
        )
    ws = args.workspace or settings.default_workspace
    if ws not in settings.workspace_ids:
        return fail(f"workspace {ws} is not configured here; add it to CLOCKIFY_WORKSPACE_ID")
    try:
        since = date.fromisoformat(args.since)
    except ValueError:
        return fail(f"--since {args.since!r} is not a day; give it as YYYY-MM-DD, e.g. 2026-01-01")
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
    ) as bar:
        task = bar.add_task(f"importing since {since}", total=None, detail="starting")
        said: list[tuple[str, bool]] = []

        def show(job: ImportJob) -> None:
            state = job.state if job.state != "running" else f"{job.rows:,} entries"
            bar.update(
                task,
                total=job.days_total,
                completed=job.days_done,
                detail=f"{state}, {job.requests} requests, {job.days_done}/{job.days_total} days",
            )
            # The first estimate, then each pause, wait or resumption, in words above the bar.
            news = (job.state, "waiting" in job.message)
            if job.message and job.state != "done" and (not said or said[-1] != news):
                said.append(news)
                bar.console.print(job.message, highlight=False)

        try:
            code, message = asyncio.run(import_in_foreground(settings, ws, since, show))
        except KeyboardInterrupt:
            code = 130
            message = (
                f"stopped; run `clockwall import --since {since}` again to go on where it "
                "stopped (a running clockwall service goes on by itself)"
            )
    if code:
        print(f"clockwall import: {message}", file=sys.stderr)
    else:
        print(message)
    return code


def build_parser() -> argparse.ArgumentParser:
    from app.share import RANGES

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

    p = sub.add_parser("rebuild", help="rebuild the totals from the stored entries, online")
    p.add_argument("--workspace", help="workspace id (default: the first configured)")
    p.set_defaults(func=rebuild)

    p = sub.add_parser("import", help="import Clockify history from a day on (resumable)")
    p.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="the first day to import")
    p.add_argument("--workspace", help="workspace id (default: the first configured)")
    p.set_defaults(func=import_history)

    p = sub.add_parser("demo", help="a simulated team on the embedded store; no Redis, no account")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--users", type=int, default=12, help="team size (default 12)")
    p.set_defaults(func=demo)

    p = sub.add_parser("share", help="print a signed live link to one project's or client's report")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", metavar="NAME_OR_ID", help='e.g. "Website relaunch"')
    target.add_argument("--client", metavar="NAME_OR_ID")
    target.add_argument(
        "--revoke",
        metavar="LINK_OR_ID",
        help="revoke a link (the link, or the id printed with it); needs REDIS_URL",
    )
    p.add_argument("--expires", default="30d", help="e.g. 30d, 12h, 90m; 1m to 366d (default 30d)")
    p.add_argument("--hide-amounts", action="store_true", help="show hours only, no money")
    p.add_argument(
        "--no-running",
        action="store_true",
        help="leave running timers out (a timer left on overnight never reaches the client)",
    )
    p.add_argument("--sender", help='your name as the page shows it, e.g. "Ana Lopez"')
    p.add_argument(
        "--range",
        choices=RANGES,
        help="the range the page opens on (default: this month; last month on the 1st to 3rd)",
    )
    p.add_argument("--workspace", help="workspace id (default: the first configured)")
    p.add_argument(
        "--base-url",
        help="public URL of this clockwall (default CLOCKWALL_PUBLIC_URL, else "
        "http://localhost:PORT)",
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
