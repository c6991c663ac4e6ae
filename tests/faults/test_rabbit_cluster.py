"""The pipeline over a 3-node RabbitMQ cluster, and one node killed mid-stream.

The cluster is started by the test (tests/faults/rabbit_cluster.py): three
``rabbitmq-server`` nodes with their own names, ports and data directories,
joined with ``rabbitmqctl join_cluster``.  Tocsin's workers connect to the
first node and declare their topology there; every work queue must come out
as a quorum queue with a member on each node and the leaders spread over all
three.  Halfway through a stream of 6,000 events the third node — leader of
some of those queues, and not the one the workers are connected to — is
killed with SIGKILL: the survivors elect new leaders, and every expected page
reaches the webhook receiver exactly once (docs/scaling.md).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

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


def test_killing_one_of_three_rabbitmq_nodes_mid_stream_loses_and_repeats_no_page(
    services_up: None, receiver: CountingReceiver, tmp_path: Path
) -> None:
    with rabbit_cluster(tmp_path / "rabbit") as nodes:
        entry, victim = nodes[0], nodes[2]
        settings = make_settings(REDIS_URL, entry.url)
        stream = Stream(count=6000, checks=100, t0=time.time(), rate=1000.0)
        expected = stream.expected()
        configure_webhook(settings, receiver.url)
        up = start_up(fault_env(settings), WORKERS, tmp_path / "up.log")
        try:
            wait_ready(settings, up.pid)
            prefix = settings.namespace + "."
            before = quorum_queues(entry, prefix)
            killed_at = 0
            for sent in publish(stream, entry.url, settings.namespace):
                if not killed_at and sent >= stream.count // 2:
                    victim.stop(kill=True)
                    killed_at = sent
            drain(settings, receiver, sum(expected.values()), timeout=180)
            wait_until(lambda: False, 2)  # a late repeat would arrive now
            result = compare(expected, receiver.snapshot())
            after = quorum_queues(entry, prefix)
            alive = running_nodes(entry)
        finally:
            stop_up(up)
            delete_namespace(connect_redis(settings), settings.namespace)
    log = (tmp_path / "up.log").read_text(errors="replace")[-3000:]
    row = {
        "fault": "one of 3 RabbitMQ nodes killed mid-stream",
        "events": stream.count,
        "killed_after": killed_at,
        "queues_led_by_victim": sum(1 for lead, _ in before.values() if lead == victim.name),
        **result,
    }
    record(row)
    print(row, log)
    # Every work queue (ingest, the processor partitions, notifications, gateways)
    # is a quorum queue on all three nodes, and the leaders are spread.
    names = {n.name for n in nodes}
    assert len(before) >= settings.partitions + 3, before
    assert all(set(members) == names for _, members in before.values()), before
    assert Counter(lead for lead, _ in before.values()).keys() == names, before
    assert 0 < killed_at < stream.count
    assert victim.name not in alive and len(alive) == 2
    # The queues the victim led have new leaders on the survivors.
    assert all(lead != victim.name for lead, _ in after.values()), after
    assert result["expected"] > 1000
    assert result["lost"] == 0, row
    assert result["duplicated"] == 0, row
    assert result["distinct_ids"] == result["expected"], row
