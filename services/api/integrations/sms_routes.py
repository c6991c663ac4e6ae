"""``POST /integrations/sms/inbound``: "ACK" replies to SMS pages.

The SMS provider (or the small adapter in front of it) posts JSON
``{"from": "+E.164", "text": "ACK 4h", "id": "<message id>"}`` with
``X-Tocsin-Timestamp`` (epoch seconds) and ``X-Tocsin-Signature: sha256=<hex
HMAC-SHA256 of "<timestamp>.<body>" with TOCSIN_SMS_INBOUND_SECRET>``.

The number must be the address of an ``sms`` medium; its contact acknowledges
the check of the last problem page delivered to that number, or, with a short
code ("ACK 7KQP", the code every SMS page ends with), the recently paged check
of that code.  The answer goes back as an SMS through ``TOCSIN_SMS_URL``,
with the same body the SMS gateway sends.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import anyio.to_thread
import httpx
import msgspec
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask

from services.api.context import ApiContext
from services.api.integrations import signatures
from services.api.integrations.acking import (
    AckOutcome,
    AckRequest,
    acknowledge,
    admit,
    count,
)
from services.api.integrations.contacts import sms_media
from shared.action_links import DURATIONS, short_code
from shared.delivery_log import DeliveryLogEntry, read_delivery_log

log = logging.getLogger("tocsin.api.sms")

# Pages older than this are not "the last page" any more; reply with a code instead.
RECENT_S = 7 * 86400
LOG_SCAN = 2000
MAX_DURATION_S = 24 * 3600
_REPLY = re.compile(
    r"^\s*ACK(?:\s+(?P<code>[A-Z0-9]{4}))?(?:\s+(?P<n>\d{1,4})(?P<unit>[HM]))?\s*$", re.I
)


class Reply(msgspec.Struct, frozen=True):
    """A parsed reply: which check (a short code, or None for the last page) and how long."""

    code: str | None
    duration: int


def parse_reply(text: str) -> Reply | None:
    """``ACK``, ``ACK 4h``, ``ACK 7KQP``, ``ACK 7KQP 30m``; None for anything else.

    ``ACK 4h`` is a duration: the pattern tries digits-and-unit before a code
    can swallow it.  A code is only checked against the pages to that number,
    so a stray word finds no page and is answered as such.
    """
    found = _REPLY.match(text)
    if found is None:
        return None
    code = found.group("code")
    seconds = DURATIONS["4h"]
    if found.group("n"):
        n = int(found.group("n"))
        seconds = n * (3600 if found.group("unit").upper() == "H" else 60)
        if not 60 <= seconds <= MAX_DURATION_S:
            return None
    return Reply(code=code.upper() if code else None, duration=seconds)


class _Inbound(msgspec.Struct):
    text: str
    id: str = ""
    # "from" is a Python keyword.
    sender: str = msgspec.field(name="from", default="")


_DECODER = msgspec.json.Decoder(_Inbound)


def paged_entry(
    entries: list[DeliveryLogEntry], media: set[str], code: str | None, now: float
) -> DeliveryLogEntry | None:
    """The newest delivered problem page to one of ``media`` (matching ``code`` when given)."""
    for e in entries:
        if e.medium_id not in media or e.type != "problem" or e.outcome != "delivered":
            continue
        if e.time and e.time < now - RECENT_S:
            return None
        if code is None or short_code(e.entity, e.check) == code:
            return e
    return None


def _send_sms(ctx: ApiContext, to: str, text: str) -> None:
    """The answer, through the SMS provider the gateway uses (same body as the gateway's)."""
    url = ctx.settings.sms_url
    if not url:
        log.warning("no TOCSIN_SMS_URL: SMS reply not answered")
        return
    body = {"to": to, "text": text[:160], "id": f"reply:{uuid.uuid4().hex}"}
    try:
        httpx.post(url, json=body, timeout=ctx.settings.delivery_timeout_s)
    except httpx.HTTPError as exc:
        log.warning("SMS answer failed", extra={"error": repr(exc)})


ANSWERS: dict[AckOutcome, str] = {
    AckOutcome.NOT_FAILING: "is OK now; nothing to acknowledge",
    AckOutcome.EPISODE_ENDED: "recovered since that page; nothing acknowledged",
    AckOutcome.ALREADY_USED: "was already acknowledged by you",
    AckOutcome.UNKNOWN_CHECK: "no longer exists",
    AckOutcome.UNAVAILABLE: "could not be acknowledged now; try again",
}


def _handle(ctx: ApiContext, msg: _Inbound) -> Response[dict[str, str]]:
    media = sms_media(ctx.directory, msg.sender)
    if not media:
        # No answer: an SMS to an unknown number would let anyone make Tocsin send texts.
        count(ctx, "sms", AckOutcome.UNKNOWN_USER)
        return Response({"error": "unknown number"}, status_code=404)
    reply = parse_reply(msg.text)

    def answer(outcome: AckOutcome, text: str, status: int = 200) -> Response[dict[str, str]]:
        count(ctx, "sms", outcome)
        task = BackgroundTask(_send_sms, ctx, msg.sender, text)
        return Response({"outcome": outcome.value}, status_code=status, background=task)

    if reply is None:
        return answer(AckOutcome.MALFORMED, "Tocsin: reply ACK, ACK 1h or ACK <code>", 422)
    now = time.time()
    entries = read_delivery_log(ctx.redis, ctx.keys, limit=LOG_SCAN)
    entry = paged_entry(entries, {m.id for m in media}, reply.code, now)
    if entry is None:
        which = f"with code {reply.code}" if reply.code else "to this number"
        return answer(AckOutcome.UNKNOWN_CHECK, f"Tocsin: no recent page {which}", 404)
    contact = ctx.directory.get_contact(
        next(m.contact_id for m in media if m.id == entry.medium_id)
    )
    if contact is None:
        return answer(AckOutcome.UNKNOWN_USER, "Tocsin: this number's contact is gone", 404)
    req = AckRequest(
        entity=entry.entity,
        check=entry.check,
        contact=contact,
        channel="sms",
        duration=reply.duration,
    )
    result = acknowledge(ctx, req)
    name = f"{entry.entity}:{entry.check}"
    if result.outcome is AckOutcome.ACKED:
        hours = reply.duration / 3600
        span = f"{hours:g}h" if reply.duration % 3600 == 0 else f"{reply.duration // 60}m"
        return answer(result.outcome, f"Tocsin: ACK {name} for {span}")
    return answer(result.outcome, f"Tocsin: {name} {ANSWERS.get(result.outcome, 'not acked')}", 409)


@post("/integrations/sms/inbound", opt={"auth": "signature"}, status_code=200)
async def sms_inbound(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """Verify the HMAC (5-minute window, each message once), then acknowledge and answer by SMS."""
    signature = request.headers.get("x-tocsin-signature")
    admitted = await admit(
        request,
        "sms",
        lambda ctx, body: signatures.sms(
            ctx.settings.sms_inbound_secret,
            request.headers.get("x-tocsin-timestamp"),
            signature,
            body,
            time.time(),
        ),
        _DECODER.decode,
        "expected JSON {from, text, id}",
        lambda _: signature or "",
        Response({"error": "message already taken"}, status_code=409),
    )
    if isinstance(admitted, Response):
        return admitted
    ctx, msg = admitted
    return await anyio.to_thread.run_sync(_handle, ctx, msg)
