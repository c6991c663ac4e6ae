"""RabbitMQ behind the broker seam: one blocking pika connection per session.

Consuming and publishing use separate channels: the publisher's channel is
in confirm mode (one wait for the confirms per batch), and acks go on the
consuming channel once the batch is confirmed.  Queue stats use a third channel, so
a passive declare of a deleted queue closes only that one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from shared.amqp import (
    Names,
    OutMessage,
    Publisher,
    QueueTypeMismatch,
    connect,
    declare_queue,
    declare_topology,
)
from shared.broker import Message, QueueStats

log = logging.getLogger(__name__)

AMQP_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.ConnectionClosed,
    pika.exceptions.StreamLostError,
    ConnectionError,
)


class PikaSession:
    """A :class:`~shared.broker.BrokerSession` over one ``BlockingConnection``."""

    def __init__(self, connection: BlockingConnection) -> None:
        self.connection = connection
        self._channel: BlockingChannel = connection.channel()
        self.publisher = Publisher(connection)
        self._stats_channel: BlockingChannel | None = None
        self._inbox: list[Message] = []

    def declare_topology(self, names: Names, partitions: int) -> None:
        try:
            declare_topology(self._channel, names, partitions)
        except QueueTypeMismatch as exc:
            # The worker retries with backoff; this line tells the operator what to run.
            log.error(str(exc.reply_text), extra={"queue": exc.queue})
            raise

    def declare_queue(self, queue: str, arguments: Mapping[str, Any]) -> None:
        try:
            declare_queue(self._channel, queue, arguments)
        except QueueTypeMismatch as exc:
            log.error(str(exc.reply_text), extra={"queue": exc.queue})
            raise

    def consume(self, queue: str, prefetch: int) -> None:
        self._channel.basic_qos(prefetch_count=prefetch)

        def on_message(
            _ch: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
        ) -> None:
            mid = props.message_id
            self._inbox.append(
                Message(
                    body=body,
                    delivery_tag=method.delivery_tag,
                    queue=queue,
                    routing_key=method.routing_key,
                    message_id=str(mid) if mid else None,
                    headers=dict(props.headers or {}),
                    timestamp=props.timestamp,
                    redelivered=bool(method.redelivered),
                )
            )

        self._channel.basic_consume(queue, on_message)

    def poll(self, timeout: float) -> list[Message]:
        if not self._inbox:
            # Returns as soon as I/O produced events, or after ``timeout``.
            self.connection.process_data_events(time_limit=timeout)
        else:
            self.connection.process_data_events(time_limit=0)
        taken, self._inbox = self._inbox, []
        return taken

    def publish(self, messages: Sequence[OutMessage]) -> None:
        self.publisher.publish(messages)

    def ack(self, delivery_tag: int) -> None:
        self._channel.basic_ack(delivery_tag=delivery_tag, multiple=True)

    def queue_stats(self, queue: str) -> QueueStats | None:
        try:
            if self._stats_channel is None or not self._stats_channel.is_open:
                self._stats_channel = self.connection.channel()
            ok = self._stats_channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._stats_channel = None
            log.warning("queue stats unavailable", extra={"queue": queue, "error": repr(exc)})
            return None
        return QueueStats(ok.method.message_count, ok.method.consumer_count)

    def sleep(self, seconds: float) -> None:
        if self.connection.is_open:
            self.connection.sleep(seconds)
        else:
            time.sleep(seconds)

    @property
    def is_open(self) -> bool:
        return bool(self.connection.is_open)

    def close(self) -> None:
        self._inbox.clear()
        if self.connection.is_open:
            try:
                self.connection.close()
            except Exception:
                log.debug("error while closing connection", exc_info=True)


class PikaBroker:
    """A :class:`~shared.broker.Broker` for the RabbitMQ at ``amqp_url``."""

    connection_errors = AMQP_ERRORS

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url

    def connect(self, name: str) -> PikaSession:
        return PikaSession(connect(self.amqp_url, name=name))

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
