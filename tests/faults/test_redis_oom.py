"""Redis at maxmemory (noeviction): workers keep their messages unacked, report unhealthy, lose nothing.

Runs against a private redis-server (tests/faults/conftest.py) whose
maxmemory this test lowers below what it uses; the broker is the shared one,
in a fresh namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import redis
from prometheus_client import CollectorRegistry

from services.cli.health import gather
from services.processor.worker import build_consumer
from shared.amqp import Names
from shared.keys import Keys
from shared.store import connect_redis
from tests.faults.conftest import PrivateRedis, make_settings, queue_depths, wait_until
from tests.integration.test_processor_worker import ev, send
from tests.support import collect, declare, running

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _fill(r: redis.Redis) -> int:
    """Write filler keys until Redis refuses a write; returns how many were written."""
    n = 0
    while True:
        try:
            r.set(f"filler:{n}", "x" * 4096)
        except redis.exceptions.OutOfMemoryError:
            return n
        n += 1


def _total(registry: CollectorRegistry, sample: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == sample)


def test_processor_holds_its_batch_while_redis_is_full_and_resumes(
    private_redis: PrivateRedis,
) -> None:
    from tests.conftest import cleanup_namespace, settings_env

    # The processor as a stage on its own, publishing refs: with its expansion on, whether
    # the first batch after the OOM came out as refs or as deliveries would depend on how
    # much memory was free when the expansion committed (it falls back to refs on OOM).
    s = make_settings(redis_url=private_redis.url, TOCSIN_PROCESSOR_EXPANDS="false")
    try:
        declare(s)
        r = connect_redis(s)
        r.config_set("maxmemory-policy", "noeviction")
        used = int(r.info("memory")["used_memory"])
        r.config_set("maxmemory", str(used + 512 * 1024))
        written = _fill(r)
        assert written > 0
        report = gather(s)
        assert report.redis_memory is not None and report.redis_memory.level == "full"
        assert not report.healthy
        cli = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "check", "--json"],
            env=settings_env(s),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1, cli.stderr
        memory = json.loads(cli.stdout)["redis_memory"]
        assert memory["level"] == "full" and memory["ratio"] >= 0.95, memory
        assert memory["maxmemory_bytes"] == int(r.config_get("maxmemory")["maxmemory"])

        registry = CollectorRegistry()
        names = Names(s.namespace)
        with running(build_consumer(s, registry, r)):
            send(s, [ev("web", "http", time.time(), "critical", initial_failure_delay=0)])

            def retried() -> bool:
                value = registry.get_sample_value(
                    "tocsin_batch_retries_total", {"stage": "processor"}
                )
                return (value or 0) >= 2

            assert wait_until(retried, timeout=30), "the processor never retried its batch"
            assert registry.get_sample_value("tocsin_worker_healthy") == 0
            # Nothing was dead-lettered, nothing was acked, nothing was published.
            assert _total(registry, "tocsin_messages_acked_total") == 0
            assert _total(registry, "tocsin_dead_letters_total") == 0
            assert queue_depths(s).get(names.dead, 0) == 0
            assert not r.exists(Keys(s.namespace).check_ids())

            # An operator frees memory: the held batch goes through.
            for start in range(0, written, 1000):
                r.delete(*(f"filler:{i}" for i in range(start, min(start + 1000, written))))
            got = collect(s, [names.notifications], n=1, timeout=30)
            assert len(got) == 1
            assert wait_until(
                lambda: registry.get_sample_value("tocsin_worker_healthy") == 1, timeout=15
            )
        assert queue_depths(s).get(names.dead, 0) == 0
    finally:
        cleanup_namespace(s)
