"""Redis shell of the processor: write a batch's effects back in one MULTI.

Layout: the seed's (see ``shared/keys.py`` and ``shared/checks.py``).  The
batch is read by ``shared/check_load.py`` (one pipeline for every check of
the batch; the dry run reads the same way), plus one more round trip only
when incident ids are reserved here.  Writes are one ``MULTI``: check
records, indexes, history, maintenance, incidents, notifications, the outbox
and the processed-event ids go in together, so a crash leaves all or none.
On a Redis Cluster (``?cluster=true``, docs/scaling.md) reads and writes are
grouped by hash slot instead, and the write runs in three ordered steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace

import msgspec
import redis

from services.processor.batch import Pending
from shared import incident_index, packed_writes
from shared.check_load import LoadedChecks
from shared.checks import CheckRecord, StateRecord, encode_incident_event
from shared.explain.storage import queue_records
from shared.keys import Keys, entity_id, state_id
from shared.processing.effects import IncidentChange
from shared.records import to_hash
from shared.store import is_cluster

# Event ids remembered per partition to drop redelivered events (ZSET, capped).
PROCESSED_WINDOW = 20_000
NOTIFICATION_LOG_LEN = 10_000


def reserve_incident_ids(r: redis.Redis, keys: Keys, n: int) -> list[int]:
    """Reserve ``n`` incident ids (an unused one leaves a gap, as deleted Argus pks do)."""
    if n <= 0:
        return []
    last = int(r.incrby(keys.incident_seq(), n))
    return list(range(last - n + 1, last + 1))


def stored_episode_ids(r: redis.Redis, keys: Keys, ids: Sequence[str]) -> dict[str, str]:
    """The ``episode_id`` of each of these notifications already stored (one round trip)."""
    pipe = r.pipeline(transaction=False)
    for nid in ids:
        pipe.hget(keys.notification(nid), "episode_id")
    return {nid: ep for nid, ep in zip(ids, pipe.execute(), strict=True) if ep}


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
    loaded: LoadedChecks,
    pending: Pending,
    *,
    notification_ttl_s: int,
    history_max_states: int,
    explain_max_records: int = 200,
    explain_ttl_s: int = 7 * 86400,
    published: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """Write the batch's effects atomically (one MULTI/EXEC), decision records included.

    The per-record commands, keys and all, are queued in order and sent as one
    packed script call per 20,000 values inside the MULTI
    (``shared/packed_writes.py``): the same commands in the same order, but
    redis-py builds and parses one command instead of one per record.  On a
    Redis Cluster the write is split by slot instead (``_write_cluster``).

    ``published``: outbox entries of earlier batches whose refs the broker has
    since taken; they leave the outbox in the same MULTI, which saves the
    round trip a separate clear after every publish would cost.
    """
    if is_cluster(r):
        if published:
            clear_outbox(r, keys, published)
        _write_cluster(
            r,
            keys,
            loaded,
            pending,
            notification_ttl_s=notification_ttl_s,
            history_max_states=history_max_states,
            explain_max_records=explain_max_records,
            explain_ttl_s=explain_ttl_s,
        )
        return
    now = time.time()
    pipe = r.pipeline(transaction=True)
    ops: list[str | int] = []

    def emit(cmd: str, key: str, *args: str) -> None:
        if len(args) > packed_writes.MAX_ARGS:
            # Too many arguments for one unpack in Lua: send it as it is, in order.
            packed_writes.queue(pipe, ops)
            pipe.execute_command(cmd, key, *args)
            return
        packed_writes.add(ops, cmd, key, *args)
        if len(ops) >= packed_writes.CHUNK:
            packed_writes.queue(pipe, ops)

    _emit_checks(emit, keys, loaded, pending, history_max_states)
    _emit_notifications(emit, keys, pending, notification_ttl_s, repr(now))
    for partition, ids in pending.processed.items():
        if ids:
            key = keys.processed_events(partition)
            emit("ZADD", key, *[x for eid, at in ids.items() for x in (repr(at), eid)])
            emit("ZREMRANGEBYRANK", key, "0", str(-PROCESSED_WINDOW - 1))
    packed_writes.queue(pipe, ops)
    queue_records(pipe, keys, pending.explain, explain_max_records, explain_ttl_s)
    _queue_outbox_clear(pipe, keys, published or {})
    if len(pipe):
        pipe.execute()


def _emit_checks(
    emit: Emit, keys: Keys, loaded: LoadedChecks, pending: Pending, history_max_states: int
) -> None:
    """Check records, indexes, history, maintenance and incidents, in write order."""
    drops: dict[str, list[str]] = {}
    for cid, rec in pending.records.items():
        rec, trimmed = _trim_by_count(rec, history_max_states)
        _write_record(emit, keys, cid, rec, loaded.attrs.get(cid, {}))
        current = state_id(cid, rec.state_seq)
        drop = [state_id(cid, s) for s in trimmed]
        drop += [sid for sid in loaded.expired.get(cid, ()) if sid != current]
        if drop:
            drops[cid] = drop
    for cid, tags in pending.tags.items():
        emit("SADD", keys.check_tags(cid), *tags)
    for sid, (cid, srec) in pending.states.items():
        fields = to_hash(srec)
        # Repeats of the state refresh the record the check already has: its state
        # and start (the history index's score) are stored as they are.
        stored = _stored_as_current(loaded, cid, sid, srec)
        if stored:
            del fields["state"], fields["timestamp"]
        emit("HSET", keys.check_state(sid), *_flat(fields))
        if not stored:
            emit("ZADD", keys.check_state_ids(cid), repr(srec.timestamp), sid)
    # After the state writes, so a record trimmed in this batch is not written back.
    for cid, drop in drops.items():
        emit("ZREM", keys.check_state_ids(cid), *drop)
        for sid in drop:
            emit("DEL", keys.check_state(sid))
    for m in pending.maintenances.values():
        emit("HSET", keys.unscheduled_maintenance(m.id), *_flat(to_hash(m)))
        emit("SADD", keys.unscheduled_maintenance_ids(), m.id)
        emit("ZADD", keys.unscheduled_by_start(m.check_id), repr(m.start_time), m.id)
        emit("ZADD", keys.unscheduled_by_end(m.check_id), repr(m.end_time), m.id)
    # Start times of the open incidents, for the index entries an acknowledgement adds.
    starts = {
        v.record.episode_id: v.record.episode_start
        for v in loaded.views.values()
        if v.record is not None and v.record.episode_id and v.record.episode_start is not None
    }
    for change in pending.incidents:
        if change.opened is not None:  # opened and acknowledged in the same batch
            starts[change.id] = change.opened.start_time
        _write_incident(emit, keys, change, starts)


def _stored_as_current(loaded: LoadedChecks, cid: str, sid: str, srec: StateRecord) -> bool:
    """True if ``sid`` was the check's current history record as loaded, with this state and start.

    The processor is the only writer of history records, and writes the
    current one in every batch that changes the check, so that record is
    stored with the state and start the loaded check names.
    """
    view = loaded.views.get(cid)
    old = view.record if view is not None else None
    return (
        old is not None
        and old.state_seq > 0
        and state_id(cid, old.state_seq) == sid
        and old.state == srec.state
        and old.state_since is not None
        and old.state_since == srec.timestamp
    )


def _emit_notifications(
    emit: Emit, keys: Keys, pending: Pending, notification_ttl_s: int, stamp: str
) -> None:
    """Notification hashes, the notification log and the outbox entries."""
    log_key = keys.notification_log()
    for partition, n in pending.notifications:
        key = keys.notification(n.id)
        emit("HSET", key, *_flat(to_hash(n)))
        emit("EXPIRE", key, str(notification_ttl_s))
        emit("LPUSH", log_key, n.id)
        emit("HSET", keys.outbox(partition), n.id, stamp)
    if pending.notifications:
        emit("LTRIM", log_key, "0", str(NOTIFICATION_LOG_LEN - 1))


def _write_cluster(
    r: redis.Redis,
    keys: Keys,
    loaded: LoadedChecks,
    pending: Pending,
    *,
    notification_ttl_s: int,
    history_max_states: int,
    explain_max_records: int,
    explain_ttl_s: int,
) -> None:
    """The same commands as :func:`write`, in three steps of per-slot script calls.

    A Redis Cluster has no MULTI across slots, so a crash can leave a step
    done and the next not.  The order keeps that safe with the existing
    idempotency (docs/scaling.md): notifications and their outbox entries
    first (the outbox sweep publishes them; ids are deterministic, so a
    redelivered batch rewrites the same ones and the notifier drops repeats),
    then the check records, indexes, history, incidents and decision records
    (each slot's commands in one atomic script call, so one check's records
    change together), and the processed-event ids last, so a batch is only
    marked applied once everything else is stored.
    """
    stamp = repr(time.time())
    emit, run = _slot_writer(r)
    _emit_notifications(emit, keys, pending, notification_ttl_s, stamp)
    run(None)
    emit, run = _slot_writer(r)
    _emit_checks(emit, keys, loaded, pending, history_max_states)
    explain: dict[int, dict[str, list[bytes]]] = {}
    for cid, encoded in pending.explain.items():
        explain.setdefault(r.keyslot(keys.check_explain(cid)), {})[cid] = encoded

    def decisions(pipe: redis.client.Pipeline) -> None:
        # queue_records calls ``pipe.eval``, which the cluster pipeline lacks.
        evals = SimpleNamespace(eval=lambda *args: pipe.execute_command("EVAL", *args))
        for records in explain.values():
            queue_records(evals, keys, records, explain_max_records, explain_ttl_s)

    run(decisions)
    pipe = r.pipeline(transaction=False)
    for partition, ids in pending.processed.items():
        if ids:
            pipe.zadd(keys.processed_events(partition), ids)
            pipe.zremrangebyrank(keys.processed_events(partition), 0, -PROCESSED_WINDOW - 1)
    if len(pipe):
        pipe.execute()


def _slot_writer(
    r: redis.Redis,
) -> tuple[Emit, Callable[[Callable[[redis.client.Pipeline], None] | None], None]]:
    """An ``emit`` that buffers commands per hash slot, and the ``run`` that sends them.

    ``run`` queues one ``_RUN`` script call per slot (more for large slots),
    in emit order within a slot, plus whatever ``extra`` queues, and executes
    them as one cluster pipeline.
    """
    buffers: dict[int, tuple[list[str], list[str]]] = {}
    pipe = r.pipeline(transaction=False)

    def emit(cmd: str, key: str, *args: str) -> None:
        slot = int(r.keyslot(key))
        names, ops = buffers.setdefault(slot, ([], []))
        if len(args) > packed_writes.MAX_ARGS:
            _flush(pipe, names, ops)
            pipe.execute_command(cmd, key, *args)
            return
        names.append(key)
        ops.append(cmd)
        ops.append(str(len(args)))
        ops.extend(args)
        if len(ops) >= packed_writes.CHUNK:
            _flush(pipe, names, ops)

    def run(extra: Callable[[redis.client.Pipeline], None] | None) -> None:
        for names, ops in buffers.values():
            _flush(pipe, names, ops)
        if extra is not None:
            extra(pipe)
        if len(pipe):
            pipe.execute()

    return emit, run


# Runs queued commands in order: ARGV[1] is one MessagePack array of (command,
# argument count, arguments...) per command, KEYS[i] the key of the i-th command.
# Inside the caller's MULTI.  One packed argument, not thousands: redis-py encodes
# and packs every argument of a command in Python, which was a third of the
# processor's CPU; msgspec packs the array in C and Redis unpacks it in C.
# This form declares its keys, as a Redis Cluster requires (``_slot_writer``); a single
# Redis gets the same commands through ``shared/packed_writes.py``, keys and all packed.
_RUN = """
local ops = cmsgpack.unpack(ARGV[1])
local at = 1
for i = 1, #KEYS do
  local n = tonumber(ops[at + 1])
  redis.call(ops[at], KEYS[i], unpack(ops, at + 2, at + 1 + n))
  at = at + 2 + n
end
return #KEYS
"""
_PACK = msgspec.msgpack.Encoder()


def _flush(pipe: redis.client.Pipeline, names: list[str], ops: list[str]) -> None:
    """Queue the collected commands as one script call and empty the buffers."""
    if names:
        pipe.execute_command("EVAL", _RUN, len(names), *names, _PACK.encode(ops))
        names.clear()
        ops.clear()


def _flat(fields: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for f, v in fields.items():
        out.append(f)
        out.append(v)
    return out


Emit = Callable[..., None]


_RECORD_FIELDS = frozenset(CheckRecord.__struct_fields__)


def _write_record(
    emit: Emit, keys: Keys, cid: str, rec: CheckRecord, old: Mapping[str, str]
) -> None:
    key = keys.check(cid)
    # Defaults are left out (a quiet check's hash holds only what differs from
    # them); fields that went back to a default are deleted below.
    fields = to_hash(rec, omit_defaults=True)
    # The API owns ``enabled`` once the check exists; only set it on creation.
    fields.pop("enabled", None)
    # Only what differs from the hash as loaded: the processor is the only writer
    # of these fields, so the others already hold these values.
    changed = [x for f, v in fields.items() if old.get(f) != v for x in (f, v)]
    if changed:
        emit("HSET", key, *changed)
    gone = [f for f in old if f not in fields and f != "enabled" and f in _RECORD_FIELDS]
    if gone:
        emit("HDEL", key, *gone)
    old_state = old.get("state")
    if old_state != rec.state:
        if old_state:
            emit("SREM", keys.check_by_state(old_state), cid)
        if rec.state:
            emit("SADD", keys.check_by_state(rec.state), cid)
    if not old:
        eid = entity_id(rec.entity_name)
        emit("HSETNX", key, "enabled", "true")
        emit("SADD", keys.check_by_enabled(True), cid)
        emit("SADD", keys.check_ids(), cid)
        emit("HSET", keys.check_by_name(), f"{rec.entity_name}:{rec.name}", cid)
        emit("SADD", keys.check_by_entity_name(rec.entity_name), cid)
        emit("SADD", keys.entity_ids(), eid)
        emit("HSET", keys.entity_by_name(), rec.entity_name, eid)
        emit("HSETNX", keys.entity(eid), "name", rec.entity_name)
        emit("HSETNX", keys.entity(eid), "enabled", "true")
        emit("SADD", keys.entity_check_ids(eid), cid)


def _write_incident(
    emit: Emit, keys: Keys, change: IncidentChange, starts: Mapping[str, float]
) -> None:
    """The incident, its event log and its listing indexes (shared/incident_index.py)."""
    key = keys.incident(change.id)
    commands: list[incident_index.Command] = []
    if change.opened is not None:
        opened = change.opened
        emit("HSET", key, *_flat(to_hash(opened)))
        emit("SADD", keys.incident_by_open(True), change.id)
        indexed = incident_index.IndexedIncident(
            id=change.id, start_time=opened.start_time, source=opened.source, tags=opened.tags
        )
        commands += incident_index.write_commands(keys, indexed, None)
    if change.fields:
        emit("HSET", key, *_flat(change.fields))
        start = change.opened.start_time if change.opened else starts.get(change.id)
        if change.fields.get("acked") == "true" and start is not None:
            commands += incident_index.ack_commands(keys, change.id, start)
    if change.closed:
        emit("SREM", keys.incident_by_open(True), change.id)
        emit("SADD", keys.incident_by_open(False), change.id)
        commands += incident_index.close_commands(keys, change.id, time.time())
    for cmd in commands:
        emit(*cmd)
    if change.events:
        emit(
            "RPUSH",
            keys.incident_events(change.id),
            *(encode_incident_event(e) for e in change.events),
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
    _queue_outbox_clear(pipe, keys, entries)
    if len(pipe):
        pipe.execute()


def _queue_outbox_clear(
    pipe: redis.client.Pipeline, keys: Keys, entries: Mapping[int, Sequence[str]]
) -> None:
    for p, ids in entries.items():
        if ids:
            pipe.hdel(keys.outbox(p), *ids)
