"""SIGTERM drains in-flight work within the deadline; nothing is lost, duplicated or left unacked."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from services.cli.supervisor import GRACE_S
from shared.config import Settings
from tests.faults.conftest import (
    CountingReceiver,
    configure_webhook,
    fault_env,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, compare, publish
from tests.faults.test_crash import drain, record, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WORKERS = "ingest,processor,notifier,gateway:webhook"


def test_sigterm_mid_stream_drains_in_time_and_a_restart_finishes_the_rest_exactly_once(
    shared_settings: Settings, receiver: CountingReceiver, tmp_path: Path
) -> None:
    s = shared_settings
    # Deliveries take a while, so some are in flight at SIGTERM (asserted below). The
    # gateway sends a batch of four messages at a time here (about 80/s): a slower
    # receiver only makes the drain after the restart longer, not the test stronger,
    # so the receiver answers at once again after the stop.
    receiver.delay_s = 0.05
    configure_webhook(s, receiver.url)
    stream = Stream(count=5000, checks=500, t0=time.time(), rate=5000.0)
    expected = stream.expected()
    env = fault_env(s, TOCSIN_LOG_LEVEL="INFO")
    log1 = tmp_path / "up1.log"
    up = start_up(env, WORKERS, log1)
    try:
        wait_ready(s, up.pid)
        for _ in publish(stream, s.amqp_url, s.namespace, paced=False):
            pass
        assert wait_until(lambda: len(receiver.snapshot()) >= 100, 60)
        began = time.monotonic()
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=GRACE_S + 15)
        took = time.monotonic() - began
    finally:
        stop_up(up)
    at_stop = len(receiver.snapshot())
    text = log1.read_text(errors="replace")
    assert "did not stop in time" not in text, text[-3000:]
    # Every consumer loop said it stopped cleanly (finished its batch, acked, closed).
    stopped = set(re.findall(r"shared\.consumer: stopped .*?stage=(\S+)", text))
    assert stopped == {"ingest", "processor", "notifier", "gateway.webhook"}, text[-3000:]
    assert at_stop < sum(expected.values()), (
        "everything finished before SIGTERM; test proves nothing"
    )

    receiver.delay_s = 0.0
    up2 = start_up(env, WORKERS, tmp_path / "up2.log")
    try:
        wait_ready(s, up2.pid)
        drain(s, receiver, sum(expected.values()), timeout=120)
        wait_until(lambda: False, 2)
        result = compare(expected, receiver.snapshot())
    finally:
        stop_up(up2)
    row = {
        "fault": f"SIGTERM to tocsin up mid-stream (stopped in {took:.1f} s), then restart",
        "events": stream.count,
        "delivered_before_stop": at_stop,
        **result,
    }
    record(row)
    print(row)
    assert took < GRACE_S, f"shutdown took {took:.1f} s"
    assert result["lost"] == 0 and result["duplicated"] == 0, row
