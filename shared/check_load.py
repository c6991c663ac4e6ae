"""The processor's batch read of checks, which the dry run shares (reads only).

For every check of a batch, one pipeline reads its record (attrs), tags,
the ids of the maintenance windows ending after the batch's first event
(scheduled and unscheduled) and its history ids expired by age, through one
Lua script call per chunk of checks, plus the partitions' processed-event ids;
a second pipeline fetches the maintenance records, when there are any.

The processor (``services/processor/worker.py``) loads each batch with
:func:`load` and writes it back with ``services/processor/store.py``; the dry
run (``shared/explain/dry_run.py``) loads one check the same way, so it sees
the check exactly as the processor does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec
import redis

from shared import packed_reads, packed_writes
from shared.checks import CheckRecord, Maintenance
from shared.keys import Keys
from shared.models import CheckEvent
from shared.processing.effects import CheckView
from shared.records import from_hash
from shared.store import is_cluster

# Maintenance ids read per check and kind: more overlapping windows than this are not useful.
MAX_MAINTENANCES = 100
# History ids expired by age removed per check per batch (the rest go in later batches).
MAX_EXPIRED = 64


@dataclass(slots=True)
class LoadedChecks:
    """A batch's checks as read: views for the decisions, and what the write-back needs."""

    views: dict[str, CheckView]
    attrs: dict[str, dict[str, str]]
    expired: dict[str, list[str]]
    seen: set[str]


# Every read of one check in one script call: attrs (flat), tags, maintenance ids
# ending after the check's first event (scheduled, unscheduled), history ids
# expired by age.  Five keys per check (sharing its hash tag), two bounds each.
# ARGV[1], ARGV[2]: the limits; ARGV[3]: the bounds as one MessagePack array.
# The keys are the script's keys on a Redis Cluster, which routes and checks
# them; on a single Redis they come as one more MessagePack array (ARGV[4]),
# which Redis unpacks in C where redis-py would encode each key in Python
# (see ``load``).
_LOAD = """
local keys = KEYS
if #keys == 0 then keys = cmsgpack.unpack(ARGV[4]) end
local bounds = cmsgpack.unpack(ARGV[3])
local m, e = ARGV[1], ARGV[2]
local out = {}
for i = 0, #keys / 5 - 1 do
  local k, a = i * 5, i * 2
  out[i + 1] = {
    redis.call('HGETALL', keys[k + 1]),
    redis.call('SMEMBERS', keys[k + 2]),
    redis.call('ZRANGEBYSCORE', keys[k + 3], bounds[a + 1], '+inf', 'LIMIT', 0, m),
    redis.call('ZRANGEBYSCORE', keys[k + 4], bounds[a + 1], '+inf', 'LIMIT', 0, m),
    redis.call('ZRANGEBYSCORE', keys[k + 5], '-inf', bounds[a + 2], 'LIMIT', 0, e),
  }
end
return out
"""
# Ids per ZMSCORE: the most one packed command takes (shared/packed_writes.py).
_SEEN_CHUNK = packed_writes.MAX_ARGS - 1
_PACK = msgspec.msgpack.Encoder()
# Checks per script call: bounds how long one call holds Redis.
_LOAD_CHUNK = 500


def load(
    r: redis.Redis,
    keys: Keys,
    events: Mapping[str, Sequence[CheckEvent]],
    processed: Mapping[int, Sequence[str]],
    history_max_age_s: int,
) -> LoadedChecks:
    """Read every check of the batch with one pipeline (two if maintenance records exist).

    The per-check reads go through one script call per chunk of checks rather
    than five commands per check: building and parsing commands in redis-py
    was most of the processor's CPU (docs/benchmarks.md).
    """
    calls = script_calls(r, keys, events, _LOAD_CHUNK)
    chunks = len(calls)
    cluster = is_cluster(r)
    # The checks in the order of the script calls' rows.
    cids = [cid for call in calls for cid in call]
    pipe = r.pipeline(transaction=False)
    for call in calls:
        names: list[str] = []
        bounds: list[str] = []
        for cid in call:
            evs = events[cid]
            tmin = min(e.time for e in evs)
            tmax = max(e.time for e in evs)
            names += [
                keys.check(cid),
                keys.check_tags(cid),
                keys.scheduled_by_end(cid),
                keys.unscheduled_by_end(cid),
                keys.check_state_ids(cid),
            ]
            bounds += [f"({tmin}", f"({tmax - history_max_age_s}"]
        limits = (MAX_MAINTENANCES, MAX_EXPIRED, _PACK.encode(bounds))
        # EVAL by name: redis-py's cluster pipeline has no ``eval`` method (same command).
        if cluster:
            pipe.execute_command("EVAL", _LOAD, len(names), *names, *limits)
        else:
            pipe.execute_command("EVAL", _LOAD, 0, *limits, _PACK.encode(names))
    # Which of the batch's event ids each partition has applied already.
    asked: list[list[str]] = []
    lookups: list[list[str]] = []
    for p, ids in processed.items():
        for at in range(0, len(ids), _SEEN_CHUNK):
            part = list(ids[at : at + _SEEN_CHUNK])
            asked.append(part)
            lookups.append(["ZMSCORE", keys.processed_events(p), *part])
    packed_reads.queue(pipe, lookups, packed=not cluster)
    raw = pipe.execute()
    rows = [row for chunk in raw[:chunks] for row in chunk]
    scored = packed_reads.replies(raw[chunks:], packed=not cluster)
    seen: set[str] = set()
    for part, scores in zip(asked, scored, strict=True):
        seen.update(eid for eid, s in zip(part, scores, strict=True) if s is not None)

    wanted: list[tuple[str, str, bool]] = []
    for cid, row in zip(cids, rows, strict=True):
        if row[2]:
            wanted += [(cid, mid, True) for mid in row[2]]
        if row[3]:
            wanted += [(cid, mid, False) for mid in row[3]]
    found: dict[tuple[str, bool], list[Maintenance]] = {}
    if wanted:
        pipe = r.pipeline(transaction=False)
        for _, mid, sched in wanted:
            pipe.hgetall(
                keys.scheduled_maintenance(mid) if sched else keys.unscheduled_maintenance(mid)
            )
        for (cid, _, sched), attrs in zip(wanted, pipe.execute(), strict=True):
            if attrs:
                found.setdefault((cid, sched), []).append(from_hash(Maintenance, attrs))

    views: dict[str, CheckView] = {}
    attrs_by: dict[str, dict[str, str]] = {}
    expired: dict[str, list[str]] = {}
    for cid, row in zip(cids, rows, strict=True):
        flat = row[0]
        attrs = dict(zip(flat[::2], flat[1::2], strict=True))
        attrs_by[cid] = attrs
        views[cid] = CheckView(
            id=cid,
            record=from_hash(CheckRecord, attrs) if attrs else None,
            tags=frozenset(row[1]),
            scheduled=tuple(sorted(found.get((cid, True), []), key=lambda m: m.start_time)),
            unscheduled=tuple(sorted(found.get((cid, False), []), key=lambda m: m.start_time)),
        )
        if row[4]:
            expired[cid] = list(row[4])
    return LoadedChecks(views=views, attrs=attrs_by, expired=expired, seen=seen)


def script_calls(r: redis.Redis, keys: Keys, cids: Iterable[str], size: int) -> list[list[str]]:
    """Check ids in groups of at most ``size``, one group per script call over their keys.

    On a Redis Cluster a script's keys must share a slot, so the checks are first
    grouped by the hash slot of their keys (a check's keys share its ``{id}`` tag).
    """
    if is_cluster(r):
        slots: dict[int, list[str]] = {}
        for cid in cids:
            slots.setdefault(int(r.keyslot(keys.check(cid))), []).append(cid)
        groups = list(slots.values())
    else:
        groups = [list(cids)]
    return [g[i : i + size] for g in groups for i in range(0, len(g), size)]
