"""Publishing to quorum queues in the moment their leader has died loses nothing.

RabbitMQ 3.10 (this machine's) answers ``tx.commit-ok`` for messages that a
quorum queue without a leader then refuses, and keeps refusing, on that
channel, every later message to that queue: with AMQP transactions
Tocsin's publisher lost them without a word (51 events of one processor
partition, or 289 parked deliveries, in the fault test of the queues'
leader, docs/reliability.md).  With publisher confirms the refusal is a
``basic.nack``: :class:`~shared.amqp.Publisher` raises ``PublishRefused``,
opens a new channel, and the caller publishes again.

Here, on the test's own 3-node cluster, the node leading some of eight
quorum queues is killed; at once a new connection to a survivor publishes
one message to every queue per batch, for a short while, and is closed
right after (as a worker's connection may be, before the elections end).
Every message the publisher saw confirmed must then be in its queue.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pika
import pytest

from shared.amqp import QUORUM, OutMessage, Publisher, PublishRefused, connect
from tests.faults.rabbit_cluster import ClusterRabbit, quorum_queues, rabbit_cluster
from tests.faults.test_crash import record

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]

QUEUES = 8
# Elections take 0.2-0.5 s here; the publisher starts within a few ms of the kill and its
# connection closes before the slowest election ends (where transactions lost messages).
PUBLISH_S = 0.1


@pytest.mark.timeout(180)
def test_messages_confirmed_while_a_quorum_queue_has_no_leader_are_all_stored(
    tmp_path: Path,
) -> None:
    with rabbit_cluster(tmp_path / "rabbit") as nodes:
        conn = connect(nodes[0].url)
        ch = conn.channel()
        ch.exchange_declare("x", exchange_type="direct", durable=True)
        for q in range(QUEUES):
            ch.queue_declare(f"q{q}", durable=True, arguments=QUORUM)
            ch.queue_bind(f"q{q}", "x", routing_key=f"q{q}")
        conn.close()
        leaders = {q: lead for q, (lead, _) in quorum_queues(nodes[0], "q").items()}
        victim = next(n for n in nodes[1:] if n.name in leaders.values())
        survivor = next(n for n in nodes if n is not victim)
        # As the workers do before a kill: publish through the victim.
        before = connect(victim.url)
        Publisher(before).publish(
            [OutMessage("x", f"q{q}", b"{}") for _ in range(20) for q in range(QUEUES)]
        )
        victim.stop(kill=True)
        killed = time.monotonic()
        confirmed, refused, batches = _publish_at_once(survivor, killed)
        held = _drain(survivor)
    confirmed.update({f"q{q}": 20 for q in range(QUEUES)})
    led = sorted(q for q, lead in leaders.items() if lead == victim.name)
    missing = {q: n for q, n in (confirmed - held).items() if n}
    row = {
        "fault": "quorum queues' leader killed; a new connection publishes at once",
        "queues_led_by_victim": led,
        "batches_confirmed": batches,
        "batches_refused": refused,
        "missing_per_queue": missing,
    }
    record(row)
    print(row)
    assert led
    assert batches > 0
    assert not missing, row


def _publish_at_once(node: ClusterRabbit, killed: float) -> tuple[Counter[str], int, int]:
    """Confirmed messages per queue, refused batches, confirmed batches; closes its connection."""
    conn = connect(node.url)
    publisher = Publisher(conn)
    confirmed: Counter[str] = Counter()
    refused = batches = 0
    try:
        while time.monotonic() - killed < PUBLISH_S or not batches:
            batch = [OutMessage("x", f"q{q}", b"{}") for q in range(QUEUES)]
            try:
                publisher.publish(batch)
            except PublishRefused:
                refused += 1
                continue
            batches += 1
            confirmed.update(m.routing_key for m in batch)
    finally:
        conn.close()
    return confirmed, refused, batches


def _drain(node: ClusterRabbit) -> Counter[str]:
    """Messages per queue, once every queue answers (a passive declare waits for its leader)."""
    conn = pika.BlockingConnection(pika.URLParameters(node.url))
    ch = conn.channel()
    held = Counter(
        {
            f"q{q}": ch.queue_declare(f"q{q}", passive=True).method.message_count
            for q in range(QUEUES)
        }
    )
    conn.close()
    return held
