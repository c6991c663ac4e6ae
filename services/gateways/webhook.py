"""Webhook gateway: the delivery as JSON (docs/payloads.md), signed when the medium has a ``secret``.

Receivers verify ``X-Tocsin-Signature: sha256=<hex>`` = HMAC-SHA256 of the
raw body with the shared secret, and may use ``X-Tocsin-Delivery`` (the
delivery id) to drop the rare duplicate.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from services.gateways.core import HttpRequest, SendResult
from services.gateways.send_context import SendContext
from shared.action_links import ActionLinks, links_for
from shared.config import Settings
from shared.models import Delivery, EscalationRef, RollupItem

SIGNATURE_HEADER = "X-Tocsin-Signature"
DELIVERY_HEADER = "X-Tocsin-Delivery"


class _Contact(msgspec.Struct, frozen=True):
    id: str
    name: str


class _Medium(msgspec.Struct, frozen=True):
    id: str
    type: str


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The body, field for field as docs/payloads.md lists it."""

    id: str
    type: str
    entity: str
    check: str
    state: str
    previous_state: str | None
    summary: str
    details: str
    time: float
    duration: float
    tags: tuple[str, ...]
    contact: _Contact
    medium: _Medium
    checks: tuple[RollupItem, ...]
    # Increases per check and per address in production order: drop a payload whose seq
    # is lower than one already received for the same check (docs/payloads.md).
    seq: int
    # Acknowledgements: who acknowledged, when known (``summary`` is the comment); left out
    # of the body otherwise.
    acknowledged_by: str | None = None
    # Pages of an escalation step: ``{policy_id, step}`` (docs/oncall.md); left out otherwise.
    escalation: EscalationRef | None = None
    # Problems, with TOCSIN_PUBLIC_URL set: signed links (docs/acknowledge.md).
    actions: ActionLinks | None = None


_ENCODER = msgspec.json.Encoder()


def render(d: Delivery, settings: Settings | None = None) -> bytes:
    """The JSON body of ``d``; with ``settings``, problems carry the action links."""
    return _ENCODER.encode(
        WebhookPayload(
            id=d.id,
            type=d.type,
            entity=d.entity,
            check=d.check,
            state=d.state,
            previous_state=d.previous_state,
            summary=d.summary,
            details=d.details,
            time=d.time,
            duration=d.duration,
            tags=d.tags,
            contact=_Contact(d.contact.id, d.contact.name),
            medium=_Medium(d.medium.id, d.medium.type),
            checks=d.checks,
            seq=d.seq,
            acknowledged_by=d.acknowledged_by or None,
            escalation=d.escalation,
            actions=links_for(settings, d) if settings is not None else None,
        )
    )


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request(d: Delivery, settings: Settings) -> HttpRequest:
    """The signed POST for ``d`` (sent by the runner with many others)."""
    body = render(d, settings)
    headers = {DELIVERY_HEADER: d.id}
    secret = d.medium.settings.get("secret")
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return HttpRequest(d.medium.address, body, headers)


def send(d: Delivery, ctx: SendContext) -> SendResult:
    return ctx.execute(request(d, ctx.settings))
