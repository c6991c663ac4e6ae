"""What a medium implements: a ``send`` (or, for HTTP media, a request builder).

The media modules (``email.py``, ``slack.py`` …) are written against these
types; the delivery runner (``runner.py``) calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.gateways import transport
from services.gateways.core import HttpRequest, SendResult
from shared.config import Settings
from shared.destinations import Allowlist
from shared.models import Delivery


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a medium's ``send`` may use: settings and the destination guard."""

    settings: Settings
    allow: Allowlist

    def execute(self, req: HttpRequest) -> SendResult:
        """Send one prepared request (blocking)."""
        return transport.perform(req, self.allow, self.settings.delivery_timeout_s)


Sender = Callable[[Delivery, SendContext], SendResult]
# HTTP media: the request for a delivery, or a result when there is nothing to send.
RequestBuilder = Callable[[Delivery, Settings], HttpRequest | SendResult]
