"""``incidents/<pk>/events/``, ``acks/`` and ``tags/``: the incident's log and what it changes.

Which side writes what: for every event posted here the API writes the log
entry and the incident fields itself, then publishes the check event with the
incident's pk (``incident_id``); the processor updates the check and notifies
but writes nothing into an incident for such events.  END/CLO publish the
check's ``ok``, RES/REO its failing state again, an ACK an ``acknowledgement``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.argus import core, plumbing
from services.api.argus.notify import notify_profiles
from services.api.argus.schemas import (
    AckIn,
    AckOut,
    AckPatch,
    EventIn,
    EventOut,
    TagIn,
    TagOut,
    event_out,
    expiration_out,
    incident_out,
)
from services.api.argus.store import IncidentEventRecord
from services.api.auth import actor_name, principal_of
from services.api.errors import ApiError


def _time(value: str | None, field: str, now: float, required: bool) -> float:
    if value is None:
        if required:
            raise ApiError(400, "source systems must give the event's timestamp", field)
        return now
    try:
        return core.parse_time(value, field)
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None


# --------------------------------------------------------------------------- events


@get("/incidents/{pk:int}/events/", sync_to_thread=True)
def list_events(request: Request[Any, Any, Any], pk: FromPath[int]) -> list[EventOut]:
    """The incident's events, newest first."""
    store, (_, events, _) = plumbing.load(request, pk)
    sources = store.sources_by_incident_source()
    order = sorted(enumerate(events, 1), key=lambda p: (p[1].timestamp, p[0]), reverse=True)
    return [event_out(i, pk, ev, sources) for i, ev in order]


@get("/incidents/{pk:int}/events/{event_pk:int}/", sync_to_thread=True)
def get_event(
    request: Request[Any, Any, Any], pk: FromPath[int], event_pk: FromPath[int]
) -> EventOut:
    store, (_, events, _) = plumbing.load(request, pk)
    if not 1 <= event_pk <= len(events):
        raise ApiError(404, f"event {event_pk} of incident {pk} not found", "pk")
    return event_out(event_pk, pk, events[event_pk - 1], store.sources_by_incident_source())


@post(
    "/incidents/{pk:int}/events/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def post_event(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> EventOut:
    """Post END/RES/CHI/OTH (source systems) or CLO/REO/OTH (admin); ACK only via acks/."""
    return add_event(request, pk, plumbing.decode(body, EventIn))


def add_event(request: Request[Any, Any, Any], pk: int, data: EventIn) -> EventOut:
    """One event on incident ``pk`` (also for ``events/bulk/``); ``ApiError`` when refused."""
    store, (inc, _, _) = plumbing.load(request, pk)
    src = plumbing.may_change(request, inc)
    now = time.time()
    when = _time(data.timestamp, "timestamp", now, required=src is not None)
    state = core.IncidentState(stateful=not inc.stateless, end_time=inc.end_time)
    etype = data.type.upper()
    try:
        effect = core.event_effect(etype, src is not None, state, now)
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None
    if effect in ("close", "reopen") and inc.source == "tocsin":
        raise ApiError(400, "a check's incident closes and reopens with the check's state", "type")
    actor = plumbing.argus_actor(request)
    record = IncidentEventRecord(
        type=etype, timestamp=when, description=data.description, actor=actor, received=now
    )
    fields: dict[str, Any] = {}
    publish: list[dict[str, Any]] = []
    if effect == "close":
        if when < inc.start_time:
            raise ApiError(400, "the incident cannot end before it started", "timestamp")
        fields["end_time"] = when
        publish.append(plumbing.service_event(inc, "ok", when, data.description))
    elif effect == "reopen":
        fields["end_time"] = None
        publish.append(plumbing.failing_event(inc, when, data.description))
    position = store.update(inc, fields, [record])
    after = msgspec.structs.replace(inc, **fields)
    notify_profiles(request, store, after, [(position, record)], now, publish)
    return event_out(position, pk, record, store.sources_by_incident_source())


# --------------------------------------------------------------------------- acknowledgements


def _acks(request: Request[Any, Any, Any], pk: int) -> list[AckOut]:
    store, (inc, events, acks) = plumbing.load(request, pk)
    sources = store.sources_by_incident_source()
    ack_positions = [i + 1 for i, ev in enumerate(events) if ev.type == "ACK"]
    out = []
    for position in ack_positions:
        # Acks the processor logged (check acknowledgements) expire with the incident's ack.
        last = position == ack_positions[-1]
        expiration = acks.get(position, inc.ack_until if last else None)
        out.append(
            AckOut(
                pk=position,
                event=event_out(position, pk, events[position - 1], sources),
                expiration=expiration_out(expiration),
            )
        )
    return out


@get("/incidents/{pk:int}/acks/", sync_to_thread=True)
def list_acks(request: Request[Any, Any, Any], pk: FromPath[int]) -> list[AckOut]:
    return _acks(request, pk)


def _find_ack(request: Request[Any, Any, Any], pk: int, ack_pk: int) -> AckOut:
    for ack in _acks(request, pk):
        if ack.pk == ack_pk:
            return ack
    raise ApiError(404, f"acknowledgement {ack_pk} of incident {pk} not found", "pk")


@get("/incidents/{pk:int}/acks/{ack_pk:int}/", sync_to_thread=True)
def get_ack(request: Request[Any, Any, Any], pk: FromPath[int], ack_pk: FromPath[int]) -> AckOut:
    return _find_ack(request, pk, ack_pk)


@post(
    "/incidents/{pk:int}/acks/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def post_ack(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> AckOut:
    """Acknowledge (end users, i.e. the admin token); the check gets an acknowledgement."""
    return add_ack(request, pk, plumbing.decode(body, AckIn))


def add_ack(request: Request[Any, Any, Any], pk: int, data: AckIn) -> AckOut:
    """One acknowledgement of incident ``pk`` (also for ``acks/bulk/``); ``ApiError`` if refused."""
    store, (inc, _, _) = plumbing.load(request, pk)
    src = plumbing.may_change(request, inc)
    if src is not None:
        raise ApiError(400, "a source system may not acknowledge incidents", "type")
    now = time.time()
    when = _time(data.timestamp, "timestamp", now, required=False)
    expiration = _time(data.expiration, "expiration", now, False) if data.expiration else None
    if expiration is not None and expiration <= when:
        raise ApiError(400, "expiration must be after the timestamp", "expiration")
    record = IncidentEventRecord(
        type="ACK",
        timestamp=when,
        description=data.description,
        actor=plumbing.argus_actor(request),
        received=now,
    )
    fields: dict[str, Any] = {"acked": True}
    still = inc.acked and (inc.ack_until is None or inc.ack_until > now)
    if expiration is None or (still and inc.ack_until is None):
        fields["ack_until"] = None
    else:
        fields["ack_until"] = max(expiration, inc.ack_until or 0.0) if still else expiration
    position = store.update(inc, fields, [record])
    store.set_ack_expiration(pk, position, expiration)
    is_open = not inc.stateless and (inc.end_time is None or inc.end_time > now)
    by = actor_name(request)
    ack = (
        [plumbing.ack_event(inc, position, when, expiration, data.description, by)]
        if is_open
        else []
    )
    # The acked state includes the ACK being created (docs/profiles.md).
    acked = msgspec.structs.replace(inc, **fields)
    notify_profiles(request, store, acked, [(position, record)], now, ack)
    sources = store.sources_by_incident_source()
    return AckOut(
        pk=position,
        event=event_out(position, pk, record, sources),
        expiration=expiration_out(expiration),
    )


def _change_ack(request: Request[Any, Any, Any], pk: int, ack_pk: int, body: bytes) -> AckOut:
    """Change an acknowledgement's expiration (future or null); expired ones are read-only."""
    data = plumbing.decode(body, AckPatch)
    store, (inc, _, _) = plumbing.load(request, pk)
    if plumbing.may_change(request, inc) is not None:
        raise ApiError(400, "a source system may not change acknowledgements", "expiration")
    current = _find_ack(request, pk, ack_pk)
    now = time.time()
    old = core.parse_time(current.expiration, "expiration") if current.expiration else None
    if old is not None and old <= now:
        raise ApiError(400, "an expired acknowledgement cannot be changed", "expiration")
    new = _time(data.expiration, "expiration", now, False) if data.expiration else None
    if new is not None and new <= now:
        raise ApiError(400, "expiration must be in the future", "expiration")
    store.set_ack_expiration(pk, ack_pk, new)
    store.update(inc, {"ack_until": new})
    return msgspec.structs.replace(current, expiration=expiration_out(new))


@patch(
    "/incidents/{pk:int}/acks/{ack_pk:int}/",
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def patch_ack(
    request: Request[Any, Any, Any], pk: FromPath[int], ack_pk: FromPath[int], body: RawBody
) -> AckOut:
    return _change_ack(request, pk, ack_pk, body)


@put(
    "/incidents/{pk:int}/acks/{ack_pk:int}/",
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def put_ack(
    request: Request[Any, Any, Any], pk: FromPath[int], ack_pk: FromPath[int], body: RawBody
) -> AckOut:
    return _change_ack(request, pk, ack_pk, body)


# --------------------------------------------------------------------------- tags


def _tag_list(request: Request[Any, Any, Any], pk: int) -> list[TagOut]:
    store, (inc, _, _) = plumbing.load(request, pk)
    return incident_out(inc, store.sources_by_incident_source(), time.time()).tags


@get("/incidents/{pk:int}/tags/", sync_to_thread=True)
def list_tags(request: Request[Any, Any, Any], pk: FromPath[int]) -> list[TagOut]:
    return _tag_list(request, pk)


def _find_tag(request: Request[Any, Any, Any], pk: int, tag: str) -> TagOut:
    for item in _tag_list(request, pk):
        if item.tag == tag:
            return item
    raise ApiError(404, f"incident {pk} has no tag {tag!r}", "tag")


@get("/incidents/{pk:int}/tags/{tag:str}/", sync_to_thread=True)
def get_tag(request: Request[Any, Any, Any], pk: FromPath[int], tag: FromPath[str]) -> TagOut:
    return _find_tag(request, pk, tag)


@post(
    "/incidents/{pk:int}/tags/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def post_tag(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> TagOut:
    """Add one tag (idempotent)."""
    data = plumbing.decode(body, TagIn)
    store, (inc, _, _) = plumbing.load(request, pk)
    plumbing.may_change(request, inc)
    try:
        tag = core.parse_tag(data.tag, "tag")
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None
    if tag not in inc.tags:
        actor = plumbing.argus_actor(request)
        store.update(
            inc,
            {
                "tags": tuple(sorted({*inc.tags, tag})),
                "tag_meta": {**inc.tag_meta, tag: (actor, time.time())},
            },
        )
    return _find_tag(request, pk, tag)


@delete(
    "/incidents/{pk:int}/tags/{tag:str}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "responder", "sources": True},
)
def delete_tag(request: Request[Any, Any, Any], pk: FromPath[int], tag: FromPath[str]) -> None:
    store, (inc, _, _) = plumbing.load(request, pk)
    src = plumbing.may_change(request, inc)
    if tag not in inc.tags:
        raise ApiError(404, f"incident {pk} has no tag {tag!r}", "tag")
    owner = inc.tag_meta.get(tag, (f"source:{inc.source}", 0.0))[0]
    who = principal_of(request)
    # As in Argus: only a superuser (here: an admin) removes a tag someone else added.
    if (src is not None or (who is not None and who.role != "admin")) and owner != (
        plumbing.argus_actor(request)
    ):
        raise ApiError(400, f"tag {tag!r} was added by someone else", "tag")
    store.update(
        inc,
        {
            "tags": tuple(t for t in inc.tags if t != tag),
            "tag_meta": {t: m for t, m in inc.tag_meta.items() if t != tag},
        },
    )


event_handlers = [
    list_events,
    get_event,
    post_event,
    list_acks,
    get_ack,
    post_ack,
    patch_ack,
    put_ack,
    list_tags,
    get_tag,
    post_tag,
    delete_tag,
]
