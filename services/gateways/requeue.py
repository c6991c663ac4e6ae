"""Where a delivery goes when it is not finished in this batch, and the retry/dead-letter step.

- *parked*: back to the gateway after a short wait, not counted as an attempt
  (its lane has an unfinished delivery ahead of it, or the gateway stops);
- *delayed*: republished to the delay queue that returns it after a given
  time (a rate-limit slot, a retry);
- *settled*: after an attempt, the decision of
  :func:`services.gateways.core.decide` carried out: delivered (counted and
  logged), retried (delayed) or dead-lettered.

The messages are returned in the batch's :class:`~shared.consumer.BatchResult`;
the consumer publishes them before it acks the batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec

from services.gateways.core import (
    Progress,
    expiration_ms,
    park_delay,
    progress_headers,
    retry_level,
)
from services.gateways.deliveries import Attempt, Item
from services.gateways.metrics import RunnerMetrics
from shared.amqp import Names, OutMessage
from shared.consumer import BatchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Requeue:
    """Builds the messages that take a delivery out of this batch, for one medium type."""

    names: Names
    medium_type: str
    metrics: RunnerMetrics

    def park(self, item: Item, why: str, at_least: float = 0.0) -> OutMessage:
        """Back to the queue after a short wait, not counted as an attempt."""
        self.metrics.parked()
        progress = msgspec.structs.replace(item.progress, parked=item.progress.parked + 1)
        delay = park_delay(item.progress.parked, at_least)
        log.info(
            "delivery waits for its lane",
            extra={
                "delivery_id": item.delivery.id,
                "medium": self.medium_type,
                "reason": why,
                "retry_in_s": round(delay, 2),
            },
        )
        return self.delayed(item, progress, delay, "")

    def delayed(self, item: Item, progress: Progress, delay: float, error: str) -> OutMessage:
        """The delivery republished to the delay queue that returns it to the gateway after ``delay``."""
        return OutMessage(
            exchange="",
            routing_key=self.names.gateway_retry(self.medium_type, retry_level(delay)),
            body=item.body(),
            message_id=item.delivery.id,
            headers=progress_headers(progress, error),
            expiration=expiration_ms(delay),
        )

    def settle(self, attempt: Attempt, result: BatchResult) -> None:
        """Carry out one attempt's decision: count it, or retry it, or dead-letter it."""
        item, decision, res = attempt.item, attempt.decision, attempt.result
        extra = {
            "delivery_id": item.delivery.id,
            "notification_id": item.delivery.notification_id,
            "entity": item.delivery.entity,
            "check": item.delivery.check,
            "medium": self.medium_type,
            "outcome": decision.outcome,
            "attempt": decision.progress.attempts,
            "error": res.error[:300],
        }
        if decision.action == "delivered":
            self.metrics.sent(attempt.latency)
            log.info("delivered", extra={**extra, "latency_ms": round(attempt.latency * 1000, 1)})
        elif decision.action == "retry":
            result.outputs.append(self.delayed(item, decision.progress, decision.delay, res.error))
            self.metrics.retried()
            log.warning(
                "delivery failed, will retry",
                extra={**extra, "retry_in_s": round(decision.delay, 2)},
            )
        else:
            result.rejected.append((item.message(), f"{self.medium_type}: {decision.reason}"))
            if decision.outcome == "failed":
                self.metrics.failed()
            self.metrics.dead()
            log.warning("delivery dead-lettered", extra=extra)
