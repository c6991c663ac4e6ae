"""Per-address token buckets in Redis, shared by every gateway process of a type.

A storm must not get a team's Slack hook or phone number blocked by its
provider, and it must not lose a page either.  So a delivery that finds the
bucket empty *reserves* the next free slot (the bucket goes into debt) and is
told how long to wait; the runner parks it in a delay queue until then and
sends it without taking a second token.  Later deliveries queue behind the
reserved ones, so the send rate never exceeds ``rate`` after the first
``burst``.

The bucket lives in Redis (one hash per medium type and address, updated by
one script), so several gateway processes of a type share one limit.  Each
medium type has its own default: machines (webhook, Slack, PagerDuty) take
bursts, people (SMS, email) should not get forty texts in a minute.  A medium
can set its own ``rate_per_s`` / ``rate_burst``; ``TOCSIN_RATE_PER_S`` and
``TOCSIN_RATE_BURST`` override every default at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import redis.exceptions

from shared.config import Settings
from shared.keys import Keys
from shared.store import is_cluster


class Limit(msgspec.Struct, frozen=True):
    """``rate`` sends per second after a ``burst`` that may go at once."""

    rate: float
    burst: int


# Defaults per medium type (README "Rate limits"): machines take bursts, people do not.
DEFAULT_LIMITS: dict[str, Limit] = {
    "webhook": Limit(rate=100.0, burst=500),
    "pagerduty": Limit(rate=50.0, burst=200),
    "slack": Limit(rate=10.0, burst=60),
    "email": Limit(rate=1.0, burst=10),
    "sms": Limit(rate=0.2, burst=5),
}
FALLBACK_LIMIT = Limit(rate=1.0, burst=10)


def limit_for(medium_type: str, medium_settings: Mapping[str, str], settings: Settings) -> Limit:
    """The limit of one medium: its own settings, else the env override, else the type default."""
    base = DEFAULT_LIMITS.get(medium_type, FALLBACK_LIMIT)
    rate = settings.rate_per_s if settings.rate_per_s is not None else base.rate
    burst = settings.rate_burst if settings.rate_burst is not None else base.burst
    own_rate = _positive(medium_settings.get("rate_per_s"))
    own_burst = _positive(medium_settings.get("rate_burst"))
    return Limit(
        rate=own_rate if own_rate is not None else rate,
        burst=max(1, int(own_burst)) if own_burst is not None else burst,
    )


def _positive(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def address_id(address: str) -> str:
    """A short stable id for an address (keys must not carry phone numbers or URLs)."""
    return hashlib.blake2b(address.encode(), digest_size=10).hexdigest()


# KEYS[1] the bucket; ARGV rate, burst, now.  Returns the wait in seconds (a string: a float).
# The same arithmetic as a bucket kept in memory: refill by elapsed time up to burst, take
# one token, go into debt when empty; a clock going backwards never adds tokens.
RESERVE_LUA = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(b[1]) or burst
local updated = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
updated = math.max(updated, now)
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'updated', string.format('%.6f', updated))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 60000)
if tokens >= 0 then return '0' end
return string.format('%.6f', -tokens / rate)
"""


# KEYS[1] the bucket; ARGV burst.  Gives back one token a delivery took but did not use
# (it was a duplicate, or it waits behind another in its lane): never above ``burst``.
REFUND_LUA = """
local burst = tonumber(ARGV[1])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if not tokens then return 0 end
tokens = math.min(burst, tokens + 1)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens))
return 1
"""

Want = tuple[str, str, Limit]  # (medium type, address, limit)


class SharedRateLimiter:
    """Reserves send slots in the Redis buckets, many per round trip."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._script = redis.register_script(RESERVE_LUA)

    def reserve(self, wants: Sequence[Want], now: float) -> list[float]:
        """Take one token per ``(medium type, address, limit)``; seconds each must wait (0 = now)."""
        if not wants:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for want in wants:
            self.queue(pipe, want, now)
        return self.settle(pipe.execute(raise_on_error=False), wants, now)

    def queue(self, pipe: Any, want: Want, now: float) -> None:
        """Add one reservation to ``pipe`` (the caller's own reads may share the round trip).

        The pipeline must run with ``raise_on_error=False``; :meth:`settle`
        reads the replies.
        """
        limit = want[2]
        key = self._bucket(want)
        args = [repr(limit.rate), limit.burst, repr(now)]
        if is_cluster(self.redis):
            # A cluster pipeline refuses EVALSHA (the script may be unknown to the
            # node); EVAL routes by the bucket's key, one slot per address.
            pipe.execute_command("EVAL", RESERVE_LUA, 1, key, *args)
        else:
            # EVALSHA by hand: a registered Script in a pipeline makes redis-py send
            # SCRIPT EXISTS first, a second round trip per batch (py-spy: a tenth of
            # the webhook gateway's time).  NOSCRIPT (Redis restarted) loads it once.
            pipe.execute_command("EVALSHA", self._script.sha, 1, key, *args)

    def settle(self, replies: Sequence[Any], wants: Sequence[Want], now: float) -> list[float]:
        """The waits from the replies to :meth:`queue`, in the order of ``wants``."""
        waits: list[Any] = list(replies)
        missing = [i for i, w in enumerate(waits) if isinstance(w, redis.exceptions.NoScriptError)]
        if missing:
            # Only the calls that did not run are repeated: the others took their token.
            self.redis.script_load(RESERVE_LUA)
            for i, w in zip(missing, self.reserve([wants[i] for i in missing], now), strict=True):
                waits[i] = w
        for w in waits:
            if isinstance(w, Exception):
                raise w
        return [float(w) for w in waits]

    def refund(self, wants: Sequence[Want]) -> None:
        """Give back tokens taken for deliveries that were not sent (one round trip)."""
        if not wants:
            return
        pipe = self.redis.pipeline(transaction=False)
        for want in wants:
            pipe.execute_command("EVAL", REFUND_LUA, 1, self._bucket(want), want[2].burst)
        pipe.execute()

    def _bucket(self, want: Want) -> str:
        medium_type, address, _ = want
        return self.keys.rate_bucket(medium_type, address_id(address))
