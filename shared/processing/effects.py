"""What the state machine (``apply_event``) takes and returns: the check view in, the effects of one event out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import msgspec

from shared.checks import CheckRecord, Incident, IncidentEvent, Maintenance, StateRecord
from shared.models import CheckEvent, Notification

FilterOutcome = Literal["pass", "block", "notify"]


class CheckView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the state machine needs to know about one check."""

    id: str
    record: CheckRecord | None = None
    tags: frozenset[str] = frozenset()
    scheduled: tuple[Maintenance, ...] = ()
    unscheduled: tuple[Maintenance, ...] = ()


class FilterVerdict(msgspec.Struct, frozen=True):
    """One filter's verdict and why (recorded for explain: shared/explain/packing.py)."""

    filter: str
    outcome: str
    reason: str


class IncidentChange(msgspec.Struct, frozen=True, kw_only=True):
    """What happens to an incident: opened (full record), fields changed, events appended."""

    id: str
    opened: Incident | None = None
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    closed: bool = False
    events: tuple[IncidentEvent, ...] = ()


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """The effects of one event on one check."""

    view: CheckView
    states: tuple[tuple[str, StateRecord], ...] = ()
    maintenances: tuple[Maintenance, ...] = ()
    incident: IncidentChange | None = None
    notification: Notification | None = None
    decisions: tuple[FilterVerdict, ...] = ()
    new_tags: tuple[str, ...] = ()
    used_incident_id: bool = False
    changed: bool = False


def notification_id(cid: str, event_id: str) -> str:
    """Deterministic: a redelivered event yields the same id, which the notifier dedups."""
    return hashlib.blake2b(f"{cid}:{event_id}".encode(), digest_size=12).hexdigest()


def maintenance_id(cid: str, event_id: str) -> str:
    """Deterministic id of the unscheduled maintenance an acknowledgement creates."""
    return hashlib.blake2b(f"ack:{cid}:{event_id}".encode(), digest_size=10).hexdigest()


def new_record(event: CheckEvent) -> CheckRecord:
    """The record of a check seen for the first time (its state comes from the event)."""
    return CheckRecord(entity_name=event.entity, name=event.check)


def with_maintenances(view: CheckView, updated: Sequence[Maintenance]) -> CheckView:
    """``view`` with ``updated`` unscheduled maintenances replacing or joining its own."""
    if not updated:
        return view
    by_id = {m.id: m for m in updated}
    merged = {m.id: m for m in view.unscheduled} | by_id
    return msgspec.structs.replace(
        view, unscheduled=tuple(sorted(merged.values(), key=lambda m: m.start_time))
    )
