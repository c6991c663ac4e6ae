"""The node that led the dead-letter and delay queues dies mid-stream, with retries parked in them.

Those queues (``NS.dead``, ``NS.gateway.<type>.retry.<level>``) used to be
classic queues, held by the one node that declared them: killing it left the
gateways unable to redeclare their delay queues and delivery stalled (324 of
1,200 pages in 180 s in an earlier run).  They are quorum queues now
(shared/amqp.py), so they must survive like the work queues.

On the test's own 3-node cluster (tests/faults/rabbit_cluster.py) the
topology is declared through the first node, as a worker would; the victim
is the node leading most of those queues, and it is also the first node in
the workers' ``TOCSIN_AMQP_URL`` (so every worker is connected to it and
must move to a survivor).  The webhook receiver answers 503 from just before
the kill until two seconds after it, so deliveries are parked in the delay
queues while their leader dies; then every expected page must arrive
exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from shared.amqp import (
    GATEWAY_RETRY_LEVELS,
    Names,
    connect,
    declare_queue,
    declare_topology,
    gateway_retry_args,
)
from shared.queue_migration import formerly_classic
from shared.store import connect_redis, delete_namespace
from tests.conftest import REDIS_URL
from tests.faults.conftest import (
    CountingReceiver,
    configure_webhook,
    fault_env,
    make_settings,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, compare, publish
from tests.faults.rabbit_cluster import quorum_queues, rabbit_cluster, running_nodes
from tests.faults.test_crash import drain, record, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]

WORKERS = "ingest,processor,notifier,gateway:webhook"


def test_killing_the_leader_of_the_dead_letter_and_delay_queues_loses_and_repeats_no_page(
    services_up: None, receiver: CountingReceiver, tmp_path: Path
) -> None:
    with rabbit_cluster(tmp_path / "rabbit") as nodes:
        first = make_settings(REDIS_URL, nodes[0].url)
        names = Names(first.namespace)
        conn = connect(nodes[0].url, name="tocsin-test-declare")
        channel = conn.channel()
        declare_topology(channel, names, first.partitions)
        for level in range(GATEWAY_RETRY_LEVELS):
            declare_queue(
                channel, names.gateway_retry("webhook", level), gateway_retry_args(names, "webhook")
            )
        conn.close()
        watched = {s.name for s in formerly_classic(names, ("webhook",))}
        before = quorum_queues(nodes[0], names.ns + ".")
        leaders = Counter(before[q][0] for q in watched if q in before)
        victim = next(n for n in nodes if n.name == leaders.most_common(1)[0][0])
        survivors = [n for n in nodes if n is not victim]
        settings = msgspec.structs.replace(
            first, amqp_url=",".join(n.url for n in (victim, *survivors))
        )
        stream = Stream(count=2000, checks=200, t0=time.time(), rate=500.0)
        expected = stream.expected()
        configure_webhook(settings, receiver.url)
        env = fault_env(settings, TOCSIN_DELIVERY_ATTEMPTS="30")
        up = start_up(env, WORKERS, tmp_path / "up.log")
        try:
            wait_ready(settings, up.pid)
            half = stream.count // 2
            # Every delivery of the first half is refused, so they wait in the delay
            # queues. (Flipping the receiver mid-publish relied on deliveries still
            # being in flight then; once the receiver stopped dropping SYNs they all
            # arrived before the flip and nothing was parked.)
            receiver.status = 503
            for _ in publish(stream, victim.url, names.ns, 0, half):
                pass
            # Wait until deliveries were refused, i.e. parked in the delay queues.
            assert wait_until(lambda: receiver.refused >= 20, 20, 0.05), "nothing was refused"
            victim.stop(kill=True)
            killed_at = time.monotonic()
            for _ in publish(stream, survivors[0].url, names.ns, half):
                pass
            wait_until(lambda: time.monotonic() - killed_at > 2, 5)
            receiver.status = 204
            drain(settings, receiver, sum(expected.values()), timeout=120)
            wait_until(lambda: False, 2)  # a late repeat would arrive now
            result = compare(expected, receiver.snapshot())
            after = quorum_queues(survivors[0], names.ns + ".")
            alive = running_nodes(survivors[0])
        finally:
            stop_up(up)
            delete_namespace(connect_redis(settings), settings.namespace)
    log = (tmp_path / "up.log").read_text(errors="replace")[-3000:]
    row = {
        "fault": "leader of NS.dead / delay queues killed mid-stream (3-node cluster)",
        "events": stream.count,
        "delay_and_dead_queues_led_by_victim": leaders[victim.name],
        "refused_by_receiver": receiver.refused,
        **result,
    }
    record(row)
    print(row, log)
    names_all = {n.name for n in nodes}
    # NS.dead and every webhook delay queue: quorum queues with a member on each node.
    assert watched <= before.keys(), sorted(watched - before.keys())
    assert all(set(before[q][1]) == names_all for q in watched), before
    assert leaders[victim.name] >= 1
    assert victim.name not in alive and len(alive) == 2
    assert all(after[q][0] != victim.name for q in watched), after
    assert result["expected"] >= 300
    assert result["lost"] == 0, row
    assert result["duplicated"] == 0, row
    assert result["distinct_ids"] == result["expected"], row
