"""Dry run (pure): what would the pipeline do with this event at this time?

One answer for ``POST /simulate``, ``tocsin simulate`` and the dashboard's
"who would be notified now?": the processor's decision (would it notify, which
type, and if not, which filter blocked and why), and if it would notify, who
gets it on which medium and why not for every other contact and medium.

It runs the *same* pure cores as the workers and changes nothing:
:func:`simulate` takes a check view + event + configuration index + a reader
of notifier state and returns a :class:`DryRun`.  ``apply_event``
(processor), ``select`` and ``expand`` (notifier) decide; ``packing.py``
packs their verdicts exactly as the workers record them.  Calling the
workers' own functions (rather than a copy of their rules) is why those
functions live in ``shared/processing/`` and ``shared/routing/``
(docs/architecture.md).
The read-only Redis shell is :mod:`shared.explain.dry_run`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from shared.explain.packing import event_record, notification_record
from shared.explain.records import EventRecord, NotificationRecord, Route
from shared.formats.flapjack import decode_body
from shared.models import CheckEvent, Notification
from shared.processing.effects import CheckView
from shared.processing.state_machine import apply_event
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState, StateQuery, state_query
from shared.routing.selection import Index, contact_decision, select

StateReader = Callable[[StateQuery], NotifierState]


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery the notifier would produce."""

    contact_id: str
    contact: str
    medium_id: str
    medium_type: str
    type: str


class DryRun(msgspec.Struct, frozen=True, kw_only=True):
    """The dry run's answer.

    ``processor``: the filter chain's verdict, as the processor records it.
    ``notifier``: per contact and medium, deliver or suppress and why (the
    notifier's own record), present when a notification would be created.
    ``recipients``: who would get what on which medium.  ``others``: every
    contact or medium of the configuration the notifier did not consider
    (no rule matched, or its matching rules route the severity elsewhere).
    """

    entity: str
    check: str
    time: float
    config_version: int
    would_notify: bool
    processor: EventRecord | None = None
    notification_type: str | None = None
    severity: str | None = None
    notifier: NotificationRecord | None = None
    recipients: tuple[Recipient, ...] = ()
    others: tuple[Route, ...] = ()


# --------------------------------------------------------------------------- pure


def simulate(
    view: CheckView,
    event: CheckEvent,
    next_incident_id: int,
    index: Index,
    read_state: StateReader,
) -> DryRun:
    """The processor's and notifier's decisions for ``event``, with nothing written.

    ``next_incident_id`` is the id a new failure episode would get (only ids
    of notifications depend on it).  ``read_state`` returns the notifier state
    a query asks for (the shell reads Redis; tests pass a dict).
    """
    res = apply_event(view, event, next_incident_id)
    record = event_record(event, res.decisions, res.notification)
    base = DryRun(
        entity=event.entity,
        check=event.check,
        time=event.time,
        config_version=index.version,
        would_notify=res.notification is not None,
        processor=record,
    )
    if res.notification is None:
        return base
    return msgspec.structs.replace(base, **_routed(index, read_state, res.notification))


def route(index: Index, read_state: StateReader, n: Notification) -> DryRun:
    """The notifier's decisions for a given notification (the processor is not asked)."""
    return DryRun(
        entity=n.entity,
        check=n.check,
        time=n.time,
        config_version=index.version,
        would_notify=True,
        **_routed(index, read_state, n),
    )


def _routed(index: Index, read_state: StateReader, n: Notification) -> dict[str, Any]:
    sel = select(index, n)
    outcome = expand(index, read_state(state_query([(n, sel)])), n, sel)
    rec = notification_record(
        n, outcome.decisions, len(outcome.deliveries), index.contacts, index.media
    )
    recipients = tuple(
        Recipient(
            contact_id=d.contact.id,
            contact=d.contact.name,
            medium_id=d.medium.id,
            medium_type=d.medium.type,
            type=d.type,
        )
        for d in outcome.deliveries
    )
    return {
        "notification_type": n.type,
        "severity": n.severity,
        "notifier": rec,
        "recipients": recipients,
        "others": _unconsidered(index, n, rec),
    }


def _unconsidered(index: Index, n: Notification, rec: NotificationRecord) -> tuple[Route, ...]:
    """Contacts and media the notifier gave no verdict on, and why that is.

    ``select`` only speaks about contacts that have a rule for the check; the
    rest had no matching rule (the routing core says why, rule by rule), and
    media of a routed contact that got no verdict are of types its matching
    rules do not route this severity to.
    """
    contacts = {r.contact_id for r in rec.routes if r.contact_id}
    media = {r.medium_id for r in rec.routes if r.medium_id}
    routed = {r.contact_id for r in rec.routes if r.medium_id}
    out: list[Route] = []
    for cid, contact in sorted(index.contacts.items()):
        if cid not in contacts:
            why = contact_decision(index, n, cid)
            out.append(
                Route(
                    verdict="suppress",
                    code="no_rule",
                    text=f"no rule of {contact.name} matches {n.entity}:{n.check}"
                    + (f": {why.text}" if why is not None else ""),
                    contact_id=cid,
                    contact=contact.name,
                )
            )
            continue
        if cid not in routed:
            continue  # the notifier already said why the whole contact got nothing
        for by_type in index.media_by_contact.get(cid, {}).values():
            for m in by_type:
                if m.id not in media:
                    out.append(
                        Route(
                            verdict="suppress",
                            code="not_routed",
                            text=f"matching rules do not route {n.severity} to {m.type}",
                            contact_id=cid,
                            contact=contact.name,
                            medium_id=m.id,
                            medium_type=m.type,
                        )
                    )
    return tuple(out)


def event_of(body: bytes, at: float | None = None, now: float | None = None) -> CheckEvent:
    """The event a dry run simulates, validated as ingest does; ``at`` overrides its time.

    Raises ``ValueError`` naming the bad field.
    """
    received = at if at is not None else (time.time() if now is None else now)
    decoded = decode_body(body, received, message_id=f"dry-run-{uuid.uuid4().hex[:8]}")
    if decoded.rejected:
        raise ValueError(decoded.rejected[0][1])
    if len(decoded.accepted) != 1:
        raise ValueError("body: give exactly one event")
    event = decoded.accepted[0]
    return event if at is None else msgspec.structs.replace(event, time=at)
