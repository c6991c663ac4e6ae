"""Wrong-token limiting shared by every API process, kept in Redis.

:class:`services.api.auth.FailedAuth` counts failures in process memory, so
behind a load balancer with N API processes a guesser would get N times the
limit.  :class:`SharedFailedAuth` keeps the same sliding window per client
address in one Redis sorted set per address (failure times, trimmed to the
newest ``limit``, expiring after the window), so all processes see one count.

Time comes from Redis's clock (``TIME`` in the scripts), not from the caller:
the ``now`` the guard passes is a process-local monotonic reading that other
processes cannot compare with.  Each call is one script, so a check and the
trim it implies are atomic.
"""

from __future__ import annotations

import secrets

import redis

from services.api.auth import FAILED_AUTH_LIMIT, FAILED_AUTH_WINDOW_S, FailedAuth
from shared.keys import Keys

# KEYS[1] failure set; ARGV limit, window (s) -> seconds until the client may try again (0: not locked).
_RETRY_AFTER_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then return 0 end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return math.max(1, math.floor(oldest + window - now) + 1)
"""

# KEYS[1] failure set; ARGV limit, window (s), a unique member -> records one failure now.
_RECORD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -limit - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return 1
"""


class SharedFailedAuth(FailedAuth):
    """:class:`FailedAuth`'s window and lock-out, counted in Redis across API processes."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        limit: int = FAILED_AUTH_LIMIT,
        window_s: float = FAILED_AUTH_WINDOW_S,
    ) -> None:
        super().__init__(limit=limit, window_s=window_s)
        self.keys = keys
        self._retry_after = r.register_script(_RETRY_AFTER_LUA)
        self._record = r.register_script(_RECORD_LUA)

    def locked(self, client: str, now: float) -> bool:
        return self.retry_after(client, now) > 0

    def retry_after(self, client: str, now: float) -> int:
        """Seconds until ``client`` may try again (0 when it is not locked); ``now`` unused."""
        key = self.keys.auth_failures(client)
        return int(self._retry_after(keys=[key], args=[self.limit, self.window_s]))

    def record(self, client: str, now: float) -> None:
        key = self.keys.auth_failures(client)
        self._record(keys=[key], args=[self.limit, self.window_s, secrets.token_hex(8)])
