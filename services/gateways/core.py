"""Pure delivery decisions shared by every gateway (alertmanager's notify/retry, in Python).

A medium module only renders and sends; it returns a :class:`SendResult`.
Everything that decides what happens next lives here, as functions over
values and a ``now`` passed in: how a status is classified, whether a failed
attempt is retried (and after how long) or dead-lettered, and which delay
queue a retry goes to.  No Redis, AMQP or clock here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import msgspec

from shared.amqp import GATEWAY_RETRY_LEVELS

# AMQP headers the runner keeps on a delivery between attempts.
H_ATTEMPT = "x-tocsin-attempt"  # attempts already made
H_FIRST = "x-tocsin-first-attempt"  # epoch seconds of the first attempt
H_SLOT = "x-tocsin-slot"  # epoch seconds of a rate-limit slot reserved for this message
H_ERROR = "x-tocsin-last-error"
H_PARKED = "x-tocsin-parked"  # times parked behind an earlier delivery of its lane

# Delay bands: level k holds delays in [BAND_BASE_S * 2**k, BAND_BASE_S * 2**(k+1)).
BAND_BASE_S = 0.25
# The top band starts at 512 s; longer waits (a rate-limited storm) share it.
RETRY_LEVELS = GATEWAY_RETRY_LEVELS


class SendOutcome(enum.StrEnum):
    """What one send attempt achieved."""

    DELIVERED = "delivered"
    RETRY = "retry"  # transient: the same request may succeed later
    FAILED = "failed"  # permanent: the receiver refused it; never retry


class HttpRequest(msgspec.Struct, frozen=True):
    """What an HTTP medium sends for a delivery: a JSON POST (services/gateways/transport.py)."""

    url: str
    body: bytes
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of a medium's ``send``: outcome plus what the log and the backoff need."""

    outcome: SendOutcome
    status: int | None = None
    error: str = ""
    retry_after: float | None = None

    @classmethod
    def ok(cls, status: int | None = None) -> SendResult:
        return cls(outcome=SendOutcome.DELIVERED, status=status)

    @classmethod
    def retry(
        cls, error: str, status: int | None = None, retry_after: float | None = None
    ) -> SendResult:
        return cls(outcome=SendOutcome.RETRY, status=status, error=error, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str, status: int | None = None) -> SendResult:
        return cls(outcome=SendOutcome.FAILED, status=status, error=error)


def classify(status: int) -> SendOutcome:
    """HTTP status -> outcome: 2xx delivered, 429 and 5xx retry, anything else fails for good.

    3xx counts as a failure: redirects are not followed, because following one
    could lead a delivery to a destination that was never checked.
    """
    if 200 <= status < 300:
        return SendOutcome.DELIVERED
    if status == 429 or 500 <= status < 600:
        return SendOutcome.RETRY
    return SendOutcome.FAILED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """How far a delivery got, carried in its AMQP headers between attempts."""

    attempts: int = 0
    first_attempt: float | None = None
    slot: float | None = None
    parked: int = 0


def progress_from_headers(headers: Mapping[str, Any]) -> Progress:
    """Read :class:`Progress` from message headers; bad values count as absent."""

    def number(name: str) -> float | None:
        raw = headers.get(name)
        if isinstance(raw, bytes):
            raw = raw.decode(errors="replace")
        try:
            value = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None
        return value if value is not None and math.isfinite(value) else None

    attempts = number(H_ATTEMPT)
    parked = number(H_PARKED)
    return Progress(
        attempts=max(0, int(attempts)) if attempts is not None else 0,
        first_attempt=number(H_FIRST),
        slot=number(H_SLOT),
        parked=max(0, int(parked)) if parked is not None else 0,
    )


def progress_headers(progress: Progress, error: str = "") -> dict[str, Any]:
    """The headers that carry ``progress`` (and the last error, for people reading the queue)."""
    out: dict[str, Any] = {H_ATTEMPT: progress.attempts}
    if progress.first_attempt is not None:
        out[H_FIRST] = repr(progress.first_attempt)
    if progress.slot is not None:
        out[H_SLOT] = repr(progress.slot)
    if progress.parked:
        out[H_PARKED] = progress.parked
    if error:
        out[H_ERROR] = error[:500]
    return out


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Limits of the retry loop (from Settings)."""

    attempts: int = 5
    deadline_s: float = 300.0
    base_s: float = 2.0
    max_s: float = 120.0


def backoff(policy: RetryPolicy, attempts: int, rnd: float) -> float:
    """Delay before attempt ``attempts + 1``: exponential with full-range jitter of ±25 %.

    ``rnd`` in [0, 1) is passed in so the decision stays deterministic in tests.
    """
    base = min(policy.max_s, policy.base_s * (2.0 ** max(0, attempts - 1)))
    return max(0.0, base * (0.75 + 0.5 * rnd))


class DeliveryDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with a delivery after an attempt."""

    action: Literal["delivered", "retry", "dead"]
    progress: Progress
    delay: float = 0.0
    reason: str = ""
    # Log outcome: delivered | retry | failed (refused for good) | dead (retries exhausted).
    outcome: Literal["delivered", "retry", "failed", "dead"] = "delivered"


def decide(
    result: SendResult,
    before: Progress,
    now: float,
    policy: RetryPolicy,
    rnd: float,
) -> DeliveryDecision:
    """After one attempt made at ``now``: delivered, retry after a delay, or dead-letter.

    A retry must fit both the attempt count and the deadline counted from the
    first attempt; ``Retry-After`` from the receiver lengthens the delay but
    never past the deadline (then the delivery is dead instead).
    """
    first = before.first_attempt if before.first_attempt is not None else now
    progress = Progress(attempts=before.attempts + 1, first_attempt=first)
    if result.outcome is SendOutcome.DELIVERED:
        return DeliveryDecision(action="delivered", progress=progress, outcome="delivered")
    if result.outcome is SendOutcome.FAILED:
        return DeliveryDecision(
            action="dead", progress=progress, reason=f"refused: {result.error}", outcome="failed"
        )
    delay = backoff(policy, progress.attempts, rnd)
    if result.retry_after is not None:
        delay = max(delay, result.retry_after)
    if progress.attempts >= policy.attempts:
        reason = f"gave up after {progress.attempts} attempts: {result.error}"
        return DeliveryDecision(action="dead", progress=progress, reason=reason, outcome="dead")
    if now + delay - first > policy.deadline_s:
        reason = (
            f"gave up after {progress.attempts} attempts, deadline of "
            f"{policy.deadline_s:g} s reached: {result.error}"
        )
        return DeliveryDecision(action="dead", progress=progress, reason=reason, outcome="dead")
    return DeliveryDecision(
        action="retry", progress=progress, delay=delay, reason=result.error, outcome="retry"
    )


def retry_level(delay: float) -> int:
    """The delay band (queue) for a delay: bands double, so a message waits at most ~2x its delay."""
    if delay < BAND_BASE_S * 2:
        return 0
    return min(RETRY_LEVELS - 1, int(math.log2(delay / BAND_BASE_S)))


def expiration_ms(delay: float) -> str:
    """AMQP per-message ``expiration`` (milliseconds, as a string) for ``delay`` seconds."""
    return str(max(1, int(delay * 1000)))


# Parking behind an earlier delivery of the lane: look again soon, then less often.
PARK_BASE_S = 0.1
PARK_MAX_S = 2.0


def park_delay(times_parked: int, at_least: float = 0.0) -> float:
    """How long a delivery waits before looking at its lane again (``times_parked`` so far).

    Short at first, because the delivery ahead is usually just in flight;
    doubling up to ``PARK_MAX_S`` while it is being retried.  ``at_least``:
    the known wait of the delivery ahead (its retry or rate-limit delay).
    """
    return max(at_least, min(PARK_MAX_S, PARK_BASE_S * 2.0 ** max(0, times_parked)))
