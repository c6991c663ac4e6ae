"""One set of masking rules for secrets shown by the API, dashboard, CLI and delivery log."""

from __future__ import annotations

import json

import pytest

from services.cli.dead import render_body
from shared.masking import (
    mask_address,
    mask_document,
    mask_medium,
    mask_settings,
    mask_url,
    restore_masked,
)

KEY = "R0123456789abcdef0123456789ABCDE"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def test_settings_with_credential_names_are_masked() -> None:
    masked = mask_settings(
        {"secret": "s", "api_key": "k", "Authorization": "Bearer x", "channel": "#ops", "x": ""}
    )
    assert masked == {
        "secret": "***",
        "api_key": "***",
        "Authorization": "***",
        "channel": "#ops",
        "x": "",
    }


@pytest.mark.parametrize(
    ("mtype", "address", "editable", "shown"),
    [
        pytest.param("pagerduty", KEY, "***BCDE", "R012***", id="routing key"),
        pytest.param("slack", SLACK, SLACK, "https://hooks.slack.com/***", id="slack url"),
        pytest.param(
            "webhook",
            "http://h:8080/?token=x",
            "http://h:8080/?token=x",
            "http://h:8080/***",
            id="webhook query",
        ),
        pytest.param("email", "ops@example.org", "ops@example.org", "ops@example.org", id="email"),
    ],
)
def test_addresses(mtype: str, address: str, editable: str, shown: str) -> None:
    assert mask_address(mtype, address) == editable
    assert mask_url(mtype, address) == shown


def test_mask_medium_is_the_api_form() -> None:
    assert mask_medium("pagerduty", KEY, {"secret": "s"}) == ("***BCDE", {"secret": "***"})


def test_dead_letter_bodies_mask_medium_addresses_and_settings() -> None:
    """``tocsin dead show`` used to print routing keys and Slack URLs in clear."""
    delivery = {
        "id": "d1",
        "medium": {"type": "pagerduty", "address": KEY, "settings": {}},
        "others": [{"type": "slack", "address": SLACK, "settings": {"secret": "hook"}}],
    }
    shown = render_body(json.dumps(delivery).encode())
    assert KEY not in shown and "XXXXSECRET" not in shown and '"hook"' not in shown
    doc = mask_document(delivery)
    assert doc["medium"]["address"] == "R012***"
    assert doc["others"][0]["address"] == "https://hooks.slack.com/***"
    assert doc["id"] == "d1"


def test_a_masked_value_sent_back_keeps_the_stored_secret() -> None:
    stored = {"routing_key": KEY, "secret": "s3cret", "label": "a"}
    new = {"routing_key": "***BCDE", "secret": "***", "label": "b"}
    assert restore_masked(new, stored, "pagerduty", "routing_key") == {
        "routing_key": KEY,
        "secret": "s3cret",
        "label": "b",
    }
    changed = {"routing_key": "Q" * 32, "secret": "new", "label": "a"}
    assert restore_masked(changed, stored, "pagerduty", "routing_key") == changed
    # A literal *** for a setting that was never stored is taken as given.
    assert restore_masked({"token": "***"}, {}, "webhook", "url") == {"token": "***"}
