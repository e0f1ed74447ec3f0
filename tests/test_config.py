"""Settings.from_env with a plain dict: good values, clear ConfigErrors, secrets never shown."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Secret, Settings, WebhookToken, parse_tokens
from tests.conftest import OTHER_WS, WS

TOKEN_A = "Xq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1u"
TOKEN_B = "Bq7RkLm2Pz9TnV4sWc8YbH3dJf6GaE1v"


def env(**values: str) -> dict[str, str]:
    return {"CLOCKIFY_WORKSPACE_ID": WS, **values}


def test_good_values() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://localhost:6379/2",
            "CLOCKIFY_API_KEY": "  api-key-value-123  ",
            "CLOCKIFY_WORKSPACE_ID": f"{WS}, {OTHER_WS}",
            "CLOCKIFY_WEBHOOK_TOKENS": f"{TOKEN_A},{OTHER_WS}:{TOKEN_B}",
            "CLOCKIFY_API_URL": "https://euc1.clockify.me/api/v1/",
            "CLOCKIFY_REPORTS_URL": "https://euc1.clockify.me/report/v1",
            "CLOCKWALL_MODE": "Hybrid",
            "CLOCKWALL_API_BUDGET_PER_HOUR": "25",
            "CLOCKWALL_TIMEZONE": "America/Edmonton",
            "CLOCKWALL_WEEK_START": "sunday",
            "CLOCKWALL_DASHBOARD_TOKEN": "dash-board-token",
            "CLOCKWALL_SECRET_KEY": "share-signing-key",
            "CLOCKWALL_WEBHOOK_MAX_BYTES": "65536",
            "CLOCKWALL_HEARTBEAT_S": "2.5",
        }
    )
    assert settings.redis_url == "redis://localhost:6379/2"
    assert settings.api_key.reveal() == "api-key-value-123"
    assert settings.workspace_ids == (WS, OTHER_WS)
    assert settings.webhook_tokens == (
        WebhookToken(Secret(TOKEN_A)),
        WebhookToken(Secret(TOKEN_B), OTHER_WS),
    )
    assert settings.api_url == "https://euc1.clockify.me/api/v1"
    assert settings.reports_url == "https://euc1.clockify.me/report/v1"
    assert settings.mode == "hybrid"
    assert settings.effective_mode == "hybrid"
    assert settings.api_budget_per_hour == 25
    assert settings.timezone == "America/Edmonton"
    assert settings.zone.key == "America/Edmonton"
    assert settings.week_start == "SUNDAY"
    assert settings.week_start_index == 6
    assert settings.dashboard_token.reveal() == "dash-board-token"
    assert settings.webhook_max_bytes == 65536
    assert settings.heartbeat_s == 2.5


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None
    assert settings.workspace_ids == ()
    assert settings.mode == "auto"
    assert settings.effective_mode == "webhook"
    assert settings.zone.key == "UTC"
    assert settings.week_start_index == 0
    assert settings.webhook_max_bytes == 1024 * 1024
    assert not settings.api_key


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"CLOCKIFY_WEBHOOK_TOKENS": TOKEN_A}, "webhook"),
        ({"CLOCKIFY_API_KEY": "k" * 20}, "poll"),
        ({"CLOCKIFY_API_KEY": "k" * 20, "CLOCKIFY_WEBHOOK_TOKENS": TOKEN_A}, "hybrid"),
        ({"CLOCKIFY_API_KEY": "k" * 20, "CLOCKWALL_MODE": "webhook"}, "webhook"),
    ],
)
def test_effective_mode(values: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env(**values)).effective_mode == expected


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"CLOCKWALL_TIMEZONE": "Europe/Atlantis"}, ["CLOCKWALL_TIMEZONE", "Europe/Atlantis"]),
        ({"CLOCKWALL_TIMEZONE": "../../etc/passwd"}, ["CLOCKWALL_TIMEZONE", "IANA"]),
        ({"CLOCKWALL_TIMEZONE": "CET+1"}, ["CLOCKWALL_TIMEZONE"]),
        ({"CLOCKWALL_MODE": "push"}, ["CLOCKWALL_MODE", "'push'", "auto, webhook, poll, hybrid"]),
        ({"CLOCKWALL_WEEK_START": "MON"}, ["CLOCKWALL_WEEK_START", "MONDAY"]),
        ({"CLOCKWALL_WEEK_START": "7"}, ["CLOCKWALL_WEEK_START"]),
        ({"CLOCKWALL_API_BUDGET_PER_HOUR": "thirty"}, ["CLOCKWALL_API_BUDGET_PER_HOUR", "number"]),
        ({"CLOCKWALL_API_BUDGET_PER_HOUR": "2.5"}, ["CLOCKWALL_API_BUDGET_PER_HOUR", "number"]),
        ({"CLOCKWALL_API_BUDGET_PER_HOUR": "0"}, ["CLOCKWALL_API_BUDGET_PER_HOUR", "at least 1"]),
        ({"CLOCKWALL_API_BUDGET_PER_HOUR": "-5"}, ["CLOCKWALL_API_BUDGET_PER_HOUR"]),
        ({"CLOCKWALL_HEARTBEAT_S": "soon"}, ["CLOCKWALL_HEARTBEAT_S", "number"]),
        ({"CLOCKWALL_WEBHOOK_MAX_BYTES": "100"}, ["CLOCKWALL_WEBHOOK_MAX_BYTES", "1024"]),
        ({"CLOCKIFY_WORKSPACE_ID": "my workspace"}, ["CLOCKIFY_WORKSPACE_ID", "'my workspace'"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": f"{TOKEN_A},,{TOKEN_B}"}, ["empty item at position 2"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": f"{TOKEN_A},"}, ["empty item at position 2"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": "short"}, ["CLOCKIFY_WEBHOOK_TOKENS item 1"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": f"{TOKEN_A},has space inside"}, ["item 2"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": f"{TOKEN_A} {TOKEN_B}"}, ["CLOCKIFY_WEBHOOK_TOKENS"]),
        ({"CLOCKIFY_WEBHOOK_TOKENS": f"{OTHER_WS}:{TOKEN_A}"}, [OTHER_WS, "CLOCKIFY_WORKSPACE_ID"]),
    ],
)
def test_bad_values_raise_a_clear_config_error(values: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env(**values))
    message = str(error.value)
    for name in names:
        assert name in message
    for secret in (TOKEN_A, TOKEN_B):
        assert secret not in message


def test_tokens_without_workspace_are_refused() -> None:
    with pytest.raises(ConfigError, match="CLOCKIFY_WORKSPACE_ID is not set"):
        Settings.from_env({"CLOCKIFY_WEBHOOK_TOKENS": TOKEN_A})


def test_malformed_token_error_does_not_echo_the_token() -> None:
    bad = "tok en with spaces and a secret"
    with pytest.raises(ConfigError) as error:
        parse_tokens(bad)
    assert bad not in str(error.value)
    assert "spaces" not in str(error.value).replace("without spaces", "")


@pytest.mark.parametrize("value", ["super-secret-value", TOKEN_A])
def test_secret_never_shows_its_value(value: str) -> None:
    secret = Secret(value)
    assert value not in repr(secret)
    assert value not in str(secret)
    assert value not in f"{secret}"
    assert value not in f"{secret!r}"
    assert secret.reveal() == value
    assert repr(Secret("")) == "Secret('')"


def test_settings_repr_hides_every_secret() -> None:
    settings = Settings.from_env(
        env(
            CLOCKIFY_API_KEY="api-key-should-not-show",
            CLOCKIFY_WEBHOOK_TOKENS=TOKEN_A,
            CLOCKWALL_DASHBOARD_TOKEN="dash-should-not-show",
            CLOCKWALL_SECRET_KEY="secret-should-not-show",
        )
    )
    text = repr(settings) + str(settings)
    for value in (
        "api-key-should-not-show",
        TOKEN_A,
        "dash-should-not-show",
        "secret-should-not-show",
    ):
        assert value not in text
