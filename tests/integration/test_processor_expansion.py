"""The processor expanding its own notifications, against real Redis and RabbitMQ.

By default (``TOCSIN_PROCESSOR_EXPANDS``) a processor batch publishes
deliveries, not refs: nothing goes through ``NS.notifications``, and both
outboxes (the processor's refs, the expansion's deliveries) are cleared once
the broker has the deliveries.  A notification that did go to the notifier
(here: written by a processor with the expansion off, never consumed) is
pulled into the expansion of the check's next one, so its page still goes
first; the notifier then skips the ref.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.notifier.worker import build_consumer as build_notifier
from services.processor.worker import build_consumer
from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.integration.test_notifier_worker import configure, deliveries, gateway_queues
from tests.integration.test_processor_worker import ev, send
from tests.support import collect_deliveries, declare, queue_depth, running, wait_acked

pytestmark = pytest.mark.integration


def eventually(what: str, ok: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def outboxes_empty(settings: Settings, r: redis.Redis) -> bool:
    keys = Keys(settings.namespace)
    processor = sum(r.hlen(keys.outbox(k)) for k in range(settings.partitions))
    return processor == 0 and r.hlen(keys.notifier_outbox()) == 0


def test_a_processor_batch_publishes_deliveries_in_order_and_no_refs(settings: Settings) -> None:
    assert settings.processor_expands  # the default
    names = Names(settings.namespace)
    declare(settings)
    r = connect_redis(settings)
    configure(settings, r)
    registry = CollectorRegistry()
    with running(build_consumer(settings, registry, r)):
        send(settings, [ev("web1", "http", 1000, "critical"), ev("web1", "http", 1031, "critical")])
        send(settings, [ev("web1", "http", 1040, "ok")])
        got = deliveries(collect_deliveries(settings, gateway_queues(settings), n=4, timeout=15))
        # The idle tick clears what the broker has from both outboxes.
        eventually("both outboxes are cleared", lambda: outboxes_empty(settings, r))
    by_medium: dict[str, list[tuple[str, int]]] = {}
    for d in got:
        by_medium.setdefault(d.medium.type, []).append((d.type, d.seq))
    for mtype in ("webhook", "email"):
        kinds = [kind for kind, _ in by_medium[mtype]]
        seqs = [seq for _, seq in by_medium[mtype]]
        assert kinds == ["problem", "recovery"], mtype
        assert seqs == sorted(seqs) and len(set(seqs)) == 2, mtype
    assert queue_depth(settings, names.notifications) == 0
    expanded = registry.get_sample_value(
        "tocsin_notifier_notifications_total", {"type": "recovery"}
    )
    assert expanded == 1.0  # counted in the processor's own /metrics


def test_a_notification_left_to_the_notifier_still_pages_first(settings: Settings) -> None:
    names = Names(settings.namespace)
    declare(settings)
    r = connect_redis(settings)
    configure(settings, r)
    refs_only = msgspec.structs.replace(settings, processor_expands=False)
    with running(build_consumer(refs_only, CollectorRegistry(), r)):
        send(settings, [ev("web1", "http", 1000, "critical"), ev("web1", "http", 1031, "critical")])
        eventually(
            "the problem's ref is queued", lambda: queue_depth(settings, names.notifications) == 1
        )
    with running(build_consumer(settings, CollectorRegistry(), r)):
        send(settings, [ev("web1", "http", 1040, "ok")])
        got = deliveries(collect_deliveries(settings, gateway_queues(settings), n=4, timeout=15))
    webhook = [d.type for d in got if d.medium.type == "webhook"]
    assert webhook == ["problem", "recovery"]
    # The notifier takes the problem's ref later and finds it expanded: nothing more goes out.
    registry = CollectorRegistry()
    with running(build_notifier(settings, registry, r)):
        wait_acked(registry, names.notifications, 1)
    assert queue_depth(settings, *gateway_queues(settings)) == 0
