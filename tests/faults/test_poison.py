"""Poison messages never block a queue; ``tocsin dead`` inspects, replays and purges them."""

from __future__ import annotations

import json
import subprocess
import sys

import pika
import pytest

from services.cli.dead import redact
from shared.amqp import DELIVERY_LIMIT, Names, connect
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult
from shared.deadletters import origin, replay_headers
from shared.telemetry import ConsumerMetrics
from tests.faults.conftest import fault_env, wait_until
from tests.support import collect, declare, running

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# A worker that dies (like a segfault or the OOM killer) on whatever it receives.
CRASHER = """
import os, sys
from prometheus_client import CollectorRegistry
from shared.amqp import Names
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.telemetry import ConsumerMetrics
s = Settings.from_env()
names = Names(s.namespace)
BatchConsumer(amqp_url=s.amqp_url, names=names, partitions=s.partitions,
              queues=[names.notifications], handler=lambda batch: os._exit(3), stage="crasher",
              metrics=ConsumerMetrics(CollectorRegistry(), "crasher")).run()
"""


def _dead_count(settings: Settings) -> int:
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        return int(
            conn.channel()
            .queue_declare(Names(settings.namespace).dead, passive=True)
            .method.message_count
        )
    finally:
        conn.close()


def _publish(settings: Settings, queue: str, body: bytes, mid: str) -> None:
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, message_id=mid))
    finally:
        conn.close()


def _tocsin(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "dead", *args],
        env=fault_env(settings, TOCSIN_LOG_FORMAT="text"),
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def test_a_message_that_kills_its_worker_ends_in_dead_letters_after_the_delivery_limit(
    shared_settings: Settings,
) -> None:
    s = shared_settings
    declare(s)
    names = Names(s.namespace)
    _publish(s, names.notifications, b'{"id": "poison"}', "poison-1")
    crashes = 0
    for _ in range(DELIVERY_LIMIT + 4):
        proc = subprocess.run(
            [sys.executable, "-c", CRASHER], env=fault_env(s), capture_output=True, timeout=60
        )
        assert proc.returncode == 3, proc.stderr.decode()[-2000:]
        crashes += 1
        if _dead_count(s) == 1:
            break
    assert _dead_count(s) == 1, f"still not dead-lettered after {crashes} crashes"
    assert crashes == DELIVERY_LIMIT + 1  # delivered 1 + limit times, then given up
    # The queue is not blocked: the next message goes through to a healthy consumer.
    _publish(s, names.notifications, b'{"id": "fine"}', "fine-1")
    (got,) = collect(s, [names.notifications], 1, timeout=10)
    assert got["message_id"] == "fine-1"

    listing = _tocsin(s, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    assert row["message_id"] == "poison-1" and row["stage"] == "broker"
    assert row["queue"] == names.notifications and "delivery_limit" in row["reason"]

    assert row["id"] == "poison-1"  # the stable id: the message id when there is one
    by_position = _tocsin(s, "requeue", "1")
    assert by_position.returncode == 1 and "not by list position" in by_position.stderr
    requeued = _tocsin(s, "requeue", "poison")  # a unique prefix of the id
    assert requeued.returncode == 0 and "requeued 1" in requeued.stdout, requeued.stderr
    assert _dead_count(s) == 0
    (back,) = collect(s, [names.notifications], 1, timeout=10)
    assert back["message_id"] == "poison-1" and back["body"] == b'{"id": "poison"}'
    assert not any(k.startswith(("x-death", "x-first-death")) for k in back["headers"])
    assert back["headers"]["x-tocsin-requeued"] == 1


def test_a_handler_exception_dead_letters_only_the_poison_message_with_its_reason(
    shared_settings: Settings,
) -> None:
    s = shared_settings
    declare(s)
    names = Names(s.namespace)
    handled: list[bytes] = []

    def handler(batch):  # type: ignore[no-untyped-def]
        for m in batch:
            if b"boom" in m.body:
                raise KeyError("boom: a bug path")
        handled.extend(m.body for m in batch)
        return BatchResult()

    from prometheus_client import CollectorRegistry

    consumer = BatchConsumer(
        amqp_url=s.amqp_url,
        names=names,
        partitions=s.partitions,
        queues=[names.notifications],
        handler=handler,
        stage="notifier",
        metrics=ConsumerMetrics(CollectorRegistry(), "t"),
        batch_wait_ms=50,
    )
    for i, body in enumerate([b'{"id":"a"}', b'{"id":"boom"}', b'{"id":"b"}']):
        _publish(s, names.notifications, body, f"m{i}")
    with running(consumer):
        assert wait_until(lambda: len(handled) == 2 and _dead_count(s) == 1, 20)
    assert sorted(handled) == [b'{"id":"a"}', b'{"id":"b"}']

    shown = _tocsin(s, "show", "m1")
    assert shown.returncode == 0, shown.stderr
    assert "stage=notifier" in shown.stdout and "KeyError" in shown.stdout
    assert f"from queue: {names.notifications}" in shown.stdout

    refused = _tocsin(s, "purge", stdin="n\n")
    assert refused.returncode != 0 and _dead_count(s) == 1  # asks, and "no" keeps them
    purged = _tocsin(s, "purge", "--yes")
    assert purged.returncode == 0 and "purged 1" in purged.stdout
    assert _dead_count(s) == 0


@pytest.mark.parametrize(
    ("headers", "want"),
    [
        pytest.param(
            {
                "x-tocsin-queue": b"ns.ingest",
                "x-tocsin-routing-key": "flapjack",
                "x-tocsin-stage": "ingest",
                "x-tocsin-error": "state: bad",
            },
            ("ns.ingest", "flapjack", "ingest", "state: bad"),
            id="worker-rejected",
        ),
        pytest.param(
            {
                "x-first-death-queue": "ns.notifications",
                "x-first-death-reason": "delivery_limit",
                "x-death": [
                    {
                        "queue": "ns.notifications",
                        "reason": "delivery_limit",
                        "count": 1,
                        "routing-keys": ["ns.notifications"],
                    }
                ],
            },
            ("ns.notifications", "ns.notifications", "broker"),
            id="broker-delivery-limit",
        ),
        pytest.param({}, (None, "", "broker"), id="unknown-origin"),
    ],
)
def test_origin_of_a_dead_letter(headers: dict, want: tuple) -> None:  # type: ignore[type-arg]
    got = origin(headers)
    assert got[: len(want)] == want


def test_replay_headers_drop_death_and_retry_progress_and_count_replays() -> None:
    h = replay_headers(
        {
            "x-death": [],
            "x-tocsin-attempt": 4,
            "x-tocsin-error": "x",
            "x-first-death-queue": "q",
            "trace": "keep",
            "x-tocsin-requeued": 2,
        }
    )
    assert h == {"trace": "keep", "x-tocsin-requeued": 3}


def test_shown_bodies_mask_secrets() -> None:
    doc = {"medium": {"settings": {"secret": "s3cr3t", "routing_key": "R" * 32}, "address": "a"}}
    assert redact(doc) == {
        "medium": {"settings": {"secret": "***", "routing_key": "***"}, "address": "a"}
    }


def test_a_broker_error_inside_a_handler_reconnects_instead_of_dead_lettering(
    shared_settings: Settings,
) -> None:
    """The broker dropping under a handler (gateways wait on it) is not the message's fault."""
    import pika.exceptions
    from prometheus_client import CollectorRegistry

    s = shared_settings
    declare(s)
    names = Names(s.namespace)
    calls: list[int] = []
    handled: list[bytes] = []

    def handler(batch):  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        if len(calls) <= 2:  # twice: isolating one by one would dead-letter on the 2nd
            raise pika.exceptions.StreamLostError("connection lost mid-batch")
        handled.extend(m.body for m in batch)
        return BatchResult()

    consumer = BatchConsumer(
        amqp_url=s.amqp_url,
        names=names,
        partitions=s.partitions,
        queues=[names.notifications],
        handler=handler,
        stage="gateway.webhook",
        metrics=ConsumerMetrics(CollectorRegistry(), "t"),
        batch_wait_ms=50,
    )
    for i in range(3):
        _publish(s, names.notifications, b'{"id":"%d"}' % i, f"m{i}")
    with running(consumer):
        assert wait_until(lambda: len(handled) == 3, 20), (calls, handled)
    assert _dead_count(s) == 0
