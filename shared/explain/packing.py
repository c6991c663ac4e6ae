"""Packing the workers' verdicts into decision records (pure).

The processor calls :func:`event_record` (and skips :func:`routine` events),
the notifier :func:`notification_record`; the dry run (``simulate.py``) calls
the same functions, so a simulated answer reads like a recorded one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.explain.records import EventRecord, NotificationRecord, Route
from shared.models import CheckEvent, Contact, Medium, Notification
from shared.processing.effects import FilterVerdict
from shared.routing.selection import RouteVerdict


def event_record(
    event: CheckEvent, decisions: Sequence[FilterVerdict], notification: Notification | None
) -> EventRecord:
    """Pack the filter chain's verdicts on ``event`` (the last one decided)."""
    if decisions:
        last = decisions[-1]
        name, outcome, reason = last.filter, last.outcome, last.reason
        passed = tuple(d.reason for d in decisions[:-1])
    else:  # a chain always yields a verdict; keep the record well-formed anyway
        name, outcome, reason, passed = "none", "block", "no filter ran", ()
    if notification is not None and outcome == "pass":
        outcome = "notify"  # a chain that runs out notifies (filters.py)
    return EventRecord(
        time=event.time,
        event_id=event.id,
        type=event.type,
        state=event.state,
        summary=event.summary[:200],
        filter=name,
        outcome=outcome,
        reason=reason,
        passed=passed,
        notification_id=notification.id if notification is not None else None,
        notification_type=notification.type if notification is not None else None,
    )


def routine(previous_state: str | None, state: str, verdict: FilterVerdict) -> bool:
    """An ``ok`` event on a check that was ok (or is new), with no recovery pending: nothing to decide.

    The processor does not store these: a healthy check reports ok every
    minute, and 200 of those would push the last failure's story out of the
    capped list (and cost a write per event for no answer).  A check first seen
    ok is not recorded either, so a quiet check costs no record list in Redis
    (docs/explain.md, "What is kept").
    """
    return (
        previous_state in (None, "ok")
        and state == "ok"
        and verdict.filter == "ok"
        and verdict.outcome == "block"
    )


def route_of(
    d: RouteVerdict, contacts: Mapping[str, Contact], media: Mapping[str, Medium]
) -> Route:
    """One notifier verdict with the contact's name and the medium's type for people."""
    contact = contacts.get(d.contact_id) if d.contact_id else None
    medium = media.get(d.medium_id) if d.medium_id else None
    return Route(
        verdict=d.verdict,
        code=d.code,
        text=d.text,
        contact_id=d.contact_id,
        contact=contact.name if contact is not None else None,
        medium_id=d.medium_id,
        medium_type=medium.type if medium is not None else None,
    )


def notification_record(
    n: Notification,
    decisions: Sequence[RouteVerdict],
    deliveries: int,
    contacts: Mapping[str, Contact],
    media: Mapping[str, Medium],
) -> NotificationRecord:
    """Pack the notifier's verdicts on ``n`` (from ``expand``'s ``Expansion.decisions``)."""
    return NotificationRecord(
        time=n.time,
        notification_id=n.id,
        type=n.type,
        state=n.state,
        severity=n.severity,
        routes=tuple(route_of(d, contacts, media) for d in decisions),
        deliveries=deliveries,
    )
