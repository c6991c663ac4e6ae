"""The publisher sends a batch's frames back to back and waits once for the broker's confirms."""

from __future__ import annotations

import pika.exceptions
import pytest

from shared.amqp import OutMessage, Publisher, PublishRefused, connect
from shared.config import Settings
from tests.support import collect

pytestmark = pytest.mark.integration


def _queue(settings: Settings) -> str:
    return f"{settings.namespace}.pubtest"


def test_a_batch_arrives_whole_and_in_order_with_its_properties(settings: Settings) -> None:
    queue = _queue(settings)
    conn = connect(settings.amqp_url)
    try:
        conn.channel().queue_declare(queue, durable=True)
        publisher = Publisher(conn)
        batch = [
            OutMessage("", queue, b'{"n": %d}' % i, message_id=f"m{i}", headers={"k": i})
            for i in range(300)
        ]
        assert publisher.publish(batch) == 300
        got = collect(settings, [queue], 300, timeout=10)
    finally:
        conn.channel().queue_delete(queue)
        conn.close()
    assert [m["body"] for m in got] == [m.body for m in batch]
    assert got[7]["message_id"] == "m7" and got[7]["headers"] == {"k": 7}


def test_publishing_to_a_missing_exchange_raises_instead_of_losing_the_batch(
    settings: Settings,
) -> None:
    conn = connect(settings.amqp_url)
    try:
        publisher = Publisher(conn)
        with pytest.raises(pika.exceptions.AMQPChannelError):
            publisher.publish([OutMessage(f"{settings.namespace}.nowhere", "x", b"{}")])
    finally:
        conn.close()


def test_a_message_the_broker_refuses_raises_and_the_publisher_goes_on(
    settings: Settings,
) -> None:
    """A quorum queue refuses a publish while it has no leader (RabbitMQ 3.10 answered a
    transaction's commit with ok all the same, and the message was gone).  A full classic
    queue with ``reject-publish`` refuses the same way, on one node and at once (a quorum
    queue takes a few messages past its limit first)."""
    full = _queue(settings) + ".full"
    other = _queue(settings)
    conn = connect(settings.amqp_url)
    try:
        ch = conn.channel()
        ch.queue_declare(
            full,
            durable=True,
            arguments={"x-max-length": 2, "x-overflow": "reject-publish"},
        )
        ch.queue_declare(other, durable=True)
        publisher = Publisher(conn)
        with pytest.raises(PublishRefused, match="refused 3 of 5"):
            publisher.publish([OutMessage("", full, b'{"n": %d}' % i) for i in range(5)])
        # The next batch is confirmed on its own: nothing of the refusal carries over.
        assert publisher.publish([OutMessage("", other, b"{}") for _ in range(3)]) == 3
        held = ch.queue_declare(full, passive=True).method.message_count
        got = collect(settings, [other], 3, timeout=10)
    finally:
        conn.channel().queue_delete(full)
        conn.channel().queue_delete(other)
        conn.close()
    assert held == 2
    assert len(got) == 3
