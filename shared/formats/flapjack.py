"""Flapjack-format events (README, "Sending events"): decode, validate, normalise.

Pure functions: bytes and a receive time in, accepted ``CheckEvent``s and
rejection reasons out.  A body may be one event or a JSON array; in an array
the good events pass and each bad one is rejected with its index and field.
"""

from __future__ import annotations

import uuid

import msgspec

from shared.formats.bodies import (
    MAX_EVENTS_PER_BODY,
    Decoded,
    too_large,
    too_many,
)
from shared.models import (
    ENCODER,
    EVENT_BODY_DECODER,
    MAX_FUTURE_SKEW_S,
    CheckEvent,
    Event,
    clean_text,
)

_NOT_EVENTS = "body: expected an event object or an array of events"
_TOO_DEEP = "body: JSON nested too deeply"

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ONE_EVENT = msgspec.json.Decoder(Event)


def decode_body(
    body: bytes, received: float, message_id: str | None = None, source: str = "flapjack"
) -> Decoded:
    """Decode a body of one event or an array of events into normalised events.

    Ids are ``<message_id>:<index>`` when the publisher set a message id (stable
    across redeliveries), else random.
    """
    oversized = too_large(body)
    if oversized is not None:
        return oversized
    prefix = message_id or uuid.uuid4().hex
    try:
        decoded = EVENT_BODY_DECODER.decode(body)
    except msgspec.ValidationError:
        # Some element is bad: decode element by element so the good ones pass.
        return _decode_each(body, received, prefix, source)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Decoded([], [(body, f"body: not valid JSON ({exc})")])
    except RecursionError:
        return Decoded([], [(body[:4096], _TOO_DEEP)])
    events = decoded if isinstance(decoded, list) else [decoded]
    if len(events) > MAX_EVENTS_PER_BODY:
        return Decoded([], [(body[:4096], too_many(len(events)))])
    accepted: list[CheckEvent] = []
    rejected: list[tuple[bytes, str]] = []
    many = isinstance(decoded, list)
    for i, event in enumerate(events):
        try:
            accepted.append(normalise(event, received, f"{prefix}:{i}", source))
        except ValueError as exc:
            raw = ENCODER.encode(event) if many else body
            rejected.append((raw, f"{exc} - at `$[{i}]`" if many else str(exc)))
    return Decoded(accepted, rejected)


def _decode_each(body: bytes, received: float, prefix: str, source: str) -> Decoded:
    try:
        items = _RAW_LIST.decode(body)
    except msgspec.ValidationError:
        # A single object that failed validation: the original error names the field.
        try:
            _ONE_EVENT.decode(body)
        except msgspec.ValidationError as exc:
            if str(exc).startswith("Expected `object`"):
                return Decoded([], [(body, _NOT_EVENTS)])
            return Decoded([], [(body, str(exc))])
        return Decoded([], [(body, _NOT_EVENTS)])
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # Validation stopped at a bad element before the parser reached bad JSON later on.
        return Decoded([], [(body, f"body: not valid JSON ({exc})")])
    except RecursionError:
        return Decoded([], [(body[:4096], _TOO_DEEP)])
    if len(items) > MAX_EVENTS_PER_BODY:
        return Decoded([], [(body[:4096], too_many(len(items)))])
    accepted: list[CheckEvent] = []
    rejected: list[tuple[bytes, str]] = []
    for i, raw in enumerate(items):
        try:
            event = _ONE_EVENT.decode(raw)
            accepted.append(normalise(event, received, f"{prefix}:{i}", source))
        except (msgspec.ValidationError, ValueError) as exc:
            message = str(exc)
            if "- at `$" in message:
                message = message.replace("- at `$", f"- at `$[{i}]", 1)
            else:
                message = f"{message} - at `$[{i}]`"
            rejected.append((bytes(raw), message))
    return Decoded(accepted, rejected)


def normalise(event: Event, received: float, event_id: str, source: str = "flapjack") -> CheckEvent:
    """Apply defaults and the checks that need the receive time; ``ValueError`` if invalid."""
    when = received if event.time is None else float(event.time)
    if when - received > MAX_FUTURE_SKEW_S:
        raise ValueError(
            f"time: {when - received:.0f} s in the future (limit {MAX_FUTURE_SKEW_S:.0f} s)"
        )
    assert event.type in ("service", "action")  # set by Event.__post_init__
    return CheckEvent(
        id=event_id,
        entity=event.entity,
        check=event.check,
        type="service" if event.type == "service" else "action",
        state=event.state,
        time=when,
        received=received,
        summary=clean_text(event.summary),
        details=clean_text(event.details),
        perfdata=clean_text(event.perfdata),
        tags=tuple(dict.fromkeys(event.tags)),
        initial_failure_delay=event.initial_failure_delay,
        repeat_failure_delay=event.repeat_failure_delay,
        initial_recovery_delay=event.initial_recovery_delay,
        duration=event.duration,
        acknowledgement_id=event.acknowledgement_id
        if isinstance(event.acknowledgement_id, str) or event.acknowledgement_id is None
        else str(event.acknowledgement_id),
        source=source,
        # Only the Argus API (routing key ``argus``) may attach an event to an incident.
        incident_id=event.incident_id if source == "argus" else None,
        acknowledged_by=clean_text(event.acknowledged_by)[:255],
    )
