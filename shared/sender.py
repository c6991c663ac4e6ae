"""Publish events onto ``NS.events`` from outside the pipeline (API, CLI, demo).

Uses publisher confirms: when :meth:`Sender.send` returns, the broker has the
messages on disk.  Thread-safe (the API calls it from a thread pool) and
reconnects once per call when the broker connection was lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from shared.amqp import Names, connect, declare_topology
from shared.config import Settings
from shared.consumer import AMQP_ERRORS


class Sender:
    """A confirmed publisher to the events exchange."""

    def __init__(self, settings: Settings, name: str = "tocsin-sender") -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self.name = name
        self._lock = threading.Lock()
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _open(self) -> BlockingChannel:
        if self._conn is None or not self._conn.is_open or self._channel is None:
            self._conn = connect(self.settings.amqp_url, name=self.name)
            channel = self._conn.channel()
            declare_topology(channel, self.names, self.settings.partitions)
            channel.confirm_delivery()
            self._channel = channel
        return self._channel

    def send(
        self,
        bodies: Sequence[bytes],
        routing_key: str = "flapjack",
        exchange: str | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Publish each body as one message; returns their message ids.

        ``exchange`` defaults to ``NS.events``; ``""`` with a queue name as the
        routing key publishes straight to that queue (the Argus API's
        notification refs).  ``message_ids`` replaces the random ids.
        """
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._open()
                    ids = []
                    for i, body in enumerate(bodies):
                        mid = message_ids[i] if message_ids else uuid.uuid4().hex
                        channel.basic_publish(
                            self.names.events if exchange is None else exchange,
                            routing_key,
                            body,
                            properties=pika.BasicProperties(
                                delivery_mode=pika.DeliveryMode.Persistent,
                                content_type="application/json",
                                message_id=mid,
                                timestamp=int(time.time()),
                            ),
                        )
                        ids.append(mid)
                    return ids
                except AMQP_ERRORS:
                    self._reset()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        """True when the broker answers (opens a connection if needed)."""
        with self._lock:
            try:
                self._open()
                assert self._conn is not None
                self._conn.process_data_events(time_limit=0)
                return True
            except AMQP_ERRORS:
                self._reset()
                return False

    def _reset(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._reset()
