"""The delivery log: one JSON record per attempt on a capped Redis list, newest first.

It answers "did the page go out, and if not, why?" for ``GET /deliveries``
and ``tocsin deliveries``.  Addresses are redacted before they are stored:
webhook and Slack URLs carry secrets in their path or query, routing keys
are credentials.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from shared.keys import Keys
from shared.masking import mask_url
from shared.models import Delivery

# How many attempt records the list keeps (LTRIM after every write).
DELIVERY_LOG_MAX = 10_000

LogOutcome = Literal["delivered", "retry", "failed", "dead"]


class DeliveryLogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt's outcome.

    ``outcome``: ``delivered``; ``retry`` (transient failure, another attempt
    is scheduled); ``failed`` (refused for good, dead-lettered at once);
    ``dead`` (transient failures until attempts or deadline ran out,
    dead-lettered).  ``attempts`` counts attempts including this one.
    """

    delivery_id: str
    notification_id: str
    medium_id: str
    medium_type: str
    address: str
    type: str
    entity: str
    check: str
    outcome: LogOutcome
    attempts: int
    latency_ms: float
    error: str = ""
    time: float = 0.0
    contact_id: str = ""
    status: int | None = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(DeliveryLogEntry)


def redact_address(medium_type: str, address: str) -> str:
    """The address as the log shows it (see :func:`shared.masking.mask_url`)."""
    return mask_url(medium_type, address)


def entry_for(
    delivery: Delivery,
    *,
    outcome: LogOutcome,
    attempts: int,
    latency_ms: float,
    error: str,
    now: float,
    status: int | None = None,
) -> DeliveryLogEntry:
    """Build the record of one attempt on ``delivery``."""
    return DeliveryLogEntry(
        delivery_id=delivery.id,
        notification_id=delivery.notification_id,
        medium_id=delivery.medium.id,
        medium_type=delivery.medium.type,
        address=redact_address(delivery.medium.type, delivery.medium.address),
        type=delivery.type,
        entity=delivery.entity,
        check=delivery.check,
        outcome=outcome,
        attempts=attempts,
        latency_ms=round(latency_ms, 3),
        error=error[:1000],
        time=now,
        contact_id=delivery.contact.id,
        status=status,
    )


def append_entries(pipe: Any, keys: Keys, entries: list[DeliveryLogEntry]) -> None:
    """Queue LPUSH + LTRIM of ``entries`` on a Redis pipeline (the caller executes it)."""
    if not entries:
        return
    pipe.lpush(keys.delivery_log(), *(_ENCODER.encode(e) for e in entries))
    pipe.ltrim(keys.delivery_log(), 0, DELIVERY_LOG_MAX - 1)


def read_delivery_log(
    r: Any,
    keys: Keys,
    entity: str | None = None,
    check: str | None = None,
    limit: int = 100,
) -> list[DeliveryLogEntry]:
    """Newest first, optionally only one entity and/or check; at most ``limit`` records.

    Filtering scans the capped list (≤ 10,000 small records, one round trip).
    """
    limit = max(0, min(limit, DELIVERY_LOG_MAX))
    if limit == 0:
        return []
    filtered = entity is not None or check is not None
    raw = r.lrange(keys.delivery_log(), 0, -1 if filtered else limit - 1)
    out: list[DeliveryLogEntry] = []
    for item in raw:
        try:
            entry = _DECODER.decode(item)
        except msgspec.DecodeError:
            continue  # a record from a future version; skip rather than fail the read
        if entity is not None and entry.entity != entity:
            continue
        if check is not None and entry.check != check:
            continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out
