"""Each medium against a real local receiver (HTTP server or aiosmtpd), checking the exact request."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller

from benchmarks.ports import free_port as _free_port
from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.models import RollupItem
from shared.store import connect_redis
from tests.integration.gateway_fakes import (
    FakeReceiver,
    delivery_log,
    gateway,
    make_delivery,
    send_delivery,
    tuned,
)
from tests.support import collect, declare

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(settings: Settings) -> Iterator[Settings]:
    declare(settings)
    yield tuned(settings)  # the settings fixture removes the namespace's queues, delay queues too


def _wait_log(settings: Settings, n: int, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    entries = delivery_log(settings)
    while len(entries) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = delivery_log(settings)
    return entries


def test_webhook_posts_contract_payload_with_signature(gw_settings: Settings) -> None:
    with FakeReceiver() as rx, gateway(gw_settings, "webhook"):
        d = make_delivery("webhook", rx.url, settings={"secret": "s3cret"})
        send_delivery(gw_settings, d)
        (req,) = rx.wait_for(1)
        entries = _wait_log(gw_settings, 1)
    payload = json.loads(req.body)
    assert list(payload) == [
        "id", "type", "entity", "check", "state", "previous_state", "summary", "details",
        "time", "duration", "tags", "contact", "medium", "checks", "seq",
    ]  # fmt: skip
    assert payload == {
        "id": d.id,
        "type": "problem",
        "entity": "web1",
        "check": "http",
        "state": "critical",
        "previous_state": "ok",
        "summary": "connection refused",
        "details": "port 80 closed",
        "time": 1_700_000_000.0,
        "duration": 125.0,
        "tags": ["team=web"],
        "contact": {"id": "c1", "name": "Alice Ops"},
        "medium": {"id": "m1", "type": "webhook"},
        "checks": [],
        "seq": 0,
    }
    expected = "sha256=" + hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Tocsin-Signature"] == expected
    assert req.headers["Content-Type"] == "application/json"
    assert req.path == "/hook"
    assert [(e.outcome, e.attempts, e.delivery_id) for e in entries] == [("delivered", 1, d.id)]
    assert entries[0].address == f"{rx.url.rsplit('/', 1)[0]}/***"
    installed = connect_redis(gw_settings).hgetall(Keys(gw_settings.namespace).media_installed())
    assert set(installed) == {"webhook"}


def test_webhook_without_secret_has_no_signature_and_rollup_lists_checks(
    gw_settings: Settings,
) -> None:
    items = (
        RollupItem(entity="a", check="x", state="critical"),
        RollupItem(entity="b", check="y", state="warning"),
    )
    with FakeReceiver() as rx, gateway(gw_settings, "webhook"):
        send_delivery(gw_settings, make_delivery("webhook", rx.url, type="rollup", checks=items))
        (req,) = rx.wait_for(1)
    assert "X-Tocsin-Signature" not in req.headers
    assert [c["entity"] + ":" + c["check"] for c in json.loads(req.body)["checks"]] == [
        "a:x",
        "b:y",
    ]


def test_slack_message_coloured_by_state(gw_settings: Settings) -> None:
    with FakeReceiver() as rx, gateway(gw_settings, "slack"):
        send_delivery(gw_settings, make_delivery("slack", rx.url, settings={"channel": "#ops"}))
        send_delivery(gw_settings, make_delivery("slack", rx.url, type="recovery", state="ok"))
        reqs = rx.wait_for(2)
    bodies = sorted((json.loads(r.body) for r in reqs), key=lambda b: b["text"])
    problem, recovery = bodies
    assert problem["channel"] == "#ops"
    assert problem["text"].startswith("Problem: 'web1:http' is Critical at 14 Nov 22:13")
    (att,) = problem["attachments"]
    assert att["color"] == "#a30200"
    assert att["text"] == "connection refused"
    assert {"title": "State", "value": "Critical", "short": True} in att["fields"]
    assert recovery["attachments"][0]["color"] == "#2eb886"
    assert "channel" not in recovery


def test_pagerduty_trigger_acknowledge_resolve(gw_settings: Settings) -> None:
    key = "R0123456789abcdef0123456789ABCDE"
    with FakeReceiver() as rx:
        s = msgspec.structs.replace(gw_settings, pagerduty_url=rx.url)
        with gateway(s, "pagerduty"):
            for n, (kind, state) in enumerate(
                (("problem", "critical"), ("acknowledgement", "critical"), ("recovery", "ok")),
                start=1,
            ):
                # One at a time, in order. The count is taken before the send: counted
                # after, a request that already arrived made this wait out its 10 s.
                send_delivery(s, make_delivery("pagerduty", key, type=kind, state=state))
                rx.wait_for(n)
    trigger, ack, resolve = (json.loads(r.body) for r in rx.requests)
    assert trigger["routing_key"] == key
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "web1:http"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "web1"
    assert trigger["payload"]["component"] == "http"
    assert trigger["payload"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert trigger["payload"]["summary"] == "Problem: 'web1:http' is Critical: connection refused"
    assert ack == {"routing_key": key, "event_action": "acknowledge", "dedup_key": "web1:http"}
    assert resolve == {"routing_key": key, "event_action": "resolve", "dedup_key": "web1:http"}


def test_sms_short_text_to_provider(gw_settings: Settings) -> None:
    with FakeReceiver() as rx:
        s = msgspec.structs.replace(gw_settings, sms_url=rx.url)
        long = make_delivery("sms", "+4712345678")
        long = msgspec.structs.replace(long, summary="x" * 500)
        with gateway(s, "sms"):
            send_delivery(s, long)
            (req,) = rx.wait_for(1)
    body = json.loads(req.body)
    assert body["to"] == "+4712345678"
    assert body["id"] == long.id
    assert len(body["text"]) == 160
    assert body["text"].startswith("PROBLEM CRITICAL web1:http at 14 Nov 22:13: xxx")
    assert body["text"].endswith("…")


def test_destination_on_private_network_is_dead_lettered(settings: Settings) -> None:
    declare(settings)
    strict = tuned(settings, destination_allow=())
    names = Names(settings.namespace)
    with FakeReceiver() as rx, gateway(strict, "webhook"):
        send_delivery(strict, make_delivery("webhook", rx.url))
        (dead,) = collect(strict, [names.dead], n=1, timeout=10)
        assert rx.requests == []
    assert "not a globally routable" in dead["headers"]["x-tocsin-error"]
    assert dead["headers"]["x-tocsin-stage"] == "gateway.webhook"


# --------------------------------------------------------------------------- email


class _Inbox:
    """aiosmtpd handler: keeps messages; answers from a script of SMTP codes for DATA."""

    def __init__(self, replies: list[str] | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.replies = list(replies or [])
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(inbox: _Inbox) -> Iterator[int]:
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_email_is_a_proper_mime_message(gw_settings: Settings) -> None:
    inbox = _Inbox()
    with smtp_server(inbox) as port:
        s = msgspec.structs.replace(gw_settings, smtp_port=port, smtp_from="tocsin@example.org")
        d = make_delivery("email", "alice@example.org", settings={"subject_prefix": "[prod]"})
        with gateway(s, "email"):
            send_delivery(s, d)
            _wait(lambda: inbox.messages)
    ((mail_from, rcpts, raw),) = inbox.messages
    assert mail_from == "tocsin@example.org"
    assert rcpts == ["alice@example.org"]
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "[prod] PROBLEM: web1:http is CRITICAL"
    assert msg["To"] == "alice@example.org"
    assert msg["Message-ID"].endswith(".tocsin@example.org>")
    assert abs(parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 60
    assert msg.get_content_type() == "text/plain"
    text = msg.get_payload(decode=True).decode()
    for part in (
        "Summary: connection refused",
        "Details: port 80 closed",
        "2023-11-14 22:13:20 UTC",
        "Duration: 2m 5s",
    ):
        assert part in text


def test_email_rollup_subject_counts_and_smtp_4xx_retries(gw_settings: Settings) -> None:
    inbox = _Inbox(["451 4.3.0 try again later"])
    items = tuple(RollupItem(entity=f"e{i}", check="disk", state="critical") for i in range(3))
    with smtp_server(inbox) as port:
        s = msgspec.structs.replace(gw_settings, smtp_port=port)
        with gateway(s, "email"):
            send_delivery(s, make_delivery("email", "ops@example.org", type="rollup", checks=items))
            _wait(lambda: inbox.messages)
            entries = _wait_log(s, 2)
    ((_, _, raw),) = inbox.messages
    msg = message_from_bytes(raw)
    assert msg["Subject"] == "ROLLUP: 3 failing checks"
    body = msg.get_payload(decode=True).decode()
    assert "e0:disk: Critical" in body and "e2:disk: Critical" in body
    assert inbox.attempts == 2
    assert [(e.outcome, e.status) for e in reversed(entries)] == [
        ("retry", 451),
        ("delivered", 250),
    ]


def test_email_5xx_is_dead_lettered(gw_settings: Settings) -> None:
    inbox = _Inbox(["550 5.1.1 no such user"])
    names = Names(gw_settings.namespace)
    with smtp_server(inbox) as port:
        s = msgspec.structs.replace(gw_settings, smtp_port=port)
        with gateway(s, "email"):
            send_delivery(s, make_delivery("email", "nobody@example.org"))
            (dead,) = collect(s, [names.dead], n=1, timeout=10)
    assert "550" in dead["headers"]["x-tocsin-error"]
    assert inbox.messages == []
