"""Medium settings and addresses validated at creation time; destination guard."""

from __future__ import annotations

import pytest

from services.gateways.registry import MEDIA
from shared import media
from shared.destinations import Allowlist, DestinationDenied, check_destination
from shared.media import MediumSettingsError, settings_json_schema, validate_medium_settings
from shared.models import MEDIUM_TYPES

KEY = "R0123456789abcdef0123456789ABCDE"


def test_every_contract_medium_type_has_a_gateway_and_a_settings_schema() -> None:
    assert set(MEDIA) == set(MEDIUM_TYPES)
    assert set(media.TYPES) == set(MEDIUM_TYPES)
    assert all(MEDIA[name].kind is media.TYPES[name] for name in MEDIA)


@pytest.mark.parametrize(
    ("mtype", "address", "settings"),
    [
        pytest.param("email", "ops@example.com", {"subject_prefix": "[prod]"}, id="email"),
        pytest.param("webhook", "https://example.com/hook?x=1", {"secret": "s"}, id="webhook"),
        pytest.param(
            "slack", "https://hooks.slack.com/services/T/B/x", {"channel": "#ops"}, id="slack"
        ),
        pytest.param("pagerduty", KEY, {}, id="pagerduty"),
        pytest.param("sms", "+4712345678", {}, id="sms"),
    ],
)
def test_valid_media(mtype: str, address: str, settings: dict[str, str]) -> None:
    validate_medium_settings(mtype, address, settings)


@pytest.mark.parametrize(
    ("mtype", "address", "settings", "field", "words"),
    [
        pytest.param("email", "not-an-email", {}, "address", "email address", id="email address"),
        pytest.param("sms", "4712345678", {}, "address", "E.164", id="sms without plus"),
        pytest.param("webhook", "ftp://x/y", {}, "address", "http(s) URL", id="webhook scheme"),
        pytest.param(
            "webhook", "https://u:p@x/y", {}, "address", "credentials", id="webhook credentials"
        ),
        pytest.param(
            "slack", "hooks.slack.com", {}, "address", "http(s) URL", id="slack no scheme"
        ),
        pytest.param("pagerduty", "short", {}, "address", "routing key", id="pagerduty key"),
        pytest.param(
            "webhook", "https://x/y", {"secert": "s"}, "settings.secert", "unknown field", id="typo"
        ),
        pytest.param("fax", "123", {}, "type", "known: email", id="unknown type"),
    ],
)
def test_invalid_media_name_the_field(
    mtype: str, address: str, settings: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(MediumSettingsError) as err:
        validate_medium_settings(mtype, address, settings)
    assert err.value.field == field
    assert words in str(err.value)
    assert isinstance(err.value, ValueError)


def test_settings_schema_is_json_schema() -> None:
    schema = settings_json_schema("webhook")
    assert schema["$defs"]["WebhookSettings"]["properties"]["secret"]


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        pytest.param("http://127.0.0.1:9/x", (), id="loopback"),
        pytest.param("http://10.1.2.3/x", (), id="private"),
        pytest.param("http://169.254.169.254/latest/meta-data", (), id="metadata ip"),
        pytest.param("http://metadata.google.internal/", (), id="metadata host"),
        pytest.param("http://[::1]/x", (), id="ipv6 loopback"),
        pytest.param("http://[::ffff:127.0.0.1]/x", (), id="v4-mapped loopback"),
        pytest.param("http://localhost/x", (), id="name resolving to loopback"),
        pytest.param("http://10.1.2.3/x", ("127.0.0.0/8",), id="allow list does not cover it"),
        pytest.param("file:///etc/passwd", ("0.0.0.0/0",), id="not http"),
        pytest.param("http://100.100.100.200/latest", (), id="shared address space metadata"),
        pytest.param("http://100.64.0.1/x", (), id="shared address space"),
        pytest.param("http://[2002:a9fe:a9fe::1]/x", (), id="6to4 of link-local"),
        pytest.param("http://[2002:7f00:1::1]/x", (), id="6to4 of loopback"),
        pytest.param(
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x", (), id="teredo of 10.0.0.1"
        ),
        pytest.param("http://[64:ff9b::a9fe:a9fe]/x", (), id="nat64 of metadata"),
        pytest.param("http://[::a9fe:a9fe]/x", (), id="ipv4-compatible metadata"),
        pytest.param("http://198.18.0.1/x", (), id="benchmarking"),
        pytest.param("http://192.0.2.1/x", (), id="documentation"),
        pytest.param("http://240.0.0.1/x", (), id="reserved"),
        pytest.param("http://224.0.0.1/x", (), id="multicast"),
    ],
)
def test_destination_denied(url: str, allow: tuple[str, ...]) -> None:
    with pytest.raises(DestinationDenied):
        check_destination(url, Allowlist.parse(allow))


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        pytest.param("http://127.0.0.1:9/x", ("127.0.0.0/8",), id="allowed cidr"),
        pytest.param("http://10.1.2.3/x", ("10.1.2.3",), id="allowed single ip"),
        pytest.param("http://intranet.example/x", ("intranet.example",), id="allowed host name"),
        pytest.param("http://93.184.216.34/x", (), id="public ip"),
        pytest.param("http://[2606:4700::1111]/x", (), id="public ipv6"),
        pytest.param("http://[2002:5db8:d822::1]/x", (), id="6to4 of a public address"),
        pytest.param("http://100.64.0.1/x", ("100.64.0.0/10",), id="shared space when allowed"),
    ],
)
def test_destination_allowed(url: str, allow: tuple[str, ...]) -> None:
    check_destination(url, Allowlist.parse(allow))
