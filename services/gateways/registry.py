"""Medium types the gateways deliver to: the sender (and HTTP request builder) of each.

What a medium's settings and address may be is shared with the API, which
validates them when a medium is saved: see ``shared/media.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateways import email, pagerduty, slack, sms, webhook
from services.gateways.send_context import RequestBuilder, Sender
from shared import media


@dataclass(frozen=True, slots=True)
class MediumSpec:
    """One medium type as the gateways see it: its shared definition and its sender."""

    kind: media.MediumType
    send: Sender
    # HTTP media: the request for a delivery, sent many at once by the runner.
    request: RequestBuilder | None = None

    @property
    def name(self) -> str:
        """The medium type's name (``email``, ``webhook`` …)."""
        return self.kind.name


MEDIA: dict[str, MediumSpec] = {
    "email": MediumSpec(media.TYPES["email"], email.send),
    "webhook": MediumSpec(media.TYPES["webhook"], webhook.send, webhook.request),
    "slack": MediumSpec(media.TYPES["slack"], slack.send, slack.request),
    "pagerduty": MediumSpec(media.TYPES["pagerduty"], pagerduty.send, pagerduty.request),
    "sms": MediumSpec(media.TYPES["sms"], sms.send, sms.request),
}


def spec(name: str) -> MediumSpec:
    """The gateways' spec of medium type ``name``; ``MediumSettingsError`` if unknown."""
    return MEDIA[media.medium_type(name).name]
