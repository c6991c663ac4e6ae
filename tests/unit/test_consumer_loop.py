"""The batch consumer loop on the in-memory broker: poison isolation, retry, stop, ack order.

Time is the broker's virtual clock, so backoff waits cost nothing and every
test runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
import redis.exceptions
from prometheus_client import CollectorRegistry

from shared.amqp import Names, OutMessage
from shared.consumer import STOP_POLL_S, BatchConsumer, BatchResult, Message, backoff_delay
from shared.errors import InvalidMessage
from shared.memory_broker import InMemoryBroker
from shared.telemetry import ConsumerMetrics

NAMES = Names("tunit")
QUEUE = NAMES.notifications


def make(
    broker: InMemoryBroker,
    handler: Callable[[Sequence[Message]], BatchResult],
    *,
    until: Callable[[], bool],
    batch_size: int = 10,
    reconnect_max_s: float | None = None,
) -> BatchConsumer:
    """A consumer of ``QUEUE`` that stops once ``until()`` holds (checked when idle)."""

    def on_idle(c: BatchConsumer) -> None:
        if until():
            c.stop()

    return BatchConsumer(
        broker=broker,
        names=NAMES,
        partitions=1,
        queues=[QUEUE],
        handler=handler,
        stage="unit",
        metrics=ConsumerMetrics(CollectorRegistry(), "unit"),
        batch_size=batch_size,
        on_idle=on_idle,
        idle_interval_s=0.1,
        reconnect_max_s=reconnect_max_s,
    )


def declared() -> InMemoryBroker:
    broker = InMemoryBroker()
    broker.connect("setup").declare_topology(NAMES, 1)
    return broker


def put(broker: InMemoryBroker, *bodies: bytes) -> None:
    for i, body in enumerate(bodies):
        broker.publish("", QUEUE, body, message_id=f"m{i}")


def dead_bodies(broker: InMemoryBroker) -> list[bytes]:
    return broker.bodies(NAMES.dead)


def test_a_batch_is_handled_published_and_acked_once() -> None:
    broker = declared()
    put(broker, b"a", b"b", b"c")
    batches: list[list[bytes]] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        batches.append([m.body for m in batch])
        out = [OutMessage(NAMES.deliveries, "webhook", m.body.upper()) for m in batch]
        return BatchResult(outputs=out)

    make(broker, handler, until=lambda: bool(batches)).run()
    assert batches == [[b"a", b"b", b"c"]]
    assert broker.bodies(NAMES.gateway("webhook")) == [b"A", b"B", b"C"]
    assert broker.bodies(QUEUE) == [] and broker.unacked() == 0
    assert broker.publishes == 1  # outputs in one transaction


def test_a_poison_message_is_isolated_and_dead_lettered_alone() -> None:
    broker = declared()
    put(broker, b"a", b"boom", b"b")
    handled: list[bytes] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        if any(m.body == b"boom" for m in batch):
            raise KeyError("a bug path")
        handled.extend(m.body for m in batch)
        return BatchResult()

    make(broker, handler, until=lambda: len(handled) == 2).run()
    assert handled == [b"a", b"b"]
    assert dead_bodies(broker) == [b"boom"]
    assert broker.bodies(QUEUE) == [] and broker.unacked() == 0


def test_invalid_message_is_dead_lettered_with_its_reason() -> None:
    broker = declared()
    put(broker, b"bad")

    def handler(batch: Sequence[Message]) -> BatchResult:
        raise InvalidMessage("`$.state` must be a string")

    make(broker, handler, until=lambda: bool(broker.bodies(NAMES.dead))).run()
    assert dead_bodies(broker) == [b"bad"]
    letter = broker.queues[NAMES.dead]
    reasons = [m.headers["x-tocsin-error"] for m in letter.ready]
    assert reasons == ["`$.state` must be a string"]
    assert letter.ready[0].headers["x-tocsin-stage"] == "unit"


def test_a_transient_error_retries_the_whole_batch_with_backoff() -> None:
    broker = declared()
    put(broker, b"a", b"b")
    calls: list[tuple[float, int]] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        calls.append((broker.now, len(batch)))
        if len(calls) <= 3:
            raise redis.exceptions.ConnectionError("redis down")
        return BatchResult()

    consumer = make(broker, handler, until=lambda: len(calls) == 4)
    consumer.run()
    assert [n for _, n in calls] == [2, 2, 2, 2]  # never isolated: not the messages' fault
    waits = [b - a for (a, _), (b, _) in pairwise(calls)]
    assert all(w >= 0.1 for w in waits) and waits[2] >= 0.4  # 0.1, 0.2, 0.4 s (+ jitter)
    assert broker.unacked() == 0 and dead_bodies(broker) == []
    assert consumer.metrics.retries.labels("unit")._value.get() == 3


def test_the_retry_backoff_stops_growing_at_reconnect_max_s() -> None:
    broker = declared()
    put(broker, b"a")
    calls: list[float] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        calls.append(broker.now)
        if len(calls) <= 8:
            raise redis.exceptions.ConnectionError("redis down")
        return BatchResult()

    make(broker, handler, until=lambda: len(calls) == 9, reconnect_max_s=0.5).run()
    waits = [b - a for a, b in pairwise(calls)]
    # 0.1, 0.2, 0.4 s (+ jitter), then never more than the cap (the default is 10 s).
    assert waits[0] >= 0.1 and max(waits) <= 0.5 + 1e-9 and waits[-1] >= 0.5 - 1e-9


def test_stop_during_retry_leaves_the_batch_unacked_for_redelivery() -> None:
    broker = declared()
    put(broker, b"a", b"b")
    consumer: BatchConsumer

    def handler(batch: Sequence[Message]) -> BatchResult:
        consumer.stop()  # as SIGTERM would, while the handler fails
        raise redis.exceptions.ConnectionError("redis down")

    consumer = make(broker, handler, until=lambda: False)
    consumer.run()
    assert broker.bodies(QUEUE) == [b"a", b"b"]  # back in the queue, in order
    assert dead_bodies(broker) == [] and broker.unacked() == 0
    redelivered: list[bool] = []

    def second(batch: Sequence[Message]) -> BatchResult:
        redelivered.extend(m.redelivered for m in batch)
        return BatchResult()

    make(broker, second, until=lambda: bool(redelivered)).run()
    assert redelivered == [True, True]


def test_outputs_are_published_before_the_ack_and_after_publish_runs_between() -> None:
    broker = declared()
    put(broker, b"a")
    order: list[str] = []
    real_connect = broker.connect  # wrap the consumer's session to record its calls

    def connect(name: str):  # type: ignore[no-untyped-def]
        session = real_connect(name)
        publish, ack = session.publish, session.ack

        def logged_publish(msgs: Sequence[OutMessage]) -> None:
            order.append(f"publish {len(msgs)}")
            publish(msgs)

        def logged_ack(tag: int) -> None:
            order.append(f"ack {tag}")
            ack(tag)

        session.publish, session.ack = logged_publish, logged_ack  # type: ignore[method-assign]
        return session

    broker.connect = connect  # type: ignore[method-assign]

    def handler(batch: Sequence[Message]) -> BatchResult:
        order.append("handle")
        return BatchResult(
            outputs=[OutMessage(NAMES.deliveries, "email", b"x")],
            after_publish=lambda: order.append("after_publish"),
        )

    make(broker, handler, until=lambda: "ack 1" in order).run()
    assert order == ["handle", "publish 1", "after_publish", "ack 1"]


def test_a_failed_publish_acks_nothing_and_the_batch_comes_back() -> None:
    broker = declared()
    put(broker, b"a", b"b")
    seen: list[tuple[bytes, bool]] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        seen.extend((m.body, m.redelivered) for m in batch)
        if len(seen) == 2:  # first time: the broker drops us before the publish commits
            broker.lose_connection()
        return BatchResult(outputs=[OutMessage(NAMES.deliveries, "email", b"out")])

    make(broker, handler, until=lambda: len(seen) == 4).run()
    assert seen == [(b"a", False), (b"b", False), (b"a", True), (b"b", True)]
    assert broker.bodies(NAMES.gateway("email")) == [b"out"]  # only the retry's publish
    assert broker.unacked() == 0


def test_batches_are_capped_at_batch_size_and_acked_in_order() -> None:
    broker = declared()
    put(broker, *[b"%d" % i for i in range(7)])
    sizes: list[int] = []

    def handler(batch: Sequence[Message]) -> BatchResult:
        sizes.append(len(batch))
        return BatchResult()

    make(broker, handler, until=lambda: sum(sizes) == 7, batch_size=3).run()
    assert sizes == [3, 3, 1]
    assert broker.unacked() == 0 and broker.bodies(QUEUE) == []


@pytest.mark.parametrize(
    ("attempt", "rnd", "expected"),
    [(1, 0.0, 0.1), (2, 0.0, 0.2), (4, 1.0, 1.0), (30, 0.5, 10.0), (10_000, 0.0, 10.0)],
)
def test_backoff_doubles_adds_jitter_and_is_capped(
    attempt: int, rnd: float, expected: float
) -> None:
    got = backoff_delay(attempt, base=0.1, cap=10.0, jitter=0.2, rnd=lambda: rnd)
    assert got == pytest.approx(expected)


def test_an_idle_loop_sees_a_stop_within_a_fifth_of_a_second() -> None:
    broker = declared()
    consumer = make(broker, lambda batch: BatchResult(), until=lambda: False)
    consumer.idle_interval = 5.0  # the on_idle cadence does not delay a stop
    advance = broker.sleep

    def sleep(seconds: float) -> None:  # a SIGTERM arrives at t = 1 s
        if broker.now < 1.0 <= broker.now + seconds:
            consumer.stop()
        advance(seconds)

    broker.sleep = sleep  # type: ignore[method-assign]
    consumer.run()
    assert 1.0 <= broker.now <= 1.0 + STOP_POLL_S + 1e-9
