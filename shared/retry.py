"""Which errors a batch retries, and how long it waits between tries.

Transient errors (Redis down or failing over, or a handler's own
:class:`~shared.errors.Retryable`) are not the messages' fault: the batch
stays unacked and is retried whole, after :func:`backoff_delay`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import redis.exceptions

from shared.errors import Retryable

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Retryable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    # Redis Cluster failover / resharding, after redis-py's own retries (docs/scaling.md).
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    rnd: Callable[[], float] = random.random,
) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): ``base * 2**(attempt-1)`` plus up to ``jitter``, at most ``cap``.

    The jitter spreads workers that lost the same dependency at the same
    moment, so they do not all come back at once.
    """
    exponent = min(attempt - 1, 64)  # 2**64 * base is past any cap; avoids overflow
    return max(0.0, min(base * 2.0**exponent + rnd() * jitter, cap))
