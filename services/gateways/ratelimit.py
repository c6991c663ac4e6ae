"""Token bucket per medium address, with reservations instead of drops.

A storm must not get a team's Slack hook or phone number blocked by its
provider, and it must not lose a page either.  So a delivery that finds the
bucket empty *reserves* the next free slot (the bucket goes into debt) and is
told how long to wait; the runner parks it in a delay queue until then and
sends it without taking a second token.  Later deliveries queue behind the
reserved ones, so the send rate never exceeds ``rate`` after the first
``burst``.

The buckets live in the gateway process: with several gateway processes of
one type, each enforces the limit on its own share of the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    """Per-key token buckets: ``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def reserve(self, key: str, now: float) -> float:
        """Take one token for ``key`` at ``now``; return seconds to wait before sending (0 = now)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = max(bucket.updated, now)
        bucket.tokens -= 1.0
        if bucket.tokens >= 0:
            return 0.0
        return -bucket.tokens / self.rate

    def prune(self, now: float) -> int:
        """Forget buckets that have refilled completely (they behave like new ones); returns how many."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + max(0.0, now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)
