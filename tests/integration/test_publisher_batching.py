"""The transactional publisher queues a batch's frames and sends them at ``tx_commit``."""

from __future__ import annotations

import pika.exceptions
import pytest

from shared.amqp import OutMessage, Publisher, connect
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
