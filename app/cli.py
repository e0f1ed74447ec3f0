"""The `clockwall` command: serve, demo, setup, check (DESIGN.md section 3)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from app.config import ConfigError, Settings


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


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = Settings.from_env(host=args.host, port=args.port)
    configure_logging(settings.log_json)
    app = create_app(settings)
    url_host = "localhost" if settings.on_loopback else settings.host
    logging.getLogger("app.cli").info("the wall is at http://%s:%d/", url_host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clockwall", description="A live wall and reports for a Clockify workspace."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the service from the environment")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=serve)
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
