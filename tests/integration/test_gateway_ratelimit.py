"""The shared token bucket in Redis: waits from the bucket math, nothing dropped, one limit
for every gateway process of a type, and per-type defaults a medium may override."""

from __future__ import annotations

import pytest

from services.gateways.ratelimit import (
    DEFAULT_LIMITS,
    Limit,
    SharedRateLimiter,
    address_id,
    limit_for,
)
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis

pytestmark = pytest.mark.integration


def limiter(settings: Settings) -> SharedRateLimiter:
    return SharedRateLimiter(connect_redis(settings), Keys(settings.namespace))


def reserve(rl: SharedRateLimiter, address: str, limit: Limit, now: float, n: int) -> list[float]:
    return rl.reserve([("sms", address, limit)] * n, now)


def test_burst_goes_at_once_then_one_slot_per_token(settings: Settings) -> None:
    waits = reserve(limiter(settings), "+4712345678", Limit(1.0, 10), 100.0, 13)
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == pytest.approx([1.0, 2.0, 3.0])


def test_tokens_refill_with_time_up_to_burst(settings: Settings) -> None:
    rl, lim = limiter(settings), Limit(2.0, 3)
    assert reserve(rl, "a", lim, 0.0, 4) == pytest.approx([0, 0, 0, 0.5])  # in debt: slot at 0.5
    # Long idle: full again (3 tokens), not more.
    assert reserve(rl, "a", lim, 10.0, 4) == pytest.approx([0, 0, 0, 0.5])


def test_addresses_have_their_own_buckets(settings: Settings) -> None:
    rl, lim = limiter(settings), Limit(1.0, 1)
    assert rl.reserve([("sms", "a", lim), ("sms", "b", lim), ("sms", "a", lim)], 0.0) == (
        pytest.approx([0.0, 0.0, 1.0])
    )


def test_clock_going_backwards_never_adds_tokens(settings: Settings) -> None:
    rl, lim = limiter(settings), Limit(1.0, 1)
    assert reserve(rl, "a", lim, 100.0, 1) == [0.0]
    assert reserve(rl, "a", lim, 50.0, 1) == pytest.approx([1.0])


def test_two_gateway_processes_share_one_bucket(settings: Settings) -> None:
    """Two limiters (two processes) on one Redis drain the same bucket."""
    one, two, lim = limiter(settings), limiter(settings), Limit(1.0, 2)
    assert reserve(one, "+4700000000", lim, 0.0, 2) == [0.0, 0.0]
    assert reserve(two, "+4700000000", lim, 0.0, 1) == pytest.approx([1.0])


def test_bucket_keys_expire_once_full_again(settings: Settings) -> None:
    r = connect_redis(settings)
    limiter(settings).reserve([("webhook", "https://example.com/h", Limit(10.0, 5))], 0.0)
    (key,) = r.keys(f"{settings.namespace}:rate:*")
    assert 0 < r.pttl(key) <= 1000 * (1 / 10.0) + 60_000


def test_limits_per_type_env_override_and_medium_setting(settings: Settings) -> None:
    assert limit_for("webhook", {}, settings) == DEFAULT_LIMITS["webhook"]
    assert DEFAULT_LIMITS["webhook"].rate > DEFAULT_LIMITS["sms"].rate
    env = Settings.from_env({"TOCSIN_RATE_PER_S": "3", "TOCSIN_RATE_BURST": "4"})
    assert limit_for("sms", {}, env) == Limit(3.0, 4)
    own = {"rate_per_s": "0.5", "rate_burst": "2"}
    assert limit_for("sms", own, env) == Limit(0.5, 2)
    assert limit_for("webhook", {"rate_per_s": "nonsense"}, settings) == DEFAULT_LIMITS["webhook"]


def test_a_flushed_script_cache_is_reloaded_and_no_token_is_taken_twice(
    settings: Settings,
) -> None:
    rl = limiter(settings)
    lim = Limit(1.0, 3)
    assert reserve(rl, "flush", lim, 0.0, 1) == [0.0]
    rl.redis.script_flush()  # what a Redis restart does to the script cache
    assert reserve(rl, "flush", lim, 0.0, 3) == pytest.approx([0, 0, 1.0])


def test_a_token_taken_for_a_delivery_not_sent_now_is_given_back(settings: Settings) -> None:
    """Tokens come with the lane read (one round trip); a duplicate returns its token.

    Burst 3, almost no refill: the first batch sends two deliveries and skips
    a duplicate, so one token is left and the next delivery goes at once.
    Without the refund it would wait about 100 s for its slot.
    """
    from services.gateways.worker import build_consumer
    from shared.consumer import Message
    from shared.models import ENCODER
    from tests.integration.gateway_fakes import FakeReceiver, make_delivery, tuned
    from tests.support import declare

    declare(settings)
    s = tuned(settings, rate_per_s=0.01, rate_burst=3)
    _consumer, runner = build_consumer(s, "webhook")

    def batch(*deliveries: object) -> list[Message]:
        return [
            Message(ENCODER.encode(d), i, "q", "webhook", message_id=d.id)  # type: ignore[attr-defined]
            for i, d in enumerate(deliveries, 1)
        ]

    try:
        with FakeReceiver() as rx:
            one = make_delivery("webhook", rx.url, check="a")
            two = make_delivery("webhook", rx.url, check="b")
            first = runner.handle(batch(one, one, two))
            assert first.outputs == [] and len(rx.requests) == 2
            bucket = Keys(s.namespace).rate_bucket("webhook", address_id(rx.url))
            tokens = float(runner.gate.limiter.redis.hget(bucket, "tokens"))
            assert tokens == pytest.approx(1.0, abs=0.05)  # 3 - 2 sent; the duplicate's came back
            second = runner.handle(batch(make_delivery("webhook", rx.url, check="c")))
            assert second.outputs == [] and len(rx.requests) == 3  # sent now, not parked
            third = runner.handle(batch(make_delivery("webhook", rx.url, check="d")))
            assert len(third.outputs) == 1 and len(rx.requests) == 3  # the bucket is empty now
    finally:
        runner.close()
