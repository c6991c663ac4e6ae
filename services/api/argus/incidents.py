"""``/api/v2/incidents/``: create, read, change (the list is in ``incident_list.py``).

Incidents of checks (source "tocsin", written by the processor) and of Argus
source systems share one store and one list.  Creating an open stateful
incident publishes its check's failing event on routing key ``argus`` so
rules, maintenance and media apply to it (docs/argus.md).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, patch, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED
from msgspec import UNSET, Meta, UnsetType

from services.api.argus import core, plumbing
from services.api.argus.incident_list import list_incidents, list_mine
from services.api.argus.notify import notify_profiles
from services.api.argus.schemas import (
    IncidentIn,
    IncidentOut,
    TicketIn,
    Url,
    incident_out,
)
from services.api.argus.store import ArgusStore, IncidentEventRecord, IncidentRecord, SourceRecord
from services.api.context import ctx_of
from services.api.errors import ApiError, split_field
from shared.keys import check_id


class IncidentPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tags: list[dict[str, str]] | UnsetType = UNSET
    details_url: Url | UnsetType = UNSET
    ticket_url: Url | UnsetType = UNSET
    level: int | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=65536)] | UnsetType = UNSET


# --------------------------------------------------------------------------- create


def _tags(raw: list[Any], field: str = "tags") -> tuple[str, ...]:
    out: list[str] = []
    for item in raw:
        value = (
            item.tag
            if hasattr(item, "tag")
            else item.get("tag")
            if isinstance(item, dict)
            else None
        )
        if not isinstance(value, str):
            raise ApiError(400, 'tags must be a list of {"tag": "key=value"}', field)
        try:
            out.append(core.parse_tag(value, field))
        except core.Invalid as exc:
            raise plumbing.invalid(exc) from None
    if len(out) > 256:
        raise ApiError(400, "at most 256 tags", field)
    return tuple(sorted(set(out)))


def _owner(request: Request[Any, Any, Any], store: ArgusStore, data: IncidentIn) -> SourceRecord:
    src = plumbing.caller(request)
    if src is not None:
        if data.source is not None:  # as Argus: even naming itself (pyargus never sends it)
            raise ApiError(
                400,
                "You must be a superuser to be allowed to specify the 'source' field.",
                "source",
            )
        return src
    if data.source is None:
        raise ApiError(400, "the admin token must name the incident's source (pk)", "source")
    found = store.get_source(data.source)
    if found is None or found.type == "tocsin":
        raise ApiError(400, f"source {data.source} does not exist", "source")
    return found


@post(
    "/incidents/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "admin", "sources": True},
)
def create_incident(request: Request[Any, Any, Any], body: RawBody) -> IncidentOut:
    """Create an incident; an open stateful one notifies at once through the pipeline."""
    data = plumbing.decode(body, IncidentIn)
    store = plumbing.store_of(request)
    src = _owner(request, store, data)
    now = time.time()
    try:
        start = core.parse_time(data.start_time, "start_time")
        end_raw = "infinity" if data.end_time is UNSET else data.end_time
        stateful, end = core.parse_end_time(end_raw, start)
        level = core.check_level(data.level)
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None
    tags = _tags(data.tags)
    sid = data.source_incident_id
    if any(ord(c) < 32 or ord(c) == 127 for c in sid):
        raise ApiError(
            400, "source_incident_id may not contain control characters", "source_incident_id"
        )
    pk = store.next_pk()
    check = sid or f"incident-{pk}"
    if plumbing.caller(request) is not None:  # a source token: its checks are capped
        ctx_of(request).admit_checks("argus", str(src.pk), [check_id(src.name, check)])
    if sid and not store.claim_source_incident_id(src.pk, sid, pk):
        raise ApiError(
            400,
            f"an incident with source_incident_id {sid!r} already exists for this source",
            "source_incident_id",
        )
    inc = IncidentRecord(
        id=pk,
        start_time=start,
        level=level,
        source_incident_id=sid,
        description=data.description,
        check_id=check_id(src.name, check),
        entity=src.name,
        check=check,
        end_time=end,
        source=str(src.pk),
        tags=tags,
        stateless=not stateful,
        details_url=data.details_url,
        ticket_url=data.ticket_url,
        metadata=data.metadata,
    )
    actor = plumbing.argus_actor(request)
    first = IncidentEventRecord(
        type="STA" if stateful else "LES",
        timestamp=start,
        description=data.description,
        actor=actor,
        received=now,
    )
    store.create(inc, first)
    failing = [plumbing.failing_event(inc, start)] if stateful and end is None else []
    try:
        notify_profiles(request, store, inc, [(1, first)], now, publish=failing)
    except ApiError:
        if failing:  # nothing went out: the incident must not stay without its check
            store.delete(inc)
            if sid:
                store.release_source_incident_id(src.pk, sid)
        raise
    return incident_out(inc, store.sources_by_incident_source(), now)


# --------------------------------------------------------------------------- read and change


@get("/incidents/{pk:int}/", sync_to_thread=True)
def get_incident(request: Request[Any, Any, Any], pk: FromPath[int]) -> IncidentOut:
    store, (inc, _, _) = plumbing.load(request, pk)
    return incident_out(inc, store.sources_by_incident_source(), time.time())


def _same_read_only(name: str, given: Any, current: dict[str, Any]) -> bool:
    """A read-only field sent back unchanged (pyargus ``update_incident`` does) is fine."""
    have = current.get(name)
    if name in ("start_time", "end_time") and isinstance(given, str) and isinstance(have, str):
        if given == have:
            return True
        try:
            return abs(core.parse_time(given, name) - core.parse_time(have, name)) < 1e-3
        except core.Invalid:
            return False
    if name == "source" and isinstance(given, dict) and isinstance(have, dict):
        return given.get("pk") == have.get("pk")
    return bool(given == have)


def change_incident(request: Request[Any, Any, Any], pk: int, raw: dict[str, Any]) -> IncidentOut:
    """Apply editable changes, log a CHI event per changed attribute, republish a new level."""
    store, (inc, _, _) = plumbing.load(request, pk)
    src = plumbing.may_change(request, inc)
    now = time.time()
    sources = store.sources_by_incident_source()
    current = msgspec.to_builtins(incident_out(inc, sources, now))
    editable: dict[str, Any] = {}
    for name, value in raw.items():
        if name in core.EDITABLE:
            editable[name] = value
        elif name in core.READ_ONLY:
            if not _same_read_only(name, value, current):
                raise ApiError(400, f'"{name}" is not allowed to be changed', name)
        else:
            raise ApiError(400, f'"{name}" does not exist', name)
    try:
        data = msgspec.convert(editable, IncidentPatch)
    except msgspec.ValidationError as exc:
        message, field = split_field(str(exc))
        raise ApiError(400, message.strip(), field) from None
    actor = plumbing.argus_actor(request)
    fields: dict[str, Any] = {}
    events: list[IncidentEventRecord] = []

    def changed(attr: str, old: Any, new: Any) -> None:
        fields[attr] = new
        events.append(
            IncidentEventRecord(
                type="CHI",
                timestamp=now,
                description=f'Change: "{attr}": {old!r} \u2192 {new!r}',
                actor=actor,
                received=now,
            )
        )

    if not isinstance(data.level, UnsetType):
        try:
            core.check_level(data.level)
        except core.Invalid as exc:
            raise plumbing.invalid(exc) from None
        if data.level != inc.level:
            changed("level", inc.level, data.level)
    for attr in ("details_url", "ticket_url", "description"):
        value = getattr(data, attr)
        if not isinstance(value, UnsetType) and value != getattr(inc, attr):
            changed(attr, getattr(inc, attr), value)
    if not isinstance(data.metadata, UnsetType) and data.metadata != inc.metadata:
        changed("metadata", inc.metadata, data.metadata)
    if not isinstance(data.tags, UnsetType):
        tags = _tags(data.tags)
        added, removed = core.tag_changes(inc.tags, tags)
        for tag in removed:
            owner = inc.tag_meta.get(tag, (f"source:{inc.source}", 0.0))[0]
            if src is not None and owner != actor:
                raise ApiError(400, f"tag {tag!r} was added by someone else", "tags")
        if added or removed:
            meta = {t: m for t, m in inc.tag_meta.items() if t in tags}
            meta.update({t: (actor, now) for t in added})
            changed("tags", list(inc.tags), list(tags))
            fields["tag_meta"] = meta
            fields["tags"] = tags
    if fields:
        length = store.update(inc, fields, events)
        inc = msgspec.structs.replace(inc, **fields)
        new_state = core.state_of_level(inc.level)
        is_open = not inc.stateless and (inc.end_time is None or inc.end_time > now)
        was = core.state_of_level(int(current["level"]))
        failing: list[dict[str, Any]] = []
        if "level" in fields and is_open and inc.source != "tocsin" and new_state != was:
            failing.append(plumbing.failing_event(inc, now))
        first = length - len(events) + 1
        notify_profiles(request, store, inc, list(enumerate(events, first)), now, failing)
    return incident_out(inc, sources, now)


@patch("/incidents/{pk:int}/", sync_to_thread=True, opt={"role": "admin", "sources": True})
def patch_incident(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> IncidentOut:
    """Change tags, details_url, ticket_url, level, metadata or description."""
    return change_incident(request, pk, plumbing.decode(body, dict[str, Any]))


@put("/incidents/{pk:int}/", sync_to_thread=True, opt={"role": "admin", "sources": True})
def put_incident(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> IncidentOut:
    """Same as PATCH (Argus accepts both)."""
    return change_incident(request, pk, plumbing.decode(body, dict[str, Any]))


@put("/incidents/{pk:int}/ticket_url/", sync_to_thread=True, opt={"role": "admin", "sources": True})
def put_ticket_url(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> Response[dict[str, str]]:
    """pyargus ``set_ticket_url``."""
    data = plumbing.decode(body, TicketIn)
    change_incident(request, pk, {"ticket_url": data.ticket_url})
    return Response({"ticket_url": data.ticket_url})


incident_handlers = [
    list_incidents,
    list_mine,
    create_incident,
    get_incident,
    patch_incident,
    put_incident,
    put_ticket_url,
]
