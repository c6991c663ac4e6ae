"""Redis records of the Argus API: source systems, incidents (shared with the processor), acks.

Incidents live where the processor keeps them (``shared/checks.py``): the
incident hash, the event-log list, ``incident::ids`` by start and the
``by_open`` sets.  Argus fields the processor does not know (stateless,
details/ticket URLs, metadata, who added a tag) are extra hash fields, which
``shared.checks.Incident`` ignores.  Event pks are 1-based positions in the
incident's log (the log is append-only, so they are stable).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import redis

from shared import incident_index
from shared.keys import Keys
from shared.records import from_hash, to_hash
from shared.store import is_cluster

TOCSIN = "tocsin"


class SourceRecord(msgspec.Struct, kw_only=True):
    """An Argus source system; its token is kept only as a SHA-256 digest."""

    pk: int
    name: str
    type: str
    base_url: str = ""
    token_sha256: str = ""
    created: float = 0.0
    last_seen: float | None = None


class IncidentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The incident hash: ``shared.checks.Incident``'s fields plus Argus-only ones."""

    id: int
    start_time: float
    level: int
    source_incident_id: str
    description: str
    check_id: str
    entity: str
    check: str
    end_time: float | None = None
    source: str = TOCSIN
    tags: tuple[str, ...] = ()
    acked: bool = False
    ack_until: float | None = None
    stateless: bool = False
    details_url: str = ""
    ticket_url: str = ""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    # tag -> (actor, added time); tags missing here were added by the source at start.
    tag_meta: dict[str, tuple[str, float]] = msgspec.field(default_factory=dict)


class IncidentEventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An event-log entry (the processor writes the first three fields only)."""

    type: str
    timestamp: float
    description: str = ""
    actor: str | None = None  # "source:<pk>", "admin", or None for Tocsin itself
    received: float | None = None


_EVENT = msgspec.json.Decoder(IncidentEventRecord)
_SOURCE = msgspec.json.Decoder(SourceRecord)
_ENC = msgspec.json.Encoder()


def _indexed(inc: IncidentRecord) -> incident_index.IndexedIncident:
    """The fields of an incident its listing indexes depend on."""
    return incident_index.IndexedIncident(
        id=str(inc.id),
        start_time=inc.start_time,
        end_time=inc.end_time,
        stateless=inc.stateless,
        source=inc.source,
        tags=inc.tags,
        acked=inc.acked,
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name_key(name: str, stype: str) -> str:
    return f"{stype}/{name}"


class ArgusStore:
    """Reads and writes of the Argus records of one namespace."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.k = keys

    # ------------------------------------------------------------------ sources

    def create_source(self, name: str, stype: str, base_url: str) -> tuple[SourceRecord, str]:
        """A new source and its token (returned once); ``ValueError`` if (name, type) exists."""
        if self.r.hexists(self.k.argus_source_by_name(), _name_key(name, stype)):
            raise ValueError(f"a source named {name!r} of type {stype!r} already exists")
        pk = int(self.r.incr(self.k.argus_source_seq()))
        if not self.r.hsetnx(self.k.argus_source_by_name(), _name_key(name, stype), pk):
            raise ValueError(f"a source named {name!r} of type {stype!r} already exists")
        token = secrets.token_urlsafe(32)
        rec = SourceRecord(
            pk=pk,
            name=name,
            type=stype,
            base_url=base_url,
            token_sha256=token_digest(token),
            created=time.time(),
        )
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k.argus_sources(), str(pk), _ENC.encode(rec))
        pipe.hset(self.k.argus_source_by_token(), rec.token_sha256, pk)
        pipe.incr(self.k.config_version())  # notifiers resolve sources for planned maintenance
        pipe.execute()
        return rec, token

    def tocsin_source(self) -> SourceRecord:
        """The source of check incidents (created on first use)."""
        key = _name_key(TOCSIN, TOCSIN)
        pk = self.r.hget(self.k.argus_source_by_name(), key)
        if pk is None:
            new = int(self.r.incr(self.k.argus_source_seq()))
            if self.r.hsetnx(self.k.argus_source_by_name(), key, new):
                rec = SourceRecord(pk=new, name=TOCSIN, type=TOCSIN, created=time.time())
                self.r.hset(self.k.argus_sources(), str(new), _ENC.encode(rec))
                return rec
            pk = self.r.hget(self.k.argus_source_by_name(), key)
        found = self.get_source(int(pk))
        if found is None:  # the index won a race against the record: rebuild it
            found = SourceRecord(pk=int(pk), name=TOCSIN, type=TOCSIN, created=time.time())
            self.r.hset(self.k.argus_sources(), str(pk), _ENC.encode(found))
        return found

    def get_source(self, pk: int) -> SourceRecord | None:
        raw = self.r.hget(self.k.argus_sources(), str(pk))
        return _SOURCE.decode(raw) if raw else None

    def list_sources(self) -> list[SourceRecord]:
        self.tocsin_source()
        records = [_SOURCE.decode(v) for v in self.r.hgetall(self.k.argus_sources()).values()]
        return sorted(records, key=lambda s: s.pk)

    def source_by_token(self, token: str) -> SourceRecord | None:
        """The source a token belongs to; the digest is compared in constant time too."""
        digest = token_digest(token)
        pk = self.r.hget(self.k.argus_source_by_token(), digest)
        rec = self.get_source(int(pk)) if pk is not None else None
        if rec is None or not hmac.compare_digest(rec.token_sha256, digest):
            return None
        return rec

    def touch_source(self, rec: SourceRecord, now: float) -> None:
        """A heartbeat: remember when the source was last seen."""
        updated = msgspec.structs.replace(rec, last_seen=now)
        self.r.hset(self.k.argus_sources(), str(rec.pk), _ENC.encode(updated))

    def sources_by_incident_source(self) -> dict[str, SourceRecord]:
        """Incident ``source`` field value -> source record ("tocsin" or the pk).

        One read of every source (this runs on every incident response); only
        a namespace without Tocsin's own source yet takes the slower path.
        """
        out = {pk: _SOURCE.decode(v) for pk, v in self.r.hgetall(self.k.argus_sources()).items()}
        tocsin = next((s for s in out.values() if s.name == TOCSIN and s.type == TOCSIN), None)
        if tocsin is None:
            tocsin = self.tocsin_source()
            out[str(tocsin.pk)] = tocsin
        out[TOCSIN] = tocsin
        return out

    # ------------------------------------------------------------------ incidents

    def next_pk(self) -> int:
        """A new incident pk from the sequence the processor uses too."""
        return int(self.r.incr(self.k.incident_seq()))

    def claim_source_incident_id(self, source_pk: int, sid: str, pk: int) -> bool:
        """Reserve ``sid`` for the source; False if another incident has it."""
        return bool(self.r.hsetnx(self.k.incident_by_source_id(), f"{source_pk}:{sid}", pk))

    def incident_by_source_id(self, source_pk: int, sid: str) -> str | None:
        found: str | None = self.r.hget(self.k.incident_by_source_id(), f"{source_pk}:{sid}")
        return found

    def release_source_incident_id(self, source_pk: int, sid: str) -> None:
        self.r.hdel(self.k.incident_by_source_id(), f"{source_pk}:{sid}")

    def create(self, inc: IncidentRecord, first: IncidentEventRecord) -> None:
        """Write a new incident, its index entries and its first event in one MULTI."""
        iid = str(inc.id)

        def record(pipe: redis.client.Pipeline) -> None:
            pipe.hset(self.k.incident(iid), mapping=to_hash(inc))
            pipe.rpush(self.k.incident_events(iid), _ENC.encode(first))

        def indexes(pipe: redis.client.Pipeline) -> None:
            pipe.zadd(self.k.incident_ids(), {iid: inc.start_time})
            if not inc.stateless:
                pipe.sadd(self.k.incident_by_open(inc.end_time is None), iid)
            incident_index.queue(
                pipe, incident_index.write_commands(self.k, _indexed(inc), None, time.time())
            )

        self._write(record, indexes)

    def delete(self, inc: IncidentRecord) -> None:
        """Undo :meth:`create` (the broker refused the notification event)."""
        iid = str(inc.id)

        def indexes(pipe: redis.client.Pipeline) -> None:
            pipe.zrem(self.k.incident_ids(), iid)
            pipe.srem(self.k.incident_by_open(True), iid)
            pipe.srem(self.k.incident_by_open(False), iid)
            incident_index.queue(
                pipe, incident_index.remove_commands(self.k, iid, inc.source, inc.tags)
            )

        def record(pipe: redis.client.Pipeline) -> None:
            for key in (
                self.k.incident(iid),
                self.k.incident_events(iid),
                self.k.incident_acks(iid),
            ):
                pipe.delete(key)  # one key per command: three slots on a cluster

        self._write(indexes, record)

    def get(
        self, pk: int
    ) -> tuple[IncidentRecord, list[IncidentEventRecord], dict[int, float | None]]:
        """The incident, its event log (oldest first) and its acks; KeyError if absent."""
        iid = str(pk)
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.k.incident(iid))
        pipe.lrange(self.k.incident_events(iid), 0, -1)
        pipe.hgetall(self.k.incident_acks(iid))
        attrs, events, acks = pipe.execute()
        if not attrs:
            raise KeyError(pk)
        return (
            from_hash(IncidentRecord, attrs),
            [_EVENT.decode(e) for e in events],
            {int(k): msgspec.json.decode(v) for k, v in acks.items()},
        )

    def load_many(self, ids: Sequence[str]) -> list[IncidentRecord]:
        pipe = self.r.pipeline(transaction=False)
        for iid in ids:
            pipe.hgetall(self.k.incident(iid))
        return [from_hash(IncidentRecord, a) for a in pipe.execute() if a]

    def update(
        self,
        inc: IncidentRecord,
        fields: Mapping[str, Any],
        events: Sequence[IncidentEventRecord] = (),
        acks: Mapping[int, float | None] | None = None,
    ) -> int:
        """Change fields (None deletes), append events, record acks; returns the log length."""
        iid = str(inc.id)
        updated = msgspec.structs.replace(inc, **fields)
        encoded = to_hash(updated)
        setting = {f: encoded[f] for f in fields if f in encoded}
        gone = [f for f in fields if f not in encoded]

        def record(pipe: redis.client.Pipeline) -> None:
            if setting:
                pipe.hset(self.k.incident(iid), mapping=setting)
            if gone:
                pipe.hdel(self.k.incident(iid), *gone)
            if acks:
                pipe.hset(
                    self.k.incident_acks(iid),
                    mapping={str(k): _ENC.encode(v).decode() for k, v in acks.items()},
                )
            for ev in events:
                pipe.rpush(self.k.incident_events(iid), _ENC.encode(ev))
            # The log length after this update's own appends, as the last result (RPUSH
            # answers with the length: exact without a transaction, too).
            if not events:
                pipe.llen(self.k.incident_events(iid))

        def indexes(pipe: redis.client.Pipeline) -> None:
            if "end_time" in fields and not inc.stateless:
                is_open = updated.end_time is None
                pipe.sadd(self.k.incident_by_open(is_open), iid)
                pipe.srem(self.k.incident_by_open(not is_open), iid)
            incident_index.queue(
                pipe,
                incident_index.write_commands(
                    self.k, _indexed(updated), _indexed(inc), time.time()
                ),
            )

        return int(self._write(record, indexes)[-1])

    def _write(
        self,
        first: Callable[[redis.client.Pipeline], None],
        then: Callable[[redis.client.Pipeline], None],
    ) -> list[Any]:
        """``first`` and ``then`` in one MULTI; on Redis Cluster, ``first`` wholly before ``then``.

        Returns the results of ``first``'s commands.

        An incident's hash, event log and acks are three keys in three slots
        and its index entries more, so a cluster cannot take them in one
        transaction.  Callers order the steps so that a crash in between
        leaves only what readers already tolerate (docs/scaling.md): a new
        incident is written before any index leads to it (an orphan costs
        memory, never a wrong listing), a removed one leaves the indexes
        first, and an update changes the record before the indexes (indexes
        are candidate sets, re-checked against the record on every read).
        """
        if not is_cluster(self.r):
            pipe = self.r.pipeline(transaction=True)
            first(pipe)
            n = len(pipe)
            then(pipe)
            return list(pipe.execute()[:n])
        out: list[Any] = []
        for step in (first, then):
            pipe = self.r.pipeline(transaction=False)
            step(pipe)
            results = pipe.execute() if len(pipe) else []
            if step is first:
                out = list(results)
        return out

    def set_ack_expiration(self, pk: int, ack_pk: int, expiration: float | None) -> None:
        self.r.hset(self.k.incident_acks(str(pk)), str(ack_pk), _ENC.encode(expiration).decode())
