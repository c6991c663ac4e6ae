"""PagerDuty gateway: Events API v2 (docs/payloads.md).

problem/test/rollup -> ``trigger``, acknowledgement -> ``acknowledge``,
recovery/rollup_recovery -> ``resolve``; ``dedup_key`` = ``entity:check`` so
the three land on one PagerDuty alert (rollups use one key per medium).
The routing key is the medium address; the endpoint is ``TOCSIN_PAGERDUTY_URL``.
"""

from __future__ import annotations

import time as _time

import msgspec

from services.gateways.core import HttpRequest, SendResult
from services.gateways.send_context import SendContext
from services.gateways.texts import ROLLUP_TYPES, headline, rollup_states_summary
from shared.config import Settings
from shared.models import Delivery
from shared.severity import worst

ACTIONS = {
    "problem": "trigger",
    "test": "trigger",
    "rollup": "trigger",
    "acknowledgement": "acknowledge",
    "recovery": "resolve",
    "rollup_recovery": "resolve",
}
# PagerDuty knows critical|error|warning|info.
SEVERITIES = {"critical": "critical", "warning": "warning", "unknown": "error"}


def dedup_key(d: Delivery) -> str:
    """``entity:check`` (≤ 255 characters); one key per medium for rollups."""
    if d.type in ROLLUP_TYPES:
        return f"tocsin-rollup:{d.medium.id}"[:255]
    return f"{d.entity}:{d.check}"[:255]


def render(d: Delivery) -> dict[str, object]:
    """The Events v2 body; acknowledge/resolve carry only what PagerDuty needs."""
    action = ACTIONS.get(d.type, "trigger")
    body: dict[str, object] = {
        "routing_key": d.medium.address,
        "event_action": action,
        "dedup_key": dedup_key(d),
    }
    if action != "trigger":
        return body
    summary = headline(d)
    if d.type in ROLLUP_TYPES:
        summary = f"{summary} ({rollup_states_summary(d)})"
    elif d.summary:
        summary = f"{summary}: {d.summary}"
    details: dict[str, object] = {
        "state": d.state,
        "previous_state": d.previous_state,
        "details": d.details,
        "tags": list(d.tags),
        "delivery_id": d.id,
    }
    if d.type in ROLLUP_TYPES:
        details["checks"] = [f"{c.entity}:{c.check} ({c.state})" for c in d.checks]
    state = worst((c.state for c in d.checks), default=d.state) if d.checks else d.state
    severity = "info" if d.type == "test" else SEVERITIES.get(state, "error")
    body["payload"] = {
        "summary": summary[:1024],
        "source": (d.medium.settings.get("source") or d.entity or "tocsin")[:255],
        "severity": severity,
        "timestamp": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(d.time)),
        "component": d.check,
        "custom_details": details,
    }
    body["client"] = "Tocsin"
    return body


_ENCODER = msgspec.json.Encoder()


def request(d: Delivery, settings: Settings) -> HttpRequest:
    """The Events v2 POST (sent by the runner with many others)."""
    return HttpRequest(settings.pagerduty_url, _ENCODER.encode(render(d)))


def send(d: Delivery, ctx: SendContext) -> SendResult:
    return ctx.execute(request(d, ctx.settings))
