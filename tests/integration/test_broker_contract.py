"""One contract, two brokers: RabbitMQ through pika, and the in-memory one the unit tests use.

Whatever the consumer loop relies on is stated here once and checked
against both, so a unit test on :class:`InMemoryBroker` means the same
thing it would mean against the real RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.amqp import DELIVERY_LIMIT, Names, OutMessage
from shared.broker import Broker, BrokerSession, Message
from shared.config import Settings
from shared.memory_broker import InMemoryBroker
from shared.pika_broker import PikaBroker

pytestmark = pytest.mark.integration

PARTITIONS = 2


@pytest.fixture(params=["pika", "memory"])
def broker(request: pytest.FixtureRequest) -> Broker:
    if request.param == "memory":
        return InMemoryBroker()
    settings: Settings = request.getfixturevalue("settings")  # namespace removed after
    return PikaBroker(settings.amqp_url)


@pytest.fixture
def names(request: pytest.FixtureRequest, broker: Broker) -> Names:
    if isinstance(broker, PikaBroker):
        return Names(request.getfixturevalue("settings").namespace)
    return Names("tcontract")


@pytest.fixture
def session(broker: Broker, names: Names) -> Iterator[BrokerSession]:
    s = broker.connect("tocsin-test-contract")
    s.declare_topology(names, PARTITIONS)
    yield s
    s.close()


def take(broker: Broker, session: BrokerSession, n: int, timeout: float = 5.0) -> list[Message]:
    """Poll until ``n`` deliveries arrived or ``timeout`` (broker time) passed."""
    got: list[Message] = []
    deadline = broker.monotonic() + timeout
    while len(got) < n:
        left = deadline - broker.monotonic()
        if left <= 0:
            break
        got.extend(session.poll(min(left, 0.2)))
    return got


def to_queue(names: Names, body: bytes, mid: str | None = None) -> OutMessage:
    """Through the default exchange, straight to the notifications queue."""
    return OutMessage("", names.notifications, body, message_id=mid)


def test_published_messages_arrive_in_order_with_their_properties(
    broker: Broker, session: BrokerSession, names: Names
) -> None:
    session.publish(
        [
            OutMessage("", names.notifications, b"one", "m1", {"x-k": "v"}, 1_700_000_000),
            to_queue(names, b"two", "m2"),
        ]
    )
    session.consume(names.notifications, prefetch=10)
    got = take(broker, session, 2)
    assert [m.body for m in got] == [b"one", b"two"]
    first = got[0]
    assert (first.message_id, dict(first.headers), first.timestamp) == (
        "m1",
        {"x-k": "v"},
        1_700_000_000,
    )
    assert first.queue == names.notifications and not first.redelivered
    assert got[0].delivery_tag < got[1].delivery_tag


def test_topology_routes_events_checks_and_deliveries(
    broker: Broker, session: BrokerSession, names: Names
) -> None:
    session.publish(
        [
            OutMessage(names.events, "alertmanager", b"event"),  # topic, bound with '#'
            OutMessage(names.checks, "p1", b"partition 1"),  # direct
            OutMessage(names.deliveries, "slack", b"to slack"),  # direct, by medium type
            OutMessage(names.dead, "anything", b"dead"),  # fanout
        ]
    )
    expected = {
        names.ingest: b"event",
        names.processor(1): b"partition 1",
        names.gateway("slack"): b"to slack",
        names.dead: b"dead",
    }
    for queue in expected:
        session.consume(queue, prefetch=10)
    got = take(broker, session, 4)
    assert {m.queue: m.body for m in got} == expected


def test_ack_is_cumulative_and_unacked_deliveries_come_back_redelivered(
    broker: Broker, names: Names, session: BrokerSession
) -> None:
    session.publish([to_queue(names, b"%d" % i) for i in range(4)])
    session.consume(names.notifications, prefetch=10)
    got = take(broker, session, 4)
    session.ack(got[1].delivery_tag)  # acks 0 and 1 together
    session.close()

    again = broker.connect("tocsin-test-contract-2")
    again.consume(names.notifications, prefetch=10)
    back = take(broker, again, 2)
    assert [(m.body, m.redelivered) for m in back] == [(b"2", True), (b"3", True)]
    again.ack(back[-1].delivery_tag)
    assert take(broker, again, 1, timeout=0.3) == []
    again.close()


def test_prefetch_bounds_unacked_deliveries(
    broker: Broker, session: BrokerSession, names: Names
) -> None:
    session.publish([to_queue(names, b"%d" % i) for i in range(5)])
    session.consume(names.notifications, prefetch=2)
    first = take(broker, session, 5, timeout=0.5)
    assert [m.body for m in first] == [b"0", b"1"]
    session.ack(first[-1].delivery_tag)
    assert [m.body for m in take(broker, session, 2)] == [b"2", b"3"]


def test_queue_stats_count_ready_messages_and_consumers(
    broker: Broker, session: BrokerSession, names: Names
) -> None:
    session.publish([to_queue(names, b"a"), to_queue(names, b"b")])
    take(broker, session, 0)
    stats = session.queue_stats(names.notifications)
    assert stats is not None and (stats.messages, stats.consumers) == (2, 0)
    assert session.queue_stats(names.ns + ".no-such-queue") is None
    session.consume(names.notifications, prefetch=10)  # the session is still usable
    assert len(take(broker, session, 2)) == 2


def test_a_message_returned_past_the_delivery_limit_is_dead_lettered(
    broker: Broker, session: BrokerSession, names: Names
) -> None:
    session.publish([to_queue(names, b"poison", "p1")])
    for attempt in range(DELIVERY_LIMIT + 1):
        s = broker.connect(f"tocsin-test-contract-{attempt}")
        s.consume(names.notifications, prefetch=10)
        assert [m.body for m in take(broker, s, 1)] == [b"poison"], attempt
        s.close()  # unacked: the broker counts one more return
    session.consume(names.dead, prefetch=10)
    assert [m.body for m in take(broker, session, 1)] == [b"poison"]
    session.consume(names.notifications, prefetch=10)
    assert take(broker, session, 1, timeout=0.3) == []


def test_a_closed_session_fails_with_a_connection_error(broker: Broker, names: Names) -> None:
    s = broker.connect("tocsin-test-contract-closed")
    s.declare_topology(names, PARTITIONS)
    s.close()
    assert not s.is_open
    with pytest.raises(broker.connection_errors):
        s.publish([to_queue(names, b"x")])
