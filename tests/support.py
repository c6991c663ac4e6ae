"""Helpers for integration tests: publish, collect from queues, run a worker in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pika
from prometheus_client import CollectorRegistry

from shared.amqp import Names, connect, declare_topology
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.models import ENCODER, CheckEvent, decode_deliveries


def declare(settings: Settings) -> None:
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        declare_topology(conn.channel(), Names(settings.namespace), settings.partitions)
    finally:
        conn.close()


def publish(
    settings: Settings,
    body: bytes,
    routing_key: str = "flapjack",
    exchange: str | None = None,
    message_id: str | None = None,
) -> None:
    """Publish one message (to ``NS.events`` by default) with a publisher confirm."""
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        ch = conn.channel()
        declare_topology(ch, Names(settings.namespace), settings.partitions)
        ch.confirm_delivery()
        ch.basic_publish(
            Names(settings.namespace).events if exchange is None else exchange,
            routing_key,
            body,
            properties=pika.BasicProperties(delivery_mode=2, message_id=message_id),
        )
    finally:
        conn.close()


def split_deliveries(body: bytes) -> list[bytes]:
    """Each delivery of a message on a gateway queue (the notifier sends arrays), encoded alone."""
    return [ENCODER.encode(d) for d in decode_deliveries(body)]


def collect_deliveries(
    settings: Settings, queues: list[str], n: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Like :func:`collect`, counting and returning deliveries rather than messages."""
    return collect(settings, queues, n, timeout, split=split_deliveries)


def collect(
    settings: Settings,
    queues: list[str],
    n: int,
    timeout: float = 10.0,
    split: Callable[[bytes], list[bytes]] | None = None,
) -> list[dict[str, Any]]:
    """Consume (and ack) until ``n`` messages arrived from ``queues`` or ``timeout`` passed.

    ``split`` turns one body into several entries (arrays of deliveries), each
    counted towards ``n`` and returned as an entry of its own.
    """
    got: list[dict[str, Any]] = []
    conn = connect(settings.amqp_url, name="tocsin-test-collect")
    try:
        ch = conn.channel()
        declare_topology(ch, Names(settings.namespace), settings.partitions)

        def make_cb(queue: str):  # type: ignore[no-untyped-def]
            def cb(ch_, method, props, body):  # type: ignore[no-untyped-def]
                for part in split(body) if split is not None else [body]:
                    got.append(
                        {
                            "queue": queue,
                            "routing_key": method.routing_key,
                            "body": part,
                            "headers": dict(props.headers or {}),
                            "message_id": props.message_id,
                        }
                    )
                ch_.basic_ack(method.delivery_tag)

            return cb

        for q in queues:
            ch.basic_consume(q, make_cb(q))
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            conn.process_data_events(time_limit=min(0.2, max(0.0, deadline - time.monotonic())))
    finally:
        conn.close()
    return got


def split_events(body: bytes) -> list[bytes]:
    """Each event of a message on a processor partition queue (JSON arrays), encoded alone."""
    return [ENCODER.encode(e) for e in msgspec.json.decode(body, type=list[CheckEvent])]


def collect_events(settings: Settings, n: int, timeout: float = 10.0) -> list[CheckEvent]:
    """The normalised events on the processor's partition queues (what ingest or the API sent).

    Counts events, not messages: a source body becomes one array per partition.
    """
    names = Names(settings.namespace)
    queues = [names.processor(k) for k in range(settings.partitions)]
    got = collect(settings, queues, n, timeout, split=split_events)
    return [msgspec.json.decode(m["body"], type=CheckEvent) for m in got]


@contextmanager
def running(consumer: BatchConsumer) -> Iterator[BatchConsumer]:
    """Run a consumer in a background thread for the duration of the block."""
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        consumer.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "consumer did not stop within 15 s"


def queue_depth(settings: Settings, *queues: str) -> int:
    """Messages ready in ``queues`` together (a passive declare each)."""
    conn = connect(settings.amqp_url, name="tocsin-test-depth")
    try:
        ch = conn.channel()
        return sum(ch.queue_declare(q, passive=True).method.message_count for q in queues)
    finally:
        conn.close()


def wait_consumers(settings: Settings, queue: str, n: int, timeout: float = 15) -> None:
    """Wait until ``n`` consumers are registered on ``queue``.  A consumer thread that
    has started may not have sent ``basic.consume`` yet; messages published before
    that all go to the consumers already there."""
    deadline = time.monotonic() + timeout
    conn = connect(settings.amqp_url, name="tocsin-test-consumers")
    try:
        ch = conn.channel()
        while ch.queue_declare(queue, passive=True).method.consumer_count < n:
            assert time.monotonic() < deadline, f"{queue}: {n} consumers not there in {timeout} s"
            time.sleep(0.02)
    finally:
        conn.close()


def wait_acked(registry: CollectorRegistry, queue: str, n: int, timeout: float = 15) -> None:
    """Wait until the consumer whose metrics are in ``registry`` acked ``n`` messages of
    ``queue``.  A worker acks a batch only after its effects (published, sent, skipped or
    put back), so whatever those messages cause has happened by then: the point from
    which a test can check that nothing more came, instead of waiting a fixed time."""
    deadline = time.monotonic() + timeout
    while (registry.get_sample_value("tocsin_messages_acked_total", {"queue": queue}) or 0) < n:
        assert time.monotonic() < deadline, f"{queue}: {n} messages not acked in {timeout} s"
        time.sleep(0.02)
