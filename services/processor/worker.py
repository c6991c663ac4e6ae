"""Processor worker: partition queues -> check state, incidents and notifications.

Per batch: decode the JSON arrays of ``CheckEvent``, drop events this
partition already applied (redelivery), load every check with one pipeline,
run the pure core event by event in queue order, write everything with one
MULTI (including a transactional outbox of notification ids), then publish a
``NotificationRef`` per notification.  Entries the broker has taken leave
the outbox in the next batch's MULTI (or at the idle sweep), and the idle
sweep republishes whatever a crash left in it.

By default (``TOCSIN_PROCESSOR_EXPANDS``) the refs do not travel: the batch
expands them itself and publishes the deliveries instead
(``services/processor/expansion.py``); the refs go to the notifier only if
that fails, or from the outbox after a crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import msgspec
import redis
from prometheus_client import CollectorRegistry, Counter

from services.processor import store
from services.processor.batch import (
    apply_batch,
    fresh_events,
    incident_ids_needed,
    load_query,
    reused_incident_ids,
)
from services.processor.expansion import ExpansionMetrics, expanding
from services.processor.retention import make_retention_hook
from shared import check_load, incident_index
from shared.amqp import Names, OutMessage
from shared.config import Settings
from shared.consumer import TRANSIENT_ERRORS, BatchConsumer, BatchResult, Handler, Message
from shared.directory import Directory
from shared.errors import ConfigError
from shared.keys import Keys
from shared.models import CHECK_EVENTS_DECODER, ENCODER, CheckEvent, NotificationRef
from shared.notifier.expander import NotifierMetrics
from shared.notifier.expander import make_handler as make_expansion_handler
from shared.notifier.store import NotifierStore
from shared.processing.effects import FilterVerdict
from shared.store import connect_redis, ensure_partitions, migrate_routing_keys
from shared.telemetry import ConsumerMetrics, configure_logging, serve_metrics

log = logging.getLogger(__name__)

# At most this many partition messages (each up to 500 events) per batch and in flight.
PROCESSOR_BATCH_MESSAGES = 8
PROCESSOR_PREFETCH = 32


class ProcessorMetrics:
    """Decisions per filter and outcome, events per type, notifications per type."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "tocsin_processor_decisions",
            "Filter chain verdicts",
            ["filter", "outcome"],
            registry=registry,
        )
        self.events = Counter(
            "tocsin_processor_events",
            "Events applied by the processor, per type and state",
            ["type", "state"],
            registry=registry,
        )
        self.duplicates = Counter(
            "tocsin_processor_duplicate_events",
            "Redelivered events skipped",
            registry=registry,
        )
        self.notifications = Counter(
            "tocsin_processor_notifications",
            "Notifications persisted, per type",
            ["type"],
            registry=registry,
        )
        self.republished = Counter(
            "tocsin_processor_outbox_republished",
            "Notification refs republished from the outbox",
            registry=registry,
        )


def parse_partitions(spec: str | None, partitions: int) -> list[int]:
    """``"0-3,6"`` -> [0, 1, 2, 3, 6]; None or empty -> every partition."""
    if not spec or not spec.strip():
        return list(range(partitions))
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"TOCSIN_PROCESSOR_PARTITIONS: bad range {part!r}") from None
        if not 0 <= first <= last < partitions:
            raise ConfigError(f"TOCSIN_PROCESSOR_PARTITIONS: {part!r} outside 0..{partitions - 1}")
        out.update(range(first, last + 1))
    return sorted(out)


class PublishedRefs:
    """Notification ids the broker has taken but the outbox still holds, per partition.

    They leave the outbox with the next batch's write (one MULTI) or at the
    idle sweep, not in a round trip of their own after every publish.  A
    crash before that republishes them on restart: the notifier skips a
    notification it has expanded, so that costs a lookup, never a page.
    """

    def __init__(self) -> None:
        self.ids: dict[int, list[str]] = defaultdict(list)

    def add(self, published: Mapping[int, Sequence[str]]) -> None:
        for p, ids in published.items():
            self.ids[p].extend(ids)

    def take(self) -> dict[int, list[str]]:
        """Every id held; the caller clears them from the outbox (or puts them back)."""
        taken, self.ids = dict(self.ids), defaultdict(list)
        return taken


def make_handler(
    r: redis.Redis,
    names: Names,
    keys: Keys,
    settings: Settings,
    metrics: ProcessorMetrics,
    published_refs: PublishedRefs | None = None,
) -> Handler:
    """The batch handler, a shell: decode, load, call ``batch``'s pure functions, write, log."""
    ledger = published_refs if published_refs is not None else PublishedRefs()
    prefix = f"{names.ns}.processor.p"
    record_decisions = settings.explain_max_records > 0

    def handle(batch: Sequence[Message]) -> BatchResult:
        result = BatchResult()
        items: list[tuple[int, CheckEvent]] = []
        for msg in batch:
            try:
                events = CHECK_EVENTS_DECODER.decode(msg.body)
            except msgspec.DecodeError as exc:
                result.rejected.append((msg, f"body: {exc}"))
                continue
            partition = int(msg.queue[len(prefix) :]) if msg.queue.startswith(prefix) else 0
            items.extend((partition, ev) for ev in events)
        if not items:
            return result

        query = load_query(items)
        loaded = check_load.load(r, keys, query.by_check, query.ids, settings.history_max_age_s)
        fresh, dropped = fresh_events(items, loaded.seen, query.checks)
        metrics.duplicates.inc(dropped)
        incident_ids = store.reserve_incident_ids(r, keys, incident_ids_needed(loaded.views, fresh))
        applied = apply_batch(loaded.views, fresh, incident_ids, record_decisions)
        while applied.ids_short:
            incident_ids += store.reserve_incident_ids(r, keys, applied.ids_short)
            applied = apply_batch(loaded.views, fresh, incident_ids, record_decisions)
        if any(msg.redelivered for msg in batch) and applied.pending.notifications:
            # A crash between the steps of a cluster write can leave this batch's
            # notifications stored (and maybe expanded) under the incident ids the
            # crashed attempt reserved: apply again with those, so the check's
            # recovery later names the episode its problem went out in.
            ids = [n.id for _, n in applied.pending.notifications]
            stored = store.stored_episode_ids(r, keys, ids)
            reused = reused_incident_ids(incident_ids, applied.pending.notifications, stored)
            if reused != incident_ids:
                log.info(
                    "redelivered batch reuses the incident ids its stored notifications name",
                    extra={"reserved": incident_ids, "reused": reused},
                )
                incident_ids = reused
                applied = apply_batch(loaded.views, fresh, incident_ids, record_decisions)
        pending = applied.pending

        for (kind, state), count in applied.events.items():
            metrics.events.labels(kind, state).inc(count)
        for (name, outcome), count in applied.decisions.items():
            metrics.decisions.labels(name, outcome).inc(count)
        _log_verdicts(applied.verdicts)
        cleared = ledger.take()
        try:
            store.write(
                r,
                keys,
                loaded,
                pending,
                notification_ttl_s=settings.notification_ttl_s,
                history_max_states=settings.history_max_states,
                explain_max_records=settings.explain_max_records,
                explain_ttl_s=settings.explain_ttl_s,
                published=cleared,
            )
        except BaseException:
            ledger.add(cleared)  # not cleared: the next write or the idle sweep does it
            raise
        published: dict[int, list[str]] = defaultdict(list)
        for p, n in pending.notifications:
            metrics.notifications.labels(n.type).inc()
            result.outputs.append(_ref(names, n.id))
            published[p].append(n.id)
            # One line per notification (not per event): the start of its trace.
            log.info(
                "notification created",
                extra={
                    "notification_id": n.id,
                    "event_id": n.event_id,
                    "entity": n.entity,
                    "check": n.check,
                    "type": n.type,
                    "state": n.state,
                },
            )
        if published:
            result.after_publish = lambda: ledger.add(published)
        log.debug(
            "batch applied",
            extra={
                "events": len(fresh),
                "checks": len({cid for _, cid, _ in fresh}),
                "notifications": len(pending.notifications),
            },
        )
        return result

    return handle


def _log_verdicts(verdicts: Sequence[tuple[CheckEvent, FilterVerdict]]) -> None:
    """Each event's deciding verdict at debug; a refused acknowledgement at info (never dead-lettered)."""
    debug = log.isEnabledFor(logging.DEBUG)
    for ev, last in verdicts:
        if debug:
            log.debug(
                "decision",
                extra={
                    "entity": ev.entity,
                    "check": ev.check,
                    "event_id": ev.id,
                    "filter": last.filter,
                    "outcome": last.outcome,
                    "reason": last.reason,
                },
            )
        if ev.state == "acknowledgement" and last.outcome == "block":
            # A valid request that cannot apply: say why, but do not dead-letter it.
            log.info(
                "acknowledgement rejected",
                extra={"entity": ev.entity, "check": ev.check, "reason": last.reason},
            )


def _ref(names: Names, nid: str) -> OutMessage:
    return OutMessage(
        "", names.notifications, ENCODER.encode(NotificationRef(id=nid)), message_id=nid
    )


def make_outbox_sweep(
    r: redis.Redis,
    names: Names,
    keys: Keys,
    partitions: Sequence[int],
    metrics: ProcessorMetrics,
    published_refs: PublishedRefs | None = None,
) -> Callable[[BatchConsumer], None]:
    """Idle hook: clear what was published, republish refs a crash left between Redis and the broker."""
    ledger = published_refs if published_refs is not None else PublishedRefs()

    def sweep(consumer: BatchConsumer) -> None:
        cleared = ledger.take()
        try:
            if cleared:
                store.clear_outbox(r, keys, cleared)
            entries = store.outbox_entries(r, keys, partitions)
        except redis.exceptions.RedisError as exc:
            ledger.add(cleared)
            log.warning("outbox sweep failed", extra={"error": repr(exc)})
            return
        if not entries:
            return
        refs = [_ref(names, nid) for ids in entries.values() for nid in ids]
        consumer.publish(refs)
        store.clear_outbox(r, keys, entries)
        metrics.republished.inc(len(refs))
        log.info("republished notifications from the outbox", extra={"count": len(refs)})

    return sweep


def build_consumer(
    settings: Settings, registry: CollectorRegistry, r: redis.Redis | None = None
) -> BatchConsumer:
    """The processor's consumer over its partitions (``TOCSIN_PROCESSOR_PARTITIONS``)."""
    r = r if r is not None else connect_redis(settings)
    names = Names(settings.namespace)
    keys = Keys(settings.namespace)
    partitions = parse_partitions(settings.processor_partitions, settings.partitions)
    metrics = ProcessorMetrics(registry)
    published = PublishedRefs()
    sweep = make_outbox_sweep(r, names, keys, partitions, metrics, published)
    retention = make_retention_hook(r, keys, settings, registry)
    handler = make_handler(r, names, keys, settings, metrics, published)
    expansion: NotifierStore | None = None
    if settings.processor_expands:
        expansion = NotifierStore.from_settings(r, keys, settings)
        expand = make_expansion_handler(
            expansion, Directory(r, keys), names, NotifierMetrics(registry)
        )
        handler = expanding(handler, expand, names, ExpansionMetrics(registry))

    def clear_expanded(consumer: BatchConsumer) -> None:
        # Published deliveries leave the expansion's outbox with its next commit or here,
        # so the notifier's sweep never mistakes them for a crash's leftovers.
        if expansion is None:
            return
        try:
            expansion.clear_published()
        except TRANSIENT_ERRORS as exc:
            log.warning("delivery outbox clear failed", extra={"error": repr(exc)})

    def idle(consumer: BatchConsumer) -> None:
        sweep(consumer)
        clear_expanded(consumer)
        retention(consumer)

    def stop(consumer: BatchConsumer) -> None:
        sweep(consumer)
        clear_expanded(consumer)

    return BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.processor(k) for k in partitions],
        handler=handler,
        stage="processor",
        metrics=ConsumerMetrics(registry, "processor"),
        # Messages here carry up to 500 events each (ingest groups them), so
        # the processor counts its window in messages much more tightly than
        # the other workers: it bounds the events held in memory per batch.
        prefetch=min(settings.prefetch, PROCESSOR_PREFETCH),
        batch_size=min(settings.batch_size, PROCESSOR_BATCH_MESSAGES),
        batch_wait_ms=settings.batch_wait_ms,
        # A crash can leave notifications written but never published; they go out
        # before this process publishes anything newer (on connect), or a check's
        # recovery could reach the notifier before its problem and be dropped.
        on_connect=sweep,
        on_idle=idle,
        on_stop=stop,
        probe=r.ping,
        reconnect_max_s=settings.reconnect_max_s,
    )


def _build_indexes(settings: Settings) -> None:
    try:
        incident_index.build(connect_redis(settings), Keys(settings.namespace))
    except redis.exceptions.RedisError as exc:
        # The next start tries again; listings use incident::ids meanwhile.
        log.warning("incident index build failed", extra={"error": repr(exc)})


def run(settings: Settings) -> None:
    """Run the processor until SIGTERM/SIGINT."""
    configure_logging(settings, "processor")
    r = connect_redis(settings)
    ensure_partitions(r, settings)
    if settings.processor_expands:
        migrate_routing_keys(r, settings.namespace)  # it reads routing keys, as the notifier does
    # Index incidents written before the listing indexes existed (once per namespace), in
    # the background: a million incidents take minutes, and pages must not wait for them.
    threading.Thread(
        target=_build_indexes, args=(settings,), name="incident-index-build", daemon=True
    ).start()
    registry = CollectorRegistry()
    serve_metrics(registry, settings)
    consumer = build_consumer(settings, registry, r)
    consumer.install_signal_handlers()
    log.info("processor starting", extra={"queues": consumer.queues, "started": time.time()})
    consumer.run()
