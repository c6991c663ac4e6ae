"""Rendering per medium: pure functions of a Delivery."""

from __future__ import annotations

import hashlib
import hmac
import json

import msgspec
import pytest

from services.gateways import email, pagerduty, slack, sms, webhook
from services.gateways.texts import format_duration
from shared.config import Settings
from shared.delivery_log import redact_address
from shared.models import ContactRef, Delivery, MediumRef, RollupItem

T = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def delivery(type: str = "problem", state: str = "critical", **kw: object) -> Delivery:
    base: dict[str, object] = {
        "id": "n1:m1",
        "notification_id": "n1",
        "type": type,
        "entity": "web1",
        "check": "http",
        "state": state,
        "previous_state": "ok",
        "time": T,
        "contact": ContactRef("c1", "Alice"),
        "medium": MediumRef(id="m1", type="webhook", address="https://example.com/h"),
        "summary": "connection refused",
        "details": "port 80",
        "duration": 3725.0,
        "tags": ("team=web",),
        "seq": 1_764_700_000_000_001,
    }
    base.update(kw)
    return msgspec.convert(base, Delivery, from_attributes=True)


ROLLUP = tuple(
    RollupItem(entity=f"e{i}", check="disk", state=s)
    for i, s in enumerate(["warning", "critical", "critical", "unknown"])
)


# --------------------------------------------------------------------------- webhook


def test_webhook_body_is_the_contract_shape() -> None:
    body = json.loads(webhook.render(delivery(type="rollup", checks=ROLLUP[:1])))
    assert body == {
        "id": "n1:m1",
        "type": "rollup",
        "entity": "web1",
        "check": "http",
        "state": "critical",
        "previous_state": "ok",
        "summary": "connection refused",
        "details": "port 80",
        "time": T,
        "duration": 3725.0,
        "tags": ["team=web"],
        "contact": {"id": "c1", "name": "Alice"},
        "medium": {"id": "m1", "type": "webhook"},
        "checks": [
            {"entity": "e0", "check": "disk", "state": "warning", "summary": "", "duration": 0.0}
        ],
        "seq": 1_764_700_000_000_001,
    }


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    assert webhook.sign("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("d", "subject"),
    [
        pytest.param(delivery(), "PROBLEM: web1:http is CRITICAL", id="problem"),
        pytest.param(delivery("recovery", "ok"), "RECOVERY: web1:http is OK", id="recovery"),
        pytest.param(
            delivery("acknowledgement"),
            "ACKNOWLEDGED: web1:http (critical): connection refused",
            id="ack",
        ),
        pytest.param(delivery("test"), "TEST: web1:http is CRITICAL", id="test"),
        pytest.param(
            delivery("rollup", checks=ROLLUP), "ROLLUP: 4 failing checks", id="rollup count"
        ),
        pytest.param(
            delivery("rollup_recovery", checks=ROLLUP[:1]),
            "ROLLUP_RECOVERY: 1 failing check",
            id="rollup recovery",
        ),
        pytest.param(
            delivery(entity="a\r\nBcc: x@y"),
            "PROBLEM: a Bcc: x@y:http is CRITICAL",
            id="no header injection",
        ),
    ],
)
def test_email_subject(d: Delivery, subject: str) -> None:
    assert email.subject(d) == subject


def test_email_message_headers_and_body() -> None:
    msg = email.render(delivery(), Settings(smtp_from="pager@example.org"), now=T)
    assert msg["From"] == "pager@example.org"
    assert msg["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert (
        msg["Message-ID"]
        == email.render(delivery(), Settings(smtp_from="pager@example.org"), now=T + 9)[
            "Message-ID"
        ]
    )
    text = msg.get_content()
    for line in (
        "State: Critical",
        "Previous state: OK",
        "Summary: connection refused",
        "Duration: 1h 2m",
    ):
        assert line in text


# --------------------------------------------------------------------------- sms


@pytest.mark.parametrize(
    ("d", "text"),
    [
        pytest.param(
            delivery(),
            "PROBLEM CRITICAL web1:http at 14 Nov 22:13: connection refused",
            id="problem",
        ),
        pytest.param(
            delivery("recovery", "ok", summary=""),
            "RECOVERY OK web1:http at 14 Nov 22:13",
            id="recovery",
        ),
        pytest.param(
            delivery("rollup", checks=ROLLUP),
            "ROLLUP 4 failing at 14 Nov 22:13: e0:disk, e1:disk, e2:disk, ...",
            id="rollup lists three",
        ),
    ],
)
def test_sms_text(d: Delivery, text: str) -> None:
    assert sms.render(d) == text


def test_sms_cut_keeps_the_most_important_part_first() -> None:
    text = sms.render(delivery(entity="e" * 200, summary="s" * 300))
    assert len(text) == 160
    assert text.startswith("PROBLEM CRITICAL eeee")
    assert text.endswith("…")


# --------------------------------------------------------------------------- slack


@pytest.mark.parametrize(
    ("d", "colour"),
    [
        pytest.param(delivery(), "#a30200", id="critical red"),
        pytest.param(delivery(state="warning"), "#daa038", id="warning amber"),
        pytest.param(delivery("recovery", "ok"), "#2eb886", id="ok green"),
        pytest.param(delivery("acknowledgement"), "#439fe0", id="ack blue"),
        pytest.param(delivery("rollup", checks=ROLLUP[:1]), "#daa038", id="rollup worst state"),
    ],
)
def test_slack_colour(d: Delivery, colour: str) -> None:
    assert slack.render(d)["attachments"][0]["color"] == colour  # type: ignore[index]


def _slack_texts(body: object) -> list[str]:
    """Every string in a rendered Slack body."""
    if isinstance(body, dict):
        return [t for v in body.values() for t in _slack_texts(v)]
    if isinstance(body, list):
        return [t for v in body for t in _slack_texts(v)]
    return [body] if isinstance(body, str) else []


@pytest.mark.parametrize(
    "d",
    [
        pytest.param(
            delivery(summary="<!channel> disk & <https://evil.example|click>", details="<@U1>"),
            id="summary and details",
        ),
        pytest.param(delivery(entity="<!here>", check="a>b"), id="entity and check"),
        pytest.param(
            delivery(
                "rollup", checks=(RollupItem(entity="<!channel>", check="x", state="critical"),)
            ),
            id="rollup list",
        ),
    ],
)
def test_slack_escapes_control_characters(d: Delivery) -> None:
    """``<!channel>`` would ping a whole channel and ``<url|text>`` render a disguised link."""
    texts = _slack_texts(slack.render(d))
    assert not [t for t in texts if "<" in t or ">" in t], texts
    joined = "\n".join(texts)
    assert "&lt;!" in joined
    if "&" in d.summary:
        assert "disk &amp; &lt;https://evil.example|click&gt;" in joined


def test_slack_escape_is_slacks_three_entities() -> None:
    assert slack.escape("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"


# --------------------------------------------------------------------------- pagerduty


@pytest.mark.parametrize(
    ("d", "action", "severity"),
    [
        pytest.param(delivery(), "trigger", "critical", id="problem triggers"),
        pytest.param(delivery(state="unknown"), "trigger", "error", id="unknown is error"),
        pytest.param(delivery("test"), "trigger", "info", id="test is info"),
        pytest.param(delivery("acknowledgement"), "acknowledge", None, id="ack"),
        pytest.param(delivery("recovery", "ok"), "resolve", None, id="recovery resolves"),
    ],
)
def test_pagerduty_actions(d: Delivery, action: str, severity: str | None) -> None:
    body = pagerduty.render(d)
    assert body["event_action"] == action
    assert body["dedup_key"] == "web1:http"
    assert (body.get("payload") or {}).get("severity") == severity  # type: ignore[attr-defined]


def test_pagerduty_rollups_share_one_key_per_medium() -> None:
    assert pagerduty.dedup_key(delivery("rollup", checks=ROLLUP)) == "tocsin-rollup:m1"
    assert pagerduty.render(delivery("rollup_recovery", checks=()))["event_action"] == "resolve"


# --------------------------------------------------------------------------- shared wording


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(42, "42s", id="seconds"),
        pytest.param(125, "2m 5s", id="minutes"),
        pytest.param(3725, "1h 2m", id="hours drop seconds"),
        pytest.param(90000, "1d 1h", id="days"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("mtype", "address", "shown"),
    [
        pytest.param(
            "slack",
            "https://hooks.slack.com/services/T1/B2/secret",
            "https://hooks.slack.com/***",
            id="slack path",
        ),
        pytest.param("webhook", "http://h:8080/?token=x", "http://h:8080/***", id="query"),
        pytest.param("webhook", "https://h", "https://h", id="bare host"),
        pytest.param("pagerduty", "R0123456789abcdef0123456789ABCDE", "R012***", id="routing key"),
        pytest.param("email", "a@b.org", "a@b.org", id="email kept"),
    ],
)
def test_redact_address(mtype: str, address: str, shown: str) -> None:
    assert redact_address(mtype, address) == shown
