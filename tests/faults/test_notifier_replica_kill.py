"""kill -9 one of two notifier replicas mid-stream: every notification still becomes its delivery.

Two ``tocsin worker notifier`` processes share ``NS.notifications``; a storm
of problem notifications (distinct checks, one webhook contact) is queued;
once the replicas are well into it, one is killed with SIGKILL.  The
survivor takes the killed one's unacked batch (redelivered), skips what it
had committed (``notified`` markers), and its outbox sweep republishes what
it had committed but not published.  At the gateway queue every expected
delivery id must be present; copies may only come from the killed replica's
last batch (gateways drop them by delivery id).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from shared.amqp import Names, OutMessage, Publisher, connect, declare_topology
from shared.config import Settings
from shared.keys import Keys
from shared.models import ENCODER, Notification, NotificationRef, decode_deliveries
from shared.records import to_hash
from shared.store import connect_redis
from tests.faults.conftest import configure_webhook, fault_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

COUNT = 3000
BATCH = 50


def _storm(settings: Settings, r: redis.Redis) -> list[str]:
    keys, names = Keys(settings.namespace), Names(settings.namespace)
    ids = [f"n{i:05d}" for i in range(COUNT)]
    pipe = r.pipeline(transaction=False)
    for i, nid in enumerate(ids):
        n = Notification(
            id=nid,
            type="problem",
            check_id=f"k{i}",
            entity="web",
            check=f"k{i}",
            state="critical",
            severity="critical",
            time=1_790_000_000.0 + i,
        )
        pipe.hset(keys.notification(nid), mapping=to_hash(n))
    pipe.execute()
    conn = connect(settings.amqp_url, name="tocsin-fault-replicas")
    try:
        declare_topology(conn.channel(), names, settings.partitions)
        refs = [
            OutMessage("", names.notifications, ENCODER.encode(NotificationRef(nid)), nid)
            for nid in ids
        ]
        for start in range(0, len(refs), 500):
            Publisher(conn).publish(refs[start : start + 500])
    finally:
        conn.close()
    return ids


def _drain_gateway_queue(settings: Settings) -> list[str]:
    """Every delivery id waiting in ``NS.gateway.webhook`` (consumed)."""
    names = Names(settings.namespace)
    conn = connect(settings.amqp_url, name="tocsin-fault-replicas")
    got: list[str] = []
    try:
        ch = conn.channel()
        while True:
            method, _props, body = ch.basic_get(names.gateway("webhook"), auto_ack=True)
            if method is None:
                return got
            got += [d.id for d in decode_deliveries(body)]
    finally:
        conn.close()


def test_kill_one_of_two_notifiers_loses_nothing(shared_settings: Settings, tmp_path: Path) -> None:
    settings = shared_settings
    configure_webhook(settings, "http://127.0.0.1:9/unused")
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    ids = _storm(settings, r)
    env = fault_env(
        settings,
        TOCSIN_BATCH_SIZE=str(BATCH),
        TOCSIN_PREFETCH=str(BATCH),
        TOCSIN_LOG_LEVEL="WARNING",
        # The killed replica's unpublished outbox entries are republished once this
        # old (production: 15 s).  Safe this short: the survivor clears what it
        # published before each sweep, and no other replica is alive to race it.
        TOCSIN_NOTIFIER_OUTBOX_GRACE_S="2",
    )
    argv = [sys.executable, "-m", "services.cli.main", "worker", "notifier"]
    logs = [tmp_path / f"notifier{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))

    notified = [keys.notified(nid) for nid in ids]  # built once: polled every 0.1 s

    def expanded() -> int:
        return int(r.exists(*notified))

    try:
        assert wait_until(lambda: expanded() >= COUNT // 3, 120), logs[0].read_text()
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].wait()
        at_kill = expanded()
        assert at_kill < COUNT, "the storm was over before the kill; make it larger"
        # The survivor finishes, and its outbox sweep republishes the killed one's leftovers.
        assert wait_until(lambda: expanded() == COUNT, 180), logs[0].read_text()
        assert wait_until(lambda: r.hlen(keys.notifier_outbox()) == 0, 60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
    delivered = _drain_gateway_queue(settings)
    expected = {f"{nid}:m1" for nid in ids}
    assert set(delivered) == expected  # none lost, none invented
    copies = len(delivered) - len(set(delivered))
    print(f"\nkilled at {at_kill}/{COUNT} expanded; copies at the gateway queue: {copies}")
    assert copies <= BATCH  # only the killed replica's last batch may be published twice
