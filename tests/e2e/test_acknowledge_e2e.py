"""Acknowledging from the page, end to end over a whole ``tocsin up`` (docs/acknowledge.md).

The real gateways send the pages: email to an aiosmtpd inbox, Slack, SMS and
PagerDuty to one local HTTP receiver.  Then each way back in is used as the
other side would: a browser (Playwright) opens the link of the captured email
and confirms; a signed Slack button click; a signed SMS reply; signed
PagerDuty V3 webhooks.  Each success must end in the ack notification to
those paged and an ack that names the contact and the channel; each refusal
must leave the check unacknowledged.
"""

from __future__ import annotations

import email as email_lib
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
import pytest
from aiosmtpd.controller import Controller

from services.api.integrations.signatures import sms_signature
from shared.action_links import LINK_PATH, LinkClaims, action_secret, short_code, sign
from shared.config import Settings
from tests.e2e.conftest import TOKEN, Pipeline, free_port, pipeline  # noqa: F401
from tests.integration.gateway_fakes import FakeReceiver, Reply

pytestmark = pytest.mark.e2e

# The pages go out by email, Slack, SMS and PagerDuty (the webhook gateway only
# tells the fixture the gateways are up); no escalations, so no scheduler.
PIPELINE_UP_ARGS = (
    "--workers",
    "ingest,processor,notifier,gateway:email,gateway:slack,gateway:sms,gateway:pagerduty,"
    "gateway:webhook,api",
    "--processors",
    "1",
)

T = TypeVar("T")
SLACK_SECRET = "slack-" + uuid.uuid4().hex
PD_SECRET = "pd-" + uuid.uuid4().hex
SMS_SECRET = "sms-" + uuid.uuid4().hex
ROUTING_KEY = "R" * 32
API_PORT = free_port()
SMTP_PORT = free_port()
PUBLIC = f"http://127.0.0.1:{API_PORT}"
RECEIVER = FakeReceiver()
HOOKS = f"http://127.0.0.1:{RECEIVER.server.server_address[1]}"
# Slack's Web API (users.info): every answer names frank@example.org.
FRANK = b'{"ok": true, "user": {"id": "UFRANK", "profile": {"email": "Frank@example.org"}}}'
SLACK_API = FakeReceiver([Reply(body=FRANK) for _ in range(20)])
SLACK_BOT_TOKEN = "xoxb-" + uuid.uuid4().hex
PIPELINE_ENV = {
    "TOCSIN_API_LISTEN": f"127.0.0.1:{API_PORT}",
    "TOCSIN_PUBLIC_URL": PUBLIC,
    "TOCSIN_SMTP_HOST": "127.0.0.1",
    "TOCSIN_SMTP_PORT": str(SMTP_PORT),
    "TOCSIN_SMS_URL": f"{HOOKS}/sms",
    "TOCSIN_PAGERDUTY_URL": f"{HOOKS}/pagerduty",
    "TOCSIN_SLACK_SIGNING_SECRET": SLACK_SECRET,
    "TOCSIN_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
    "TOCSIN_SLACK_API_URL": f"http://127.0.0.1:{SLACK_API.server.server_address[1]}/api",
    "TOCSIN_PAGERDUTY_WEBHOOK_SECRET": PD_SECRET,
    "TOCSIN_SMS_INBOUND_SECRET": SMS_SECRET,
}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


class Inbox:
    """aiosmtpd handler keeping every message, with a condition to wait on."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(email_lib.message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 45) -> Message:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while time.monotonic() < deadline:
                for m in self.messages:
                    if pred(m):
                        return m
                self.arrived.wait(0.2)
        raise AssertionError(f"no such email; got {[m['Subject'] for m in self.messages]}")


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with RECEIVER as r, SLACK_API:
        yield r


@pytest.fixture(scope="module")
def up(inbox: Inbox, receiver: FakeReceiver, pipeline: Pipeline) -> Pipeline:  # noqa: F811
    return pipeline


def _await(pred: Callable[[], T | None], timeout: float = 45) -> T:
    """Wait for something the pipeline does: on the receiver's condition, not a bare sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pred()
        if found:
            return found
        with RECEIVER.arrived:
            RECEIVER.arrived.wait(0.2)
    raise AssertionError("condition not met in time")


def _requests(path: str, pred: Callable[[dict[str, Any]], bool] = lambda _b: True) -> list[Any]:
    with RECEIVER.lock:
        found = [r for r in RECEIVER.requests if r.path == path]
    bodies = [json.loads(r.body) for r in found]
    return [b for b in bodies if pred(b)]


def _setup(api: httpx.Client, name: str, entity: str, medium: dict[str, Any]) -> str:
    contact = api.post("/contacts", json={"name": name, "email": f"{name.lower()}@example.org"})
    cid = str(contact.json()["id"])
    created = api.post("/media", json={"contact_id": cid, "interval": 0, **medium})
    assert created.status_code == 201, created.text
    mtype = medium["type"]
    route = {"media": [mtype]}
    rule = {"contact_id": cid, "entities": [entity], "critical": route, "warning": route}
    assert api.post("/rules", json=rule).status_code == 201
    return cid


def _fail(api: httpx.Client, entity: str, check: str, state: str = "critical") -> None:
    body = {"entity": entity, "check": check, "state": state, "initial_failure_delay": 0}
    assert api.post("/events", json=body).status_code == 202


def _check(api: httpx.Client, entity: str, check: str) -> dict[str, Any]:
    got = api.get(f"/checks/{entity}/{check}")
    assert got.status_code == 200, got.text
    return dict(got.json())


def _acked(api: httpx.Client, entity: str, check: str) -> dict[str, Any] | None:
    ack = _check(api, entity, check).get("acknowledgement")
    return dict(ack) if ack else None


def _metric(api: httpx.Client, channel: str, outcome: str) -> float:
    text = api.get("/metrics").text
    pattern = rf'tocsin_api_page_acks_total{{channel="{channel}",outcome="{outcome}"}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def _link_token(claims: LinkClaims) -> str:
    secret = action_secret(Settings(api_token=TOKEN))
    assert secret is not None
    return sign(secret, claims)


# --------------------------------------------------------------------------- links


def _body(m: Message) -> str:
    part = m.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode()


@pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed")
def test_email_link_in_a_browser(up: Pipeline, inbox: Inbox) -> None:
    with up.api as api:
        alice = _setup(api, "Alice", "web1", {"type": "email", "address": "alice@example.org"})
        _fail(api, "web1", "http")
        problem = inbox.wait_for(lambda m: m["Subject"].startswith("PROBLEM: web1:http"))
        text = _body(problem)
        link = re.search(r"Acknowledge for 4h: (\S+)", text)
        assert link is not None, text
        assert re.search(r"Open in Tocsin: \S+/ui/check\?entity=web1&check=http", text)
        url = link.group(1)
        assert url.startswith(PUBLIC + LINK_PATH)

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()
            page.goto(url)
            assert "web1:http" in page.inner_text("body")
            # Opening the link (as a mail scanner would) changes nothing.
            assert _acked(api, "web1", "http") is None
            page.click("button[value='1h']")
            page.wait_for_load_state()
            assert page.inner_text("h1") == "Acknowledged"
            assert "as Alice" in page.inner_text("body")
            browser.close()

        ack_mail = inbox.wait_for(lambda m: m["Subject"].startswith("ACKNOWLEDGED: web1:http"))
        assert "Acknowledged by: Alice" in _body(ack_mail)
        ack = _await(lambda: _acked(api, "web1", "http"))
        assert ack is not None
        assert ack["contact_id"] == alice and ack["channel"] == "link"
        assert 3500 < ack["end_time"] - ack["start_time"] <= 3600

        # The same link again: refused, no second ack.
        again = httpx.post(url, timeout=10)
        assert again.status_code == 409 and "already acknowledged" in again.text
        assert _metric(api, "link", "already_used") >= 1
        assert _metric(api, "link", "acked") >= 1

        # The incident's ACK entry names the contact and the channel.
        incident = _check(api, "web1", "http")["incident_id"]
        raw = up_redis_events(up, incident)
        assert any(e["type"] == "ACK" and e.get("channel") == "link" for e in raw), raw


def up_redis_events(up: Pipeline, incident: str) -> list[dict[str, Any]]:
    with up.api as api:
        got = api.get(f"/api/v2/incidents/{incident}/events/")
        assert got.status_code == 200, got.text
    # The Argus view shows type/description; the raw log keeps contact and channel.
    import redis

    from shared.keys import Keys

    r = redis.Redis.from_url(up.settings.redis_url, decode_responses=True)
    key = Keys(up.settings.namespace).incident_events(incident)
    return [json.loads(e) for e in r.lrange(key, 0, -1)]


def test_bad_links_are_refused_and_ack_nothing(up: Pipeline, inbox: Inbox) -> None:
    with up.api as api:
        cid = _setup(api, "Erin", "web5", {"type": "email", "address": "erin@example.org"})
        _fail(api, "web5", "ping")
        inbox.wait_for(lambda m: m["Subject"].startswith("PROBLEM: web5:ping"))
        episode = _check(api, "web5", "ping")["incident_id"]
        good = LinkClaims(e="web5", c="ping", ep=episode, ct=cid, x=int(time.time()) + 600)

        def post(token: str) -> httpx.Response:
            return httpx.post(PUBLIC + LINK_PATH + quote(token, safe=""), timeout=10)

        token = _link_token(good)
        mac = token.split(".")[1]
        tampered = _link_token(LinkClaims(e="web5", c="ping", ep=episode, ct="x", x=good.x))
        assert post(tampered.split(".")[0] + "." + mac).status_code == 403
        expired = _link_token(LinkClaims(e="web5", c="ping", ep=episode, ct=cid, x=1))
        answer = post(expired)
        assert answer.status_code == 410 and "expired" in answer.text
        other_episode = _link_token(LinkClaims(e="web5", c="ping", ep="999999", ct=cid, x=good.x))
        assert post(other_episode).status_code == 410
        unknown = _link_token(LinkClaims(e="web5", c="ping", ep=episode, ct="nobody", x=good.x))
        assert post(unknown).status_code == 404
        # GET never acknowledges, and the page keeps its token out of Referer and caches.
        shown = httpx.get(PUBLIC + LINK_PATH + quote(token, safe=""), timeout=10)
        assert shown.status_code == 200 and '<form method="post"' in shown.text
        assert shown.headers["referrer-policy"] == "no-referrer"
        assert shown.headers["cache-control"] == "no-store"
        assert _acked(api, "web5", "ping") is None
        assert _metric(api, "link", "bad_signature") >= 1
        assert _metric(api, "link", "expired") >= 1

        # Once the check is ok, a genuine link is refused too.
        ok = {"entity": "web5", "check": "ping", "state": "ok"}
        assert api.post("/events", json=ok).status_code == 202
        _await(lambda: not _check(api, "web5", "ping")["failing"])
        answer = post(token)
        assert answer.status_code == 409 and "OK now" in answer.text
        assert _acked(api, "web5", "ping") is None


# --------------------------------------------------------------------------- Slack


def _slack_post(
    payload: dict[str, Any], secret: str = SLACK_SECRET, ts: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A form body and headers as Slack signs them (v0, with the app's signing secret)."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    sig = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + sig.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def test_slack_button(up: Pipeline, receiver: FakeReceiver) -> None:
    with up.api as api:
        medium = {
            "type": "slack",
            "address": f"{HOOKS}/slack",
            "settings": {"slack_user_id": "UBOB1"},
        }
        bob = _setup(api, "Bob", "web2", medium)
        _fail(api, "web2", "disk")
        page = _await(lambda: _requests("/slack", lambda b: "blocks" in b))[0]
        buttons = page["blocks"][1]["elements"]
        token = buttons[0]["value"]
        assert buttons[2]["url"] == f"{PUBLIC}/ui/check?entity=web2&check=disk"

        def click(user: str, **kw: Any) -> httpx.Response:
            payload = {
                "type": "block_actions",
                "user": {"id": user, "username": "bob"},
                "actions": [{"action_id": "tocsin_ack", "value": token}],
                "response_url": f"{HOOKS}/respond",
            }
            body, headers = _slack_post(payload, **kw)
            return httpx.post(f"{PUBLIC}/integrations/slack/actions", content=body, headers=headers)

        assert click("UBOB1", secret="wrong").status_code == 401
        assert click("UBOB1", ts=int(time.time()) - 600).status_code == 401  # replay window
        # Runs before Frank exists, so users.info's answer (his email) matches no contact.
        stranger = click("UNOBODY")
        assert stranger.status_code == 200 and "not linked" in stranger.json()["text"]
        assert _acked(api, "web2", "disk") is None

        body, headers = _slack_post(
            {
                "type": "block_actions",
                "user": {"id": "UBOB1", "username": "bob"},
                "actions": [{"action_id": "tocsin_ack", "value": token}],
                "response_url": f"{HOOKS}/respond",
                "message": {"blocks": page["blocks"], "attachments": page["attachments"]},
            }
        )
        url = f"{PUBLIC}/integrations/slack/actions"
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        assert httpx.post(url, content=body, headers=headers).status_code == 409  # replayed
        update = _await(lambda: _requests("/respond"))[0]
        assert update["replace_original"] is True
        assert "acknowledged by @bob" in update["text"]
        # The buttons give way to who acknowledged; what failed stays on the message.
        assert update["blocks"][0] == page["blocks"][0]
        assert "acknowledged by @bob" in update["blocks"][1]["text"]["text"]
        assert update["attachments"] == page["attachments"]
        ack = _await(lambda: _acked(api, "web2", "disk"))
        assert ack is not None and ack["contact_id"] == bob and ack["channel"] == "slack"
        # The ack notification goes to the Slack medium that got the problem.
        _await(lambda: _requests("/slack", lambda b: "ACKNOWLEDGED" in b.get("text", "").upper()))
        assert _metric(api, "slack", "unknown_user") >= 1
        assert _metric(api, "slack", "replay") >= 1


def test_slack_user_found_by_email(up: Pipeline, receiver: FakeReceiver) -> None:
    """No slack_user_id setting: users.info (with the bot token) gives the email of a contact."""
    with up.api as api:
        medium = {"type": "slack", "address": f"{HOOKS}/slack-frank"}
        frank = _setup(api, "Frank", "web6", medium)
        _fail(api, "web6", "queue")
        page = _await(lambda: _requests("/slack-frank", lambda b: "blocks" in b))[0]
        token = page["blocks"][1]["elements"][1]["value"]
        body, headers = _slack_post(
            {
                "type": "block_actions",
                "user": {"id": "UFRANK", "username": "frank"},
                "actions": [{"action_id": "tocsin_ack_1h", "value": token}],
                "response_url": f"{HOOKS}/respond-frank",
            }
        )
        url = f"{PUBLIC}/integrations/slack/actions"
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        lookup = SLACK_API.wait_for(1)[-1]
        assert lookup.path == "/api/users.info" and b"user=UFRANK" in lookup.body
        assert lookup.headers["Authorization"] == f"Bearer {SLACK_BOT_TOKEN}"
        update = _await(lambda: _requests("/respond-frank"))[0]
        assert "acknowledged by @frank for 1h" in update["text"]
        ack = _await(lambda: _acked(api, "web6", "queue"))
        assert ack is not None and ack["contact_id"] == frank and ack["channel"] == "slack"


# --------------------------------------------------------------------------- SMS


def _sms_in(number: str, text: str, secret: str = SMS_SECRET) -> httpx.Response:
    body = json.dumps({"from": number, "text": text, "id": uuid.uuid4().hex}).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Tocsin-Timestamp": stamp,
        "X-Tocsin-Signature": sms_signature(secret, stamp, body),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{PUBLIC}/integrations/sms/inbound", content=body, headers=headers)


def test_sms_reply(up: Pipeline, receiver: FakeReceiver) -> None:
    number = "+15550001234"
    with up.api as api:
        carol = _setup(api, "Carol", "web3", {"type": "sms", "address": number})
        _fail(api, "web3", "load")
        page = _await(lambda: _requests("/sms", lambda b: b["text"].startswith("PROBLEM")))[0]
        code = short_code("web3", "load")
        assert page["text"].endswith(f"Reply ACK {code}") and len(page["text"]) <= 160

        assert _sms_in(number, "ACK", secret="wrong").status_code == 401
        assert _sms_in("+15559999999", "ACK").status_code == 404
        assert _sms_in(number, "ACK ZZZZ").status_code == 404  # no page with that code
        assert _acked(api, "web3", "load") is None

        answer = _sms_in(number, f"ack {code} 1h")
        assert answer.status_code == 200, answer.text
        confirm = _await(lambda: _requests("/sms", lambda b: b["text"].startswith("Tocsin: ACK")))
        assert confirm[0]["to"] == number and "web3:load for 1h" in confirm[0]["text"]
        ack = _await(lambda: _acked(api, "web3", "load"))
        assert ack is not None and ack["contact_id"] == carol and ack["channel"] == "sms"
        _await(lambda: _requests("/sms", lambda b: b["text"].startswith("ACK ")))
        assert _sms_in(number, "ACK").status_code == 409  # once per episode
        assert _metric(api, "sms", "acked") >= 1


def test_sms_short_link(up: Pipeline, receiver: FakeReceiver) -> None:
    number = "+15550004321"
    with up.api as api:
        gina = _setup(api, "Gina", "web7", {"type": "sms", "address": number})
        _fail(api, "web7", "swap")
        page = _await(lambda: _requests("/sms", lambda b: b["to"] == number))[0]
        found = re.search(r"(http://\S+/a/\S+)", page["text"])
        assert found is not None, page
        assert len(page["text"]) <= 160, page["text"]
        link = found.group(1)
        shown = httpx.get(link, timeout=10)
        assert shown.status_code == 200 and "web7:swap" in shown.text
        assert _acked(api, "web7", "swap") is None
        assert httpx.post(link[:-3] + "AAA", timeout=10).status_code == 403  # tampered
        done = httpx.post(link, data={"duration": "1h"}, timeout=10)
        assert done.status_code == 200 and "as Gina" in done.text
        ack = _await(lambda: _acked(api, "web7", "swap"))
        assert ack is not None and ack["contact_id"] == gina and ack["channel"] == "link"
        assert httpx.post(link, timeout=10).status_code == 409


# --------------------------------------------------------------------------- PagerDuty


def _pd(event_type: str, key: str, agent: str = "PDAN1", eid: str | None = None) -> httpx.Response:
    body = json.dumps(
        {
            "event": {
                "id": eid or uuid.uuid4().hex,
                "event_type": event_type,
                "resource_type": "incident",
                "agent": {"id": agent, "summary": "Dan Ops", "type": "user_reference"},
                "data": {"id": "Q1", "type": "incident", "incident_key": key},
            }
        }
    ).encode()
    sig = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-PagerDuty-Signature": f"v1={'0' * 64},v1={sig}"}
    return httpx.post(f"{PUBLIC}/integrations/pagerduty/webhook", content=body, headers=headers)


def test_pagerduty_webhook(up: Pipeline, receiver: FakeReceiver) -> None:
    with up.api as api:
        medium = {
            "type": "pagerduty",
            "address": ROUTING_KEY,
            "settings": {"pagerduty_user_id": "PDAN1"},
        }
        dan = _setup(api, "Dan", "web4", medium)
        _fail(api, "web4", "db")
        _await(lambda: _requests("/pagerduty", lambda b: b["dedup_key"] == "web4:db"))

        forged = httpx.post(
            f"{PUBLIC}/integrations/pagerduty/webhook",
            content=b'{"event":{}}',
            headers={"X-PagerDuty-Signature": "v1=" + "0" * 64},
        )
        assert forged.status_code == 401
        resolved = _pd("incident.resolved", "web4:db")
        assert resolved.json()["outcome"] == "commented"
        detail = _check(api, "web4", "db")
        assert detail["failing"] and detail["acknowledgement"] is None
        events = up_redis_events(up, detail["incident_id"])
        assert any(e["type"] == "OTH" and "PagerDuty" in e["description"] for e in events)
        assert _pd("incident.acknowledged", "nope:nothing").status_code == 404

        # A PagerDuty user linked to no contact cannot acknowledge: nobody to name.
        stranger = _pd("incident.acknowledged", "web4:db", agent="PSTRANGER")
        assert stranger.status_code == 403 and stranger.json()["outcome"] == "unknown_user"
        assert _check(api, "web4", "db")["acknowledgement"] is None

        eid = uuid.uuid4().hex
        assert _pd("incident.acknowledged", "web4:db", eid=eid).json()["outcome"] == "acked"
        assert _pd("incident.acknowledged", "web4:db", eid=eid).json()["outcome"] == "replay"
        ack = _await(lambda: _acked(api, "web4", "db"))
        assert ack is not None and ack["contact_id"] == dan and ack["channel"] == "pagerduty"
        # Tocsin tells PagerDuty (the outbound acknowledge event still goes out) ...
        _await(lambda: _requests("/pagerduty", lambda b: b["event_action"] == "acknowledge"))
        # ... and PagerDuty's echo of that ack is not a second one.
        echo = _pd("incident.acknowledged", "web4:db")
        assert echo.json()["outcome"] == "already_acked"
        # The echo may name PagerDuty's integration rather than a linked user: still no news.
        echo = _pd("incident.acknowledged", "web4:db", agent="PINTEGRATION")
        assert echo.json()["outcome"] == "already_acked"
