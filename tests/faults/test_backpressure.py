"""Back-pressure: slow receivers grow queues, not worker memory; broker alarms block publishers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.amqp import Names, OutMessage, Publisher, connect, declare_topology
from shared.config import Settings
from tests.conftest import cleanup_namespace
from tests.faults.conftest import (
    CountingReceiver,
    PrivateRabbit,
    children,
    configure_webhook,
    fault_env,
    make_settings,
    queue_depths,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, publish
from tests.faults.test_crash import record, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults]


# Messages still waiting in the broker while the gateway works through its prefetch:
# 4,000 deliveries are at least 40 arrays, of which the gateway holds at most 8.
BACKLOG_MESSAGES = 20


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_slow_gateway_grows_the_queue_not_the_worker_memory(
    shared_settings: Settings, receiver: CountingReceiver, tmp_path: Path
) -> None:
    s = shared_settings
    receiver.delay_s = 0.5  # a receiver that takes half a second per page
    configure_webhook(s, receiver.url)
    # 4,000 events, every one a state change: 4,000 deliveries against ~64/s of capacity,
    # in arrays of up to 100 per message (the notifier's batches).
    stream = Stream(count=4000, checks=4000, t0=time.time(), rate=4000.0)
    up = start_up(fault_env(s), "ingest,processor,notifier,gateway:webhook", tmp_path / "up.log")
    try:
        wait_ready(s, up.pid)
        (gw,) = [p for p, a in children(up.pid).items() if "services.gateways" in a]
        baseline = _rss_mb(gw)
        for _ in publish(stream, s.amqp_url, s.namespace, paced=False):
            pass
        gq = Names(s.namespace).gateway("webhook")
        assert wait_until(lambda: queue_depths(s)[gq] >= BACKLOG_MESSAGES, 60), queue_depths(s)
        peak = baseline
        for _ in range(10):
            peak = max(peak, _rss_mb(gw))
            wait_until(lambda: False, 0.3)
        depth = queue_depths(s)[gq]
        delivered = len(receiver.snapshot())
    finally:
        # Measured; a clean stop finishes the gateway's prefetched batches (up to 800
        # deliveries), which at 0.5 s a page would take seconds.
        receiver.delay_s = 0.0
        stop_up(up)
    record(
        {
            "fault": "webhook receiver 0.5 s/page (slow gateway)",
            "events": stream.count,
            "queued_at_gateway": depth,
            "delivered_meanwhile": delivered,
            "gateway_rss_mb": round(peak, 1),
            "gateway_rss_baseline_mb": round(baseline, 1),
        }
    )
    # Prefetch bounds what the gateway holds: 2 batches of 32 / 8 = 4 messages (at most 800
    # deliveries); the rest of the 4,000 waits in the broker.
    assert depth >= BACKLOG_MESSAGES
    assert peak - baseline < 60, f"gateway memory grew from {baseline:.0f} to {peak:.0f} MB"


def test_memory_alarm_blocks_publishers_drops_nothing_and_tocsin_check_shows_it(
    services_up: None, private_rabbit: PrivateRabbit
) -> None:
    node = private_rabbit
    s = make_settings(amqp_url=node.url)
    names = Names(s.namespace)
    conn = connect(s.amqp_url, name="tocsin-test-publisher")
    declare_topology(conn.channel(), names, s.partitions)
    alarm = node.ctl("set_vm_memory_high_watermark", "absolute", "1")
    assert alarm.returncode == 0, alarm.stderr
    pub = Publisher(conn)
    msgs = [OutMessage("", names.notifications, b'{"id": "n%d"}' % i) for i in range(200)]
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pub.publish(msgs)
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    # `tocsin check` runs while the publisher stays blocked (the alarm is on until the
    # finally below), instead of after those seconds.
    check = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "check", "--json"],
        env=fault_env(s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        blocked_for = 3.0
        assert not done.wait(blocked_for), f"publish returned during the alarm: {errors}"
        stdout, stderr = check.communicate(timeout=60)
        report = json.loads(stdout)
        assert check.returncode == 1, stderr
        assert report["amqp"].startswith("blocked"), report["amqp"]
    finally:
        if check.poll() is None:
            check.kill()
            check.communicate()
        node.ctl("set_vm_memory_high_watermark", "0.4")
    assert done.wait(30), "publish still blocked after the alarm cleared"
    assert not errors
    conn.close()
    probe = connect(s.amqp_url, name="tocsin-test-probe")
    count = probe.channel().queue_declare(names.notifications, passive=True).method.message_count
    probe.close()
    cleanup_namespace(s)  # the node outlives this test (private_rabbit)
    record(
        {
            "fault": "RabbitMQ memory alarm (publisher blocked >= 3 s)",
            "published": len(msgs),
            "in_queue_after": count,
            "check_reported": report["amqp"],
        }
    )
    assert count == len(msgs)
