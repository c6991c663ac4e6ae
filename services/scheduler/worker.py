"""Escalation scheduler: claim due steps from Redis, page, schedule the next (thin shell).

Every ``TOCSIN_SCHEDULER_TICK_MS`` it claims due escalation ids with the
lease (shared/escalation_store.py), loads what :func:`services.scheduler.core.fire`
needs in a few pipelines (escalations, the problems that started them, the
checks, schedules and policies cached by ``oncall::version``), writes and
publishes the pages to ``NS.notifications`` (the notifier expands them like
any notification), then advances each escalation.  Several schedulers may
run: one holds the lease, the others take over within a lease period when it
dies.  SIGTERM/SIGINT stop it after the current tick and release the lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from types import FrameType

import msgspec
import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.scheduler.core import StepOutcome, fire
from shared.check_store import CheckStore
from shared.config import Settings
from shared.consumer import AMQP_ERRORS, TRANSIENT_ERRORS
from shared.destinations import Allowlist
from shared.directory import ValidationFailed
from shared.escalation import CheckAtStep, Escalation, IncidentAtStep, Policy, incident_view
from shared.escalation_store import EscalationStore
from shared.explain.records import ENCODER as EXPLAIN_ENCODER
from shared.explain.records import EscalationRecord
from shared.explain.storage import write_records
from shared.feed_sync import Fetch, LayerSync, contact_names, fetcher, sync_all
from shared.keys import Keys
from shared.models import Notification
from shared.oncall import Schedule
from shared.oncall_store import OncallStore
from shared.records import from_hash
from shared.sender import Sender
from shared.store import connect_redis
from shared.telemetry import LATENCY_BUCKETS, configure_logging, serve_metrics

log = logging.getLogger(__name__)

STAGE = "scheduler"
CLAIM_LIMIT = 500
_ENCODER = msgspec.json.Encoder()
_INCIDENT_FIELDS = ("id", "end_time", "acked", "ack_until")


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Counter(
            "tocsin_scheduler_steps",
            "Escalation steps handled, per outcome",
            ["outcome"],
            registry=registry,
        )
        self.lag = Histogram(
            "tocsin_scheduler_lag_seconds",
            "How late a step fired after it was due",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "tocsin_scheduler_pending", "Escalations waiting for a step", registry=registry
        )
        self.feed_syncs = Counter(
            "tocsin_scheduler_feed_syncs",
            "Calendar-feed layers re-synced, per outcome (ok, failed)",
            ["outcome"],
            registry=registry,
        )
        self.leader = Gauge(
            "tocsin_scheduler_lease_held",
            "1 while this scheduler holds the lease",
            registry=registry,
        )
        # The readiness probe's gauge (shared/telemetry.py): 1 while ticks reach Redis and
        # the broker, whether or not this replica holds the lease (a standby is ready too).
        self.healthy = Gauge(
            "tocsin_worker_healthy", "1 while connected and ticking", registry=registry
        )


class Scheduler:
    """One scheduler process's state: its lease holder name and the on-call cache."""

    def __init__(
        self, settings: Settings, r: redis.Redis, sender: Sender, metrics: SchedulerMetrics
    ) -> None:
        keys = Keys(settings.namespace)
        self.settings = settings
        self.r = r
        self.keys = keys
        self.sender = sender
        self.metrics = metrics
        self.store = EscalationStore(r, keys)
        self.oncall = OncallStore(r, keys)
        self.checks = CheckStore(r, keys)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._version = -1
        self.leader = False  # held the lease at the last tick (feed syncs run only then)
        self._schedules: dict[str, Schedule] = {}
        self._policies: dict[str, Policy] = {}

    def tick(self, now: float) -> int:
        """Claim and handle the steps due at ``now``; returns how many were handled."""
        s = self.settings
        leader, ids = self.store.claim(
            self.holder, s.scheduler_lease_ms, now, CLAIM_LIMIT, s.scheduler_inflight_s
        )
        self.metrics.leader.set(1 if leader else 0)
        self.leader = leader
        if not ids:
            return 0
        self._refresh()
        loaded = self.store.load(ids)
        live = {eid: x for eid, x in loaded.items() if x is not None and not x.done}
        for eid in ids:
            if eid not in live:
                self.store.drop(eid)
        origins = self._notifications([x.escalation.notification_id for x in live.values()])
        views = self._check_views([x.escalation.check_id for x in live.values()], now)
        incidents = self._incident_views(
            [x.escalation for x in live.values() if x.escalation.incident_id], views, now
        )
        outcomes: list[tuple[str, int, StepOutcome]] = []
        for eid, x in live.items():
            esc = x.escalation
            out = fire(
                esc,
                x.step,
                self._policies.get(esc.policy_id),
                self._schedules,
                origins.get(esc.notification_id),
                incidents.get(esc.id) if esc.incident_id else views.get(esc.check_id),
                now,
            )
            outcomes.append((eid, x.step, out))
        pages = [o.page for _, _, o in outcomes if o.page is not None]
        if pages:
            self.store.write_pages(pages, s.notification_ttl_s)
        if pages:
            refs = [_ENCODER.encode({"id": p.id}) for p in pages]
            self.sender.send(
                refs,
                routing_key=self.sender.names.notifications,
                exchange="",
                message_ids=[p.id for p in pages],
            )
        # A step another scheduler finished meanwhile (lease handover) is not recorded twice.
        moved = self.store.advance(
            [(eid, step, out.next_due, _ENCODER.encode(out.entry)) for eid, step, out in outcomes]
        )
        advanced = [(eid, out) for (eid, _, out), ok in zip(outcomes, moved, strict=True) if ok]
        self._explain([(live[eid].escalation, out) for eid, out in advanced])
        for eid, out in advanced:
            self.metrics.steps.labels(out.entry.outcome).inc()
            log.info(
                "escalation step",
                extra={
                    "stage": STAGE,
                    "escalation_id": eid,
                    "step": out.entry.step,
                    "outcome": out.entry.outcome,
                    "paged": list(out.entry.paged),
                    "reason": out.entry.reason,
                    "next_due": out.next_due,
                },
            )
        self.metrics.pending.set(self.store.pending())
        return len(advanced)

    def sync_feeds(self, fetch: Fetch, now: float) -> dict[str, list[LayerSync]]:
        """Re-sync every calendar-feed layer (the lease holder only); failures are logged
        and counted, and leave their layer as it was."""
        if not self.leader:
            return {}
        results = sync_all(self.oncall, contact_names(self.r, self.oncall), fetch, now)
        for sid, layers in results.items():
            for x in layers:
                self.metrics.feed_syncs.labels("ok" if x.ok else "failed").inc()
                if not x.ok:
                    log.warning(
                        "calendar feed not synced",
                        extra={
                            "stage": STAGE,
                            "schedule_id": sid,
                            "layer": x.layer,
                            "error": x.error,
                        },
                    )
        return results

    def _explain(self, done: list[tuple[Escalation, StepOutcome]]) -> None:
        """Each step's record on its check's explain list (names for the people paged)."""
        if self.settings.explain_max_records <= 0 or not done:
            return
        people = sorted({c for _, out in done for c in out.entry.paged})
        pipe = self.r.pipeline(transaction=False)
        for cid in people:
            pipe.hget(self.keys.contact(cid), "name")
        names = dict(zip(people, pipe.execute(), strict=True)) if people else {}
        records: dict[str, list[bytes]] = {}
        for esc, out in done:
            e = out.entry
            rec = EscalationRecord(
                time=e.time,
                escalation_id=esc.id,
                policy_id=esc.policy_id,
                step=e.step,
                outcome=e.outcome,
                paged=tuple(names.get(c) or c for c in e.paged),
                why=e.why,
                on_call={sid: (names.get(c) or c) if c else None for sid, c in e.on_call.items()},
                reason=e.reason,
            )
            records.setdefault(esc.check_id, []).append(EXPLAIN_ENCODER.encode(rec))
        write_records(
            self.r,
            self.keys,
            records,
            self.settings.explain_max_records,
            self.settings.explain_ttl_s,
        )

    def _refresh(self) -> None:
        version = self.oncall.version()
        if version != self._version:
            self._schedules = self.oncall.schedules()
            self._policies = self.oncall.policies()
            self._version = version

    def _notifications(self, nids: list[str]) -> dict[str, Notification]:
        pipe = self.r.pipeline(transaction=False)
        for nid in nids:
            pipe.hgetall(self.keys.notification(nid))
        out: dict[str, Notification] = {}
        for nid, data in zip(nids, pipe.execute(), strict=True):
            if data:
                try:
                    out[nid] = from_hash(Notification, data)
                except msgspec.ValidationError as exc:
                    log.warning(
                        "unreadable notification", extra={"notification_id": nid, "error": str(exc)}
                    )
        return out

    def _incident_views(
        self, escs: list[Escalation], checks: dict[str, CheckAtStep], now: float
    ) -> dict[str, CheckAtStep | None]:
        """Per escalation of an Argus source's incident, the incident's own state."""
        if not escs:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for esc in escs:
            pipe.hmget(self.keys.incident(esc.incident_id), *_INCIDENT_FIELDS)
        out: dict[str, CheckAtStep | None] = {}
        for esc, values in zip(escs, pipe.execute(), strict=True):
            attrs = {k: v for k, v in zip(_INCIDENT_FIELDS, values, strict=True) if v is not None}
            inc = from_hash(IncidentAtStep, attrs) if "id" in attrs else None
            out[esc.id] = incident_view(esc.incident_id, inc, checks.get(esc.check_id), now)
        return out

    def _check_views(self, cids: list[str], now: float) -> dict[str, CheckAtStep]:
        details = self.checks.details_at(cids, now)
        pipe = self.r.pipeline(transaction=False)
        order = list(details)
        for cid in order:
            pipe.hget(self.keys.check(cid), "episode_id")
        episodes = dict(zip(order, pipe.execute(), strict=True))
        return {
            cid: CheckAtStep(
                failing=d.failing,
                episode_id=episodes.get(cid) or None,
                acknowledged=d.acknowledgement is not None,
                in_maintenance=d.scheduled_maintenance is not None,
                enabled=d.enabled,
            )
            for cid, d in details.items()
        }


# Longest wait between failed ticks (Redis or the broker away); Settings.reconnect_max_s.
TICK_RETRY_MAX_S = 30.0


def run(settings: Settings) -> None:
    """Run the scheduler until SIGTERM/SIGINT."""
    configure_logging(settings, STAGE)
    registry = CollectorRegistry()
    serve_metrics(registry, settings)
    metrics = SchedulerMetrics(registry)
    sender = Sender(settings, name="tocsin-scheduler")
    scheduler = Scheduler(settings, connect_redis(settings), sender, metrics)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("scheduler started", extra={"stage": STAGE, "holder": scheduler.holder})
    if settings.oncall_feed_sync_s > 0:
        threading.Thread(
            target=_sync_feeds_forever, args=(scheduler, stop), name="feed-sync", daemon=True
        ).start()
    cap = TICK_RETRY_MAX_S if settings.reconnect_max_s is None else settings.reconnect_max_s
    backoff = first = min(0.5, cap)
    while not stop.is_set():
        try:
            scheduler.tick(time.time())
            metrics.healthy.set(1)
            backoff = first
        except (*TRANSIENT_ERRORS, *AMQP_ERRORS) as exc:
            metrics.healthy.set(0)
            log.warning(
                "scheduler tick failed, retrying", extra={"stage": STAGE, "error": repr(exc)}
            )
            stop.wait(backoff)
            backoff = min(backoff * 2, cap)
            continue
        stop.wait(settings.scheduler_tick_ms / 1000)
    with contextlib.suppress(*TRANSIENT_ERRORS):
        scheduler.store.release(scheduler.holder)
    sender.close()
    log.info("scheduler stopped", extra={"stage": STAGE})


# Redis away, or a feed's rotation naming a contact deleted meanwhile: try again next time.
_FEED_SYNC_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, ValidationFailed)


def _sync_feeds_forever(scheduler: Scheduler, stop: threading.Event) -> None:
    """Every ``oncall_feed_sync_s``, re-sync calendar feeds (off the tick's thread, so a
    slow calendar server never delays an escalation step)."""
    s = scheduler.settings
    fetch = fetcher(Allowlist.parse(s.destination_allow))
    # The first sync soon after start (once a tick has settled who holds the lease).
    wait = min(30.0, float(s.oncall_feed_sync_s))
    while not stop.wait(wait):
        wait = float(s.oncall_feed_sync_s)
        try:
            scheduler.sync_feeds(fetch, time.time())
        except _FEED_SYNC_ERRORS as exc:
            log.warning("calendar feed sync failed", extra={"stage": STAGE, "error": repr(exc)})
        except Exception:
            # Anything else (a bug, an odd calendar): logged with its traceback, and this
            # thread lives on, since a dead sync thread would fail silently for good.
            log.exception("calendar feed sync crashed", extra={"stage": STAGE})
