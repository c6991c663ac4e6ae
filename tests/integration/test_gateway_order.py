"""Ordered delivery (docs/payloads.md, "Order"): per (address, check), in the order the notifier produced.

Deliveries here are numbered and queued in their lanes by the notifier's own
store code (``sequenced``), then published as the notifier publishes them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

import pytest

from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.lanes import delivery_lane
from shared.models import ENCODER, decode_deliveries
from shared.store import connect_redis
from tests.integration.gateway_fakes import (
    FakeReceiver,
    Received,
    Reply,
    delivery_log,
    gateway,
    make_delivery,
    send_deliveries,
    sequenced,
    tuned,
)
from tests.support import collect, declare, publish

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(settings: Settings) -> Iterator[Settings]:
    declare(settings)
    yield tuned(settings)


def kinds(requests: list[Received]) -> list[tuple[str, str, int | None]]:
    out = []
    for r in requests:
        body = json.loads(r.body)
        out.append((body["check"], body["type"], r.answered))
    return out


def wait_log(settings: Settings, n: int, timeout: float = 20.0) -> list[object]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = delivery_log(settings)
        if sum(e.outcome in ("delivered", "failed", "dead") for e in entries) >= n:
            return entries
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} finished deliveries in the log")


def problem_and_recovery(url: str, check: str = "http") -> list:
    return [
        make_delivery("webhook", url, check=check, type="problem", state="critical"),
        make_delivery("webhook", url, check=check, type="recovery", state="ok"),
    ]


def test_a_recovery_waits_behind_its_problem_while_the_problem_is_retried(
    gw_settings: Settings,
) -> None:
    with FakeReceiver([Reply(status=503), Reply(status=503)]) as rx, gateway(gw_settings):
        send_deliveries(gw_settings, sequenced(gw_settings, problem_and_recovery(rx.url)))
        reqs = rx.wait_for(4, timeout=20)
        wait_log(gw_settings, 2)
    assert kinds(reqs) == [
        ("http", "problem", 503),
        ("http", "problem", 503),
        ("http", "problem", 200),
        ("http", "recovery", 200),
    ]
    lane = Keys(gw_settings.namespace).lane(delivery_lane(make_delivery("webhook", rx.url)))
    assert connect_redis(gw_settings).exists(lane) == 0  # both finished: the lane is empty


def test_payloads_carry_a_seq_that_increases_in_production_order(gw_settings: Settings) -> None:
    with FakeReceiver() as rx, gateway(gw_settings):
        ds = sequenced(gw_settings, problem_and_recovery(rx.url) + problem_and_recovery(rx.url))
        send_deliveries(gw_settings, ds)
        reqs = rx.wait_for(4, timeout=20)
    seqs = [json.loads(r.body)["seq"] for r in reqs]
    assert seqs == sorted(seqs) == [d.seq for d in ds]
    assert len(set(seqs)) == 4


def test_a_dead_lettered_delivery_lets_the_next_one_go(gw_settings: Settings) -> None:
    with FakeReceiver([Reply(status=400)]) as rx, gateway(gw_settings):
        send_deliveries(gw_settings, sequenced(gw_settings, problem_and_recovery(rx.url)))
        reqs = rx.wait_for(2, timeout=20)
    assert kinds(reqs) == [("http", "problem", 400), ("http", "recovery", 200)]


def test_other_checks_are_not_held_up_by_one_being_retried(gw_settings: Settings) -> None:
    """A retried lane parks only itself: another check to the same address goes at once."""
    s = tuned(gw_settings, retry_base_s=2.0, retry_max_s=2.0)
    with FakeReceiver([Reply(status=503)]) as rx, gateway(s):
        first = sequenced(s, problem_and_recovery(rx.url, check="slow"))
        send_deliveries(s, first)
        rx.wait_for(1)
        send_deliveries(s, sequenced(s, problem_and_recovery(rx.url, check="fast")))
        reqs = rx.wait_for(5, timeout=20)
    order = kinds(reqs)
    assert order[0] == ("slow", "problem", 503)
    # Both of "fast" went while "slow" waited out its 1.5-2.5 s backoff.
    assert order[1:3] == [("fast", "problem", 200), ("fast", "recovery", 200)]
    assert order[3:] == [("slow", "problem", 200), ("slow", "recovery", 200)]


def test_two_gateways_of_one_type_keep_every_lane_in_order(gw_settings: Settings) -> None:
    """Two gateway workers share the queue; failures force retries and parking across them."""
    script = [Reply(status=503 if i % 3 == 0 else 200) for i in range(60)]
    checks = [f"c{i}" for i in range(30)]
    with FakeReceiver(script) as rx, gateway(gw_settings), gateway(gw_settings):
        ds: list = []
        for check in checks:
            ds += problem_and_recovery(rx.url, check=check)
        send_deliveries(gw_settings, sequenced(gw_settings, ds))
        wait_log(gw_settings, len(ds), timeout=40)
        reqs = list(rx.requests)
    by_check: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for check, kind, answered in kinds(reqs):
        by_check[check].append((kind, answered))
    for check in checks:
        seen = by_check[check]
        ok = [kind for kind, answered in seen if answered == 200]
        assert ok == ["problem", "recovery"], (check, seen)
        # Nothing of the recovery was even tried before the problem was delivered.
        first_recovery = next(i for i, (kind, _) in enumerate(seen) if kind == "recovery")
        assert ("problem", 200) in seen[:first_recovery], (check, seen)


def test_a_head_lost_for_longer_than_any_retry_no_longer_blocks_its_lane(
    gw_settings: Settings,
) -> None:
    s = tuned(gw_settings, lane_stale_s=1.0)
    with FakeReceiver() as rx:
        lost, behind = sequenced(s, problem_and_recovery(rx.url))
        # The problem's message never reaches the gateway (say, a purged queue); its lane
        # entry is made old enough to count as lost.
        r = connect_redis(s)
        lane = Keys(s.namespace).lane(delivery_lane(lost))
        r.zadd(lane, {lost.id: lost.seq - 5_000_000})
        with gateway(s):
            send_deliveries(s, [behind])
            (req,) = rx.wait_for(1, timeout=15)
    assert json.loads(req.body)["type"] == "recovery"
    assert r.exists(lane) == 0


def test_an_array_message_is_delivered_per_delivery_and_dead_letters_only_the_refused_one(
    gw_settings: Settings,
) -> None:
    """The notifier sends arrays; each delivery in one succeeds or fails on its own."""
    with FakeReceiver() as ok, FakeReceiver([Reply(status=400)]) as bad:
        first = make_delivery("webhook", ok.url, check="a")
        refused = make_delivery("webhook", bad.url, check="b")
        last = make_delivery("webhook", ok.url, check="c")
        publish(
            gw_settings,
            ENCODER.encode(sequenced(gw_settings, [first, refused, last])),
            routing_key="webhook",
            exchange=Names(gw_settings.namespace).deliveries,
        )
        with gateway(gw_settings):
            ok.wait_for(2)
            (dead,) = collect(gw_settings, [Names(gw_settings.namespace).dead], n=1, timeout=10)
    assert sorted(json.loads(r.body)["check"] for r in ok.requests) == ["a", "c"]
    assert decode_deliveries(dead["body"])[0].id == refused.id
    assert dead["body"].startswith(b"{")  # the refused delivery alone, not the whole array
    assert dead["headers"]["x-tocsin-error"] == "webhook: refused: HTTP 400"


def test_arrays_of_many_deliveries_reach_the_receiver_each_exactly_once(
    gw_settings: Settings,
) -> None:
    """Ten arrays of 100 (as a storm makes them): every body arrives once, under its own id."""
    with FakeReceiver() as rx:
        names = Names(gw_settings.namespace)
        sent = []
        for m in range(10):
            batch = sequenced(
                gw_settings,
                [make_delivery("webhook", rx.url, check=f"c{m}-{i}") for i in range(100)],
            )
            sent += batch
            publish(
                gw_settings, ENCODER.encode(batch), routing_key="webhook", exchange=names.deliveries
            )
        with gateway(gw_settings):
            reqs = rx.wait_for(1000, timeout=30)
            wait_log(gw_settings, 1000)
    ids = [json.loads(r.body)["id"] for r in reqs]
    assert sorted(ids) == sorted(d.id for d in sent)
    assert all(r.headers["X-Tocsin-Delivery"] == json.loads(r.body)["id"] for r in reqs)
