"""The consumer loop's own metrics: queue depth/consumers, last batch, redeliveries, Redis outages."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pika
import pytest
import redis.exceptions
from prometheus_client import CollectorRegistry

from shared.amqp import Names, connect
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult, Message
from shared.telemetry import ConsumerMetrics
from tests.support import declare, publish, running

pytestmark = pytest.mark.integration


def _consumer(
    settings: Settings,
    registry: CollectorRegistry,
    handler: Callable[[Sequence[Message]], BatchResult],
) -> BatchConsumer:
    names = Names(settings.namespace)
    return BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.ingest],
        handler=handler,
        stage="test",
        metrics=ConsumerMetrics(registry, "test"),
        batch_wait_ms=1,
        queue_stats_interval_s=0.1,
    )


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _wait(cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_queue_stats_and_last_batch_are_exported(settings: Settings) -> None:
    declare(settings)
    for i in range(3):
        publish(settings, b'{"n": %d}' % i)
    registry = CollectorRegistry()
    queue = Names(settings.namespace).ingest
    seen: list[Message] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        seen.extend(batch)
        return BatchResult()

    before = time.time()
    with running(_consumer(settings, registry, handler)):
        _wait(lambda: len(seen) == 3)
        _wait(lambda: _value(registry, "tocsin_queue_consumers", queue=queue) == 1)
        _wait(lambda: _value(registry, "tocsin_messages_acked_total", queue=queue) == 3)
    assert _value(registry, "tocsin_queue_messages", queue=queue) == 0
    assert _value(registry, "tocsin_last_batch_timestamp_seconds", stage="test") >= before
    assert _value(registry, "tocsin_messages_redelivered_total", queue=queue) == 0


def test_redelivered_messages_and_redis_outages_are_counted(settings: Settings) -> None:
    declare(settings)
    queue = Names(settings.namespace).ingest
    publish(settings, b'{"n": 1}')
    # Take the message without acking it and drop the connection: the broker redelivers it.
    conn = connect(settings.amqp_url)
    method, _, _ = conn.channel().basic_get(queue, auto_ack=False)
    assert isinstance(method, pika.spec.Basic.GetOk)
    conn.close()

    registry = CollectorRegistry()
    calls: list[int] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        calls.append(len(batch))
        if len(calls) == 1:
            raise redis.exceptions.ConnectionError("redis went away")
        return BatchResult()

    with running(_consumer(settings, registry, handler)):
        _wait(lambda: _value(registry, "tocsin_messages_acked_total", queue=queue) == 1)
    assert _value(registry, "tocsin_messages_redelivered_total", queue=queue) == 1
    assert _value(registry, "tocsin_reconnects_total", target="redis") == 1
    assert _value(registry, "tocsin_batch_retries_total", stage="test") == 1


def test_keep_alive_inside_a_handler_returns_at_once(settings: Settings) -> None:
    declare(settings)
    publish(settings, b'{"n": 1}')
    registry = CollectorRegistry()
    took: list[float] = []
    holder: list[BatchConsumer] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        started = time.perf_counter()
        for _ in range(10):
            holder[0].keep_alive()
        took.append(time.perf_counter() - started)
        return BatchResult()

    consumer = _consumer(settings, registry, handler)
    holder.append(consumer)
    with running(consumer):
        _wait(lambda: bool(took))
    assert took[0] < 0.05
