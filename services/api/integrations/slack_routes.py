"""``POST /integrations/slack/actions``: the Acknowledge buttons of Slack messages.

Slack posts a ``block_actions`` payload (form field ``payload``) signed with
the app's signing secret.  The button's value is the signed link token of
the page (check and episode); the clicking Slack user must map to a Tocsin
contact (medium setting ``slack_user_id``, else the email Slack's ``users.info``
gives, with ``TOCSIN_SLACK_BOT_TOKEN``), who is then the one acknowledging.
The original message is replaced through ``response_url`` with
"Acknowledged by @name"; refusals answer the clicker alone (ephemeral).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs

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
from services.api.integrations.contacts import slack_contact
from shared.action_links import DURATIONS, LinkClaims, action_secret, verify
from shared.destinations import Allowlist, DestinationDenied, check_destination

log = logging.getLogger("tocsin.api.slack")

ACK_ACTIONS = {"tocsin_ack": "4h", "tocsin_ack_1h": "1h"}
SORRY: dict[AckOutcome, str] = {
    AckOutcome.UNKNOWN_USER: "Your Slack user is not linked to a Tocsin contact "
    "(medium setting slack_user_id, or the same email); nothing was acknowledged.",
    AckOutcome.NOT_FAILING: "The check is OK now: there is nothing to acknowledge.",
    AckOutcome.EPISODE_ENDED: "The problem this message was about has ended.",
    AckOutcome.ALREADY_USED: "You already acknowledged this problem.",
    AckOutcome.EXPIRED: "This message's buttons have expired; acknowledge in Tocsin.",
    AckOutcome.UNKNOWN_CHECK: "The check no longer exists.",
    AckOutcome.UNAVAILABLE: "Tocsin cannot take the acknowledgement right now; try again.",
}


class _User(msgspec.Struct):
    id: str
    username: str = ""
    name: str = ""


class _Action(msgspec.Struct):
    action_id: str = ""
    value: str = ""


class _Message(msgspec.Struct):
    """The message the button was on, as Slack sends it back (only what the update keeps)."""

    blocks: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []


class _Payload(msgspec.Struct):
    type: str
    user: _User
    actions: list[_Action] = []
    response_url: str = ""
    message: _Message | None = None


def updated_message(original: _Message | None, text: str) -> dict[str, object]:
    """The original message with its buttons replaced by ``text`` (just ``text`` if unknown).

    Keeping the blocks and the coloured attachment means the channel still
    shows what failed; only the buttons, which no longer apply, go.
    """
    update: dict[str, object] = {"replace_original": True, "text": text}
    if original is None:
        return update
    done = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    update["blocks"] = [
        done if b.get("block_id") == "tocsin_actions" else b for b in original.blocks
    ] or [done]
    if original.attachments:
        update["attachments"] = original.attachments
    return update


_DECODER = msgspec.json.Decoder(_Payload)


def _text(message: str) -> Response[dict[str, object]]:
    return Response({"response_type": "ephemeral", "text": message}, status_code=200)


def _post_back(ctx: ApiContext, url: str, body: dict[str, object]) -> None:
    """Update the message through ``response_url`` (a Slack host, or one the allow-list names)."""
    try:
        check_destination(url, Allowlist.parse(ctx.settings.destination_allow))
        reply = httpx.post(url, json=body, timeout=ctx.settings.delivery_timeout_s)
        if reply.status_code >= 300:
            log.warning("slack response_url refused", extra={"status": reply.status_code})
    except (DestinationDenied, OSError, httpx.HTTPError) as exc:
        log.warning("slack response_url failed", extra={"error": repr(exc)})


def _handle(ctx: ApiContext, payload: _Payload) -> Response[dict[str, object]]:
    action = next((a for a in payload.actions if a.action_id in ACK_ACTIONS), None)
    if action is None:
        # The Open button (a link) and anything else: Slack wants a 200 and nothing more.
        count(ctx, "slack", AckOutcome.IGNORED)
        return Response({}, status_code=200)
    claims = verify(action_secret(ctx.settings), action.value, time.time())
    if not isinstance(claims, LinkClaims):
        outcome = count(ctx, "slack", AckOutcome(claims))
        return _text(SORRY.get(outcome, "This button is not valid; nothing was acknowledged."))
    contact = slack_contact(ctx.directory, ctx.settings, payload.user.id)
    if contact is None:
        return _text(SORRY[count(ctx, "slack", AckOutcome.UNKNOWN_USER)])
    duration = ACK_ACTIONS[action.action_id]
    req = AckRequest(
        entity=claims.e,
        check=claims.c,
        contact=contact,
        channel="slack",
        duration=DURATIONS[duration],
        episode_id=claims.ep,
    )
    result = acknowledge(ctx, req)
    if result.outcome is not AckOutcome.ACKED:
        return _text(SORRY.get(result.outcome, "Nothing was acknowledged."))
    who = payload.user.username or payload.user.name or contact.name
    text = f":white_check_mark: {claims.e}:{claims.c} acknowledged by @{who} for {duration}"
    update = updated_message(payload.message, text)
    task = BackgroundTask(_post_back, ctx, payload.response_url, update)
    return Response({}, status_code=200, background=task)


def _decode(body: bytes) -> _Payload:
    """The form field ``payload`` of Slack's interaction request."""
    raw = parse_qs(body.decode(), strict_parsing=False).get("payload", [""])[0]
    return _DECODER.decode(raw)


@post("/integrations/slack/actions", opt={"auth": "signature"}, status_code=200)
async def slack_actions(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    """Verify Slack's signature (5-minute window), then acknowledge as the clicking user's contact."""
    signature = request.headers.get("x-slack-signature")
    admitted = await admit(
        request,
        "slack",
        lambda ctx, body: signatures.slack(
            ctx.settings.slack_signing_secret,
            request.headers.get("x-slack-request-timestamp"),
            signature,
            body,
            time.time(),
        ),
        _decode,
        "payload is not a Slack interaction",
        # A genuine request sent again inside the window (a replay) carries the same signature.
        lambda _: signature or "",
        Response({"error": "request already taken"}, status_code=409),
    )
    if isinstance(admitted, Response):
        return admitted
    ctx, payload = admitted
    return await anyio.to_thread.run_sync(_handle, ctx, payload)
