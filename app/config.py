"""Settings: one frozen object built from the environment (DESIGN.md section 3).

Tests build `Settings(...)` directly; only `Settings.from_env` reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MODES = ("auto", "webhook", "poll", "hybrid")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# Report rounding (Clockify's "Round up", "Round down", "Round to nearest") and how long a step
# may be; duration formats as Clockify names them: h:mm:ss, h:mm, hours with decimals.
ROUNDING_MODES = ("UP", "DOWN", "NEAREST")
MAX_ROUNDING_MINUTES = 480
DURATION_FORMATS = ("FULL", "COMPACT", "DECIMAL")
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Clockify's signing secrets are 32 alphanumerics; allow URL-safe and base64 punctuation, but
# not separators such as ; or | that betray a mistyped list.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{8,4096}$")
# A dashboard token or signing key shorter than this is guessable offline or by brute force.
MIN_SECRET_CHARS = 16
MAX_IMPORT_MONTHS = 120
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


class Secret:
    """A string whose repr and str never show the value (API keys, tokens, signing keys)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class WebhookToken:
    """One signing secret, optionally bound to one workspace (`workspaceId:token`)."""

    secret: Secret
    workspace_id: str | None = None


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    api_key: Secret = field(default_factory=lambda: Secret(""))
    workspace_ids: tuple[str, ...] = ()
    webhook_tokens: tuple[WebhookToken, ...] = ()
    api_url: str = "https://api.clockify.me/api/v1"
    reports_url: str = "https://reports.api.clockify.me/v1"
    mode: str = "auto"
    api_budget_per_hour: int | None = None
    timezone: str | None = None
    week_start: str | None = None
    # Unset: as the workspace has them in Clockify. `off`, or `up:15` (mode:minutes).
    report_rounding: str | None = None
    duration_format: str | None = None  # FULL, COMPACT or DECIMAL
    dashboard_token: Secret = field(default_factory=lambda: Secret(""))
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    host: str = "127.0.0.1"
    port: int = 8000
    webhook_max_bytes: int = 1024 * 1024
    webhook_body_timeout_s: float = 10.0
    stream_maxlen: int = 10_000
    heartbeat_s: float = 15.0
    long_timer_hours: float = 8.0
    # Connection limits: a request's headers must arrive within header_timeout_s; one process
    # holds at most max_streams event streams (a fleet of 10,000 screens fits), one share
    # link at most max_share_streams.
    header_timeout_s: float = 10.0
    max_streams: int = 20_000
    max_share_streams: int = 20
    log_json: bool = False
    public_url: str | None = None
    # History imported by itself on first start with an API key: the current month and this
    # many before it (0: none; `clockwall import --since` imports any depth).
    import_months: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(
                f"CLOCKWALL_MODE={self.mode!r} is not a mode; use one of {', '.join(MODES)}"
            )
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    f"CLOCKWALL_TIMEZONE={self.timezone!r} is not a known time zone; "
                    "use an IANA name such as 'Europe/Berlin' or 'UTC'"
                ) from None
        if self.week_start is not None and self.week_start not in WEEKDAYS:
            raise ConfigError(
                f"CLOCKWALL_WEEK_START={self.week_start!r} is not a weekday; "
                f"use one of {', '.join(WEEKDAYS)}"
            )
        if self.report_rounding is not None:
            parse_rounding(self.report_rounding)  # raises ConfigError when malformed
        if self.duration_format is not None and self.duration_format not in DURATION_FORMATS:
            raise ConfigError(
                f"CLOCKWALL_DURATION_FORMAT={self.duration_format!r} is not a duration format; "
                f"use one of {', '.join(DURATION_FORMATS)} (h:mm:ss, h:mm, decimal hours)"
            )
        for ws in self.workspace_ids:
            if not _WORKSPACE_ID.match(ws):
                raise ConfigError(
                    f"CLOCKIFY_WORKSPACE_ID contains {ws!r}, which is not a workspace id; "
                    "copy the 24-character id from Clockify's workspace settings URL"
                )
        for token in self.webhook_tokens:
            if token.workspace_id is not None and token.workspace_id not in self.workspace_ids:
                raise ConfigError(
                    f"CLOCKIFY_WEBHOOK_TOKENS binds a token to workspace {token.workspace_id!r}, "
                    "which is not in CLOCKIFY_WORKSPACE_ID; add it there or drop the prefix"
                )
        if self.api_budget_per_hour is not None and self.api_budget_per_hour < 1:
            raise ConfigError("CLOCKWALL_API_BUDGET_PER_HOUR must be a whole number of at least 1")
        if not 0 <= self.import_months <= MAX_IMPORT_MONTHS:
            raise ConfigError(
                f"CLOCKWALL_IMPORT_MONTHS={self.import_months} is out of range; use 0 (no "
                f"automatic import) to {MAX_IMPORT_MONTHS}, or `clockwall import --since "
                "YYYY-MM-DD` for any depth"
            )
        if self.webhook_max_bytes < 1024:
            raise ConfigError("CLOCKWALL_WEBHOOK_MAX_BYTES must be at least 1024")
        if not self.header_timeout_s > 0:
            raise ConfigError("CLOCKWALL_HEADER_TIMEOUT_S must be a number of seconds above 0")
        if self.max_streams < 1 or self.max_share_streams < 1:
            raise ConfigError(
                "CLOCKWALL_MAX_STREAMS and CLOCKWALL_MAX_SHARE_STREAMS must be at least 1"
            )
        if not 0 < self.webhook_body_timeout_s <= 300:
            raise ConfigError("CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S must be between 0 and 300 seconds")
        if not self.workspace_ids and (self.webhook_tokens or self.api_key):
            raise ConfigError(
                "CLOCKIFY_WORKSPACE_ID is not set; set it to the id of the workspace to show"
            )
        for name, secret in (
            ("CLOCKWALL_DASHBOARD_TOKEN", self.dashboard_token),
            ("CLOCKWALL_SECRET_KEY", self.secret_key),
        ):
            if secret and len(secret.reveal()) < MIN_SECRET_CHARS:
                raise ConfigError(
                    f"{name} is shorter than {MIN_SECRET_CHARS} characters, too easy to guess; "
                    f"set it to a long random string, e.g. the output of: {MAKE_SECRET}"
                )
        if self.public_url is not None and not _is_site_url(self.public_url):
            raise ConfigError(
                f"CLOCKWALL_PUBLIC_URL={self.public_url!r} is not the address of this wall; "
                "give the URL people open, e.g. https://wall.example.com"
            )

    # Derived values -------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as `date.weekday()` counts."""
        return WEEKDAYS.index(self.week_start or "MONDAY")

    @property
    def rounding(self) -> tuple[str, int] | None:
        """CLOCKWALL_REPORT_ROUNDING as (mode, minutes); None when unset or `off` (tell them
        apart with `report_rounding is None`)."""
        return None if self.report_rounding is None else parse_rounding(self.report_rounding)

    @property
    def effective_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        if self.webhook_tokens and self.api_key:
            return "hybrid"
        if self.api_key:
            return "poll"
        return "webhook"

    @property
    def on_loopback(self) -> bool:
        if self.host in ("localhost", ""):
            return self.host == "localhost"
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def public_host(self) -> str | None:
        """The host name of CLOCKWALL_PUBLIC_URL as a Host header spells it (an IPv6 address in
        brackets), lowercase; None when the URL is not set."""
        if self.public_url is None:
            return None
        host = urlsplit(self.public_url).hostname or ""
        return f"[{host}]" if ":" in host else host

    @property
    def public_https(self) -> bool:
        return (self.public_url or "").startswith("https://")

    @property
    def default_workspace(self) -> str:
        return self.workspace_ids[0] if self.workspace_ids else "demo"

    # Construction ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict[str, object] = {
            "redis_url": get("REDIS_URL"),
            "api_key": Secret(get("CLOCKIFY_API_KEY") or ""),
            "workspace_ids": _split(get("CLOCKIFY_WORKSPACE_ID")),
            "webhook_tokens": parse_tokens(get("CLOCKIFY_WEBHOOK_TOKENS")),
            "mode": (get("CLOCKWALL_MODE") or "auto").lower(),
            "timezone": get("CLOCKWALL_TIMEZONE"),
            "week_start": (get("CLOCKWALL_WEEK_START") or "").upper() or None,
            "report_rounding": (get("CLOCKWALL_REPORT_ROUNDING") or "").lower() or None,
            "duration_format": (get("CLOCKWALL_DURATION_FORMAT") or "").upper() or None,
            "dashboard_token": Secret(get("CLOCKWALL_DASHBOARD_TOKEN") or ""),
            "secret_key": Secret(get("CLOCKWALL_SECRET_KEY") or ""),
            "log_json": get("CLOCKWALL_LOG_JSON") in ("1", "true", "yes"),
        }
        if url := get("CLOCKIFY_API_URL"):
            values["api_url"] = url.rstrip("/")
        if url := get("CLOCKIFY_REPORTS_URL"):
            values["reports_url"] = url.rstrip("/")
        if url := get("CLOCKWALL_PUBLIC_URL"):
            values["public_url"] = url.rstrip("/")
        for name, key, kind in (
            ("CLOCKWALL_API_BUDGET_PER_HOUR", "api_budget_per_hour", int),
            ("CLOCKWALL_WEBHOOK_MAX_BYTES", "webhook_max_bytes", int),
            ("CLOCKWALL_WEBHOOK_BODY_TIMEOUT_S", "webhook_body_timeout_s", float),
            ("CLOCKWALL_STREAM_MAXLEN", "stream_maxlen", int),
            ("CLOCKWALL_HEARTBEAT_S", "heartbeat_s", float),
            ("CLOCKWALL_LONG_TIMER_HOURS", "long_timer_hours", float),
            ("CLOCKWALL_HEADER_TIMEOUT_S", "header_timeout_s", float),
            ("CLOCKWALL_MAX_STREAMS", "max_streams", int),
            ("CLOCKWALL_MAX_SHARE_STREAMS", "max_share_streams", int),
            ("CLOCKWALL_IMPORT_MONTHS", "import_months", int),
        ):
            raw = get(name)
            if raw is not None:
                try:
                    values[key] = kind(raw)
                except ValueError:
                    raise ConfigError(f"{name}={raw!r} is not a number") from None
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _is_site_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is no number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def parse_rounding(raw: str) -> tuple[str, int] | None:
    """`off` -> None; `up:15`, `down:6`, `nearest:30` (any case) -> ("UP", 15) and so on."""
    text = raw.strip().upper()
    if text == "OFF":
        return None
    mode, _, minutes = (part.strip() for part in text.partition(":"))
    if mode in ROUNDING_MODES and minutes.isascii() and minutes.isdigit():
        count = int(minutes)
        if 1 <= count <= MAX_ROUNDING_MINUTES:
            return mode, count
    raise ConfigError(
        f"CLOCKWALL_REPORT_ROUNDING={raw!r} is not a rounding; use off, or up, down or nearest "
        f"with the minutes to round to (1 to {MAX_ROUNDING_MINUTES}), e.g. up:15, down:6, "
        "nearest:30"
    )


def parse_tokens(raw: str | None) -> tuple[WebhookToken, ...]:
    """`tok1,tok2` or `workspaceId:tok1,...`; rejects empty items and odd characters."""
    tokens = []
    for index, item in enumerate((raw or "").split(",")):
        item = item.strip()
        if not item:
            if raw and raw.strip():
                raise ConfigError(
                    f"CLOCKIFY_WEBHOOK_TOKENS has an empty item at position {index + 1}; "
                    "separate tokens with single commas"
                )
            continue
        workspace_id: str | None = None
        if ":" in item:
            workspace_id, _, item = item.partition(":")
        if not _TOKEN.match(item):
            raise ConfigError(
                f"CLOCKIFY_WEBHOOK_TOKENS item {index + 1} is not a signing secret "
                "(expected 8 or more printable characters without spaces); copy it from "
                "the webhook's page in Clockify or from `clockwall setup`"
            )
        tokens.append(WebhookToken(Secret(item), workspace_id))
    return tuple(tokens)
