"""The processor's decisions over a whole batch, pure: what to load, what to apply, what to record.

The worker's handler (``services/processor/worker.py``) decodes the
messages, loads what :func:`load_query` names, then calls these functions
and writes :class:`Pending` in one MULTI; it decides nothing itself:

- :func:`fresh_events` drops events this partition applied before (a
  redelivered batch) and repeats inside the batch;
- :func:`incident_ids_needed` bounds the incident ids to reserve up front;
- :func:`apply_batch` runs the pure core (``core.apply_event``) event by
  event, hands out the reserved incident ids, and chooses which decisions
  become explain records (:func:`explain_record`).  When the bound was short
  (cases it cannot see), it says by how many ids, and the shell reserves
  that many more and applies the batch again: the core is deterministic.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from shared.checks import CheckRecord, Maintenance, StateRecord
from shared.explain.packing import event_record, routine
from shared.explain.records import ENCODER as EXPLAIN_ENCODER
from shared.keys import check_id
from shared.models import CheckEvent, Notification
from shared.processing.effects import CheckView, FilterVerdict, IncidentChange, Result
from shared.processing.state_machine import apply_event, episode_starts_bound

# (partition, event) in queue order, as decoded; (partition, check id, event) once checked.
Item = tuple[int, CheckEvent]
Fresh = tuple[int, str, CheckEvent]
# Given to an episode when the reserved ids ran out; such a result is never written.
STAND_IN_ID = -1


@dataclass(slots=True)
class Pending:
    """The batch's effects, merged per record, ready for one MULTI."""

    records: dict[str, CheckRecord] = field(default_factory=dict)
    entity: dict[str, str] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    states: dict[str, tuple[str, StateRecord]] = field(default_factory=dict)
    maintenances: dict[str, Maintenance] = field(default_factory=dict)
    incidents: list[IncidentChange] = field(default_factory=list)
    notifications: list[tuple[int, Notification]] = field(default_factory=list)
    processed: dict[int, dict[str, float]] = field(default_factory=dict)
    # Encoded decision records per check id (shared/explain/records.py), oldest first.
    explain: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, cid: str, partition: int, result: Result) -> None:
        rec = result.view.record
        if result.changed and rec is not None:
            self.records[cid] = rec
            self.entity[cid] = rec.entity_name
        if result.new_tags:
            self.tags.setdefault(cid, set()).update(result.new_tags)
        for sid, srec in result.states:
            self.states[sid] = (cid, srec)
        for m in result.maintenances:
            self.maintenances[m.id] = m
        if result.incident is not None:
            self.incidents.append(result.incident)
        if result.notification is not None:
            self.notifications.append((partition, result.notification))


@dataclass(frozen=True, slots=True)
class LoadQuery:
    """What the store loads for a batch: each check's events, each partition's event ids."""

    by_check: dict[str, list[CheckEvent]]
    ids: dict[int, list[str]]
    checks: list[str]  # the check id of each item, in order (for :func:`fresh_events`)


def load_query(items: Sequence[Item]) -> LoadQuery:
    by_check: dict[str, list[CheckEvent]] = defaultdict(list)
    ids: dict[int, list[str]] = defaultdict(list)
    checks: list[str] = []
    for p, ev in items:
        cid = check_id(ev.entity, ev.check)
        checks.append(cid)
        by_check[cid].append(ev)
        ids[p].append(ev.id)
    return LoadQuery(dict(by_check), dict(ids), checks)


def fresh_events(
    items: Sequence[Item], seen: set[str], checks: Sequence[str] | None = None
) -> tuple[list[Fresh], int]:
    """The events to apply, in order, and how many were dropped as already applied or repeated.

    A redelivered batch (the worker died before its ack) carries events whose
    effects are already written; their ids are in the partition's processed
    set, so applying them again would notify twice.  ``checks``: each item's
    check id, when the caller has them already (``LoadQuery.checks``).
    """
    fresh: list[Fresh] = []
    taken: set[str] = set()
    dropped = 0
    for i, (p, ev) in enumerate(items):
        if ev.id in seen or ev.id in taken:
            dropped += 1
            continue
        taken.add(ev.id)
        cid = checks[i] if checks is not None else check_id(ev.entity, ev.check)
        fresh.append((p, cid, ev))
    return fresh, dropped


def incident_ids_needed(views: Mapping[str, CheckView], fresh: Sequence[Fresh]) -> int:
    """Upper bound of the incidents the batch can open (ids are reserved before applying)."""
    per_check: dict[str, list[CheckEvent]] = defaultdict(list)
    for _, cid, ev in fresh:
        per_check[cid].append(ev)
    return sum(episode_starts_bound(views[cid].record, evs) for cid, evs in per_check.items())


def explain_record(previous_state: str | None, ev: CheckEvent, res: Result) -> bytes | None:
    """The packed record of an event's decisions for ``tocsin explain``, or None when routine.

    Routine events (``ok`` after ``ok`` passing every filter) would flush
    the informative records out of the per-check cap, so they get none.
    """
    if res.decisions and routine(previous_state, ev.state, res.decisions[-1]):
        return None
    return EXPLAIN_ENCODER.encode(event_record(ev, res.decisions, res.notification))


@dataclass(slots=True)
class Applied:
    """The batch's effects and what the shell counts and logs about them."""

    pending: Pending = field(default_factory=Pending)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, state)
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (filter, outcome)
    # Each event's last verdict (the one that decided), for the debug log.
    verdicts: list[tuple[CheckEvent, FilterVerdict]] = field(default_factory=list)
    # Incident ids the batch needed beyond those given: reserve them and apply again
    # (until then, these effects carry stand-in ids and must not be written).
    ids_short: int = 0


def linked(before: CheckRecord | None, res: Result) -> Result:
    """``res`` with its notification naming the check's previous one, and the record this one.

    A notifier that gets a recovery before its problem (several notifiers,
    or a problem republished late from an outbox) expands the problem first.
    """
    n, rec = res.notification, res.view.record
    if n is None or rec is None:
        return res
    previous = before.last_notification_id if before is not None else None
    return msgspec.structs.replace(
        res,
        notification=msgspec.structs.replace(n, previous_id=previous or ""),
        view=msgspec.structs.replace(
            res.view, record=msgspec.structs.replace(rec, last_notification_id=n.id)
        ),
        changed=True,
    )


def reused_incident_ids(
    reserved: Sequence[int],
    notifications: Sequence[tuple[int, Notification]],
    stored: Mapping[str, str],
) -> list[int]:
    """``reserved`` with each id a stored notification names instead put back in its place.

    A redelivered batch applied to the same state opens its episodes in the
    same order, so giving it the ids the first attempt used (read from the
    notifications that attempt stored) yields the same incidents.
    """
    swap: dict[str, str] = {}
    for _, n in notifications:
        before = stored.get(n.id)
        if before and n.episode_id and before != n.episode_id and before.isdigit():
            swap[n.episode_id] = before
    return [int(swap.get(str(i), i)) for i in reserved]


def apply_batch(
    views: Mapping[str, CheckView],
    fresh: Sequence[Fresh],
    incident_ids: Sequence[int],
    record_decisions: bool,
) -> Applied:
    """Apply ``fresh`` in order to ``views``, giving new episodes the reserved ``incident_ids``."""
    out = Applied()
    current = dict(views)
    ids = list(incident_ids)
    for p, cid, ev in fresh:
        rec = current[cid].record
        opens = ev.type == "service" and ev.state != "ok"
        if not ids and opens and ev.incident_id is None and (rec is None or rec.episode_id is None):
            # The bound is exact except in cases it cannot see. Go on with a stand-in id
            # to count every shortfall; the shell reserves that many and applies again.
            out.ids_short += 1
            ids.append(STAND_IN_ID)
        res = linked(rec, apply_event(current[cid], ev, ids[0] if ids else None))
        if res.used_incident_id:
            ids.pop(0)
        current[cid] = res.view
        out.pending.add(cid, p, res)
        if record_decisions:
            record = explain_record(rec.state if rec is not None else None, ev, res)
            if record is not None:
                out.pending.explain.setdefault(cid, []).append(record)
        out.pending.processed.setdefault(p, {})[ev.id] = ev.received
        out.events[ev.type, ev.state] += 1
        for d in res.decisions:
            out.decisions[d.filter, d.outcome] += 1
        if res.decisions:
            out.verdicts.append((ev, res.decisions[-1]))
    return out
