"""kill -9 workers at random moments while ~1,000 events/s flow: every page exactly once.

The pipeline runs as processes under ``tocsin up`` (which restarts what dies).
The expected notifications are computed from the same event stream by the
pure processor core; the webhook receiver counts what people would get, by
delivery id and by (check, type, time).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from shared.config import Settings
from tests.faults.conftest import (
    CountingReceiver,
    Hit,
    children,
    configure_webhook,
    fault_env,
    queue_depths,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, compare, publish

pytestmark = [pytest.mark.integration, pytest.mark.faults]

VICTIMS = ("services.ingest", "services.processor", "services.notifier", "services.gateways")
SEND_S = 12
RATE = 1000.0
RESULTS = Path(os.environ.get("TOCSIN_FAULT_RESULTS", "/tmp/tocsin-fault-results.jsonl"))


def record(row: dict[str, object]) -> None:
    """Append a result row (the table in docs/reliability.md is built from these)."""
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def wait_ready(settings: Settings, up_pid: int, timeout: float = 60) -> None:
    from shared.keys import Keys
    from shared.store import connect_redis

    r = connect_redis(settings)  # a cluster client when the URL says ?cluster=true

    def ready() -> bool:
        if not r.hexists(Keys(settings.namespace).media_installed(), "webhook"):
            return False
        return len(children(up_pid)) >= 4

    assert wait_until(ready, timeout, 0.2), "pipeline not ready"


def drain(settings: Settings, rec: CountingReceiver, expected: int, timeout: float) -> bool:
    """Wait until every expected page arrived and the work queues are empty (False: timed out)."""

    def done() -> bool:
        if len(rec.snapshot()) < expected:
            return False
        depths = queue_depths(settings)
        return not any(v for q, v in depths.items() if not q.endswith(".dead"))

    return wait_until(done, timeout, 0.5)


def test_kill_minus_nine_workers_under_load_delivers_every_page_exactly_once(
    shared_settings: Settings, receiver: CountingReceiver, tmp_path: Path
) -> None:
    settings = shared_settings
    seed = int(os.environ.get("TOCSIN_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    configure_webhook(settings, receiver.url)
    stream = Stream(count=int(SEND_S * RATE), checks=200, t0=time.time(), rate=RATE)
    expected = stream.expected()
    log = tmp_path / "up.log"
    up = start_up(
        fault_env(settings),
        "ingest,processor,notifier,gateway:webhook",
        log,
        # e.g. "notifier=2,gateway:webhook=2": the same kills with replicas (docs/scaling.md)
        replicas=os.environ.get("TOCSIN_FAULT_REPLICAS", ""),
    )
    kills: list[str] = []
    gateway_kills: list[float] = []
    stop = threading.Event()

    def killer() -> None:
        order = list(VICTIMS) * 2
        rng.shuffle(order)
        for victim in order:
            if stop.wait(rng.uniform(0.8, 1.8)):
                return
            pids = [p for p, args in children(up.pid).items() if victim in args]
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                kills.append(victim.split(".")[-1])
                if victim == "services.gateways":
                    gateway_kills.append(time.monotonic())

    try:
        wait_ready(settings, up.pid)
        t = threading.Thread(target=killer, daemon=True)
        started = time.monotonic()
        t.start()
        for _ in publish(stream, settings.amqp_url, settings.namespace):
            pass
        send_s = time.monotonic() - started
        t.join(timeout=30)
        drain(settings, receiver, sum(expected.values()), timeout=120)
        # Late copies (outbox sweeps, redeliveries) would arrive now; give them a moment.
        wait_until(lambda: False, 3)
        hits = receiver.snapshot()
        result = compare(expected, hits)
    finally:
        stop.set()
        stop_up(up)
    in_flight = in_flight_at_kill(hits, gateway_kills)
    overtaken = out_of_order(hits)
    restarts = (log.read_text(errors="replace")).count("worker exited; restarting")
    row = {
        "fault": f"kill -9 x{len(kills)} ({', '.join(kills)})",
        "events": stream.count,
        "rate_eps": round(stream.count / send_s),
        "seed": seed,
        "restarts": restarts,
        **result,
        "dups_in_flight_at_gateway_kill": in_flight,
        "out_of_order": overtaken,
    }
    record(row)
    print(row)
    assert len(kills) >= 4, f"killer did not run enough: {kills}"
    assert result["expected"] > 1000
    assert result["lost"] == 0, row
    # The pipeline made exactly one delivery per expected notification ...
    assert result["distinct_ids"] == result["expected"], row
    # ... and the only repeats are sends a kill -9 interrupted between the receiver's
    # 2xx and the gateway's delivered-marker (at most the sends in flight: gateway concurrency).
    assert result["duplicated"] == in_flight, row
    assert in_flight <= 32 * len(gateway_kills), row
    # Each check's pages arrived in the order they were produced, kills or not.
    assert overtaken == 0, row


def out_of_order(hits: list[Hit]) -> int:
    """First arrivals of a check whose notification is older than one already received."""
    seen: set[str] = set()
    newest: dict[str, float] = {}
    late = 0
    for h in sorted(hits, key=lambda h: h.at):
        if h.delivery_id in seen:
            continue  # a repeat of an in-flight send, counted above
        seen.add(h.delivery_id)
        if h.time < newest.get(h.check, float("-inf")):
            late += 1
        newest[h.check] = max(h.time, newest.get(h.check, float("-inf")))
    return late


# The receiver stamps a hit when its handler thread runs, in this busy test process
# (publisher, killer and up to 32 handler threads share the GIL), so a send the gateway
# completed before the kill can be stamped after the recorded kill time: 0.25 s was
# too little once on a loaded box (19 repeats, 18 explained).  A copy stamped within
# 1 s after a gateway kill can only come from the killed gateway: the supervisor
# restarts a worker after at least 1 s (services/cli/supervisor.py), and the new one
# must still import, connect and take a batch before it sends.
RECEIVER_LAG_S = 1.0


# A gateway records its delivered markers once per batch, after every send of the batch
# is answered, and one message carries up to 100 deliveries: on this 2-core box a send
# answered up to a couple of seconds before a kill may still be unrecorded when it dies
# (a fresh-clone run, seed 946828981, had 10 repeats and no loss, but only 2 whose first
# copy came within 0.5 s of a kill; replaying the seed gave 6, all within 0.5 s).
IN_FLIGHT_WINDOW_S = 2.0


def in_flight_at_kill(
    hits: list[Hit], gateway_kills: list[float], window_s: float = IN_FLIGHT_WINDOW_S
) -> int:
    """Repeated delivery ids whose first copy arrived around a gateway kill (in flight then)."""
    first: dict[str, float] = {}
    repeats: Counter[str] = Counter()
    for h in sorted(hits, key=lambda h: h.at):
        if h.delivery_id in first:
            repeats[h.delivery_id] += 1
        else:
            first[h.delivery_id] = h.at
    explained = 0
    for did, n in repeats.items():
        if any(-RECEIVER_LAG_S <= k - first[did] <= window_s for k in gateway_kills):
            explained += n
        else:
            offsets = [round(k - first[did], 2) for k in gateway_kills]
            print(f"unexplained repeat {did}: gateway kills at {offsets} s from its first copy")
    return explained
