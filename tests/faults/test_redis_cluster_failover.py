"""Fail over one Redis Cluster primary mid-stream: every page still arrives exactly once.

A private cluster of three primaries, each with a replica (tests/redis_cluster.py),
runs the pipeline (``tocsin up``: ingest, processor, notifier, webhook gateway)
with ``?cluster=true``.  Halfway through a stream of 6,000 events the replica of
the primary that owns the routing slot — every notifier transaction and every
gateway lane read goes there (docs/scaling.md) — is told ``CLUSTER FAILOVER``:
the coordinated manual failover, in which the primary stops writes until the
replica has caught up and taken over.  Workers see redirections and errors for
a moment and retry their batches; nothing may be lost or sent twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from shared.keys import ROUTING_TAG
from shared.store import connect_redis
from tests.conftest import AMQP_URL, cleanup_namespace
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
from tests.faults.test_crash import drain, record, wait_ready
from tests.redis_cluster import cluster_url, redis_cluster_nodes

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]

WORKERS = "ingest,processor,notifier,gateway:webhook"


def _role(port: int) -> tuple[str, int | None]:
    """(role, its primary's port for a replica)."""
    info = redis.Redis(port=port, decode_responses=True).info("replication")
    return str(info["role"]), (int(info["master_port"]) if "master_port" in info else None)


def test_failing_over_the_routing_primary_mid_stream_loses_and_repeats_no_page(
    services_up: None, receiver: CountingReceiver, tmp_path: Path
) -> None:
    with redis_cluster_nodes(masters=3, replicas=1) as ports:
        settings = make_settings(cluster_url(ports), AMQP_URL)
        r = connect_redis(settings)
        assert isinstance(r, RedisCluster)
        primary = int(r.nodes_manager.get_node_from_slot(r.keyslot(ROUTING_TAG)).port)
        (replica,) = [p for p in ports if _role(p) == ("slave", primary)]
        stream = Stream(count=6000, checks=100, t0=time.time(), rate=1000.0)
        expected = stream.expected()
        configure_webhook(settings, receiver.url)
        up = start_up(fault_env(settings), WORKERS, tmp_path / "up.log")
        try:
            wait_ready(settings, up.pid)
            failed_over_at = 0
            for sent in publish(stream, settings.amqp_url, settings.namespace):
                if not failed_over_at and sent >= stream.count // 2:
                    redis.Redis(port=replica).execute_command("CLUSTER FAILOVER")
                    failed_over_at = sent
            promoted = wait_until(lambda: _role(replica)[0] == "master", 30, 0.2)
            demoted = wait_until(lambda: _role(primary) == ("slave", replica), 30, 0.2)
            drain(settings, receiver, sum(expected.values()), timeout=180)
            wait_until(lambda: False, 2)  # a late repeat would arrive now
            result = compare(expected, receiver.snapshot())
        finally:
            stop_up(up)
            cleanup_namespace(settings)
    log = (tmp_path / "up.log").read_text(errors="replace")
    retries = log.count("retry")
    row = {
        "fault": "Redis Cluster primary of the routing slot failed over mid-stream",
        "events": stream.count,
        "failed_over_after": failed_over_at,
        "log_lines_with_retry": retries,
        **result,
    }
    record(row)
    print(row, log[-3000:])
    assert promoted and demoted, "the replica did not take over the routing slot"
    assert 0 < failed_over_at < stream.count
    assert result["expected"] > 1000
    assert result["lost"] == 0, row
    assert result["duplicated"] == 0, row
    assert result["distinct_ids"] == result["expected"], row
