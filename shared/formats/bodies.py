"""What every source decoder shares: the result type, size limits, and the rejections
of bodies that are too large, not JSON, nested too deeply or of the wrong shape."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from shared.models import CheckEvent

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_EVENTS_PER_BODY = 100_000
# How much of an oversized or unparseable body a dead letter keeps.
KEPT_BYTES = 4096

T = TypeVar("T")


class Decoded(msgspec.Struct, frozen=True):
    """Result of decoding one body: accepted events, and (raw element, reason) pairs."""

    accepted: list[CheckEvent]
    rejected: list[tuple[bytes, str]]


def rejected(raw: bytes, reason: str) -> Decoded:
    """A body that yields nothing but one rejection."""
    return Decoded([], [(raw, reason)])


def too_large(body: bytes, what: str = "body") -> Decoded | None:
    """The rejection of an oversized body, or None when it is within the limit."""
    if len(body) <= MAX_BODY_BYTES:
        return None
    return rejected(
        body[:KEPT_BYTES], f"{what}: {len(body)} bytes exceeds the {MAX_BODY_BYTES} byte limit"
    )


def too_many(n: int, what: str = "body") -> str:
    return f"{what}: {n} events exceed the limit of {MAX_EVENTS_PER_BODY} per message"


def decode_envelope(
    decoder: msgspec.json.Decoder[T], body: bytes, invalid: str, what: str = "body"
) -> T | Decoded:
    """Decode ``body`` with ``decoder``, or the rejection saying why it cannot be.

    ``invalid`` formats a schema error: ``"body: not an Alertmanager payload ({exc})"``.
    """
    oversized = too_large(body, what)
    if oversized is not None:
        return oversized
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        return rejected(
            body, f"{invalid} ({exc})" if invalid.endswith("payload") else f"{invalid}{exc}"
        )
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return rejected(body, f"{what}: not valid JSON ({exc})")
    except RecursionError:
        return rejected(body[:KEPT_BYTES], f"{what}: JSON nested too deeply")
