"""Notifier worker: ``NS.notifications`` -> one Delivery per selected medium on ``NS.deliveries``.

The expansion itself is ``shared/notifier/expander.py``; this worker runs it
on the refs that reach the queue: those of the Argus API and the scheduler,
and those of a processor whose own expansion failed, or that crashed between
writing its notifications and expanding them (its outbox republishes them
here).  It also owns the deliveries' outbox sweep: published deliveries leave
the outbox at the idle sweep (or on stop), and what a crash left in it, by
any worker, is republished after the grace (gateways deduplicate by delivery
id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from prometheus_client import CollectorRegistry

from shared.amqp import Names
from shared.config import Settings
from shared.consumer import TRANSIENT_ERRORS, BatchConsumer
from shared.directory import Directory
from shared.keys import Keys
from shared.notifier.expander import STAGE, NotifierMetrics, delivery_messages, make_handler
from shared.notifier.store import NotifierStore
from shared.store import connect_redis, migrate_routing_keys
from shared.telemetry import ConsumerMetrics, configure_logging, serve_metrics

log = logging.getLogger(__name__)

# Outbox entries younger than the grace (TOCSIN_NOTIFIER_OUTBOX_GRACE_S, 15 s) may belong to
# a batch still being published (by any worker); the sweep looks every few seconds, and
# at least three times per grace.
SWEEP_EVERY_S = 5.0


def make_sweeper(
    store: NotifierStore, names: Names, metrics: NotifierMetrics, grace_s: float
) -> Callable[[BatchConsumer], None]:
    """The idle hook: clear published deliveries from the outbox; every few seconds,
    republish outbox leftovers of crashed batches."""
    last = 0.0
    every = min(SWEEP_EVERY_S, grace_s / 3)

    def sweep(consumer: BatchConsumer) -> None:
        nonlocal last
        try:
            store.clear_published()
        except TRANSIENT_ERRORS as exc:
            log.warning("outbox clear failed", extra={"stage": STAGE, "error": repr(exc)})
            return
        now = time.monotonic()
        if now - last < every:
            return
        last = now
        try:
            leftovers = store.outbox_leftovers(grace_s)
            if not leftovers:
                return
            consumer.publish(delivery_messages(names, leftovers))
            store.outbox_done(d.id for d in leftovers)
        except TRANSIENT_ERRORS as exc:
            log.warning("outbox sweep failed", extra={"stage": STAGE, "error": repr(exc)})
            return
        metrics.republished.inc(len(leftovers))
        log.warning("republished outbox leftovers", extra={"stage": STAGE, "count": len(leftovers)})

    return sweep


def build_consumer(
    settings: Settings, registry: CollectorRegistry, r: redis.Redis
) -> BatchConsumer:
    """The notifier's consumer on ``NS.notifications`` (``run`` and tests share it)."""
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    metrics = NotifierMetrics(registry)
    store = NotifierStore.from_settings(r, keys, settings)
    return BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.notifications],
        handler=make_handler(store, Directory(r, keys), names, metrics),
        stage=STAGE,
        metrics=ConsumerMetrics(registry, STAGE),
        prefetch=settings.prefetch,
        batch_size=settings.batch_size,
        batch_wait_ms=settings.batch_wait_ms,
        on_idle=make_sweeper(store, names, metrics, settings.notifier_outbox_grace_s),
        on_stop=lambda _consumer: store.clear_published(),
        probe=r.ping,
        reconnect_max_s=settings.reconnect_max_s,
    )


def run(settings: Settings) -> None:
    """Run the notifier worker until SIGTERM/SIGINT."""
    configure_logging(settings, STAGE)
    registry = CollectorRegistry()
    serve_metrics(registry, settings)
    r = connect_redis(settings)
    migrate_routing_keys(r, settings.namespace)  # a namespace from before the routing slot
    consumer = build_consumer(settings, registry, r)
    consumer.install_signal_handlers()
    consumer.run()
