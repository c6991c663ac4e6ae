"""Signed action links, request signatures (with Slack's and PagerDuty's published vectors), the
ack decision, and the links in each rendered page."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import msgspec
import pytest

from services.api.integrations import signatures
from services.api.integrations.acking import AckOutcome, AckRequest, decide
from services.gateways import email, slack, sms, webhook
from services.gateways.core import SendResult
from shared.action_links import (
    LINK_PATH,
    SHORT_PATH,
    LinkClaims,
    ShortClaims,
    action_secret,
    link_token,
    links_for,
    short_code,
    short_link,
    sign,
    sign_short,
    verify,
    verify_short,
)
from shared.checks import CheckDetail, Maintenance
from shared.config import Settings
from shared.models import Contact, ContactRef, Delivery, MediumRef

DATA = Path(__file__).resolve().parents[1] / "data" / "integrations"
T = 1_700_000_000.0
KEY = b"k" * 32
SETTINGS = Settings(api_token="tok", public_url="https://tocsin.example.org/")
PUBLIC_SHORT = "https://t.example.org"


def claims(**kw: object) -> LinkClaims:
    base: dict[str, object] = {"e": "web1", "c": "http", "ep": "17", "ct": "c1", "x": int(T) + 60}
    base.update(kw)
    return msgspec.convert(base, LinkClaims)


def delivery(kind: str = "problem", medium: str = "email", episode: str | None = "17") -> Delivery:
    return Delivery(
        id="n1:m1",
        notification_id="n1",
        type=kind,  # type: ignore[arg-type]
        entity="web1",
        check="http",
        state="critical",
        time=T,
        contact=ContactRef("c1", "Alice"),
        medium=MediumRef(id="m1", type=medium, address="+15550001111", settings={}),
        summary="down",
        episode_id=episode,
    )


# --------------------------------------------------------------------------- tokens


def test_token_round_trip_and_refusals() -> None:
    token = sign(KEY, claims())
    assert verify(KEY, token, T) == claims()
    assert verify(KEY, token, T + 60) == "expired"
    assert verify(b"x" * 32, token, T) == "bad_signature"
    assert verify(None, token, T) == "bad_signature"
    assert verify(KEY, "nodot", T) == "malformed"
    assert verify(KEY, token + "!", T) in ("malformed", "bad_signature")


def test_tampered_claims_are_refused() -> None:
    token = sign(KEY, claims())
    other = sign(KEY, claims(ct="c2")).split(".")[0]
    assert verify(KEY, other + "." + token.split(".")[1], T) == "bad_signature"


def test_secret_defaults_to_one_derived_from_the_api_token() -> None:
    derived = action_secret(Settings(api_token="tok"))
    assert derived is not None and derived != b"tok"
    assert derived == action_secret(Settings(api_token="tok"))
    assert action_secret(Settings(api_token="other")) != derived
    assert action_secret(Settings(api_token="tok", action_secret="mine")) == b"mine"
    assert action_secret(Settings()) is None


def test_links_only_for_problems_with_an_episode_and_a_public_url() -> None:
    links = links_for(SETTINGS, delivery())
    assert links is not None
    assert links.acknowledge.startswith("https://tocsin.example.org" + LINK_PATH)
    assert links.acknowledge_1h == links.acknowledge + "?duration=1h"
    assert links.open == "https://tocsin.example.org/ui/check?entity=web1&check=http"
    token = unquote(links.acknowledge.rsplit("/", 1)[1])
    found = verify(action_secret(SETTINGS), token, T)
    assert found == claims(x=int(T) + SETTINGS.action_link_ttl_s)
    assert links_for(SETTINGS, delivery("recovery")) is None
    assert links_for(SETTINGS, delivery(episode=None)) is None
    assert links_for(Settings(api_token="tok"), delivery()) is None


def test_short_tokens() -> None:
    brief = ShortClaims(ep="17", ct="0123456789abcdef", x=int(T) + 60)
    token = sign_short(KEY, brief)
    assert len(token) <= 45
    assert verify_short(KEY, token, T) == brief
    assert verify_short(KEY, token, T + 60) == "expired"
    assert verify_short(b"x" * 32, token, T) == "bad_signature"
    forged = token.replace("17.", "18.", 1)
    assert verify_short(KEY, forged, T) == "bad_signature"
    assert verify_short(KEY, "a.b.c", T) == "malformed"
    # A full token is not a short one, nor the other way round.
    assert verify_short(KEY, sign(KEY, claims()), T) == "malformed"
    assert not isinstance(verify(KEY, token, T), LinkClaims)


def test_short_link_for_sms() -> None:
    link = short_link(SETTINGS, delivery(medium="sms"))
    assert link is not None and link.startswith("https://tocsin.example.org" + SHORT_PATH)
    assert len(link) < 80
    assert short_link(SETTINGS, delivery("recovery", medium="sms")) is None
    assert short_link(Settings(api_token="tok"), delivery(medium="sms")) is None


def test_short_codes_are_stable_and_readable() -> None:
    code = short_code("web1", "http")
    assert code == short_code("web1", "http") and len(code) == 4
    assert not set(code) & set("01OIL")
    assert short_code("web1", "https") != code


# --------------------------------------------------------------------------- signatures

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    b"85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c"
    b"447fce8b6703c"
)
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slack_documented_vector() -> None:
    """The example of Slack's "Verifying requests from Slack" page."""
    now = 1531420618 + 10
    assert signatures.slack(SLACK_SECRET, "1531420618", SLACK_SIG, SLACK_BODY, now) is None
    assert signatures.slack(SLACK_SECRET, "1531420618", SLACK_SIG, SLACK_BODY + b"x", now)
    assert signatures.slack("other", "1531420618", SLACK_SIG, SLACK_BODY, now)
    assert signatures.slack(None, "1531420618", SLACK_SIG, SLACK_BODY, now)
    # Replay: the same genuine request, six minutes later.
    stale = signatures.slack(SLACK_SECRET, "1531420618", SLACK_SIG, SLACK_BODY, now + 360)
    assert stale == "stale timestamp (replay window)"
    assert signatures.slack(SLACK_SECRET, None, SLACK_SIG, SLACK_BODY, now)


PD_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PD_SIG = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_WRONG = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"


def test_pagerduty_published_vector() -> None:
    """The vector of PagerDuty's own client library (go-pagerduty webhookv3 tests)."""
    body = (DATA / "pagerduty_v3_vector.json").read_bytes()
    json.loads(body)
    assert signatures.pagerduty(PD_SECRET, PD_SIG, body) is None
    assert signatures.pagerduty(PD_SECRET, f"{PD_WRONG},{PD_SIG}", body) is None  # rotation
    assert signatures.pagerduty(PD_SECRET, PD_WRONG, body) == "bad signature"
    assert signatures.pagerduty(PD_SECRET, PD_SIG, body + b" ") == "bad signature"
    assert signatures.pagerduty(PD_SECRET, "", body) is not None
    assert signatures.pagerduty(PD_SECRET, "v0=abc", body) is not None
    assert signatures.pagerduty(None, PD_SIG, body) is not None


def test_sms_signature() -> None:
    body = b'{"from":"+15550001111","text":"ACK"}'
    sig = signatures.sms_signature("s3", "1700000000", body)
    assert signatures.sms("s3", "1700000000", sig, body, T) is None
    assert signatures.sms("s3", "1700000000", sig, body + b" ", T) == "bad signature"
    assert signatures.sms("s3", "1700000000", sig, body, T + 301) is not None
    assert signatures.sms(None, "1700000000", sig, body, T) is not None


# --------------------------------------------------------------------------- decision


def detail(failing: bool = True, episode: str | None = "17", acked: bool = False) -> CheckDetail:
    ack = Maintenance(id="a", check_id="x", start_time=T - 10, end_time=T + 10) if acked else None
    return CheckDetail(
        id="x",
        entity="web1",
        check="http",
        state="critical" if failing else "ok",
        summary="",
        details="",
        last_update=T,
        enabled=True,
        failing=failing,
        tags=(),
        incident_id=episode,
        acknowledgement=ack,
    )


@pytest.mark.parametrize(
    ("found", "req_episode", "skip", "expected"),
    [
        (detail(), "17", False, None),
        (None, "17", False, AckOutcome.UNKNOWN_CHECK),
        (detail(failing=False, episode=None), "17", False, AckOutcome.NOT_FAILING),
        (detail(episode="18"), "17", False, AckOutcome.EPISODE_ENDED),
        (detail(episode="18"), None, False, None),
        (detail(acked=True), None, True, AckOutcome.ALREADY_ACKED),
        (detail(acked=True), "17", False, None),
    ],
)
def test_decide(
    found: CheckDetail | None, req_episode: str | None, skip: bool, expected: AckOutcome | None
) -> None:
    req = AckRequest(
        entity="web1",
        check="http",
        contact=Contact(id="c1", name="Alice"),
        channel="link",
        duration=3600,
        episode_id=req_episode,
        skip_if_acked=skip,
    )
    assert decide(found, req, T) == expected


# --------------------------------------------------------------------------- rendered pages


def test_email_carries_the_links() -> None:
    msg = email.render(delivery(), SETTINGS, T)
    text = msg.get_content()
    links = links_for(SETTINGS, delivery())
    assert links is not None
    assert f"Acknowledge for 4h: {links.acknowledge}" in text
    assert f"Acknowledge for 1h: {links.acknowledge_1h}" in text
    assert f"Open in Tocsin: {links.open}" in text
    assert "Acknowledge for" not in email.render(delivery("recovery"), SETTINGS, T).get_content()


def test_webhook_payload_has_actions() -> None:
    body = json.loads(webhook.request(delivery(medium="webhook"), SETTINGS).body)
    assert body["actions"]["acknowledge"].startswith("https://tocsin.example.org" + LINK_PATH)
    assert set(body["actions"]) == {"acknowledge", "acknowledge_1h", "open"}
    plain = json.loads(webhook.request(delivery(medium="webhook"), Settings()).body)
    assert "actions" not in plain


def test_slack_message_has_buttons_carrying_the_token() -> None:
    body = json.loads(slack.request(delivery(medium="slack"), SETTINGS).body)
    buttons = body["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["tocsin_ack", "tocsin_ack_1h", "tocsin_open"]
    assert buttons[0]["value"] == link_token(SETTINGS, delivery(medium="slack"))
    assert buttons[2]["url"].endswith("/ui/check?entity=web1&check=http")
    assert body["attachments"][0]["color"]  # the coloured details stay


def test_sms_names_its_reply_code_within_160_characters() -> None:
    url = "https://sms.example.org/send"
    s = Settings(api_token="tok", sms_inbound_secret="x", sms_url=url)
    long = msgspec.structs.replace(delivery(medium="sms"), summary="y" * 300)
    req = sms.request(long, s)
    assert not isinstance(req, SendResult)
    text = json.loads(req.body)["text"]
    assert len(text) <= 160
    assert text.endswith(f"Reply ACK {short_code('web1', 'http')}")
    plain = sms.request(long, Settings(sms_url=url))
    assert not isinstance(plain, SendResult)
    assert "Reply ACK" not in json.loads(plain.body)["text"]


def test_sms_carries_the_short_link_and_keeps_the_message() -> None:
    url = "https://sms.example.org/send"
    s = Settings(api_token="tok", sms_inbound_secret="x", sms_url=url, public_url=PUBLIC_SHORT)
    long = msgspec.structs.replace(delivery(medium="sms"), summary="y" * 300)
    req = sms.request(long, s)
    assert not isinstance(req, SendResult)
    text = json.loads(req.body)["text"]
    link = short_link(s, long)
    assert link is not None
    assert len(text) <= 160 and text.startswith("PROBLEM CRITICAL web1:http")
    assert text.endswith(f" {link} Reply ACK {short_code('web1', 'http')}")
    # A public URL so long that the link would crowd out the message: no link.
    roomy = msgspec.structs.replace(s, public_url="https://" + "x" * 90 + ".example.org")
    req = sms.request(long, roomy)
    assert not isinstance(req, SendResult)
    text = json.loads(req.body)["text"]
    assert "https://" not in text and text.endswith(f"Reply ACK {short_code('web1', 'http')}")
