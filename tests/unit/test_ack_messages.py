"""Acknowledgement messages read like messages (docs/payloads.md), and email times are local.

An acknowledgement's event state is ``acknowledgement``; the processor puts the
check's failing state in ``previous_state`` and the comment in ``summary``.
"""

from __future__ import annotations

import msgspec
import pytest

from services.gateways import email, slack, sms, webhook
from services.gateways.texts import local_time
from shared.config import Settings
from shared.directory import DirectorySnapshot
from shared.errors import ConfigError
from shared.formats.flapjack import normalise
from shared.models import (
    Contact,
    ContactRef,
    Delivery,
    Event,
    Medium,
    MediumRef,
    Notification,
    Rule,
    SeverityRoute,
)
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState, apply
from shared.routing.selection import compile_index, select

T = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC = 23:13:20 in Oslo (CET)


def ack(
    by: str = "alice", comment: str = "on it, disk replaced", tz: str = "Europe/Oslo"
) -> Delivery:
    return Delivery(
        id="n2:m1",
        notification_id="n2",
        type="acknowledgement",
        entity="web1",
        check="http",
        state="acknowledgement",
        previous_state="critical",
        time=T,
        contact=ContactRef("c1", "Alice", tz),
        medium=MediumRef(id="m1", type="email", address="alice@example.org"),
        summary=comment,
        duration=3600.0,
        acknowledged_by=by,
    )


def test_email_subject_of_an_ack() -> None:
    assert email.subject(ack()) == "ACKNOWLEDGED: web1:http (critical): on it, disk replaced"
    assert email.subject(ack(comment="")) == "ACKNOWLEDGED: web1:http (critical)"


def test_email_body_of_an_ack_names_comment_who_and_local_times() -> None:
    text = email.body(ack())
    assert text.startswith("Acknowledged: 'web1:http' (Critical) by alice\n")
    for line in (
        "State: Critical",
        "Comment: on it, disk replaced",
        "Acknowledged by: alice",
        "Time: 2023-11-14 23:13:20 CET (22:13:20 UTC)",
        "Acknowledged for: 1h",
        "Until: 2023-11-15 00:13:20 CET (23:13:20 UTC)",
    ):
        assert line in text.splitlines()
    assert "Dashboard:" not in text
    assert "ACKNOWLEDGEMENT" not in text and "Acknowledgement" not in text


def test_email_links_to_the_dashboard_when_the_public_url_is_set() -> None:
    s = Settings(public_url="https://tocsin.example.org/")
    msg = email.render(ack(), s, now=T)
    assert "Dashboard: https://tocsin.example.org/ui/check?entity=web1&check=http" in (
        msg.get_content()
    )
    odd = msgspec.structs.replace(ack(), entity="db 1&x", check="a/b")
    assert "/ui/check?entity=db+1%26x&check=a%2Fb" in email.body(odd, s.public_url)


def test_problem_email_time_in_the_contacts_zone_with_utc_beside() -> None:
    d = msgspec.structs.replace(ack(), type="problem", state="critical", previous_state="ok")
    assert "Time: 2023-11-14 23:13:20 CET (22:13:20 UTC)" in email.body(d)
    utc = msgspec.structs.replace(d, contact=ContactRef("c1", "Alice", "UTC"))
    assert "Time: 2023-11-14 22:13:20 UTC" in email.body(utc)


@pytest.mark.parametrize(
    ("tz", "text"),
    [
        pytest.param("America/New_York", "2023-11-14 17:13:20 EST (22:13:20 UTC)", id="zone"),
        pytest.param("Not/AZone", "2023-11-14 22:13:20 UTC", id="unknown zone: UTC"),
    ],
)
def test_local_time(tz: str, text: str) -> None:
    assert local_time(T, tz) == text


def test_slack_ack_carries_comment_and_who() -> None:
    body = slack.render(ack())
    [att] = body["attachments"]  # type: ignore[misc]
    assert att["title"] == "Acknowledged: 'web1:http' (Critical) by alice"
    assert att["text"] == "on it, disk replaced"
    fields = {f["title"]: f["value"] for f in att["fields"]}
    assert fields["State"] == "Critical" and fields["Acknowledged by"] == "alice"


def test_sms_ack_carries_comment_and_who() -> None:
    assert (
        sms.render(ack()) == "ACK CRITICAL web1:http by alice at 14 Nov 22:13: on it, disk replaced"
    )
    assert sms.render(ack(by="")) == "ACK CRITICAL web1:http at 14 Nov 22:13: on it, disk replaced"


def test_who_acknowledged_travels_from_event_to_delivery() -> None:
    event = Event(
        entity="web1", check="http", state="acknowledgement", time=T, acknowledged_by="alice"
    )
    assert normalise(event, T, "e1").acknowledged_by == "alice"
    route = SeverityRoute(media=("email",))
    index = compile_index(
        DirectorySnapshot(
            version=1,
            contacts={"c1": Contact(id="c1", name="Alice", timezone="Europe/Oslo")},
            media={"m1": Medium(id="m1", contact_id="c1", type="email", address="a@x")},
            rules={"r": Rule(id="r", contact_id="c1", critical=route)},
        )
    )
    state = NotifierState()
    common = {"check_id": "web1:http", "entity": "web1", "check": "http", "episode_id": "e"}
    problem = Notification(
        id="n1", type="problem", state="critical", severity="critical", time=T, **common
    )
    acked = Notification(
        id="n2",
        type="acknowledgement",
        state="acknowledgement",
        previous_state="critical",
        severity="critical",
        time=T + 60,
        summary="on it",
        acknowledged_by="alice",
        **common,
    )
    for n in (problem, acked):
        out = expand(index, state, n, select(index, n))
        apply(state, out.effects, n)
    [d] = out.deliveries
    assert d.type == "acknowledgement" and d.acknowledged_by == "alice"
    assert d.contact.timezone == "Europe/Oslo"
    assert email.subject(d) == "ACKNOWLEDGED: web1:http (critical): on it"


def test_public_url_setting() -> None:
    s = Settings.from_env({"TOCSIN_PUBLIC_URL": "https://tocsin.example.org"})
    assert s.public_url == "https://tocsin.example.org"
    assert Settings.from_env({}).public_url is None
    with pytest.raises(ConfigError, match="TOCSIN_PUBLIC_URL"):
        Settings.from_env({"TOCSIN_PUBLIC_URL": "tocsin.example.org"})


def test_webhook_ack_carries_comment_and_who() -> None:
    body = msgspec.json.decode(webhook.render(ack()))
    assert body["type"] == "acknowledgement" and body["summary"] == "on it, disk replaced"
    assert body["acknowledged_by"] == "alice"
    problem = msgspec.structs.replace(ack(by=""), type="problem", state="critical")
    assert "acknowledged_by" not in msgspec.json.decode(webhook.render(problem))
