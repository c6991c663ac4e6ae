"""Declared JSON sources: any webhook JSON -> check events through a field mapping.

A source is declared once (``POST /sources``) with a :class:`FieldMapping`: JSON
pointers (RFC 6901) for entity, check, state, summary, details, time and tags,
constants for what the payload lacks, and a state value map (``{"alerting":
"critical", "0": "ok"}``).  The API wraps each payload with the mapping in an
:class:`Envelope` and publishes it on routing key ``generic``, so ingest decodes
it without reading Redis and a payload is always mapped with the mapping it
arrived under.

A mapping error names the pointer that failed (``entity: pointer
`/host/name` not found``); the item is dead-lettered, the others pass.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from shared.formats.alertmanager import AlertError, parse_rfc3339
from shared.formats.bodies import MAX_EVENTS_PER_BODY, Decoded, decode_envelope
from shared.models import (
    MAX_FUTURE_SKEW_S,
    SERVICE_STATES,
    CheckEvent,
    Seconds,
    ServiceState,
    clean_text,
)

SOURCE = "generic"
MAX_NAME = 255
MAX_TAGS = 256

# "" is the whole document; otherwise "/"-separated reference tokens.
Pointer = Annotated[str, Meta(max_length=1024, pattern=r"^(/.*)?$")]
SourceName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
_MAPPED = ("entity", "check", "state", "summary", "details")


class FieldMapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """How to read events out of a source's JSON.

    ``items`` points at an array of items (each mapped on its own) or at one
    item; the other pointers are relative to the item.  ``defaults`` supplies
    constants for fields whose pointer is unset or absent in the payload.
    """

    entity: Pointer | None = None
    check: Pointer | None = None
    state: Pointer | None = None
    summary: Pointer | None = None
    details: Pointer | None = None
    time: Pointer | None = None
    tags: Pointer | None = None
    items: Pointer | None = None
    states: dict[Annotated[str, Meta(max_length=255)], ServiceState] = msgspec.field(
        default_factory=dict
    )
    defaults: dict[str, Annotated[str, Meta(max_length=255)]] = msgspec.field(default_factory=dict)
    initial_failure_delay: Seconds | None = None
    repeat_failure_delay: Seconds | None = None

    def __post_init__(self) -> None:
        for field in ("entity", "check", "state"):
            if getattr(self, field) is None and field not in self.defaults:
                raise ValueError(f"{field}: give a pointer or a default")
        unknown = set(self.defaults) - set(_MAPPED)
        if unknown:
            raise ValueError(f"defaults: unknown field(s) {', '.join(sorted(unknown))}")
        # Keys are matched case-insensitively, so store them folded.
        self.states = {k.lower(): v for k, v in self.states.items()}


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Body on routing key ``generic``: the source, its mapping, the raw payload."""

    source: SourceName
    mapping: FieldMapping
    payload: msgspec.Raw


_ENVELOPE = msgspec.json.Decoder(Envelope)
_ANY = msgspec.json.Decoder()


class PointerError(ValueError):
    """The pointer ``pointer`` did not resolve (or to the wrong type) for ``field``."""

    def __init__(self, field: str, pointer: str, problem: str) -> None:
        super().__init__(f"{field}: pointer `{pointer}` {problem}")
        self.field = field
        self.pointer = pointer


MISSING = object()


def resolve(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer, or ``MISSING``."""
    if pointer == "":
        return document
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    return None


def _text(item: Any, mapping: FieldMapping, field: str, required: bool) -> str:
    pointer: str | None = getattr(mapping, field)
    value = MISSING if pointer is None else resolve(item, pointer)
    if value is MISSING or value is None:
        if field in mapping.defaults:
            return mapping.defaults[field]
        if required:
            assert pointer is not None  # FieldMapping.__post_init__ guarantees pointer or default
            raise PointerError(field, pointer, "not found")
        return ""
    text = _scalar(value)
    if text is None:
        raise PointerError(field, pointer or "", f"is {type(value).__name__}, expected a string")
    return text


def _name(item: Any, mapping: FieldMapping, field: str) -> str:
    value = _text(item, mapping, field, required=True)
    if not 1 <= len(value) <= MAX_NAME or not value.isprintable():
        raise PointerError(
            field, getattr(mapping, field) or "", f"must be 1..{MAX_NAME} printable characters"
        )
    return value


def _state(item: Any, mapping: FieldMapping) -> str:
    value = _text(item, mapping, "state", required=True)
    mapped = mapping.states.get(value.strip().lower())
    if mapped is not None:
        return mapped
    if value.strip().lower() in SERVICE_STATES:
        return value.strip().lower()
    known = ", ".join(sorted(set(mapping.states) | set(SERVICE_STATES)))
    raise PointerError(
        "state", mapping.state or "", f"value {value[:64]!r} is not in the state map ({known})"
    )


def _time(item: Any, mapping: FieldMapping, received: float) -> float:
    if mapping.time is None:
        return received
    value = resolve(item, mapping.time)
    if value is MISSING or value is None:
        return received
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PointerError("time", mapping.time, f"is {type(value).__name__}, expected a time")
    if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
        try:
            parsed = parse_rfc3339(value, "time")
        except AlertError:
            raise PointerError(
                "time", mapping.time, f"is not an RFC 3339 time: {value[:64]!r}"
            ) from None
        return received if parsed is None else parsed
    when = float(value)
    if not 0 <= when <= 1e11:
        raise PointerError("time", mapping.time, f"is out of range: {when}")
    return when


def _tags(item: Any, mapping: FieldMapping) -> tuple[str, ...]:
    if mapping.tags is None:
        return ()
    value = resolve(item, mapping.tags)
    if value is MISSING or value is None:
        return ()
    if isinstance(value, dict):
        tags = [f"{k}={_scalar(v)}" for k, v in sorted(value.items()) if _scalar(v) is not None]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        tags = list(value)
    else:
        raise PointerError("tags", mapping.tags, "is neither an object nor a list of strings")
    return tuple(dict.fromkeys(t for t in tags if 0 < len(t) <= MAX_NAME and t.isprintable()))[
        :MAX_TAGS
    ]


def map_item(
    item: Any, mapping: FieldMapping, received: float, event_id: str, source: str
) -> CheckEvent:
    """Apply the mapping to one item; :class:`PointerError` names the failing pointer."""
    when = _time(item, mapping, received)
    if when - received > MAX_FUTURE_SKEW_S:
        raise PointerError("time", mapping.time or "", f"is {when - received:.0f} s in the future")
    return CheckEvent(
        id=event_id,
        entity=_name(item, mapping, "entity"),
        check=_name(item, mapping, "check"),
        type="service",
        state=_state(item, mapping),
        time=when,
        received=received,
        summary=clean_text(_text(item, mapping, "summary", required=False)),
        details=clean_text(_text(item, mapping, "details", required=False)),
        tags=_tags(item, mapping),
        initial_failure_delay=mapping.initial_failure_delay,
        repeat_failure_delay=mapping.repeat_failure_delay,
        source=source,
    )


def map_payload(
    payload: bytes, mapping: FieldMapping, received: float, prefix: str, source: str
) -> Decoded:
    """Map a raw payload (one item or, via ``items``, many) to events."""
    try:
        document = _ANY.decode(payload)
    except msgspec.DecodeError as exc:
        return Decoded([], [(payload, f"payload: not valid JSON ({exc})")])
    except RecursionError:
        return Decoded([], [(payload[:4096], "payload: JSON nested too deeply")])
    if mapping.items is None:
        items: list[Any] = [document]
    else:
        found = resolve(document, mapping.items)
        if found is MISSING:
            return Decoded([], [(payload, f"items: pointer `{mapping.items}` not found")])
        items = found if isinstance(found, list) else [found]
    if len(items) > MAX_EVENTS_PER_BODY:
        return Decoded([], [(payload[:4096], f"items: {len(items)} items exceed the limit")])
    accepted: list[CheckEvent] = []
    rejected: list[tuple[bytes, str]] = []
    many = mapping.items is not None
    for i, item in enumerate(items):
        try:
            accepted.append(map_item(item, mapping, received, f"{prefix}:{i}", source))
        except PointerError as exc:
            where = f" - at item {i}" if many else ""
            rejected.append((msgspec.json.encode(item), f"{exc}{where}"))
    return Decoded(accepted, rejected)


def decode_body(
    body: bytes, received: float, message_id: str | None = None, source: str = SOURCE
) -> Decoded:
    """Decode an :class:`Envelope` (routing key ``generic``) into events.

    Events carry ``source = "generic:<name>"`` so their origin stays visible.
    """
    envelope = decode_envelope(_ENVELOPE, body, "envelope: {exc}")
    if isinstance(envelope, Decoded):
        return envelope
    return map_payload(
        bytes(envelope.payload),
        envelope.mapping,
        received,
        message_id or uuid.uuid4().hex,
        f"{source}:{envelope.source}",
    )


def envelope(source: str, mapping: FieldMapping, payload: bytes) -> bytes:
    """The message body the API publishes for a declared source's payload."""
    return msgspec.json.encode(
        Envelope(source=source, mapping=mapping, payload=msgspec.Raw(payload))
    )
