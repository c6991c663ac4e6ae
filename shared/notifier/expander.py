"""The expansion handler: notification refs -> deliveries, in one optimistic transaction.

Per batch: decode the ``{"id"}`` refs, read the notification hashes (one
pipeline), reload the configuration index only if ``config::version`` moved,
select targets (pure), watch and read the state those decisions need (two
round trips), expand (pure), write effects + ``notified`` markers + outbox in
one MULTI (decided again if another notifier changed what it read), and
return the deliveries for the consumer to publish.  Published deliveries
leave the outbox through ``after_publish`` (the store remembers them and the
next MULTI or the notifier's idle sweep clears them); the notifier's idle
sweep republishes what a crash left in it (gateways deduplicate by delivery
id).

Both the notifier worker (refs from ``NS.notifications``) and the processor
(the notifications it has just written) call :func:`make_handler`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence

import msgspec
import redis
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.amqp import Names, OutMessage
from shared.broker import Message
from shared.directory import Directory
from shared.errors import Retryable
from shared.handler import BatchResult, Handler
from shared.models import ENCODER, NOTIFICATION_REF_DECODER, Delivery
from shared.notifier.batch import (
    escalations_to_start,
    expand_all,
    explain_records,
    triage,
    unexpanded_predecessors,
    with_predecessors,
)
from shared.notifier.store import NotifierStore
from shared.routing.notifier_state import Expansion, state_query
from shared.routing.selection import Index, compile_index, select
from shared.telemetry import LATENCY_BUCKETS

log = logging.getLogger(__name__)

# The stage named in the expansion's log lines, wherever it runs (the worker field says where).
STAGE = "notifier"
# Rounds of pulling a check's earlier, unexpanded notifications into a batch (a chain
# longer than this goes on in order of arrival).
PREDECESSOR_ROUNDS = 4


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "tocsin_notifier_notifications",
            "Notifications expanded, per notification type",
            ["type"],
            registry=registry,
        )
        self.deliveries = Counter(
            "tocsin_notifier_deliveries",
            "Deliveries produced, per medium type",
            ["medium_type"],
            registry=registry,
        )
        self.suppressed = Counter(
            "tocsin_notifier_suppressed",
            "Deliveries not produced, per reason",
            ["reason"],
            registry=registry,
        )
        self.expand_seconds = Histogram(
            "tocsin_notifier_expand_seconds",
            "Time to expand one batch (reads, decisions, write)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.config_reloads = Counter(
            "tocsin_notifier_config_reloads", "Configuration index reloads", registry=registry
        )
        self.conflicts = Counter(
            "tocsin_notifier_commit_conflicts",
            "Batches decided again because another notifier changed state they read",
            registry=registry,
        )
        self.republished = Counter(
            "tocsin_notifier_outbox_republished",
            "Deliveries republished from the outbox after a crash",
            registry=registry,
        )


class ConfigCache:
    """The compiled configuration, reloaded only when ``config::version`` changes."""

    def __init__(self, directory: Directory, metrics: NotifierMetrics) -> None:
        self.directory = directory
        self.metrics = metrics
        self.index: Index | None = None

    def get(self, version: int) -> Index:
        if self.index is None or self.index.version != version:
            started = time.perf_counter()
            self.index = compile_index(self.directory.snapshot())
            self.metrics.config_reloads.inc()
            log.info(
                "configuration loaded",
                extra={
                    "version": self.index.version,
                    "contacts": len(self.index.contacts),
                    "media": len(self.index.media),
                    "seconds": round(time.perf_counter() - started, 4),
                },
            )
        return self.index


# Deliveries per message: one message per medium type and batch (a JSON array), so a
# storm costs the broker hundreds of messages, not one per page; capped so a gateway
# batch stays a few hundred sends.
DELIVERIES_PER_MESSAGE = 100


def delivery_message(names: Names, d: Delivery) -> OutMessage:
    """The AMQP message of one delivery: routed by medium type, id for gateway dedup."""
    return OutMessage(names.deliveries, d.medium.type, ENCODER.encode(d), message_id=d.id)


def delivery_messages(names: Names, deliveries: Sequence[Delivery]) -> list[OutMessage]:
    """A batch's deliveries as few messages: JSON arrays per medium type, in production order."""
    by_type: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_type.setdefault(d.medium.type, []).append(d)
    out: list[OutMessage] = []
    for mtype, ds in by_type.items():
        for start in range(0, len(ds), DELIVERIES_PER_MESSAGE):
            chunk = ds[start : start + DELIVERIES_PER_MESSAGE]
            if len(chunk) == 1:
                out.append(delivery_message(names, chunk[0]))
                continue
            mid = f"{chunk[0].id}+{len(chunk) - 1}"
            out.append(OutMessage(names.deliveries, mtype, ENCODER.encode(chunk), message_id=mid))
    return out


# A batch whose optimistic transaction lost to another notifier decides again from fresh
# state; each loss means another batch committed, so this bounds waiting, not progress.
MAX_COMMIT_ATTEMPTS = 50


def make_handler(
    store: NotifierStore, directory: Directory, names: Names, metrics: NotifierMetrics
) -> Handler:
    """The batch handler (see the module docstring for its round trips)."""
    cache = ConfigCache(directory, metrics)

    def handle(batch: Sequence[Message]) -> BatchResult:
        refs: list[tuple[Message, str]] = []
        rejected: list[tuple[Message, str]] = []
        for msg in batch:
            try:
                refs.append((msg, NOTIFICATION_REF_DECODER.decode(msg.body).id))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                rejected.append((msg, f"body: {exc}"))
        if not refs:
            return BatchResult(rejected=rejected)
        started = time.perf_counter()
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                result = expand_batch(store, cache, names, metrics, refs)
            except redis.WatchError:
                metrics.conflicts.inc()
                log.debug("batch lost a commit race, deciding again", extra={"attempt": attempt})
                continue
            result.rejected[:0] = rejected
            metrics.expand_seconds.observe(time.perf_counter() - started)
            return result
        raise Retryable(f"notifier batch lost {MAX_COMMIT_ATTEMPTS} commit races in a row")

    return handle


def expand_batch(
    store: NotifierStore,
    cache: ConfigCache,
    names: Names,
    metrics: NotifierMetrics,
    refs: Sequence[tuple[Message, str]],
) -> BatchResult:
    """One optimistic attempt: read, decide, write; :class:`redis.WatchError` if it lost a race."""
    result = BatchResult()
    inp = store.read_batch(list(dict.fromkeys(nid for _, nid in refs)))
    index = cache.get(inp.config_version)
    triaged = triage(refs, inp.notifications, inp.invalid, inp.done)
    for nid in triaged.skipped:
        log.debug("already expanded, skipped", extra={"notification_id": nid})
    result.rejected.extend(triaged.rejected)
    if not triaged.todo:
        return result
    todo = triaged.todo
    for attempt in range(PREDECESSOR_ROUNDS + 1):
        with store.transaction() as tx:
            plans = [(n, select(index, n)) for n in todo]
            ids = [n.id for n in todo]
            store.watch(tx, state_query(plans), ids)
            # At most one delivery per target and notification: their seqs come with the read.
            bound = sum(len(sel.targets) + len(sel.direct) for _, sel in plans)
            earlier = unexpanded_predecessors(todo)
            state, done, seqs = store.read_watched(state_query(plans), [*ids, *earlier], bound)
            waiting = [nid for nid in earlier if nid not in done]
            if waiting and attempt < PREDECESSOR_ROUNDS:
                found = store.read_batch(waiting)
                pulled = {
                    nid: n
                    for nid, n in found.notifications.items()
                    if n is not None and nid not in found.done
                }
                if pulled:
                    log.info(
                        "expanding earlier notifications of the checks first",
                        extra={"stage": STAGE, "notification_ids": sorted(pulled)},
                    )
                    todo = with_predecessors(todo, pulled)
                    continue
            if done:  # another notifier expanded some of them since read_batch
                plans = [(n, sel) for n, sel in plans if n.id not in done]
            outcomes = expand_all(index, state, plans)
            explain = explain_records(index, outcomes) if store.explain_max > 0 else {}
            deliveries = (
                store.commit(outcomes, explain, escalations_to_start(plans), pipe=tx, seqs=seqs)
                if outcomes
                else []
            )
        break
    _count(outcomes, metrics)
    result.outputs.extend(delivery_messages(names, deliveries))
    if deliveries:
        delivery_ids = [d.id for d in deliveries]
        result.after_publish = lambda: store.published(delivery_ids)
    _log_outcomes(outcomes, len(deliveries), index.version)
    return result


def _log_outcomes(outcomes: Sequence[Expansion], deliveries: int, version: int) -> None:
    for o in outcomes:
        log.info(
            "notification expanded",
            extra={
                "stage": STAGE,
                "notification_id": o.notification.id,
                "entity": o.notification.entity,
                "check": o.notification.check,
                "delivery_ids": [d.id for d in o.deliveries],
                "suppressed": sorted(
                    {dec.code for dec in o.decisions if dec.verdict == "suppress"}
                ),
            },
        )
    log.info(
        "batch expanded",
        extra={
            "stage": STAGE,
            "notifications": len(outcomes),
            "deliveries": deliveries,
            "config_version": version,
        },
    )


def _count(outcomes: Sequence[Expansion], metrics: NotifierMetrics) -> None:
    debug = log.isEnabledFor(logging.DEBUG)
    suppressed: Tally[str] = Tally()
    delivered: Tally[str] = Tally()
    for o in outcomes:
        n = o.notification
        metrics.notifications.labels(n.type).inc()
        delivered.update(d.medium.type for d in o.deliveries)
        for dec in o.decisions:
            if dec.verdict == "suppress":
                suppressed[dec.code] += 1
            if debug:
                log.debug(
                    dec.text,
                    extra={
                        "notification_id": n.id,
                        "entity": n.entity,
                        "check": n.check,
                        "outcome": dec.verdict,
                        "reason": dec.code,
                        "contact_id": dec.contact_id,
                        "medium_id": dec.medium_id,
                    },
                )
    for mtype, count in delivered.items():
        metrics.deliveries.labels(mtype).inc(count)
    for reason, count in suppressed.items():
        metrics.suppressed.labels(reason).inc(count)
