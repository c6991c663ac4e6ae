"""What a processor notification says: severity, duration, previous state and incident facts.

Pure, called by the state machine (``service_events.py``, ``action_events.py``)
once its filter chain decided to notify; the notifier routes on these fields, Argus
notification profiles filter on the incident facts (docs/profiles.md).
"""

from __future__ import annotations

from typing import Any

from shared.checks import LEVELS, CheckRecord
from shared.keys import state_id
from shared.models import CheckEvent, Notification, severity_of
from shared.processing.effects import CheckView, notification_id
from shared.processing.filters import Kind, last_problem_state


def build_notification(
    view: CheckView,
    before: CheckRecord,
    rec: CheckRecord,
    event: CheckEvent,
    kind: Kind,
    tags: frozenset[str] | set[str],
    seq: int,
    ack_until: float | None = None,
) -> Notification:
    """The notification of ``event`` (``kind``), with what routing and profiles read of it."""
    t = event.time
    if kind == "problem":
        severity = severity_of(event.state)
    elif kind == "test":
        severity = "critical"
    else:
        severity = severity_of(rec.worst_state or before.worst_state or "critical")
    if kind == "acknowledgement":
        duration = float((ack_until or t) - t)
    elif kind == "recovery":
        start = before.episode_start
        duration = float((rec.state_since or t) - start) if start is not None else 0.0
    else:
        start = rec.episode_start
        duration = float(t - start) if start is not None and kind == "problem" else 0.0
    previous = before.state if kind == "problem" else rec.state
    if kind == "recovery":
        # After an initial_recovery_delay the previous event was already ok.
        previous = before.state if before.failing else last_problem_state(rec)
    facts = _incident_facts(view, before, rec, event, kind)
    return Notification(
        id=notification_id(view.id, event.id),
        type=kind,
        check_id=view.id,
        entity=event.entity,
        check=event.check,
        state=event.state,
        severity=severity,
        time=t,
        previous_state=previous,
        summary=event.summary,
        details=event.details,
        duration=duration,
        state_id=state_id(view.id, seq) if seq else None,
        episode_id=rec.episode_id or before.episode_id,
        tags=tuple(sorted(tags)),
        event_id=event.id,
        acknowledgement_id=event.acknowledgement_id,
        ack_until=ack_until,
        acknowledged_by=event.acknowledged_by if kind == "acknowledgement" else "",
        **facts,
    )


def _incident_facts(
    view: CheckView, before: CheckRecord, rec: CheckRecord, event: CheckEvent, kind: Kind
) -> dict[str, Any]:
    """What Argus notification profiles see of a check incident (docs/profiles.md).

    The incident event a notification stands for: the first problem of an
    episode is its ``STA``, a later problem in another state the ``OTH`` the
    level change logs, a recovery the ``END``, an acknowledgement the ``ACK``;
    repeats and tests stand for no event.  Incidents of Argus sources
    (``incident_id`` set) get their profile notifications from the API; their
    rule notifications name the source (``@<entity>``) so planned maintenance
    can silence them too.
    """
    if kind == "test":
        return {}
    t = event.time
    if kind == "problem":
        first = before.episode_id is None or not before.notified
        etype = "STA" if first else ("OTH" if before.state != event.state else "")
        level = LEVELS.get(event.state, 5)
    else:
        etype = "END" if kind == "recovery" else "ACK"
        level = LEVELS.get(rec.worst_state or before.worst_state or "critical", 5)
    facts: dict[str, Any] = {
        "incident_event": etype,
        "incident_source": "tocsin",
        "incident_source_type": "tocsin",
        "incident_level": level,
        "incident_open": kind != "recovery",
        "incident_acked": kind == "acknowledgement" or any(m.covers(t) for m in view.unscheduled),
        "in_maintenance": any(m.covers(t) for m in view.scheduled),
    }
    if event.incident_id is not None:
        # The API wrote (and notified profiles of) this event; rules still see the incident.
        facts.update(incident_event="", incident_source=f"@{event.entity}", incident_source_type="")
    return facts
