"""Log output: plain text or one JSON object per line, and the filter that keeps the secrets
some URLs carry (`/?token=`, `/share?share=`, `/events?share=`) out of every line."""

from __future__ import annotations

import json
import logging
import re

REDACTED = "[redacted]"

# A path (optionally with scheme and host) followed by a query. Every query value is redacted,
# not only those of known secret names: a list of names would leak the next secret parameter.
_URL_WITH_QUERY = re.compile(r"(?P<path>(?:https?://[^\s/?\"']+)?/[^\s?\"']*)\?(?P<query>\S*)")


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if not equals:  # a bare `?<something>` may itself be the secret
            parts.append(REDACTED if part else "")
        else:
            parts.append(f"{name}={REDACTED if value else ''}")
    return "&".join(parts)


def redact_urls(text: str) -> str:
    """`text` with the value of every query parameter of every URL in it replaced by
    `[redacted]`; paths and parameter names stay, so a line still says what was asked."""
    if "?" not in text:
        return text
    return _URL_WITH_QUERY.sub(
        lambda m: f"{m.group('path')}?{_redact_query(m.group('query'))}", text
    )


class RedactingFilter(logging.Filter):
    """Rewrites a record's message before any handler formats it. uvicorn's access line
    (`'%s - "%s %s HTTP/%s" %d'`, the third argument the path with its raw query string) is the
    main carrier; matching the formatted message rather than that argument's position keeps
    this working for any logger and any future uvicorn."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as logging does
            return True
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; tracebacks and stacks go in `exc` and `stack` (json.dumps
    escapes their newlines, so a line is still one record)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload)


def configure_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: a logger's filters skip records propagated from its children.
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per request to Clockify is noise; problems are logged by the poller itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
