"""Redis shell of the processor: load a batch's checks in one pipeline, write back in one MULTI.

Layout: the seed's (see ``shared/keys.py`` and ``shared/checks.py``).  Reads
are one pipeline for every check of the batch (attrs, tags, maintenance ids
ending after the batch's first event, expired history ids, the partitions'
processed-event ids), plus one more only when there are maintenance records
to fetch or incident ids to reserve.  Writes are one ``MULTI``: check
records, indexes, history, maintenance, incidents, notifications, the outbox
and the processed-event ids go in together, so a crash leaves all or none.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import redis

from services.processor.effects import CheckView, IncidentChange, Result
from shared.checks import CheckRecord, Maintenance, StateRecord, encode_incident_event
from shared.explain import queue_records
from shared.keys import Keys, entity_id, state_id
from shared.models import CheckEvent, Notification
from shared.records import from_hash, to_hash

# Event ids remembered per partition to drop redelivered events (ZSET, capped).
PROCESSED_WINDOW = 20_000
NOTIFICATION_LOG_LEN = 10_000
# Maintenance ids read per check and kind: more overlapping windows than this are not useful.
MAX_MAINTENANCES = 100
# History ids expired by age removed per check per batch (the rest go in later batches).
MAX_EXPIRED = 64


@dataclass(slots=True)
class Loaded:
    """What the store knows about a batch's checks."""

    views: dict[str, CheckView]
    attrs: dict[str, dict[str, str]]
    expired: dict[str, list[str]]
    seen: set[str]


@dataclass(slots=True)
class Pending:
    """The batch's effects, merged per record, ready for one MULTI."""

    records: dict[str, CheckRecord] = field(default_factory=dict)
    entity: dict[str, str] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    states: dict[str, tuple[str, StateRecord]] = field(default_factory=dict)
    maintenances: dict[str, Maintenance] = field(default_factory=dict)
    incidents: list[IncidentChange] = field(default_factory=list)
    notifications: list[tuple[int, Notification]] = field(default_factory=list)
    processed: dict[int, dict[str, float]] = field(default_factory=dict)
    # Encoded decision records per check id (shared/explain.py), oldest first.
    explain: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, cid: str, partition: int, result: Result) -> None:
        rec = result.view.record
        if result.changed and rec is not None:
            self.records[cid] = rec
            self.entity[cid] = rec.entity_name
        if result.new_tags:
            self.tags.setdefault(cid, set()).update(result.new_tags)
        for sid, srec in result.states:
            self.states[sid] = (cid, srec)
        for m in result.maintenances:
            self.maintenances[m.id] = m
        if result.incident is not None:
            self.incidents.append(result.incident)
        if result.notification is not None:
            self.notifications.append((partition, result.notification))


def load(
    r: redis.Redis,
    keys: Keys,
    events: Mapping[str, Sequence[CheckEvent]],
    processed: Mapping[int, Sequence[str]],
    history_max_age_s: int,
) -> Loaded:
    """Read every check of the batch with one pipeline (two if maintenance records exist)."""
    cids = list(events)
    pipe = r.pipeline(transaction=False)
    for cid in cids:
        evs = events[cid]
        tmin = min(e.time for e in evs)
        tmax = max(e.time for e in evs)
        pipe.hgetall(keys.check(cid))
        pipe.smembers(keys.check_tags(cid))
        pipe.zrangebyscore(keys.scheduled_by_end(cid), f"({tmin}", "+inf", 0, MAX_MAINTENANCES)
        pipe.zrangebyscore(keys.unscheduled_by_end(cid), f"({tmin}", "+inf", 0, MAX_MAINTENANCES)
        pipe.zrangebyscore(
            keys.check_state_ids(cid), "-inf", f"({tmax - history_max_age_s}", 0, MAX_EXPIRED
        )
    parts = [p for p, ids in processed.items() if ids]
    for p in parts:
        pipe.zmscore(keys.processed_events(p), list(processed[p]))
    raw = pipe.execute()
    seen: set[str] = set()
    for i, p in enumerate(parts):
        scores = raw[5 * len(cids) + i]
        seen.update(eid for eid, s in zip(processed[p], scores, strict=True) if s is not None)

    wanted: list[tuple[str, str, bool]] = []
    for n, cid in enumerate(cids):
        wanted += [(cid, mid, True) for mid in raw[5 * n + 2]]
        wanted += [(cid, mid, False) for mid in raw[5 * n + 3]]
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
    for n, cid in enumerate(cids):
        attrs = raw[5 * n]
        attrs_by[cid] = attrs
        views[cid] = CheckView(
            id=cid,
            record=from_hash(CheckRecord, attrs) if attrs else None,
            tags=frozenset(raw[5 * n + 1]),
            scheduled=tuple(sorted(found.get((cid, True), []), key=lambda m: m.start_time)),
            unscheduled=tuple(sorted(found.get((cid, False), []), key=lambda m: m.start_time)),
        )
        if raw[5 * n + 4]:
            expired[cid] = list(raw[5 * n + 4])
    return Loaded(views=views, attrs=attrs_by, expired=expired, seen=seen)


def reserve_incident_ids(r: redis.Redis, keys: Keys, n: int) -> list[int]:
    """Reserve ``n`` incident ids (an unused one leaves a gap, as deleted Argus pks do)."""
    if n <= 0:
        return []
    last = int(r.incrby(keys.incident_seq(), n))
    return list(range(last - n + 1, last + 1))


def _trim_by_count(rec: CheckRecord, max_states: int) -> tuple[CheckRecord, list[int]]:
    """History records beyond ``max_states`` (by sequence), never the current one."""
    upto = max(rec.trimmed_seq, rec.max_seq - max_states)
    seqs = [s for s in range(rec.trimmed_seq + 1, upto + 1) if s != rec.state_seq]
    if upto == rec.trimmed_seq:
        return rec, []
    return msgspec.structs.replace(rec, trimmed_seq=upto), seqs


def write(
    r: redis.Redis,
    keys: Keys,
    loaded: Loaded,
    pending: Pending,
    *,
    notification_ttl_s: int,
    history_max_states: int,
    explain_max_records: int = 200,
    explain_ttl_s: int = 7 * 86400,
) -> None:
    """Write the batch's effects atomically (one MULTI/EXEC), decision records included."""
    now = time.time()
    pipe = r.pipeline(transaction=True)
    drops: dict[str, list[str]] = {}
    for cid, rec in pending.records.items():
        rec, trimmed = _trim_by_count(rec, history_max_states)
        _write_record(pipe, keys, cid, rec, loaded.attrs.get(cid, {}))
        current = state_id(cid, rec.state_seq)
        drop = [state_id(cid, s) for s in trimmed]
        drop += [sid for sid in loaded.expired.get(cid, ()) if sid != current]
        if drop:
            drops[cid] = drop
    for cid, tags in pending.tags.items():
        pipe.sadd(keys.check_tags(cid), *tags)
    for sid, (cid, srec) in pending.states.items():
        pipe.hset(keys.check_state(sid), mapping=to_hash(srec))
        pipe.zadd(keys.check_state_ids(cid), {sid: srec.timestamp})
    # After the state writes, so a record trimmed in this batch is not written back.
    for cid, drop in drops.items():
        pipe.zrem(keys.check_state_ids(cid), *drop)
        pipe.delete(*(keys.check_state(sid) for sid in drop))
    for m in pending.maintenances.values():
        pipe.hset(keys.unscheduled_maintenance(m.id), mapping=to_hash(m))
        pipe.sadd(keys.unscheduled_maintenance_ids(), m.id)
        pipe.zadd(keys.unscheduled_by_start(m.check_id), {m.id: m.start_time})
        pipe.zadd(keys.unscheduled_by_end(m.check_id), {m.id: m.end_time})
    for change in pending.incidents:
        _write_incident(pipe, keys, change)
    for partition, n in pending.notifications:
        key = keys.notification(n.id)
        pipe.hset(key, mapping=to_hash(n))
        pipe.expire(key, notification_ttl_s)
        pipe.lpush(keys.notification_log(), n.id)
        pipe.hset(keys.outbox(partition), n.id, now)
    if pending.notifications:
        pipe.ltrim(keys.notification_log(), 0, NOTIFICATION_LOG_LEN - 1)
    for partition, ids in pending.processed.items():
        if ids:
            pipe.zadd(keys.processed_events(partition), ids)
            pipe.zremrangebyrank(keys.processed_events(partition), 0, -PROCESSED_WINDOW - 1)
    queue_records(pipe, keys, pending.explain, explain_max_records, explain_ttl_s)
    if len(pipe):
        pipe.execute()


def _write_record(
    pipe: redis.client.Pipeline, keys: Keys, cid: str, rec: CheckRecord, old: Mapping[str, str]
) -> None:
    fields = to_hash(rec)
    # The API owns ``enabled`` once the check exists; only set it on creation.
    fields.pop("enabled", None)
    pipe.hset(keys.check(cid), mapping=fields)
    gone = [
        f for f in old if f not in fields and f != "enabled" and f in CheckRecord.__struct_fields__
    ]
    if gone:
        pipe.hdel(keys.check(cid), *gone)
    old_state = old.get("state")
    if old_state != rec.state:
        if old_state:
            pipe.srem(keys.check_by_state(old_state), cid)
        if rec.state:
            pipe.sadd(keys.check_by_state(rec.state), cid)
    if not old:
        eid = entity_id(rec.entity_name)
        pipe.hsetnx(keys.check(cid), "enabled", "true")
        pipe.sadd(keys.check_by_enabled(True), cid)
        pipe.sadd(keys.check_ids(), cid)
        pipe.hset(keys.check_by_name(), f"{rec.entity_name}:{rec.name}", cid)
        pipe.sadd(keys.check_by_entity_name(rec.entity_name), cid)
        pipe.sadd(keys.entity_ids(), eid)
        pipe.hset(keys.entity_by_name(), rec.entity_name, eid)
        pipe.hsetnx(keys.entity(eid), "name", rec.entity_name)
        pipe.hsetnx(keys.entity(eid), "enabled", "true")
        pipe.sadd(keys.entity_check_ids(eid), cid)


def _write_incident(pipe: redis.client.Pipeline, keys: Keys, change: IncidentChange) -> None:
    key = keys.incident(change.id)
    if change.opened is not None:
        pipe.hset(key, mapping=to_hash(change.opened))
        pipe.zadd(keys.incident_ids(), {change.id: change.opened.start_time})
        pipe.sadd(keys.incident_by_open(True), change.id)
    if change.fields:
        pipe.hset(key, mapping=change.fields)
    if change.closed:
        pipe.srem(keys.incident_by_open(True), change.id)
        pipe.sadd(keys.incident_by_open(False), change.id)
    if change.events:
        pipe.rpush(
            keys.incident_events(change.id), *(encode_incident_event(e) for e in change.events)
        )


def outbox_entries(r: redis.Redis, keys: Keys, partitions: Iterable[int]) -> dict[int, list[str]]:
    """Notification ids persisted but maybe not published, per partition."""
    parts = list(partitions)
    pipe = r.pipeline(transaction=False)
    for p in parts:
        pipe.hkeys(keys.outbox(p))
    return {p: ids for p, ids in zip(parts, pipe.execute(), strict=True) if ids}


def clear_outbox(r: redis.Redis, keys: Keys, entries: Mapping[int, Sequence[str]]) -> None:
    """Forget published notification ids."""
    pipe = r.pipeline(transaction=False)
    for p, ids in entries.items():
        if ids:
            pipe.hdel(keys.outbox(p), *ids)
    if len(pipe):
        pipe.execute()
