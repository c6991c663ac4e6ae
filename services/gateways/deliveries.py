"""A batch's deliveries: decoded from the messages, one :class:`Item` each, and their attempts.

A message holds one delivery or an array of them (from the notifier).  An
item keeps its message so that a delivery retried, parked or dead-lettered
alone is republished with its own body.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from services.gateways.core import DeliveryDecision, Progress, SendResult, progress_from_headers
from services.gateways.metrics import RunnerMetrics
from shared.consumer import BatchResult, Message
from shared.lanes import delivery_lane
from shared.models import ENCODER, Delivery, decode_deliveries


@dataclass(slots=True)
class Item:
    """One delivery of a batch, with its progress so far and its lane."""

    msg: Message
    delivery: Delivery
    progress: Progress
    lane: str
    alone: bool  # the message holds this delivery only (else it came in an array)

    def body(self) -> bytes:
        """This delivery's own body, for a retry, a wait in a delay queue or a dead letter."""
        return self.msg.body if self.alone else ENCODER.encode(self.delivery)

    def message(self) -> Message:
        """The message to dead-letter for this delivery alone."""
        return self.msg if self.alone else dataclasses.replace(self.msg, body=self.body())


@dataclass(slots=True)
class Attempt:
    """One send of an item: what the medium answered and what was decided about it."""

    item: Item
    result: SendResult
    decision: DeliveryDecision
    latency: float


def decode(
    batch: Sequence[Message], medium_type: str, result: BatchResult, metrics: RunnerMetrics
) -> list[Item]:
    """The batch's deliveries; a bad body or a delivery of another medium is dead-lettered."""
    items: list[Item] = []
    for msg in batch:
        try:
            deliveries = decode_deliveries(msg.body)
        except msgspec.DecodeError as exc:
            result.rejected.append((msg, f"invalid delivery: {exc}"))
            metrics.dead()
            continue
        progress = progress_from_headers(msg.headers)
        alone = len(deliveries) == 1 and not msg.body.startswith(b"[")
        for delivery in deliveries:
            item = Item(msg, delivery, progress, delivery_lane(delivery), alone)
            if delivery.medium.type != medium_type:
                wrong = delivery.medium.type
                why = f"medium.type: {wrong!r} sent to the {medium_type} gateway"
                result.rejected.append((item.message(), why))
                metrics.dead()
                continue
            items.append(item)
    return items
