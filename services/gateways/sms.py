"""SMS gateway: a generic HTTP provider at ``TOCSIN_SMS_URL``.

The provider receives ``POST`` JSON ``{"to": "<E.164 number>", "text": "<≤160
characters>", "id": "<delivery id>"}``; 2xx means accepted (a small adapter
in front of Twilio, Nexmo, … speaks this).  The text puts the most important
part first, so a cut never loses what and how bad: type and state, the
check, then time and summary.
"""

from __future__ import annotations

import msgspec

from services.gateways.core import HttpRequest, SendResult
from services.gateways.send_context import SendContext
from services.gateways.texts import (
    ROLLUP_TYPES,
    acked_state,
    check_name,
    clean,
    format_time,
    state_title,
)
from shared.action_links import short_code, short_link
from shared.config import Settings
from shared.models import Delivery

MAX_LEN = 160
MAX_LISTED = 3
# The least of the message a link may leave (type, state and most of the check name).
MIN_TEXT = 40
ELLIPSIS = "…"

SHORT_TYPES = {
    "problem": "PROBLEM",
    "recovery": "RECOVERY",
    "acknowledgement": "ACK",
    "test": "TEST",
    "rollup": "ROLLUP",
    "rollup_recovery": "ROLLUP OVER",
}


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def render(d: Delivery, reply_code: str | None = None, link: str | None = None) -> str:
    """The SMS text, at most 160 characters.

    With ``reply_code`` (problems, when SMS replies are set up) the text ends
    in ``Reply ACK <code>``; with ``link`` (the short Acknowledge link) it
    ends in the link.  The message is cut to make room, never the link or
    the hint; a link that would leave less than ``MIN_TEXT`` characters for
    the message itself is left out.
    """
    kind = SHORT_TYPES.get(d.type, d.type.upper())
    when = format_time(d.time, short=True)
    if d.type in ROLLUP_TYPES:
        names = [f"{c.entity}:{c.check}" for c in d.checks[:MAX_LISTED]]
        more = ", ..." if len(d.checks) > MAX_LISTED else ""
        head = f"{kind} {len(d.checks)} failing at {when}"
        text = f"{head}: {', '.join(names)}{more}"
        return cut(clean(text), MAX_LEN)
    state = acked_state(d) if d.type == "acknowledgement" else d.state
    head = f"{kind} {state_title(state).upper()} "
    name = cut(check_name(d), 80)
    by = clean(d.acknowledged_by)
    tail = (f" by {cut(by, 40)}" if by and d.type == "acknowledgement" else "") + f" at {when}"
    summary = clean(d.summary)
    hint = f" Reply ACK {reply_code}" if reply_code else ""
    if link and MAX_LEN - len(hint) - len(link) - 1 >= MIN_TEXT:
        hint = f" {link}{hint}"
    text = head + name + tail + (f": {summary}" if summary else "")
    return cut(text, MAX_LEN - len(hint)) + hint


_ENCODER = msgspec.json.Encoder()


def reply_code(d: Delivery, settings: Settings) -> str | None:
    """The check's short code for a problem, when SMS replies are taken (docs/acknowledge.md)."""
    if d.type != "problem" or not settings.sms_inbound_secret:
        return None
    return short_code(d.entity, d.check)


def request(d: Delivery, settings: Settings) -> HttpRequest | SendResult:
    """The POST to the SMS provider, or a failure when none is configured."""
    url = settings.sms_url
    if not url:
        return SendResult.failed("TOCSIN_SMS_URL is not set; no SMS provider to send through")
    text = render(d, reply_code(d, settings), short_link(settings, d))
    body = _ENCODER.encode({"to": d.medium.address, "text": text, "id": d.id})
    return HttpRequest(url, body)


def send(d: Delivery, ctx: SendContext) -> SendResult:
    req = request(d, ctx.settings)
    return req if isinstance(req, SendResult) else ctx.execute(req)
