"""The processor's pure core: the check state machine and the notification filter chain.

``apply_event(view, event, incident_id)`` takes what the store knows about one
check and one event and returns the new state plus every effect to persist
(history, maintenance, incident, notification) and the decisions of each
filter.  No Redis, no AMQP, no clock: the event's ``time`` is "now", so a
replay gives the same answers (README, "How Tocsin decides to notify").

Service events (ok, warning, critical, unknown) take the steps of
:mod:`shared.processing.service_events`; acknowledgements and tests those of
:mod:`shared.processing.action_events`; an event older than the check's last
update only adds history (:func:`_apply_stale`, here).  The processor
(``services/processor/``) is the shell around it; ``shared/explain/`` runs
the same function for a dry run, which is why it lives in ``shared/``.

Filters share one shape, ``(Ctx) -> (outcome, reason)`` with outcome
``pass`` (ask the next filter), ``block`` (no notification) or ``notify``
(notify now); a chain that ends without a verdict notifies.  Filter names are
metric labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from shared.checks import CheckRecord, StateRecord
from shared.keys import state_id
from shared.models import CheckEvent
from shared.processing.action_events import apply_action
from shared.processing.effects import CheckView, FilterVerdict, Result
from shared.processing.filters import number
from shared.processing.service_events import apply_service


def episode_starts_bound(record: CheckRecord | None, events: Sequence[CheckEvent]) -> int:
    """Upper bound of incidents ``events`` (one check, in order) can open; the shell reserves ids."""
    failing = record is not None and record.episode_id is not None
    last = record.last_update if record is not None else None
    n = 0
    for ev in events:
        if ev.type != "service" or (last is not None and ev.time < last):
            continue
        last = ev.time
        if ev.state != "ok" and not failing and ev.incident_id is None:
            n += 1
        failing = ev.state != "ok"
    return n


def apply_event(view: CheckView, event: CheckEvent, incident_id: int | None) -> Result:
    """Apply one event to one check; ``incident_id`` is a reserved id for a new episode."""
    if event.type == "action":
        return apply_action(view, event)
    rec = view.record
    if rec is not None and rec.last_update is not None and event.time < rec.last_update:
        return _apply_stale(view, rec, event)
    return apply_service(view, event, incident_id)


def _apply_stale(view: CheckView, rec: CheckRecord, event: CheckEvent) -> Result:
    """An event older than the check's last update: history only, never current state."""
    seq = rec.max_seq + 1
    record = StateRecord(
        state=event.state,
        timestamp=event.time,
        last_update=event.time,
        summary=event.summary,
        details=event.details,
    )
    new = msgspec.structs.replace(rec, max_seq=seq)
    last = number(rec.last_update or 0.0)
    reason = f"out_of_order: event time {number(event.time)} < last update {last}"
    return Result(
        view=msgspec.structs.replace(view, record=new),
        states=((state_id(view.id, seq), record),),
        decisions=(FilterVerdict("out_of_order", "block", reason),),
        changed=True,
    )
