"""Two processor processes split the partitions; per-check order holds across them."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import httpx
import msgspec
import pytest

from benchmarks.ports import free_port
from shared.amqp import Names
from shared.check_store import CheckStore
from shared.config import Settings
from shared.keys import Keys
from shared.models import NOTIFICATION_REF_DECODER, Notification
from shared.records import from_hash
from shared.store import connect_redis
from tests.conftest import settings_env
from tests.integration.test_processor_worker import ev, send
from tests.support import collect, declare

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The processor as a stage on its own: it publishes refs (no notifier runs here)."""
    return msgspec.structs.replace(settings, processor_expands=False)


def consumed_queues(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tocsin_messages_consumed_total{"):
            queue = line.split('queue="', 1)[1].split('"', 1)[0]
            out[queue] = float(line.rsplit(" ", 1)[1])
    return out


def test_two_processor_processes_split_partitions_and_keep_order(settings: Settings) -> None:
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    declare(settings)
    ports = [free_port(), free_port()]
    procs = []
    for spec, port in zip(("0-1", "2-3"), ports, strict=True):
        env = settings_env(settings)
        env.update({"TOCSIN_PROCESSOR_PARTITIONS": spec, "TOCSIN_METRICS_PORT": str(port)})
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.processor"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    try:
        checks = [(f"host{i}", "ping") for i in range(16)]
        # Each check alternates critical/warning every second and notifies every event
        # (delays 0), sent in three rounds so order spans several messages and batches.
        expected: dict[str, list[float]] = defaultdict(list)
        for rnd in range(3):
            batch = []
            for entity, check in checks:
                for j in range(10):
                    t = 1000.0 + rnd * 10 + j
                    state = "critical" if j % 2 else "warning"
                    batch.append(
                        ev(entity, check, t, state, initial_failure_delay=0, repeat_failure_delay=0)
                    )
                    expected[entity].append(t)
            send(settings, batch)
        total = sum(len(v) for v in expected.values())
        got = collect(settings, [names.notifications], n=total, timeout=60)
        assert len(got) == total
        r = connect_redis(settings)
        seen: dict[str, list[float]] = defaultdict(list)
        for m in got:
            nid = NOTIFICATION_REF_DECODER.decode(m["body"]).id
            n = from_hash(Notification, r.hgetall(keys.notification(nid)))
            seen[n.entity].append(n.time)
        assert seen == expected  # every notification, in per-check order
        store = CheckStore(r, keys)
        for entity, check in checks:
            detail = store.get(entity, check)
            assert detail is not None and detail.last_update == 1029.0
            assert detail.state == "critical"
        served = [consumed_queues(p) for p in ports]
        assert set(served[0]) <= {names.processor(0), names.processor(1)}
        assert set(served[1]) <= {names.processor(2), names.processor(3)}
        assert served[0] and served[1]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [
        p.stderr.read() if p.stderr else b"" for p in procs
    ]
