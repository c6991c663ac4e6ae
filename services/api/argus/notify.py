"""Profile notifications for the incident events the Argus API writes (docs/profiles.md).

Who triggers profile evaluation: whoever writes the incident event.  The
processor writes the events of check incidents and puts the event type on its
own notification; for every event this API writes (STA/LES on create, END RES
CHI OTH CLO REO, ACK, the CHI of a PATCH) :func:`notify_profiles` writes a
``profiles_only`` :class:`~shared.models.Notification` hash and publishes its
ref on ``NS.notifications``, as the processor's outbox does.  The notifier
evaluates profiles (and planned maintenance) on it in the same ``select`` as
rules; rules ignore it, since they already get the processor's notification
for the check events the API publishes.  The notification id
``argus:<incident pk>:<event pk>`` makes a redelivery expand once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from litestar import Request

from services.api.argus.core import EVENT_DISPLAY, state_of_level
from services.api.argus.plumbing import events_messages
from services.api.argus.store import TOCSIN, ArgusStore, IncidentEventRecord, IncidentRecord
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.amqp import Names, OutMessage
from shared.consumer import AMQP_ERRORS
from shared.models import ENCODER, Notification, NotificationRef, NotificationType, severity_of
from shared.records import to_hash
from shared.store import is_cluster

log = logging.getLogger(__name__)

_TYPES: dict[str, NotificationType] = {
    "END": "recovery",
    "CLO": "recovery",
    "ACK": "acknowledgement",
}


def event_notification(
    inc: IncidentRecord,
    position: int,
    ev: IncidentEventRecord,
    source_type: str,
    in_maintenance: bool,
    now: float,
) -> Notification:
    """The notification of one logged event; ``inc`` is the incident *after* the event."""
    failing = state_of_level(inc.level)
    is_open = not inc.stateless and (inc.end_time is None or inc.end_time > ev.timestamp)
    acked = inc.acked and (inc.ack_until is None or inc.ack_until > now)
    summary = f"{EVENT_DISPLAY.get(ev.type, ev.type)}: {inc.description}"
    if ev.description and ev.description != inc.description:
        summary += f" ({ev.description})"
    nid = f"argus:{inc.id}:{position}"
    return Notification(
        id=nid,
        type=_TYPES.get(ev.type, "problem"),
        check_id=inc.check_id,
        entity=inc.entity,
        check=inc.check,
        state=failing if is_open or inc.stateless else "ok",
        severity=severity_of(failing),
        time=ev.timestamp,
        summary=summary,
        details=inc.details_url,
        duration=max(0.0, ev.timestamp - inc.start_time),
        episode_id=str(inc.id),
        tags=inc.tags,
        event_id=nid,
        incident_event=ev.type,
        incident_source=inc.source,
        incident_source_type=source_type,
        incident_level=inc.level,
        incident_open=is_open,
        incident_acked=acked,
        incident_stateful=not inc.stateless,
        in_maintenance=in_maintenance,
        profiles_only=True,
    )


def _in_scheduled_maintenance(
    store: ArgusStore, check_id: str, times: Sequence[float]
) -> list[bool]:
    """Whether the check is in scheduled maintenance at each time (composes with profiles)."""
    ends = store.r.zrangebyscore(
        store.k.scheduled_by_end(check_id), min(times), "+inf", withscores=True
    )
    if not ends:
        return [False] * len(times)
    starts = store.r.zmscore(store.k.scheduled_by_start(check_id), [m for m, _ in ends])
    spans = [(s, e) for (_, e), s in zip(ends, starts, strict=True) if s is not None]
    return [any(s <= t < e for s, e in spans) for t in times]


def notify_profiles(
    request: Request[Any, Any, Any],
    store: ArgusStore,
    inc: IncidentRecord,
    events: Sequence[tuple[int, IncidentEventRecord]],
    now: float,
    publish: Sequence[dict[str, Any]] = (),
) -> None:
    """Write the profile notifications of ``events`` (position, record) and publish them.

    ``publish``: pipeline events of the same change (source ``argus``, routed
    to the processor's partitions), sent in the same group commit as the notification refs, so a
    change costs the broker one commit, not two.  503 if the broker is away.
    """
    ctx = ctx_of(request)
    messages = events_messages(request, publish) if publish else []
    if events:
        if inc.source == TOCSIN:
            source_type = TOCSIN
        else:
            src = store.get_source(int(inc.source))
            source_type = src.type if src is not None else ""
        stamps = [ev.timestamp for _, ev in events]
        covered = _in_scheduled_maintenance(store, inc.check_id, stamps)
        notes = [
            event_notification(inc, pos, ev, source_type, hit, now)
            for (pos, ev), hit in zip(events, covered, strict=True)
        ]
        # Each notification is its own slot on a cluster, and nothing reads one before
        # its ref is published below: a plain pipeline there, one MULTI otherwise.
        pipe = ctx.redis.pipeline(transaction=not is_cluster(ctx.redis))
        for n in notes:
            pipe.hset(ctx.keys.notification(n.id), mapping=to_hash(n))
            pipe.expire(ctx.keys.notification(n.id), ctx.settings.notification_ttl_s)
        pipe.execute()
        queue = Names(ctx.settings.namespace).notifications
        messages += [
            OutMessage("", queue, ENCODER.encode(NotificationRef(id=n.id)), message_id=n.id)
            for n in notes
        ]
    if not messages:
        return
    try:
        ctx.sender.send_messages(messages)
    except AMQP_ERRORS as exc:
        log.warning("argus change not published", extra={"error": repr(exc)})
        raise ApiError(503, f"broker unavailable: {exc!r}") from None
