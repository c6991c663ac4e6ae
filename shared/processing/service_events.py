"""Service events (ok, warning, critical, unknown): history, episode, filter chain, incident.

:func:`apply_service` takes one check and one service event in four steps,
each returning its part of the effects: the history record advances
(:func:`_advance_history`), the failure episode opens, continues or ends
(:func:`_failing`, :func:`_recovering`), the filter chain decides whether to
notify (:func:`_notified` records a notification), and the incident change is
assembled from the steps' parts (:func:`_incident_change`).  Pure: the
event's ``time`` is "now".
"""

from __future__ import annotations

import msgspec

from shared.checks import (
    LEVELS,
    CheckRecord,
    Incident,
    IncidentEvent,
    Maintenance,
    StateRecord,
    incident_tags,
)
from shared.keys import state_id
from shared.models import CheckEvent, Notification
from shared.processing.effects import (
    CheckView,
    IncidentChange,
    Result,
    new_record,
    with_maintenances,
)
from shared.processing.filters import Ctx, Kind, run_chain
from shared.processing.notification import build_notification
from shared.severity import worse  # the episode's worst state routes recoveries and acks


def _remember_delays(rec: CheckRecord, event: CheckEvent) -> CheckRecord:
    changes: dict[str, int] = {}
    for name in ("initial_failure_delay", "repeat_failure_delay", "initial_recovery_delay"):
        value = getattr(event, name)
        if value is not None and value != getattr(rec, name):
            changes[name] = value
    return msgspec.structs.replace(rec, **changes) if changes else rec


class _IncidentPart(msgspec.Struct, frozen=True):
    """One step's share of the incident change: opened, log lines, changed fields, closed."""

    opened: Incident | None = None
    events: tuple[IncidentEvent, ...] = ()
    fields: dict[str, str] = msgspec.field(default_factory=dict)
    closed: bool = False

    def then(self, later: _IncidentPart) -> _IncidentPart:
        return _IncidentPart(
            opened=self.opened or later.opened,
            events=self.events + later.events,
            fields={**self.fields, **later.fields},
            closed=self.closed or later.closed,
        )


def apply_service(view: CheckView, event: CheckEvent, incident_id: int | None) -> Result:
    """A service event, in four steps: history, episode, filter chain and notification, incident."""
    before = view.record if view.record is not None else new_record(event)
    tags = view.tags | set(event.tags)
    rec, seq = _advance_history(_remember_delays(before, event), event)
    failing = event.state != "ok"
    if failing:
        rec, part, used_id = _failing(view, before, rec, event, incident_id, tags)
        maintenances: list[Maintenance] = []
    else:
        rec, part, maintenances = _recovering(view, before, rec, event)
        used_id = False
    view_after = with_maintenances(view, maintenances)
    kind: Kind = "problem" if failing else "recovery"
    ctx = Ctx(
        before=before,
        after=rec,
        event=event,
        kind=kind,
        scheduled=view.scheduled,
        unscheduled=view_after.unscheduled,
    )
    decisions = run_chain(kind, ctx)
    notification: Notification | None = None
    if decisions[-1].outcome != "block":
        notification = build_notification(view, before, rec, event, kind, tags, seq)
        rec, closing = _notified(rec, event, failing)
        part = part.then(closing)
    return Result(
        view=msgspec.structs.replace(view_after, record=rec, tags=frozenset(tags)),
        states=((state_id(view.id, seq), _state_record(rec, event.time)),),
        maintenances=tuple(maintenances),
        incident=_incident_change(event, before, part),
        notification=notification,
        decisions=tuple(decisions),
        new_tags=tuple(sorted(set(event.tags) - view.tags)),
        used_incident_id=used_id,
        changed=True,
    )


def _advance_history(rec: CheckRecord, event: CheckEvent) -> tuple[CheckRecord, int]:
    """A new history record per state change; repeats refresh the current one. Returns its seq."""
    if rec.state != event.state or rec.state_seq == 0:
        seq = rec.max_seq + 1
        rec = msgspec.structs.replace(
            rec,
            state_seq=seq,
            max_seq=seq,
            state_since=event.time,
            state_count=1,
            state_notified=False,
            state_last_notification_count=0,
        )
    else:
        seq = rec.state_seq
        rec = msgspec.structs.replace(rec, state_count=rec.state_count + 1)
    rec = msgspec.structs.replace(
        rec,
        state=event.state,
        summary=event.summary,
        details=event.details,
        last_update=event.time,
    )
    return rec, seq


def _failing(
    view: CheckView,
    before: CheckRecord,
    rec: CheckRecord,
    event: CheckEvent,
    incident_id: int | None,
    tags: frozenset[str],
) -> tuple[CheckRecord, _IncidentPart, bool]:
    """A failing state opens an episode (and its incident) or continues it; True if the id was used."""
    t = event.time
    if rec.episode_id is None:
        # An Argus incident the API opened: its pk is the episode id (docs/argus.md).
        episode_id = event.incident_id or (str(incident_id) if incident_id is not None else None)
        if episode_id is None:
            raise ValueError("a new failure episode needs a reserved incident id")
        rec = msgspec.structs.replace(
            rec,
            episode_id=episode_id,
            episode_start=t,
            worst_state=event.state,
            notified=False,
            recovery_pending=False,
            problem_times={},
        )
        opened = Incident(
            id=int(episode_id),
            start_time=t,
            level=LEVELS[event.state],
            source_incident_id=f"{event.entity}:{event.check}",
            description=event.summary or f"{event.entity}:{event.check} is {event.state}",
            check_id=view.id,
            entity=event.entity,
            check=event.check,
            tags=incident_tags(tags),
        )
        sta = IncidentEvent(type="STA", timestamp=t, description=event.summary)
        return rec, _IncidentPart(opened=opened, events=(sta,)), event.incident_id is None
    part = _IncidentPart()
    if rec.recovery_pending:
        # The ok did not last the recovery delay: the same episode goes on.
        rec = msgspec.structs.replace(rec, recovery_pending=False)
        again = IncidentEvent(type="OTH", timestamp=t, description="failing again before recovery")
        part = part.then(_IncidentPart(events=(again,)))
    if (
        before.state != event.state
        and before.state in LEVELS
        and LEVELS[before.state] != LEVELS[event.state]
    ):
        old, new = LEVELS[before.state], LEVELS[event.state]
        level = IncidentEvent(
            type="OTH",
            timestamp=t,
            description=f"level {old} -> {new} ({before.state} -> {event.state})",
        )
        part = part.then(_IncidentPart(events=(level,), fields={"level": str(new)}))
    rec = msgspec.structs.replace(rec, worst_state=worse(rec.worst_state, event.state))
    return rec, part, False


def _recovering(
    view: CheckView, before: CheckRecord, rec: CheckRecord, event: CheckEvent
) -> tuple[CheckRecord, _IncidentPart, list[Maintenance]]:
    """An ok: acknowledgements end; an unnotified episode ends now, a notified one waits."""
    t = event.time
    if not before.failing:
        return rec, _IncidentPart(), []
    # Recovering: any acknowledgement ends now (README, "How Tocsin decides to notify").
    ended = [msgspec.structs.replace(m, end_time=t) for m in view.unscheduled if m.covers(t)]
    if rec.notified:
        return msgspec.structs.replace(rec, recovery_pending=True), _IncidentPart(), ended
    if rec.episode_id is not None:
        end = _IncidentPart(
            events=(IncidentEvent(type="END", timestamp=t, description=event.summary),),
            fields={"end_time": msgspec.json.encode(t).decode()},
            closed=True,
        )
        return _close_episode(rec), end, ended
    return rec, _IncidentPart(), ended


def _notified(
    rec: CheckRecord, event: CheckEvent, failing: bool
) -> tuple[CheckRecord, _IncidentPart]:
    """The record after a notification; a recovery's also closes the episode."""
    t = event.time
    rec = msgspec.structs.replace(
        rec,
        state_notified=True,
        state_last_notification_count=rec.state_count,
        last_notification_type="problem" if failing else "recovery",
        last_notification_time=t,
        notification_count=rec.notification_count + 1,
    )
    if failing:
        rec = msgspec.structs.replace(
            rec, notified=True, problem_times={**rec.problem_times, event.state: t}
        )
        return rec, _IncidentPart()
    # The recovery closes the episode that the ok began to end.
    since = rec.state_since or t
    end = _IncidentPart(
        events=(IncidentEvent(type="END", timestamp=since, description=event.summary),),
        fields={"end_time": msgspec.json.encode(since).decode()},
        closed=True,
    )
    return _close_episode(rec), end


def _incident_change(
    event: CheckEvent, before: CheckRecord, part: _IncidentPart
) -> IncidentChange | None:
    """The incident's change, if any; the Argus API already wrote those of events it published."""
    episode = (part.opened.id if part.opened else None) or before.episode_id
    if event.incident_id is not None or episode is None:
        return None
    if not (part.opened or part.fields or part.events):
        return None
    return IncidentChange(
        id=str(episode),
        opened=part.opened,
        fields=part.fields,
        closed=part.closed,
        events=part.events,
    )


def _state_record(rec: CheckRecord, t: float) -> StateRecord:
    """The current history record, rebuilt from the counters kept on the check."""
    return StateRecord(
        state=rec.state or "unknown",
        timestamp=rec.state_since if rec.state_since is not None else t,
        last_update=t,
        summary=rec.summary,
        details=rec.details,
        count=rec.state_count,
        notified=rec.state_notified,
        last_notification_count=rec.state_last_notification_count,
    )


def _close_episode(rec: CheckRecord) -> CheckRecord:
    return msgspec.structs.replace(
        rec,
        episode_id=None,
        episode_start=None,
        worst_state=None,
        notified=False,
        recovery_pending=False,
        problem_times={},
    )
