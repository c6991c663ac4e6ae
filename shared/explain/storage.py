"""Writing decision records: a capped, expiring Redis LIST per check, newest first.

The workers queue the push inside their existing MULTI (:func:`queue_records`);
writers whose transaction cannot hold it on a Redis Cluster push afterwards
(:func:`write_records`).  ``reading.py`` reads the lists back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.keys import Keys
from shared.store import is_cluster

# One EVAL per batch pushes, caps and expires every check's records: a few µs per check,
# a third of LPUSH + LTRIM + EXPIRE per check (measured by python -m benchmarks.explain_cost;
# docs/explain.md).  ARGV: ttl, cap, then per key a count and its records.
#
# A record's event time is read from its first bytes: msgspec writes the tag and then
# ``time`` first (``{"kind":"event","time":…``, records.py), so no JSON decode is needed;
# decoding the head and the tail of every list was most of what a push cost Redis.  A
# record of another shape is decoded as JSON, as before.
_PUSH = """
local function time_of(rec)
  if not rec then return nil end
  local t = string.match(rec, '^{"kind":"%a+","time":([-+.%deE]+)[,}]')
  if t then return tonumber(t) end
  local ok, r = pcall(cjson.decode, rec)
  if ok and type(r) == 'table' then return tonumber(r['time']) end
  return nil
end
local ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  for j = 1, n do
    redis.call('LPUSH', key, ARGV[at + j])
  end
  -- The list's head is the record pushed last.
  local head = n > 0 and ARGV[at + n] or redis.call('LINDEX', key, 0)
  at = at + n + 1
  redis.call('LTRIM', key, 0, cap - 1)
  redis.call('EXPIRE', key, ttl)
  -- Age, too: records more than ttl older than the newest (event time) leave from the tail,
  -- a few per call, so a busy check keeps ttl seconds of records, not always ``cap``.
  local newest = time_of(head)
  if newest then
    local cutoff = newest - ttl
    for _ = 1, 8 do
      local tail = time_of(redis.call('LINDEX', key, -1))
      if not (tail and tail < cutoff) then
        break
      end
      redis.call('RPOP', key)
    end
  end
end
return #KEYS
"""
_CHUNK = 1000


def queue_records(
    pipe: Any,
    keys: Keys,
    records: Mapping[str, Sequence[bytes]],
    max_records: int,
    ttl_s: int,
) -> None:
    """Queue the push of encoded records (oldest first) per check id on a (MULTI) pipeline.

    Each check's list keeps its newest ``max_records``, drops records more than
    ``ttl_s`` older (event time) than its newest, and expires ``ttl_s`` after
    its last write (``TOCSIN_RETAIN_EXPLAIN_S``, docs/scaling.md "Retention").  The commands run inside the caller's transaction.
    """
    if max_records <= 0:
        return
    items = [(cid, encoded[-max_records:]) for cid, encoded in records.items() if encoded]
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        argv: list[Any] = [ttl_s, max_records]
        for _, encoded in chunk:
            argv.append(len(encoded))
            argv.extend(encoded)
        names = [keys.check_explain(cid) for cid, _ in chunk]
        pipe.eval(_PUSH, len(names), *names, *argv)


def write_records(
    r: Any,
    keys: Keys,
    records: Mapping[str, Sequence[bytes]],
    max_records: int,
    ttl_s: int,
) -> None:
    """Push decision records outside any transaction: one script call per hash slot.

    For writers whose transaction cannot hold them on Redis Cluster (each
    check's list is in its own check's slot): they run after the decisions
    they describe were committed, so a record never tells of a decision that
    lost a race, and a crash in between loses only records (docs/scaling.md).
    On a single Redis it is one MULTI, as :func:`queue_records` in the caller's
    transaction would be.
    """
    if max_records <= 0 or not records:
        return
    if not is_cluster(r):
        pipe = r.pipeline(transaction=True)
        queue_records(pipe, keys, records, max_records, ttl_s)
        pipe.execute()
        return
    by_slot: dict[int, dict[str, Sequence[bytes]]] = {}
    for cid, encoded in records.items():
        by_slot.setdefault(r.keyslot(keys.check_explain(cid)), {})[cid] = encoded
    pipe = r.pipeline(transaction=False)
    # The cluster pipeline has no ``eval``; the command itself routes by its first key.
    evals = _Evals(pipe)
    for part in by_slot.values():
        queue_records(evals, keys, part, max_records, ttl_s)
    pipe.execute()


class _Evals:
    """``eval`` on a cluster pipeline, for :func:`queue_records`."""

    __slots__ = ("pipe",)

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def eval(self, *args: Any) -> None:
        self.pipe.execute_command("EVAL", *args)
