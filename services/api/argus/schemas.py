"""Request and response bodies of the Argus API, shaped as ``pyargus.models`` parses them.

``pyargus`` builds its dataclasses with ``cls(**json)`` for sources and
events, so those objects carry exactly Argus's keys and nothing more.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urljoin

import msgspec
from msgspec import UNSET, Meta, UnsetType

from services.api.argus.core import EVENT_DISPLAY, Row, format_end_time, format_time
from services.api.argus.store import TOCSIN, IncidentEventRecord, IncidentRecord, SourceRecord

Url = Annotated[str, Meta(max_length=1024)]
ShortText = Annotated[str, Meta(max_length=255)]
Description = Annotated[str, Meta(max_length=65536)]

# --------------------------------------------------------------------------- inputs


class TagIn(msgspec.Struct):
    tag: Annotated[str, Meta(min_length=1, max_length=255)]


class IncidentIn(msgspec.Struct, kw_only=True):
    """``POST incidents/``; unknown and read-only fields are ignored, as DRF does."""

    start_time: str
    tags: list[TagIn]
    end_time: str | UnsetType | None = UNSET
    source_incident_id: ShortText = ""
    details_url: Url = ""
    description: Description = ""
    level: int = 5
    ticket_url: Url = ""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    source: int | None = None


class EventIn(msgspec.Struct, kw_only=True):
    type: Annotated[str, Meta(min_length=1, max_length=8)]
    timestamp: str | None = None
    description: Description = ""


class AckIn(msgspec.Struct, kw_only=True):
    timestamp: str | None = None
    description: Description = ""
    expiration: str | None = None


class AckPatch(msgspec.Struct, kw_only=True):
    expiration: str | None


class TicketIn(msgspec.Struct, kw_only=True):
    ticket_url: Url


class SourceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f:]+$")]
    type: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    base_url: Url = ""


# --------------------------------------------------------------------------- outputs


class SourceType(msgspec.Struct):
    name: str


class SourceOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A source system; ``last_seen`` only once it sent a heartbeat.

    Incidents embed their source without it: argus-api-client's
    ``SourceSystem`` takes no ``last_seen`` and would refuse the incident.
    """

    pk: int
    name: str
    type: SourceType
    user: int
    base_url: str
    last_seen: str | None = None  # the last heartbeat (``incidents/sources/heartbeat/``)


class SourceCreated(msgspec.Struct, kw_only=True):
    """The one response that carries the source's token."""

    pk: int
    name: str
    type: SourceType
    user: int
    base_url: str
    token: str


class TagOut(msgspec.Struct, kw_only=True):
    tag: str
    added_by: int
    added_time: str


class IncidentOut(msgspec.Struct, kw_only=True):
    pk: int
    start_time: str
    end_time: str | None
    source: SourceOut
    source_incident_id: str
    details_url: str
    description: str
    level: int
    ticket_url: str
    tags: list[TagOut]
    metadata: dict[str, Any]
    stateful: bool
    open: bool
    acked: bool
    # Tocsin's extension (Argus clients ignore it): the check, ``entity:check``.
    check: str | None = None


class IncidentPage(msgspec.Struct):
    next: str | None
    previous: str | None
    results: list[IncidentOut]


class Actor(msgspec.Struct):
    pk: int
    username: str


class EventType(msgspec.Struct):
    value: str
    display: str


class EventOut(msgspec.Struct, kw_only=True):
    pk: int
    incident: int
    actor: Actor
    timestamp: str
    received: str
    type: EventType
    description: str


class AckOut(msgspec.Struct, kw_only=True):
    pk: int
    event: EventOut
    expiration: str | None


class Count(msgspec.Struct):
    count: int


# --------------------------------------------------------------------------- rendering

ADMIN = Actor(pk=0, username="admin")


def source_out(rec: SourceRecord, heartbeat: bool = True) -> SourceOut:
    # Argus sources are users; a source's user pk is its own pk here.
    seen = rec.last_seen if heartbeat else None
    return SourceOut(
        pk=rec.pk,
        name=rec.name,
        type=SourceType(rec.type),
        user=rec.pk,
        base_url=rec.base_url,
        last_seen=format_time(seen) if seen is not None else None,
    )


def source_of(inc: IncidentRecord, sources: dict[str, SourceRecord]) -> SourceRecord:
    found = sources.get(inc.source)
    if found is None:  # a deleted source: keep the incident readable
        return SourceRecord(pk=0, name=inc.source, type="unknown")
    return found


def actor_of(actor: str | None, sources: dict[str, SourceRecord]) -> Actor:
    if actor == "admin":
        return ADMIN
    if actor and actor.startswith("user:"):  # user:<pk>:<username>, a person
        pk, _, name = actor.removeprefix("user:").partition(":")
        return Actor(pk=int(pk) if pk.isdigit() else 0, username=name)
    key = actor.removeprefix("source:") if actor else TOCSIN
    src = sources.get(key) or sources[TOCSIN]
    return Actor(pk=src.pk, username=src.name)


def row_of(inc: IncidentRecord, sources: dict[str, SourceRecord]) -> Row:
    src = source_of(inc, sources)
    return Row(
        pk=inc.id,
        start_time=inc.start_time,
        end_time=inc.end_time,
        stateful=not inc.stateless,
        level=inc.level,
        source_pk=src.pk,
        source_name=src.name,
        source_type=src.type,
        source_incident_id=inc.source_incident_id,
        tags=inc.tags,
        acked=inc.acked,
        ack_until=inc.ack_until,
    )


def incident_out(inc: IncidentRecord, sources: dict[str, SourceRecord], now: float) -> IncidentOut:
    src = source_of(inc, sources)
    row = row_of(inc, sources)
    details = inc.details_url
    if details and src.base_url:
        details = urljoin(src.base_url, details)
    tags = []
    for tag in inc.tags:
        actor, added = inc.tag_meta.get(tag, (f"source:{inc.source}", inc.start_time))
        tags.append(
            TagOut(tag=tag, added_by=actor_of(actor, sources).pk, added_time=format_time(added))
        )
    return IncidentOut(
        pk=inc.id,
        start_time=format_time(inc.start_time),
        end_time=format_end_time(not inc.stateless, inc.end_time),
        source=source_out(src, heartbeat=False),
        source_incident_id=inc.source_incident_id,
        details_url=details,
        description=inc.description,
        level=inc.level,
        ticket_url=inc.ticket_url,
        tags=tags,
        metadata=inc.metadata,
        stateful=not inc.stateless,
        open=row.is_open(now),
        acked=row.is_acked(now),
        check=f"{inc.entity}:{inc.check}" if inc.entity else None,
    )


def event_out(
    pk: int, incident: int, ev: IncidentEventRecord, sources: dict[str, SourceRecord]
) -> EventOut:
    return EventOut(
        pk=pk,
        incident=incident,
        actor=actor_of(ev.actor, sources),
        timestamp=format_time(ev.timestamp),
        received=format_time(ev.received if ev.received is not None else ev.timestamp),
        type=EventType(value=ev.type, display=EVENT_DISPLAY.get(ev.type, ev.type)),
        description=ev.description,
    )


def expiration_out(value: float | None) -> str | None:
    return format_time(value) if value is not None else None
