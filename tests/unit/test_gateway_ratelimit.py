"""Token bucket with reservations: waits computed from the bucket math, nothing dropped."""

from __future__ import annotations

import pytest

from services.gateways.ratelimit import RateLimiter


def test_burst_goes_at_once_then_one_slot_per_token() -> None:
    rl = RateLimiter(rate=1.0, burst=10)
    waits = [rl.reserve("+4712345678", now=100.0) for _ in range(13)]
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == pytest.approx([1.0, 2.0, 3.0])


def test_tokens_refill_with_time_up_to_burst() -> None:
    rl = RateLimiter(rate=2.0, burst=3)
    for _ in range(3):
        assert rl.reserve("a", now=0.0) == 0.0
    assert rl.reserve("a", now=0.0) == pytest.approx(0.5)  # in debt: next slot at 0.5
    assert rl.reserve("a", now=10.0) == 0.0  # long idle: full again (3 tokens), not more
    assert rl.reserve("a", now=10.0) == 0.0
    assert rl.reserve("a", now=10.0) == 0.0
    assert rl.reserve("a", now=10.0) == pytest.approx(0.5)


def test_addresses_have_their_own_buckets() -> None:
    rl = RateLimiter(rate=1.0, burst=1)
    assert rl.reserve("a", now=0.0) == 0.0
    assert rl.reserve("b", now=0.0) == 0.0
    assert rl.reserve("a", now=0.0) == pytest.approx(1.0)


def test_clock_going_backwards_never_adds_tokens() -> None:
    rl = RateLimiter(rate=1.0, burst=1)
    assert rl.reserve("a", now=100.0) == 0.0
    assert rl.reserve("a", now=50.0) == pytest.approx(1.0)


def test_prune_forgets_only_full_buckets() -> None:
    rl = RateLimiter(rate=1.0, burst=2)
    rl.reserve("idle", now=0.0)
    rl.reserve("busy", now=9.0)
    assert rl.prune(now=9.5) == 1
    assert len(rl) == 1
