"""Slack gateway: an incoming-webhook message, coloured by state, compact.

The medium address is the incoming-webhook URL; optional settings override
the channel and the user name the message is posted as.
"""

from __future__ import annotations

import msgspec

from services.gateways.core import HttpRequest, SendResult
from services.gateways.send_context import SendContext
from services.gateways.texts import (
    ROLLUP_TYPES,
    acked_state,
    check_name,
    format_duration,
    format_time,
    headline,
    rollup_states_summary,
    state_title,
)
from shared.action_links import link_token, open_url
from shared.config import Settings
from shared.models import Delivery
from shared.severity import worst

# Slack attachment colours: the state decides, except for acks and tests.
STATE_COLOURS = {
    "ok": "#2eb886",
    "warning": "#daa038",
    "critical": "#a30200",
    "unknown": "#808080",
}
ACK_COLOUR = "#439fe0"
TEST_COLOUR = "#808080"
MAX_LISTED = 10


def colour(d: Delivery) -> str:
    """The attachment colour of ``d``."""
    if d.type == "acknowledgement":
        return ACK_COLOUR
    if d.type == "test":
        return TEST_COLOUR
    if d.type == "rollup_recovery":
        return STATE_COLOURS["ok"]
    if d.type == "rollup":
        state = worst((c.state for c in d.checks), default="critical")
        return STATE_COLOURS.get(state, STATE_COLOURS["unknown"])
    return STATE_COLOURS.get(d.state, STATE_COLOURS["unknown"])


def escape(text: str) -> str:
    """Slack's escaping of ``&``, ``<`` and ``>`` (its only control characters in text).

    Without it a summary, a check name or an Argus source's description can
    ping a channel (``<!channel>``) or render a disguised link
    (``<https://x|text>``): every text that did not come from the operator's
    own settings goes through here.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def action_blocks(d: Delivery, settings: Settings) -> list[dict[str, object]]:
    """Block Kit buttons for a problem: Acknowledge (4 h), 1 h, and Open in Tocsin.

    The buttons carry the signed link token as their ``value``; Slack posts a
    click to ``/integrations/slack/actions`` (the Slack app's interactivity
    URL), which acknowledges as the Tocsin contact the clicking user maps to.
    """
    token = link_token(settings, d)
    if token is None:
        return []
    buttons: list[dict[str, object]] = [
        {
            "type": "button",
            "action_id": "tocsin_ack",
            "text": {"type": "plain_text", "text": "Acknowledge 4h"},
            "style": "primary",
            "value": token,
        },
        {
            "type": "button",
            "action_id": "tocsin_ack_1h",
            "text": {"type": "plain_text", "text": "1h"},
            "value": token,
        },
    ]
    if settings.public_url:
        buttons.append(
            {
                "type": "button",
                "action_id": "tocsin_open",
                "text": {"type": "plain_text", "text": "Open in Tocsin"},
                "url": open_url(settings.public_url, d.entity, d.check),
            }
        )
    title = escape(headline(d))
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "actions", "block_id": "tocsin_actions", "elements": buttons},
    ]


def render(d: Delivery, settings: Settings | None = None) -> dict[str, object]:
    """The webhook JSON: a fallback ``text`` plus one attachment with the details.

    With ``settings``, a problem also gets Block Kit buttons (:func:`action_blocks`).
    """
    title = escape(headline(d))
    when = format_time(d.time, short=True)
    fields: list[dict[str, object]] = []
    if d.type in ROLLUP_TYPES:
        listed = [f"{check_name_of(c.entity, c.check)} ({state_title(c.state)})" for c in d.checks]
        more = len(listed) - MAX_LISTED
        text = "\n".join(listed[:MAX_LISTED]) + (f"\n… and {more} more" if more > 0 else "")
        fields.append({"title": "States", "value": escape(rollup_states_summary(d)), "short": True})
    elif d.type == "acknowledgement":
        text = d.summary  # the comment
        state = escape(state_title(acked_state(d)))
        fields.append({"title": "State", "value": state, "short": True})
        if d.acknowledged_by:
            by = escape(d.acknowledged_by)
            fields.append({"title": "Acknowledged by", "value": by, "short": True})
        if d.duration > 0:
            fields.append({"title": "For", "value": format_duration(d.duration), "short": True})
    else:
        text = d.summary
        fields.append({"title": "State", "value": escape(state_title(d.state)), "short": True})
        if d.previous_state:
            was = escape(state_title(d.previous_state))
            fields.append({"title": "Was", "value": was, "short": True})
        if d.duration > 0:
            fields.append({"title": "For", "value": format_duration(d.duration), "short": True})
    attachment: dict[str, object] = {
        "color": colour(d),
        "fallback": f"{title} at {when}",
        "title": title,
        "text": escape(text),
        "fields": fields,
        "footer": f"tocsin · {escape(check_name(d))}" if d.type not in ROLLUP_TYPES else "tocsin",
        "ts": int(d.time),
    }
    if d.details and d.type not in ROLLUP_TYPES:
        attachment["fields"] = [
            *fields,
            {"title": "Details", "value": escape(d.details[:1500]), "short": False},
        ]
    body: dict[str, object] = {"text": f"{title} at {when}", "attachments": [attachment]}
    blocks = action_blocks(d, settings) if settings is not None else []
    if blocks:
        body["blocks"] = blocks
    own = d.medium.settings
    for key in ("channel", "username", "icon_emoji"):
        if own.get(key):
            body[key] = own[key]
    return body


def check_name_of(entity: str, check: str) -> str:
    return f"{entity}:{check}"


_ENCODER = msgspec.json.Encoder()


def request(d: Delivery, settings: Settings) -> HttpRequest:
    """The POST to the incoming webhook (sent by the runner with many others)."""
    return HttpRequest(d.medium.address, _ENCODER.encode(render(d, settings)))


def send(d: Delivery, ctx: SendContext) -> SendResult:
    return ctx.execute(request(d, ctx.settings))
