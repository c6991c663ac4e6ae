"""Slack gateway: an incoming-webhook message, coloured by state, compact.

The medium address is the incoming-webhook URL; optional settings override
the channel and the user name the message is posted as.
"""

from __future__ import annotations

import msgspec

from services.gateways.core import HttpRequest, SendResult
from services.gateways.runner import SendContext
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


def render(d: Delivery) -> dict[str, object]:
    """The webhook JSON: a fallback ``text`` plus one attachment with the details."""
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
    settings = d.medium.settings
    for key in ("channel", "username", "icon_emoji"):
        if settings.get(key):
            body[key] = settings[key]
    return body


def check_name_of(entity: str, check: str) -> str:
    return f"{entity}:{check}"


_ENCODER = msgspec.json.Encoder()


def request(d: Delivery, _settings: Settings) -> HttpRequest:
    """The POST to the incoming webhook (sent by the runner with many others)."""
    return HttpRequest(d.medium.address, _ENCODER.encode(render(d)))


def send(d: Delivery, ctx: SendContext) -> SendResult:
    return ctx.execute(request(d, ctx.settings))
