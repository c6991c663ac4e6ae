"""The delivery runner under failure: retries, deadlines, refusals, timeouts, rate limits, crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.conftest import settings_env
from tests.integration.gateway_fakes import (
    FakeReceiver,
    Reply,
    delivery_log,
    gateway,
    make_delivery,
    send_deliveries,
    send_delivery,
    tuned,
)
from tests.support import collect, declare, queue_depth, wait_acked

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(settings: Settings) -> Iterator[Settings]:
    declare(settings)
    yield tuned(settings)  # the settings fixture removes the namespace's queues, delay queues too


def _wait_log(settings: Settings, pred: Any, timeout: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    entries = delivery_log(settings)
    while not pred(entries) and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = delivery_log(settings)
    return entries


def _put_back(registry: CollectorRegistry) -> dict[str, float]:
    """Deliveries the gateway put back for a later attempt (each a message it publishes
    again): while all are 0 after the last ack, nothing more can be sent."""
    return {
        name: registry.get_sample_value(f"tocsin_gateway_{name}_total", {"medium": "webhook"}) or 0
        for name in ("retried", "parked", "rate_limited")
    }


def test_500_twice_then_200_delivers_once_with_three_attempts_logged(gw_settings: Settings) -> None:
    registry = CollectorRegistry()
    with (
        FakeReceiver([Reply(500), Reply(503, headers={"Retry-After": "0"})]) as rx,
        gateway(gw_settings, registry=registry),
    ):
        d = make_delivery("webhook", rx.url)
        send_delivery(gw_settings, d)
        entries = _wait_log(gw_settings, lambda e: any(x.outcome == "delivered" for x in e))
        # The first try and its two retries acked: a wrongly scheduled extra attempt
        # would be a third retry (checked below) published before the last ack.
        wait_acked(registry, Names(gw_settings.namespace).gateway("webhook"), 3)
        assert len(rx.delivered) == 1
        assert _put_back(registry) == {"retried": 2, "parked": 0, "rate_limited": 0}
    assert len(rx.requests) == 3
    assert [(e.outcome, e.attempts, e.status) for e in reversed(delivery_log(gw_settings))] == [
        ("retry", 1, 500),
        ("retry", 2, 503),
        ("delivered", 3, 200),
    ]
    assert all(e.delivery_id == d.id for e in entries)
    labels = {"medium": "webhook"}
    assert registry.get_sample_value("tocsin_gateway_sent_total", labels) == 1
    assert registry.get_sample_value("tocsin_gateway_retried_total", labels) == 2
    assert registry.get_sample_value("tocsin_gateway_in_flight", labels) == 0
    assert registry.get_sample_value("tocsin_gateway_delivery_seconds_count", labels) == 1


def test_server_down_past_deadline_goes_to_dead_letters_with_reason(gw_settings: Settings) -> None:
    s = tuned(gw_settings, delivery_deadline_s=1.0, delivery_attempts=100, retry_base_s=0.2)
    names = Names(s.namespace)
    with FakeReceiver() as rx:
        url = rx.url
    # The receiver is gone: every attempt is a connection error.
    with gateway(s):
        started = time.monotonic()
        send_delivery(s, make_delivery("webhook", url))
        (dead,) = collect(s, [names.dead], n=1, timeout=15)
        elapsed = time.monotonic() - started
    reason = dead["headers"]["x-tocsin-error"]
    assert "deadline of 1 s reached" in reason and "Failed to connect" in reason
    assert elapsed < 5
    outcomes = [e.outcome for e in reversed(delivery_log(s))]
    assert outcomes[-1] == "dead" and set(outcomes[:-1]) == {"retry"} and len(outcomes) >= 2


def test_attempts_exhausted_goes_to_dead_letters(gw_settings: Settings) -> None:
    s = tuned(gw_settings, delivery_attempts=3)
    names = Names(s.namespace)
    with FakeReceiver([Reply(502)] * 5) as rx, gateway(s):
        send_delivery(s, make_delivery("webhook", rx.url))
        (dead,) = collect(s, [names.dead], n=1, timeout=15)
    assert "gave up after 3 attempts: HTTP 502" in dead["headers"]["x-tocsin-error"]
    assert len(rx.requests) == 3


def test_400_is_dead_lettered_at_once(gw_settings: Settings) -> None:
    names = Names(gw_settings.namespace)
    registry = CollectorRegistry()
    with (
        FakeReceiver([Reply(400, body=b"bad payload")]) as rx,
        gateway(gw_settings, registry=registry),
    ):
        send_delivery(gw_settings, make_delivery("webhook", rx.url))
        (dead,) = collect(gw_settings, [names.dead], n=1, timeout=10)
        wait_acked(registry, Names(gw_settings.namespace).gateway("webhook"), 1)
        assert _put_back(registry) == {"retried": 0, "parked": 0, "rate_limited": 0}
    # The receiver's body is never kept (it could be anything, from anyone's server).
    assert dead["headers"]["x-tocsin-error"] == "webhook: refused: HTTP 400"
    assert len(rx.requests) == 1
    assert [(e.outcome, e.attempts) for e in delivery_log(gw_settings)] == [("failed", 1)]
    labels = {"medium": "webhook"}
    assert registry.get_sample_value("tocsin_gateway_failed_total", labels) == 1
    assert registry.get_sample_value("tocsin_gateway_dead_lettered_total", labels) == 1


@pytest.mark.serial  # asserts on timing: run alone (docs/testing.md)
def test_slow_server_times_out_and_is_retried(gw_settings: Settings) -> None:
    s = tuned(gw_settings, delivery_timeout_s=0.3)
    with FakeReceiver([Reply(delay=1.5)]) as rx, gateway(s):
        send_delivery(s, make_delivery("webhook", rx.url))
        entries = _wait_log(s, lambda e: any(x.outcome == "delivered" for x in e))
    first, second = reversed(entries)
    assert first.outcome == "retry" and first.error.startswith("timeout after 0.3 s")
    assert 250 <= first.latency_ms < 1400
    assert second.outcome == "delivered" and second.attempts == 2
    assert len(rx.requests) == 2


def test_one_slow_receiver_does_not_hold_the_others_in_its_batch(gw_settings: Settings) -> None:
    s = tuned(gw_settings, delivery_timeout_s=5.0)
    release = threading.Event()
    with FakeReceiver([Reply(hold=release)]) as slow, FakeReceiver() as fast:
        # Both queued before the gateway starts, so they arrive in one batch.
        send_delivery(s, make_delivery("webhook", slow.url))
        send_delivery(s, make_delivery("webhook", fast.url))
        with gateway(s):
            slow.wait_for(1)
            started = time.monotonic()
            fast.wait_for(1, timeout=4)
            waited = time.monotonic() - started
            release.set()
    assert len(fast.requests) == 1
    assert waited < 1.0


@pytest.mark.serial  # asserts on timing: run alone (docs/testing.md)
def test_burst_of_100_to_one_address_follows_the_token_bucket(gw_settings: Settings) -> None:
    rate, burst, n = 40.0, 10, 100
    s = tuned(gw_settings, rate_per_s=rate, rate_burst=burst)
    with FakeReceiver() as rx:
        send_deliveries(
            s, [make_delivery("webhook", rx.url, did=f"burst-{i}:m1") for i in range(n)]
        )
        with gateway(s):
            reqs = rx.wait_for(n, timeout=30)
            time.sleep(0.2)
    assert len(rx.requests) == n  # nothing dropped, nothing twice
    import json

    assert len({json.loads(r.body)["id"] for r in rx.requests}) == n
    times = sorted(r.time for r in reqs)
    t0, t1 = times[0], times[1]
    for k, t in enumerate(times[1:], start=1):
        # Bucket math: sends 1..k (k of them) fit in burst + rate * (their span)
        # tokens.  Measured from the second arrival: the first one also pays
        # for the connection, so it lands late and made later ones look early
        # (failed by 4 ms at load 5).  0.1 s is four tokens of arrival jitter;
        # without the bucket all 100 land within a fraction of a second.
        earliest = (k - burst) / rate
        assert t - t1 >= earliest - 0.1, (k, t - t1, earliest)
    span = times[-1] - t0
    assert (n - burst) / rate - 0.05 <= span < 3 * (n - burst) / rate + 2


def test_redelivered_message_is_never_sent_twice(gw_settings: Settings) -> None:
    registry = CollectorRegistry()
    with FakeReceiver() as rx, gateway(gw_settings, registry=registry):
        d = make_delivery("webhook", rx.url)
        send_delivery(gw_settings, d)
        send_delivery(gw_settings, d)  # the same delivery in the same or the next batch
        rx.wait_for(1)
        _wait_log(gw_settings, lambda e: len(e) >= 1)
        send_delivery(gw_settings, d)  # and again after the marker is written
        wait_acked(registry, Names(gw_settings.namespace).gateway("webhook"), 3)
        assert _put_back(registry) == {"retried": 0, "parked": 0, "rate_limited": 0}
    assert len(rx.requests) == 1
    assert connect_redis(gw_settings).exists(Keys(gw_settings.namespace).delivered(d.id)) == 1
    assert [e.outcome for e in delivery_log(gw_settings)] == ["delivered"]


def _start_gateway(s: Settings) -> subprocess.Popen[bytes]:
    env = settings_env(s)
    env.update({"TOCSIN_DELIVERY_TIMEOUT_S": "20", "TOCSIN_RETRY_BASE_S": "0.1"})
    return subprocess.Popen(
        [sys.executable, "-m", "services.gateways", "webhook"],
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_mid_delivery_is_delivered_once_after_restart(gw_settings: Settings) -> None:
    names = Names(gw_settings.namespace)
    hold = threading.Event()
    with FakeReceiver([Reply(hold=hold)]) as rx:
        d = make_delivery("webhook", rx.url)
        first = _start_gateway(gw_settings)
        try:
            send_delivery(gw_settings, d)
            assert len(rx.wait_for(1, timeout=20)) == 1, "gateway never sent"
            first.kill()  # SIGKILL mid-request: no ack, no marker, no log
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        hold.set()
        assert rx.delivered == []
        assert delivery_log(gw_settings) == []
        second = _start_gateway(gw_settings)
        try:
            rx.wait_for(2, timeout=30)
            entries = _wait_log(gw_settings, lambda e: len(e) >= 1, timeout=10)
            time.sleep(0.5)
        finally:
            second.terminate()
            second.wait(15)
    assert len(rx.delivered) == 1
    assert [(e.outcome, e.delivery_id) for e in entries] == [("delivered", d.id)]
    assert queue_depth(gw_settings, names.gateway("webhook")) == 0


def test_delivery_marked_by_an_earlier_gateway_process_is_not_sent(gw_settings: Settings) -> None:
    with FakeReceiver() as rx:
        d = make_delivery("webhook", rx.url)
        connect_redis(gw_settings).set(Keys(gw_settings.namespace).delivered(d.id), 1)
        registry = CollectorRegistry()
        with gateway(gw_settings, registry=registry):
            send_delivery(gw_settings, d)
            send_delivery(gw_settings, make_delivery("webhook", rx.url))
            wait_acked(registry, Names(gw_settings.namespace).gateway("webhook"), 2)
            assert _put_back(registry) == {"retried": 0, "parked": 0, "rate_limited": 0}
    assert len(rx.requests) == 1
    assert rx.requests[0].headers["X-Tocsin-Delivery"] != d.id


def test_undecodable_delivery_is_dead_lettered_with_the_field(gw_settings: Settings) -> None:
    from tests.support import publish

    names = Names(gw_settings.namespace)
    with gateway(gw_settings):
        publish(gw_settings, b'{"id": "x"}', routing_key="webhook", exchange=names.deliveries)
        (dead,) = collect(gw_settings, [names.dead], n=1, timeout=10)
    assert dead["headers"]["x-tocsin-error"].startswith(
        "invalid delivery: Object missing required field"
    )
