"""Settings from environment variables."""

from __future__ import annotations

import pytest

from shared.config import Settings, redact_url
from shared.errors import ConfigError


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert s.namespace == "tocsin"
    assert s.partitions == 8
    assert s.api_listen == "127.0.0.1:8700"
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls, s.smtp_from) == (
        "127.0.0.1",
        25,
        False,
        "tocsin@localhost",
    )
    assert s.metrics_port == 0 and s.api_token is None


def test_values_are_converted_and_lists_split() -> None:
    s = Settings.from_env(
        {
            "TOCSIN_PARTITIONS": "16",
            "TOCSIN_SMTP_STARTTLS": "true",
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8, hooks.internal ,",
            "UNRELATED": "x",
            "TOCSIN_NOT_A_SETTING": "y",
        }
    )
    assert s.partitions == 16 and s.smtp_starttls is True
    assert s.destination_allow == ("127.0.0.0/8", "hooks.internal")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"TOCSIN_PARTITIONS": "eight"}, "TOCSIN_PARTITIONS", id="not a number"),
        pytest.param({"TOCSIN_PARTITIONS": "0"}, "TOCSIN_PARTITIONS", id="zero partitions"),
        pytest.param({"TOCSIN_NAMESPACE": "a:b"}, "TOCSIN_NAMESPACE", id="separator in namespace"),
        pytest.param({"TOCSIN_SMTP_PORT": "25x"}, "TOCSIN_SMTP_PORT", id="bad port"),
        pytest.param({"TOCSIN_LOG_FORMAT": "xml"}, "TOCSIN_LOG_FORMAT", id="bad log format"),
        pytest.param(
            {"TOCSIN_ACTION_LINK_TTL_S": "5"}, "TOCSIN_ACTION_LINK_TTL_S", id="links die at once"
        ),
        pytest.param(
            {"TOCSIN_RECONNECT_MAX_S": "0"}, "TOCSIN_RECONNECT_MAX_S", id="reconnect in a loop"
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_secrets_are_redacted() -> None:
    s = Settings.from_env(
        {
            "TOCSIN_API_TOKEN": "tok",
            "TOCSIN_SMTP_PASSWORD": "pw",
            "TOCSIN_AMQP_URL": "amqp://u:hunter2@h:5672/v",
            "TOCSIN_ACTION_SECRET": "links-key",
            "TOCSIN_SLACK_SIGNING_SECRET": "slack-key",
            "TOCSIN_PAGERDUTY_WEBHOOK_SECRET": "pd-key",
            "TOCSIN_SMS_INBOUND_SECRET": "sms-key",
        }
    )
    red = s.redacted()
    assert red["api_token"] == "***" and red["smtp_password"] == "***"
    for value in ("hunter2", "links-key", "slack-key", "pd-key", "sms-key"):
        assert value not in str(red)
    # (values only: a field's name may say "secret", as oidc_client_secret does)
    assert "secret" not in str(list(red.values()))
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
