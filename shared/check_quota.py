"""How many checks one event source may create: a cap on attacker-chosen names.

Every new check costs Redis memory for as long as the namespace lives, and a
source token (a declared source's, an Argus source system's) lets its holder
name as many checks as it likes.  Each source therefore has a SET of the
check ids it has named (``Keys.source_checks``); a request that would grow it
past ``TOCSIN_CHECKS_PER_SOURCE`` is refused as a whole before anything is
published, while requests about checks the source already named always pass.
The admission is one Lua call, so concurrent requests cannot overshoot.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import redis

from shared.keys import Keys

# KEYS[1] = the source's set; ARGV[1] = cap; ARGV[2..] = check ids (distinct).
# Returns {refused (0/1), new ids, size of the set before}; nothing is added when refused.
_ADMIT = """
local fresh = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then fresh[#fresh + 1] = ARGV[i] end
end
local size = redis.call('SCARD', KEYS[1])
if #fresh == 0 then return {0, 0, size} end
if size + #fresh > tonumber(ARGV[1]) then return {1, #fresh, size} end
for i = 1, #fresh, 1000 do
  redis.call('SADD', KEYS[1], unpack(fresh, i, math.min(i + 999, #fresh)))
end
return {0, #fresh, size}
"""


class Admission(msgspec.Struct, frozen=True):
    """The answer for one request: ``refused`` names how many new checks it wanted."""

    refused: bool
    new: int
    known: int
    cap: int


class CheckQuota:
    """The per-source check sets in Redis; ``cap`` 0 means no limit (nothing is recorded)."""

    def __init__(self, r: redis.Redis, keys: Keys, cap: int) -> None:
        self.redis = r
        self.keys = keys
        self.cap = cap
        self._admit = r.register_script(_ADMIT)

    def admit(self, source: str, check_ids: Iterable[str]) -> Admission:
        """Record ``check_ids`` as named by ``source``, unless that would pass the cap."""
        ids = sorted(set(check_ids))
        if self.cap <= 0 or not ids:
            return Admission(refused=False, new=0, known=0, cap=self.cap)
        refused, fresh, size = self._admit(
            keys=[self.keys.source_checks(source)], args=[self.cap, *ids]
        )
        return Admission(refused=bool(refused), new=int(fresh), known=int(size), cap=self.cap)

    def count(self, source: str) -> int:
        return int(self.redis.scard(self.keys.source_checks(source)))

    def forget(self, source: str) -> None:
        """Drop a deleted source's set (a new source of the same name starts from zero)."""
        self.redis.delete(self.keys.source_checks(source))
