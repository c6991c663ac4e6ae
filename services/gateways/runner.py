"""The shared delivery runner: everything a gateway does besides rendering and sending.

For a batch of deliveries of one medium type it

1. decodes them (``deliveries.py``; a bad body is dead-lettered with the
   reason);
2. gates them (``admission.py``): drops what was delivered already, and
   parks a delivery that has an unfinished delivery ahead of it in its lane
   (deliveries of one (address, check) leave in the order the notifier
   produced them);
3. throttles them (``admission.py``): a token per delivery from the
   per-address bucket in Redis; one over the limit waits in a delay queue for
   its slot (never dropped), the rest of its lane behind it;
4. sends them (``send_loop.py``): each lane's deliveries one after the
   other, different lanes at once, each attempt decided
   (:func:`services.gateways.core.decide`) and recorded at once
   (``records.py``: delivered marker, lane exit, delivery log) before the
   lane's next delivery starts;
5. settles each attempt (``requeue.py``): delivered, retry later
   (republished durably to a delay queue; the lane waits), or dead-letter.

The :class:`~shared.consumer.BatchConsumer` then publishes the retries,
parked deliveries and dead letters in one AMQP transaction and only then
acks the batch, so no delivery is acked before it is delivered, scheduled
or dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.gateways import deliveries
from services.gateways.admission import Gate
from services.gateways.core import RetryPolicy
from services.gateways.metrics import RunnerMetrics
from services.gateways.ratelimit import SharedRateLimiter
from services.gateways.records import Records
from services.gateways.requeue import Requeue
from services.gateways.send_context import RequestBuilder, Sender
from services.gateways.send_loop import SendLoop
from shared.amqp import Names
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.keys import Keys

log = logging.getLogger(__name__)


@dataclass
class DeliveryRunner:
    """Runs batches of deliveries of one medium type (see the module docstring)."""

    settings: Settings
    medium_type: str
    send: Sender
    redis: Any
    metrics: RunnerMetrics = field(default_factory=RunnerMetrics)
    request: RequestBuilder | None = None
    # Called while waiting for sends, so the AMQP connection keeps its heartbeats.
    keep_alive: Callable[[], None] | None = None
    # True once the worker was asked to stop: sends not started yet go back to the queue.
    stopping: Callable[[], bool] | None = None
    records: Records = field(init=False)
    gate: Gate = field(init=False)
    sends: SendLoop = field(init=False)
    requeue: Requeue = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        keys = Keys(s.namespace)
        self.records = Records(self.redis, keys, s.retain_delivered_s)
        self.requeue = Requeue(Names(s.namespace), self.medium_type, self.metrics)
        self.gate = Gate(
            settings=s,
            medium_type=self.medium_type,
            redis=self.redis,
            keys=keys,
            limiter=SharedRateLimiter(self.redis, keys),
            records=self.records,
            requeue=self.requeue,
            metrics=self.metrics,
        )
        self.sends = SendLoop(
            settings=s,
            medium_type=self.medium_type,
            send=self.send,
            request=self.request,
            policy=RetryPolicy(
                attempts=s.delivery_attempts,
                deadline_s=s.delivery_deadline_s,
                base_s=s.retry_base_s,
                max_s=s.retry_max_s,
            ),
            records=self.records,
            requeue=self.requeue,
            metrics=self.metrics,
        )

    def close(self) -> None:
        self.sends.close()

    def handle(self, batch: Sequence[Message]) -> BatchResult:
        """Handle one batch; returns retries, parked deliveries and dead letters to publish."""
        result = BatchResult()
        items = deliveries.decode(batch, self.medium_type, result, self.metrics)
        now = time.time()
        chains = self.gate.admit(items, result, now)
        attempts = self.sends.run(chains, result, self.keep_alive, self.stopping)
        # Redis failed while sending: write now, or fail the batch so it is retried
        # (the memory of recent successes keeps those from being sent again).
        self.records.flush()
        for a in attempts:
            self.requeue.settle(a, result)
        if attempts:
            log.info(
                "batch delivered",
                extra={
                    "medium": self.medium_type,
                    "attempted": len(attempts),
                    "delivered": sum(a.decision.action == "delivered" for a in attempts),
                    "held": len(items) - len(attempts),
                },
            )
        return result
