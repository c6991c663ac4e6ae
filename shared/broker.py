"""The broker seam: what the batch consumer needs from a message broker, and no more.

:class:`~shared.consumer.BatchConsumer` talks to a :class:`Broker` and the
:class:`BrokerSession` it opens, never to pika.  Two implementations keep
the same contract (``tests/integration/test_broker_contract.py`` runs one
suite against both):

- :class:`shared.pika_broker.PikaBroker`, RabbitMQ over a blocking pika
  connection (what every worker runs);
- :class:`shared.memory_broker.InMemoryBroker`, queues in a dict and a
  virtual clock, in the style of arroyo's ``LocalBroker``: the consumer
  loop's poison isolation, retry, stop-during-retry and ack ordering are
  unit-tested on it in milliseconds.

A session is one connection: deliveries not acked when it closes (or is
lost) go back to their queue, flagged ``redelivered``.  Acks are
cumulative (``ack(tag)`` acks every delivery up to ``tag``), so the
consumer acks a batch once, after its outputs are published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.amqp import Names, OutMessage


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed message, as the broker delivered it."""

    body: bytes
    delivery_tag: int
    queue: str
    routing_key: str
    message_id: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    # AMQP ``timestamp`` property: epoch seconds the publisher stamped, if any.
    timestamp: int | None = None
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Depth and consumer count of a queue (for backlog metrics)."""

    messages: int
    consumers: int


class BrokerSession(Protocol):
    """One open connection: declare, consume, publish in a transaction, ack."""

    def declare_topology(self, names: Names, partitions: int) -> None:
        """Declare the namespace's exchanges, work queues and bindings (idempotent)."""

    def declare_queue(self, queue: str, arguments: Mapping[str, Any]) -> None:
        """Declare one extra durable queue (e.g. a gateway's delay queues)."""

    def consume(self, queue: str, prefetch: int) -> None:
        """Start delivering ``queue``; at most ``prefetch`` deliveries unacked per session."""

    def poll(self, timeout: float) -> list[Message]:
        """Wait up to ``timeout`` seconds for deliveries; return what arrived (maybe nothing).

        Returns as soon as anything arrived; ``timeout=0`` takes only what
        is already there.  Keeps the connection alive (heartbeats).
        """

    def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish all of ``messages`` in one transaction; when it returns, the broker has them."""

    def ack(self, delivery_tag: int) -> None:
        """Ack every delivery of this session up to and including ``delivery_tag``."""

    def queue_stats(self, queue: str) -> QueueStats | None:
        """The queue's depth and consumers, or None when it cannot be read now."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` while keeping the connection alive (no deliveries are taken)."""

    @property
    def is_open(self) -> bool:
        """False once closed or lost."""

    def close(self) -> None:
        """Close; unacked deliveries go back to their queues (never raises)."""


class Broker(Protocol):
    """Opens sessions and says which errors mean the connection is gone."""

    # A session call raising one of these means: reconnect, the batch is redelivered.
    connection_errors: tuple[type[BaseException], ...]

    def connect(self, name: str) -> BrokerSession:
        """Open a session; ``name`` shows in the broker's management UI."""

    def monotonic(self) -> float:
        """The clock the consumer schedules by (real, or virtual for the in-memory broker)."""

    def sleep(self, seconds: float) -> None:
        """Wait without a session (between reconnect attempts)."""
