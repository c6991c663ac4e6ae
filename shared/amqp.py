"""AMQP names, topology and a publisher that waits for confirms (docs/architecture.md, "Queues").

Work queues are quorum queues with a delivery limit and ``NS.dead`` as their
dead-letter exchange: a message that keeps crashing a worker is dead-lettered
by the broker instead of blocking the queue.  Processor partition queues are
single-active-consumer so each check's events are applied in order.  Every
other queue (``NS.dead``, the gateways' delay queues) is a quorum queue too,
so no queue lives on one node of a cluster (docs/scaling.md); queues an
older Tocsin declared as classic are moved by ``tocsin queues migrate``
(shared/queue_migration.py).

Publishing uses publisher confirms on a channel of its own: a batch's
messages go out back to back and the publisher waits once for the broker to
confirm them all (about what one transaction commit cost, docs/benchmarks.md);
acks stay on the consuming channel.  It used AMQP transactions until
2026-12-04: RabbitMQ 3.10 answers ``tx.commit-ok`` for a message that a
quorum queue whose leader has just died then refuses, so the message was
lost with nobody told; in confirm mode the same refusal is a ``basic.nack``
and the batch is retried (docs/reliability.md, "Publishing while a queue
has no leader").
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from shared.models import MEDIUM_TYPES

# After this many deliveries the broker dead-letters a message (reason delivery_limit).
DELIVERY_LIMIT = 5
# Delay queues per gateway (``Names.gateway_retry``): band k holds delays of 0.25 s * 2**k and up.
GATEWAY_RETRY_LEVELS = 12
JSON = "application/json"


class Names:
    """Exchange and queue names of one namespace."""

    __slots__ = ("ns",)

    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    @property
    def events(self) -> str:
        return f"{self.ns}.events"

    @property
    def ingest(self) -> str:
        return f"{self.ns}.ingest"

    @property
    def checks(self) -> str:
        return f"{self.ns}.checks"

    def processor(self, partition: int) -> str:
        return f"{self.ns}.processor.p{partition}"

    @property
    def notifications(self) -> str:
        return f"{self.ns}.notifications"

    @property
    def deliveries(self) -> str:
        return f"{self.ns}.deliveries"

    def gateway(self, medium_type: str) -> str:
        return f"{self.ns}.gateway.{medium_type}"

    def gateway_retry(self, medium_type: str, level: int) -> str:
        """Delay queue ``level`` of a gateway: expired messages go back to ``NS.gateway.<type>``.

        One queue per power-of-two delay band, so a short delay never waits
        behind a long one at the head of a shared queue (per-message TTL only
        expires at the head).
        """
        return f"{self.ns}.gateway.{medium_type}.retry.{level}"

    @property
    def dead(self) -> str:
        return f"{self.ns}.dead"

    def all_queues(self, partitions: int, medium_types: Iterable[str] = MEDIUM_TYPES) -> list[str]:
        return [
            self.ingest,
            *(self.processor(k) for k in range(partitions)),
            self.notifications,
            *(self.gateway(t) for t in medium_types),
            self.dead,
        ]

    def all_exchanges(self) -> list[str]:
        return [self.events, self.checks, self.deliveries, self.dead]


def partition_key(partition: int) -> str:
    """Routing key of a processor partition on ``NS.checks``."""
    return f"p{partition}"


def partition_of(entity: str, check: str, partitions: int) -> int:
    """Partition of a check: crc32(``entity:check``) mod partitions (docs/architecture.md)."""
    return zlib.crc32(f"{entity}:{check}".encode()) % partitions


# What a worker tells the operator when a queue from an older Tocsin has another type.
MIGRATE_COMMAND = "tocsin queues migrate"
QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}


class QueueTypeMismatch(pika.exceptions.ChannelClosedByBroker):  # type: ignore[misc]
    """A queue exists with another type than Tocsin declares (a classic queue of an older version).

    A ``ChannelClosedByBroker``, so every reconnect loop treats it as it
    did the broker's own refusal: the worker keeps retrying with backoff and
    resumes by itself once ``tocsin queues migrate`` has run.
    """

    def __init__(self, queue: str, detail: str) -> None:
        super().__init__(
            406,
            f"queue {queue} exists with other arguments than this Tocsin declares ({detail}); "
            f"it is a classic queue from an older version: run `{MIGRATE_COMMAND}` once "
            '(docs/scaling.md, "Upgrading classic queues")',
        )
        self.queue = queue


def declare_queue(channel: BlockingChannel, queue: str, arguments: Mapping[str, Any]) -> None:
    """Declare a durable queue; a type mismatch raises :class:`QueueTypeMismatch` with the fix."""
    try:
        channel.queue_declare(queue, durable=True, arguments=dict(arguments))
    except pika.exceptions.ChannelClosedByBroker as exc:
        # "inequivalent arg 'x-queue-type'" (or another argument the old declaration lacked).
        if exc.reply_code == 406 and "inequivalent arg" in str(exc.reply_text):
            raise QueueTypeMismatch(queue, str(exc.reply_text)) from exc
        raise


def dead_queue_args() -> dict[str, Any]:
    """``NS.dead``: a quorum queue (no delivery limit: a letter stays until replayed or purged)."""
    return dict(QUORUM)


def gateway_retry_args(names: Names, medium_type: str) -> dict[str, Any]:
    """A gateway delay queue: quorum, expired messages dead-lettered back to the gateway's queue.

    Per-message TTL and dead-lettering of quorum queues need RabbitMQ 3.10 or
    later.  ``at-least-once`` dead-lettering keeps an expired delivery in the
    delay queue until the gateway queue has confirmed it (the default,
    ``at-most-once``, drops it if that queue's leader is unreachable at that
    moment); it requires ``reject-publish`` overflow, which never triggers
    here (no length limit).  A copy it may make is absorbed by the gateway's
    ``delivered`` marker.
    """
    return {
        **QUORUM,
        "x-dead-letter-exchange": names.deliveries,
        "x-dead-letter-routing-key": medium_type,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def _work_queue_args(names: Names) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": names.dead,
    }


def declare_topology(
    channel: BlockingChannel,
    names: Names,
    partitions: int,
    medium_types: Iterable[str] = MEDIUM_TYPES,
) -> None:
    """Declare every exchange, queue and binding; idempotent, run by each worker at start."""
    channel.exchange_declare(names.events, exchange_type="topic", durable=True)
    channel.exchange_declare(names.checks, exchange_type="direct", durable=True)
    channel.exchange_declare(names.deliveries, exchange_type="direct", durable=True)
    channel.exchange_declare(names.dead, exchange_type="fanout", durable=True)

    declare_queue(channel, names.dead, dead_queue_args())
    channel.queue_bind(names.dead, names.dead)

    work = _work_queue_args(names)
    declare_queue(channel, names.ingest, work)
    channel.queue_bind(names.ingest, names.events, routing_key="#")
    for k in range(partitions):
        queue = names.processor(k)
        declare_queue(channel, queue, {**work, "x-single-active-consumer": True})
        channel.queue_bind(queue, names.checks, routing_key=partition_key(k))
    declare_queue(channel, names.notifications, work)
    for mtype in medium_types:
        declare_queue(channel, names.gateway(mtype), work)
        channel.queue_bind(names.gateway(mtype), names.deliveries, routing_key=mtype)


def delete_topology(
    channel: BlockingChannel,
    names: Names,
    partitions: int,
    medium_types: Iterable[str] = MEDIUM_TYPES,
) -> None:
    """Remove every queue and exchange of the namespace (tests and ``tocsin`` cleanup)."""
    medium_types = tuple(medium_types)
    for queue in names.all_queues(partitions, medium_types):
        channel.queue_delete(queue)
    # Gateways declare their delay queues themselves; deleting a missing queue is a no-op.
    for mtype in medium_types:
        for level in range(GATEWAY_RETRY_LEVELS):
            channel.queue_delete(names.gateway_retry(mtype, level))
    for exchange in names.all_exchanges():
        channel.exchange_delete(exchange)


def amqp_urls(amqp_url: str) -> list[str]:
    """The node URLs in ``TOCSIN_AMQP_URL``: one, or a cluster's nodes separated by commas."""
    urls = [u.strip() for u in amqp_url.split(",") if u.strip()]
    return urls or [amqp_url]


def connection_parameters(amqp_url: str, name: str) -> list[pika.URLParameters]:
    """One set of connection parameters per node URL, in the order given."""
    out = []
    for url in amqp_urls(amqp_url):
        params = pika.URLParameters(url)
        params.client_properties = {"connection_name": name}
        if "heartbeat" not in url:
            params.heartbeat = 30
        if "blocked_connection_timeout" not in url:
            # If the broker blocks publishers (memory/disk alarm) for this long, fail
            # and reconnect rather than hang forever without telling anyone.
            params.blocked_connection_timeout = 300
        out.append(params)
    return out


def connect(amqp_url: str, name: str = "tocsin") -> BlockingConnection:
    """Open a blocking connection; the name shows up in the RabbitMQ management UI.

    With several node URLs (``amqp://a…,amqp://b…``) pika tries them in
    order until one answers, so a worker whose node died reconnects to a
    survivor on its next attempt (docs/scaling.md, RabbitMQ cluster).
    """
    params = connection_parameters(amqp_url, name)
    return pika.BlockingConnection(params if len(params) > 1 else params[0])


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A message to publish: where, what, and the headers that go with it."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    headers: Mapping[str, Any] | None = None
    timestamp: int | None = None
    # Per-message TTL in milliseconds (delay queues); None = never expires.
    expiration: str | None = None


# How long a batch may wait for its confirms.  A quorum queue without a majority confirms
# nothing; the wait then ends in PublishNotConfirmed (the batch is retried) instead of a
# silent hang.
CONFIRM_TIMEOUT_S = 30.0


class PublishRefused(pika.exceptions.AMQPChannelError):  # type: ignore[misc]
    """The broker refused (``basic.nack``) messages of a batch: they are not stored.

    A quorum queue does this while it has no leader.  It is an AMQP channel
    error, so a worker's consumer loop reconnects and its unacked input is
    redelivered and published again.
    """


class PublishNotConfirmed(pika.exceptions.AMQPChannelError):  # type: ignore[misc]
    """The broker confirmed nothing within ``CONFIRM_TIMEOUT_S``: whether it stored the batch is unknown."""


# What Publisher.publish raises when the broker did not take a batch (besides losing the
# connection or closing the channel).
PUBLISH_FAILURES: tuple[type[BaseException], ...] = (PublishRefused, PublishNotConfirmed)


@dataclass(slots=True)
class Publisher:
    """Publishes batches durably: publisher confirms, one wait per batch."""

    connection: BlockingConnection
    confirm_timeout_s: float = CONFIRM_TIMEOUT_S
    channel: BlockingChannel = field(init=False)
    # Delivery tags published and not yet confirmed; how many the broker refused.
    _unconfirmed: set[int] = field(init=False, default_factory=set)
    _refused: int = field(init=False, default=0)
    _last_tag: int = field(init=False, default=0)
    _selected: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._open_channel()

    def _open_channel(self) -> None:
        self._unconfirmed.clear()
        self._refused = self._last_tag = 0
        self._selected = False
        self.channel = self.connection.channel()
        # The underlying channel, so the callback sees every ack and nack (BlockingChannel's
        # own confirm mode waits for each message in turn).
        self.channel._impl.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=self._on_select_ok
        )
        self._wait(lambda: self._selected, "Confirm.Select")

    def _renew_channel(self) -> None:
        """A new channel after a refusal: RabbitMQ 3.10 keeps refusing, on the channel that
        published while a quorum queue had no leader, every later message to that queue
        (measured for 30 s and more, docs/reliability.md); a new channel starts clean."""
        # Closing fails if the connection went too; opening the new channel then says so.
        with contextlib.suppress(pika.exceptions.AMQPError, ConnectionError):
            if self.channel.is_open:
                self.channel.close()
        self._open_channel()

    def publish(self, messages: Iterable[OutMessage]) -> int:
        """Publish and wait for the broker's confirms; returns how many.

        When it returns, the broker has stored every message.  A refused message
        raises :class:`PublishRefused`, a batch not confirmed in time
        :class:`PublishNotConfirmed`, a broker-side channel error (a missing
        exchange) ``ChannelClosedByBroker``: the caller must not ack its input.
        """
        count = 0
        # Frames go out back to back; BlockingChannel.basic_publish would flush the
        # socket and poll the I/O loop after every message.
        send = self.channel._impl.basic_publish
        for msg in messages:
            props = pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type=JSON,
                message_id=msg.message_id,
                headers=dict(msg.headers) if msg.headers else None,
                timestamp=msg.timestamp,
                expiration=msg.expiration,
            )
            send(msg.exchange, msg.routing_key, msg.body, properties=props)
            self._last_tag += 1
            self._unconfirmed.add(self._last_tag)
            count += 1
        if count:
            try:
                self._wait(lambda: not self._unconfirmed, f"confirms of {count} messages")
            except PublishNotConfirmed:
                self._renew_channel()
                raise
            refused, self._refused = self._refused, 0
            if refused:
                self._renew_channel()
                raise PublishRefused(f"the broker refused {refused} of {count} messages")
        return count

    def _on_select_ok(self, _frame: Any) -> None:
        self._selected = True

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = int(method.delivery_tag)
        if method.multiple:
            settled = {t for t in self._unconfirmed if t <= tag}
        else:
            settled = {tag} & self._unconfirmed
        self._unconfirmed -= settled
        if isinstance(method, pika.spec.Basic.Nack):
            self._refused += len(settled)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        """Run the connection's I/O until ``done()``; a closed channel or the timeout raises."""
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True

        timer = self.connection._impl.ioloop.call_later(self.confirm_timeout_s, expire)
        try:
            # What BlockingChannel's own blocking calls do; raises ChannelClosedByBroker.
            self.channel._flush_output(done, lambda: expired)
        finally:
            self.connection._impl.ioloop.remove_timeout(timer)
        if not done():
            raise PublishNotConfirmed(f"no answer to {what} within {self.confirm_timeout_s:g} s")
