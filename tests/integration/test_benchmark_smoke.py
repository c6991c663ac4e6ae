"""The benchmark harness runs end to end on a tiny workload and reports sane numbers.

Bounded: runs of a few dozen events (about 5 s each; the Redis Cluster one, marked
``cluster``, about 12 s).  It checks the report's shape and internal consistency, never
performance targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from benchmarks.redis_cluster import REDIS_CLI, REDIS_SERVER
from shared.amqp import Names, connect
from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_FIELDS = (
    "events_per_s",
    "notifications_per_s",
    "deliveries_per_s",
    "latency_ms",
    "rss_mb",
    "redis_bytes_per_check",
    "elapsed_s",
)
WORKERS = {"ingest", "processor", "notifier", "gateway:webhook", "api"}


def run_bench(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {"TOCSIN_REDIS_URL": REDIS_URL, "TOCSIN_AMQP_URL": AMQP_URL, "TOCSIN_PARTITIONS": "2"}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", *args, "--timeout", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def assert_cleaned_up(namespace: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    assert not list(r.scan_iter(match=f"{namespace}:*", count=1000))
    conn = connect(AMQP_URL)
    try:
        channel = conn.channel()
        with pytest.raises(Exception, match="NOT_FOUND"):
            channel.queue_declare(Names(namespace).ingest, passive=True)
    finally:
        if conn.is_open:
            conn.close()


@pytest.mark.usefixtures("services_up")
def test_storm_with_rollup_reports_every_field_and_rolls_up() -> None:
    report = run_bench("--workload", "storm", "--events", "40", "--checks", "40")
    for name in CONTRACT_FIELDS:
        assert name in report, name
    assert report["complete"] is True
    assert report["notifications"] == 40
    assert report["events_per_s"] > 0 and report["notifications_per_s"] > 0
    # Threshold 10: a few individual pages, then one rollup, never 40 pages.
    assert report["rollup_messages"] >= 1
    assert report["deliveries"] < 40
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 60_000
    assert set(report["rss_mb"]) == WORKERS
    assert all(5 < mb < 4000 for mb in report["rss_mb"].values())
    assert all(s >= 0 for s in report["cpu_s"].values())
    assert report["redis_bytes_per_check"] > 0
    depths = report["queue_depths"]
    assert depths["ingest"] == 0 and depths["notifications"] == 0
    assert depths["gateway.webhook"] == 0
    assert report["dead_letters"] == 0
    assert_cleaned_up(report["namespace"])


@pytest.mark.usefixtures("services_up")
def test_steady_single_events_are_all_applied_without_notifications() -> None:
    report = run_bench("--workload", "steady", "--events", "30", "--checks", "30", "--batch", "1")
    assert report["complete"] is True and report["batch"] == 1
    assert report["events"] == 30 and report["events_per_s"] > 0
    assert report["notifications"] == 0 and report["deliveries"] == 0
    assert report["elapsed_s"] >= report["processed_s"] > 0
    assert report["redis_check_keys_bytes_per_check"] > 0
    assert_cleaned_up(report["namespace"])


@pytest.mark.usefixtures("services_up")
def test_flapping_through_the_api_delivers_every_page_without_ingest() -> None:
    report = run_bench(
        "--workload", "flapping", "--events", "20", "--checks", "10", "--batch", "1",
        "--via", "api",
    )  # fmt: skip
    assert report["complete"] is True and report["via"] == "api"
    # Every flapping event notifies: 20 events, 20 webhook deliveries.
    assert report["notifications"] == 20 and report["deliveries"] == 20
    lat = report["latency_ms"]
    assert lat["samples"] == 20 and 0 < lat["p50"] <= lat["max"] < 60_000
    # The API routes HTTP events to the processor itself: ingest consumes nothing.
    assert report["stage_batch_ms"].get("ingest", {}).get("batches", 0) == 0
    # The processor expanded every notification itself (one processor: no commit races).
    assert report["expansion_fallbacks"] == 0 and report["commit_conflicts"] == 0
    assert_cleaned_up(report["namespace"])


@pytest.mark.cluster  # starts a private 3-node Redis Cluster: ./deploy/test.sh --cluster
@pytest.mark.usefixtures("services_up")
def test_replicas_on_a_redis_cluster_deliver_every_page_and_report_cpu_per_stage() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server/redis-cli not installed: no private Redis Cluster")
    report = run_bench(
        "--workload", "storm", "--events", "20", "--checks", "20", "--rollup", "0",
        "--processors", "2", "--notifiers", "2", "--gateways", "2", "--redis-cluster",
    )  # fmt: skip
    assert report["complete"] is True
    assert report["redis"] == "cluster of 3 primaries"
    assert report["processes"] == {"processor": 2, "notifier": 2, "gateway:webhook": 2}
    assert set(report["rss_mb"]) == WORKERS | {"processor#2", "notifier#2", "gateway:webhook#2"}
    # 20 checks turn critical: 20 problems, each delivered once, no rollup.
    assert report["notifications"] == 20 and report["deliveries"] == 20
    # Per stage, the replicas' CPU summed, per timed event and per delivery.
    stages = {"ingest", "processor", "notifier", "gateway:webhook", "api"}
    assert set(report["cpu_ms_per_event"]) == stages == set(report["cpu_ms_per_delivery"])
    assert report["cpu_ms_per_event"]["processor"] > 0
    total = sum(report["cpu_s"][w] for w in ("notifier", "notifier#2")) * 1000 / 20
    assert report["cpu_ms_per_event"]["notifier"] == pytest.approx(total, abs=0.01)
    # The cluster's three nodes are the Redis whose CPU is counted.
    assert len([k for k in report["server_cpu_s"] if k.startswith("redis-server:")]) == 3
    assert report["redis_cpu_ms_per_event"] >= 0
    # The cluster is gone with the run; the queues are deleted.
    conn = connect(AMQP_URL)
    try:
        with pytest.raises(Exception, match="NOT_FOUND"):
            conn.channel().queue_declare(Names(report["namespace"]).ingest, passive=True)
    finally:
        if conn.is_open:
            conn.close()
