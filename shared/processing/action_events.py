"""Action events: an acknowledgement (an unscheduled maintenance) or a test notification.

:func:`apply_action` never changes the check's state or history: an
acknowledgement of a failing check ends the current one and adds a new
unscheduled maintenance, an ACK on the open incident and, if the chain lets
it, an acknowledgement notification; a test notification only runs its chain.
"""

from __future__ import annotations

import msgspec

from shared.checks import IncidentEvent, Maintenance
from shared.models import DEFAULT_ACK_DURATION, CheckEvent
from shared.processing.effects import (
    CheckView,
    IncidentChange,
    Result,
    maintenance_id,
    new_record,
    with_maintenances,
)
from shared.processing.filters import Ctx, Kind, run_chain
from shared.processing.notification import build_notification


def apply_action(view: CheckView, event: CheckEvent) -> Result:
    rec = view.record
    kind: Kind = "acknowledgement" if event.state == "acknowledgement" else "test"
    t = event.time
    before = rec if rec is not None else new_record(event)
    ack: Maintenance | None = None
    ended: list[Maintenance] = []
    if kind == "acknowledgement" and before.failing:
        until = t + (event.duration if event.duration is not None else DEFAULT_ACK_DURATION)
        ack = Maintenance(
            id=maintenance_id(view.id, event.id),
            check_id=view.id,
            start_time=t,
            end_time=until,
            summary=event.summary,
            acknowledgement_id=event.acknowledgement_id,
            contact_id=event.ack_contact_id,
            channel=event.ack_channel,
        )
        # A new acknowledgement replaces the current one.
        ended = [msgspec.structs.replace(m, end_time=t) for m in view.unscheduled if m.covers(t)]
    view_after = with_maintenances(view, [*ended, *([ack] if ack else [])])
    ctx = Ctx(
        before=before,
        after=before,
        event=event,
        kind=kind,
        scheduled=view.scheduled,
        unscheduled=view_after.unscheduled,
    )
    decisions = run_chain(kind, ctx)
    notify = decisions[-1].outcome != "block"
    notification = None
    after = before
    if notify:
        notification = build_notification(
            view,
            before,
            before,
            event,
            kind,
            view.tags,
            before.state_seq,
            ack_until=ack.end_time if ack else None,
        )
        if kind == "acknowledgement":
            after = msgspec.structs.replace(
                before,
                last_notification_type=kind,
                last_notification_time=t,
                notification_count=before.notification_count + 1,
            )
    if ack is not None:
        ack = msgspec.structs.replace(ack, notified=notify)
    incident = None
    if ack is not None and before.episode_id is not None and event.incident_id is None:
        incident = IncidentChange(
            id=before.episode_id,
            fields={"acked": "true", "ack_until": msgspec.json.encode(ack.end_time).decode()},
            events=(
                IncidentEvent(
                    type="ACK",
                    timestamp=t,
                    description=event.summary or "acknowledged",
                    contact_id=event.ack_contact_id,
                    channel=event.ack_channel,
                ),
            ),
        )
    return Result(
        view=msgspec.structs.replace(view_after, record=after if rec is not None else None),
        maintenances=tuple([*ended, *([ack] if ack else [])]),
        incident=incident,
        notification=notification,
        decisions=tuple(decisions),
        changed=rec is not None and after is not before,
    )
