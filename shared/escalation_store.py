"""Durable escalation timers in Redis: start, claim due steps, advance (no decisions).

- ``oncall:{oncall}:due`` is a sorted set of escalation ids scored by when
  their next step is due.  The notifier adds one (``ZADD NX``, due at once) in
  the same transaction that records the problem notification, so a started
  escalation survives any worker dying, and Redis restarts with AOF.
- A scheduler claims due ids with :data:`CLAIM_LUA`: only the holder of the
  lease key may claim (several schedulers may run; one works, the others wait
  for its lease to lapse), and a claimed id's score moves ``inflight_s`` ahead,
  so a scheduler killed mid-step leaves it to be claimed again then.
- :data:`ADVANCE_LUA` moves an escalation from step n to n + 1 only if it is
  still at n (compare-and-set), schedules the next step or removes the id, and
  appends the timeline entry.  The page of step n has the deterministic
  notification id ``<escalation id>.<n>`` and is published *before* the
  advance, so a crash in between re-publishes the same id, which the notifier
  has already expanded and ignores: each step pages once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec
import redis

from shared.escalation import Escalation
from shared.keys import Keys
from shared.models import Notification
from shared.records import to_hash

ESCALATION_TTL_S = 7 * 86400
TIMELINE_MAX = 200
CHECK_ESCALATIONS_MAX = 50

CLAIM_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {1}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[5]), id)
  out[#out + 1] = id
end
return out
"""

ADVANCE_LUA = """
if redis.call('HGET', KEYS[1], 'step') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[2])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[1], 'done', '1')
else
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[5])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[7]), -1)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
return 1
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_ENCODER = msgspec.json.Encoder()
_ESCALATION = msgspec.json.Decoder(Escalation)


def escalation_id(episode: str, policy_id: str) -> str:
    """One escalation per failure episode and policy (a repeated problem does not restart it)."""
    return hashlib.blake2b(f"{episode}\0{policy_id}".encode(), digest_size=10).hexdigest()


def page_id(eid: str, step: int) -> str:
    """The notification id of step ``step``'s page (deterministic: re-publishing is harmless)."""
    return f"{eid}.{step}"


class Loaded(msgspec.Struct, frozen=True):
    escalation: Escalation
    step: int
    done: bool


class EscalationStore:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.k = keys
        self._claim = r.register_script(CLAIM_LUA)
        self._advance = r.register_script(ADVANCE_LUA)
        self._release = r.register_script(RELEASE_LUA)

    def start(self, pipe: redis.client.Pipeline, esc: Escalation, due: float) -> None:
        """Queue, in the caller's transaction, an escalation due at ``due`` unless it exists."""
        key = self.k.escalation(esc.id)
        pipe.hsetnx(key, "record", _ENCODER.encode(esc))
        pipe.hsetnx(key, "step", "0")
        pipe.expire(key, ESCALATION_TTL_S)
        pipe.zadd(self.k.escalation_due(), {esc.id: due}, nx=True)
        pipe.zadd(self.k.check_escalations(esc.check_id), {esc.id: esc.started})
        pipe.zremrangebyrank(self.k.check_escalations(esc.check_id), 0, -CHECK_ESCALATIONS_MAX - 1)
        pipe.expire(self.k.check_escalations(esc.check_id), ESCALATION_TTL_S)

    def claim(
        self, holder: str, lease_ms: int, now: float, limit: int, inflight_s: float
    ) -> tuple[bool, list[str]]:
        """(lease held, due escalation ids claimed for ``inflight_s``)."""
        out = self._claim(
            keys=[self.k.scheduler_lease(), self.k.escalation_due()],
            args=[holder, lease_ms, repr(now), limit, repr(inflight_s)],
        )
        return bool(int(out[0])), [str(x) for x in out[1:]]

    def release(self, holder: str) -> None:
        self._release(keys=[self.k.scheduler_lease()], args=[holder])

    def load(self, ids: Sequence[str]) -> dict[str, Loaded | None]:
        pipe = self.r.pipeline(transaction=False)
        for eid in ids:
            pipe.hmget(self.k.escalation(eid), "record", "step", "done")
        out: dict[str, Loaded | None] = {}
        for eid, (record, step, done) in zip(ids, pipe.execute(), strict=True):
            out[eid] = (
                Loaded(_ESCALATION.decode(record), int(step or 0), done == "1") if record else None
            )
        return out

    def drop(self, eid: str) -> None:
        """Forget a due id whose record is gone (expired) or finished."""
        self.r.zrem(self.k.escalation_due(), eid)

    def write_pages(self, pages: Sequence[Notification], ttl_s: int) -> None:
        """The pages' notification hashes, where the notifier reads them by id (one trip)."""
        pipe = self.r.pipeline(transaction=False)
        for n in pages:
            pipe.hset(self.k.notification(n.id), mapping=to_hash(n))
            pipe.expire(self.k.notification(n.id), ttl_s)
        pipe.execute()

    def advance(self, steps: Sequence[tuple[str, int, float | None, bytes | None]]) -> list[bool]:
        """Each (id, step n, next due, timeline entry): on to n + 1 (next due None: finished),
        only if still at n; one round trip for all.  True where it advanced."""
        pipe = self.r.pipeline(transaction=False)
        for eid, step, next_due, entry in steps:
            self._advance(
                keys=[
                    self.k.escalation(eid),
                    self.k.escalation_due(),
                    self.k.escalation_timeline(eid),
                ],
                args=[
                    str(step),
                    str(step + 1),
                    "" if next_due is None else repr(next_due),
                    eid,
                    entry or b"",
                    ESCALATION_TTL_S,
                    TIMELINE_MAX,
                ],
                client=pipe,
            )
        return [bool(int(x)) for x in pipe.execute()] if steps else []

    def timeline(self, eid: str) -> list[str]:
        return [str(x) for x in self.r.lrange(self.k.escalation_timeline(eid), 0, -1)]

    def of_check(self, cid: str) -> list[str]:
        return [str(x) for x in self.r.zrange(self.k.check_escalations(cid), 0, -1)]

    def pending(self) -> int:
        return int(self.r.zcard(self.k.escalation_due()))
