"""Check state as the processor stores it, and a repository to read and manage it.

The processor writes these records (``services/processor/store.py``); the API
and the CLI read them through :class:`CheckStore`.  Records follow the seed
layout: a check attrs hash (plus the processor's current-state fields), a tags
set, a ``state_ids`` ZSET of check_state records, maintenance ZSETs by start
and end, and Argus-style incidents with an event log.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Iterable
from typing import Literal

import msgspec
import redis

from shared import incident_index
from shared.keys import Keys, check_id
from shared.records import from_hash, to_hash

# Argus levels for our failing states (1 critical .. 5 lowest).
LEVELS: dict[str, int] = {"critical": 1, "warning": 3, "unknown": 4}


class CheckRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The check attrs hash: the seed's fields plus the state machine's memory.

    ``enabled`` is written by the processor only when it creates the check; the
    API owns it afterwards (so a slow batch never undoes a PATCH).
    """

    entity_name: str
    name: str
    state: str | None = None
    summary: str = ""
    details: str = ""
    last_update: float | None = None
    enabled: bool = True
    # When the current state began, and its history record's sequence number.
    state_since: float | None = None
    state_seq: int = 0
    max_seq: int = 0
    trimmed_seq: int = 0
    # Delays remembered from earlier events (None: use the defaults).
    initial_failure_delay: int | None = None
    repeat_failure_delay: int | None = None
    initial_recovery_delay: int | None = None
    # The current failure episode (= open incident), if any.
    episode_id: str | None = None
    episode_start: float | None = None
    worst_state: str | None = None
    notified: bool = False
    recovery_pending: bool = False
    problem_times: dict[str, float] = msgspec.field(default_factory=dict)
    last_notification_type: str | None = None
    last_notification_time: float | None = None
    notification_count: int = 0
    # The current history record's counters (so it is rewritten without a read).
    state_count: int = 0
    state_notified: bool = False
    state_last_notification_count: int = 0

    @property
    def failing(self) -> bool:
        return self.state is not None and self.state != "ok"


class StateRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One check_state record: a run of events with the same state."""

    state: str
    timestamp: float
    last_update: float
    summary: str = ""
    details: str = ""
    count: int = 1
    notified: bool = False
    last_notification_count: int = 0


class Maintenance(msgspec.Struct, frozen=True, kw_only=True):
    """A scheduled or unscheduled (acknowledgement) maintenance window of one check."""

    id: str
    check_id: str
    start_time: float
    end_time: float
    summary: str = ""
    notified: bool = False
    acknowledgement_id: str | None = None
    # Acknowledged from a page (docs/acknowledge.md): which contact, through which channel.
    contact_id: str = ""
    channel: str = ""

    def covers(self, t: float) -> bool:
        return self.start_time <= t < self.end_time


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """An Argus incident: one failure episode of one check."""

    id: int
    start_time: float
    level: int
    source_incident_id: str
    description: str
    check_id: str
    entity: str
    check: str
    end_time: float | None = None
    source: str = "tocsin"
    tags: tuple[str, ...] = ()
    acked: bool = False
    ack_until: float | None = None

    @property
    def open(self) -> bool:
        return self.end_time is None


class IncidentEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of an incident's event log: STA, OTH, ACK or END (Argus codes)."""

    type: str
    timestamp: float
    description: str = ""
    # ACK from a page (docs/acknowledge.md): the contact and the way in; empty otherwise.
    contact_id: str = ""
    channel: str = ""


class CheckDetail(msgspec.Struct, frozen=True, kw_only=True):
    """What the API shows for one check."""

    id: str
    entity: str
    check: str
    state: str | None
    summary: str
    details: str
    last_update: float | None
    enabled: bool
    failing: bool
    tags: tuple[str, ...]
    state_since: float | None = None
    acknowledgement: Maintenance | None = None
    scheduled_maintenance: Maintenance | None = None
    incident_id: str | None = None


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """A maintenance window or acknowledgement with the check it silences (``GET /maintenances``)."""

    kind: str  # "maintenance" (scheduled) or "acknowledgement" (unscheduled)
    id: str
    entity: str
    check: str
    start_time: float
    end_time: float
    summary: str = ""
    active: bool = True


class MaintenanceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One maintenance window of a check as ``GET /checks/{e}/{c}/maintenances`` lists it.

    ``type``: ``scheduled`` (planned ahead, silences problems inside it) or
    ``unscheduled`` (Flapjack's kind: an acknowledgement, or silence put on any
    check ahead of work; ends early at the check's recovery).
    """

    id: str
    check_id: str
    type: str
    start_time: float
    end_time: float
    summary: str = ""
    active: bool = False
    acknowledgement_id: str | None = None

    @classmethod
    def of(cls, m: Maintenance, scheduled: bool, now: float) -> MaintenanceEntry:
        return cls(
            id=m.id,
            check_id=m.check_id,
            type="scheduled" if scheduled else "unscheduled",
            start_time=m.start_time,
            end_time=m.end_time,
            summary=m.summary,
            active=m.covers(now),
            acknowledgement_id=m.acknowledgement_id,
        )


class CheckStateEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A history entry as the API lists it (newest first)."""

    id: str
    state: str
    timestamp: float
    last_update: float
    summary: str
    details: str
    count: int
    notified: bool


INCIDENT_EVENT_DECODER = msgspec.json.Decoder(IncidentEvent)
_ENCODER = msgspec.json.Encoder()


def encode_incident_event(ev: IncidentEvent) -> str:
    return _ENCODER.encode(ev).decode()


def incident_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Argus wants ``key=value`` tags; a bare tag becomes ``tag=<value>``."""
    return tuple(sorted(t if "=" in t else f"tag={t}" for t in tags))


def _covering(attrs: Iterable[dict[str, str]], cid: str, t: float) -> list[Maintenance]:
    """The windows of check ``cid`` that cover ``t``, by start time."""
    found = (from_hash(Maintenance, a) for a in attrs if a)
    return sorted(
        (m for m in found if m.check_id == cid and m.covers(t)), key=lambda m: m.start_time
    )


def _detail(
    cid: str,
    rec: CheckRecord,
    tags: Iterable[str],
    acknowledgement: Maintenance | None = None,
    scheduled_maintenance: Maintenance | None = None,
) -> CheckDetail:
    return CheckDetail(
        id=cid,
        entity=rec.entity_name,
        check=rec.name,
        state=rec.state,
        summary=rec.summary,
        details=rec.details,
        last_update=rec.last_update,
        enabled=rec.enabled,
        failing=rec.failing,
        tags=tuple(sorted(tags)),
        state_since=rec.state_since,
        acknowledgement=acknowledgement,
        scheduled_maintenance=scheduled_maintenance,
        incident_id=rec.episode_id,
    )


class CheckStore:
    """Read and manage checks, maintenances and incidents (for the API and the CLI)."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    # ------------------------------------------------------------------ checks

    def get(self, entity: str, check: str, now: float | None = None) -> CheckDetail | None:
        """The check's current state, tags, ack, maintenance and open incident; None if unknown."""
        found = self._details([check_id(entity, check)], time.time() if now is None else now)
        return found[0] if found else None

    def details_at(self, cids: Iterable[str], t: float) -> dict[str, CheckDetail]:
        """The known checks among ``cids`` by id, as at ``t`` (the notifier's rollup accounting)."""
        return {d.id: d for d in self._details(builtins.list(dict.fromkeys(cids)), t)}

    def _details(self, cids: builtins.list[str], t: float) -> builtins.list[CheckDetail]:
        """Details of the known checks among ``cids`` (in that order) with the ack and
        maintenance covering ``t``: two pipelined round trips however many checks."""
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(k.check(cid))
            pipe.smembers(k.check_tags(cid))
            pipe.zrangebyscore(k.scheduled_by_end(cid), f"({t}", "+inf")
            pipe.zrangebyscore(k.unscheduled_by_end(cid), f"({t}", "+inf")
        raw = pipe.execute()
        rows = [(cids[i], *raw[4 * i : 4 * i + 4]) for i in range(len(cids)) if raw[4 * i]]
        pipe = self.r.pipeline(transaction=False)
        for _, _, _, sched_ids, unsched_ids in rows:
            for mid in sched_ids:
                pipe.hgetall(k.scheduled_maintenance(mid))
            for mid in unsched_ids:
                pipe.hgetall(k.unscheduled_maintenance(mid))
        windows = iter(pipe.execute() if any(r[3] or r[4] for r in rows) else [])
        out: builtins.list[CheckDetail] = []
        for cid, attrs, tags, sched_ids, unsched_ids in rows:
            sched = _covering([next(windows) for _ in sched_ids], cid, t)
            unsched = _covering([next(windows) for _ in unsched_ids], cid, t)
            out.append(
                _detail(
                    cid,
                    from_hash(CheckRecord, attrs),
                    tags,
                    acknowledgement=unsched[-1] if unsched else None,
                    scheduled_maintenance=sched[0] if sched else None,
                )
            )
        return out

    def list(
        self,
        state: str | None = None,
        entity: str | None = None,
        tag: str | None = None,
        failing: bool | None = None,
        enabled: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[CheckDetail]:
        """Checks matching every given filter, ordered by entity then check name."""
        k = self.keys
        sets: builtins.list[str] = []
        if state is not None:
            sets.append(k.check_by_state(state))
        if entity is not None:
            sets.append(k.check_by_entity_name(entity))
        if enabled is not None:
            sets.append(k.check_by_enabled(enabled))
        ids: set[str] = set(self.r.sinter(sets) if sets else self.r.smembers(k.check_ids()))
        if failing is not None:
            failing_ids: set[str] = set(self.r.sunion([k.check_by_state(s) for s in LEVELS]))
            ids = ids & failing_ids if failing else ids - failing_ids
        if tag is not None:
            ids = ids & set(self._with_tag(ids, tag))
        out = self._details(sorted(ids), time.time())
        out.sort(key=lambda d: (d.entity, d.check))
        return out[offset : offset + limit]

    def _with_tag(self, ids: set[str], tag: str) -> builtins.list[str]:
        ordered = sorted(ids)
        pipe = self.r.pipeline(transaction=False)
        for cid in ordered:
            pipe.sismember(self.keys.check_tags(cid), tag)
        return [cid for cid, has in zip(ordered, pipe.execute(), strict=True) if has]

    def history(self, entity: str, check: str, limit: int = 100) -> builtins.list[CheckStateEntry]:
        """State records of the check, newest first."""
        cid = check_id(entity, check)
        sids = self.r.zrevrange(self.keys.check_state_ids(cid), 0, max(0, limit - 1))
        pipe = self.r.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self.keys.check_state(sid))
        out = []
        for sid, attrs in zip(sids, pipe.execute(), strict=True):
            if not attrs:
                continue
            rec = from_hash(StateRecord, attrs)
            out.append(
                CheckStateEntry(
                    id=sid,
                    state=rec.state,
                    timestamp=rec.timestamp,
                    last_update=rec.last_update,
                    summary=rec.summary,
                    details=rec.details,
                    count=rec.count,
                    notified=rec.notified,
                )
            )
        return out

    def set_enabled(self, entity: str, check: str, enabled: bool) -> bool:
        """Enable or disable a known check; False if the check does not exist."""
        cid = check_id(entity, check)
        k = self.keys
        if not self.r.exists(k.check(cid)):
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(k.check(cid), "enabled", "true" if enabled else "false")
        pipe.smove(k.check_by_enabled(not enabled), k.check_by_enabled(enabled), cid)
        pipe.sadd(k.check_by_enabled(enabled), cid)
        pipe.execute()
        return True

    # ------------------------------------------------------------------ maintenance

    def add_scheduled_maintenance(
        self, entity: str, check: str, start: float, end: float, summary: str = ""
    ) -> str:
        """Schedule maintenance; problems with event times inside it are not notified."""
        return self._add_maintenance("scheduled", entity, check, start, end, summary)

    def add_unscheduled_maintenance(
        self, entity: str, check: str, start: float, end: float, summary: str = ""
    ) -> str:
        """Unscheduled maintenance on any check, failing or not (silence ahead of work).

        Written where the processor keeps acknowledgements, so it silences the
        same way and, like one, ends at the check's recovery.
        """
        return self._add_maintenance("unscheduled", entity, check, start, end, summary)

    def _add_maintenance(
        self,
        kind: Literal["scheduled", "unscheduled"],
        entity: str,
        check: str,
        start: float,
        end: float,
        summary: str,
    ) -> str:
        """Write one maintenance window of ``kind`` with its indexes in one MULTI."""
        if end <= start:
            raise ValueError("end_time must be after start_time")
        cid = check_id(entity, check)
        mid = uuid.uuid4().hex
        m = Maintenance(id=mid, check_id=cid, start_time=start, end_time=end, summary=summary)
        k = self.keys
        record, ids, by_start, by_end = (
            (
                k.scheduled_maintenance,
                k.scheduled_maintenance_ids,
                k.scheduled_by_start,
                k.scheduled_by_end,
            )
            if kind == "scheduled"
            else (
                k.unscheduled_maintenance,
                k.unscheduled_maintenance_ids,
                k.unscheduled_by_start,
                k.unscheduled_by_end,
            )
        )
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(record(mid), mapping=to_hash(m))
        pipe.sadd(ids(), mid)
        pipe.zadd(by_start(cid), {mid: start})
        pipe.zadd(by_end(cid), {mid: end})
        pipe.execute()
        return mid

    def maintenances(
        self, entity: str, check: str, now: float, past: bool = False
    ) -> builtins.list[MaintenanceEntry]:
        """Both kinds of the check's windows by start time; ended ones only with ``past``."""
        cid = check_id(entity, check)
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.zrange(k.scheduled_by_start(cid), 0, -1)
        pipe.zrange(k.unscheduled_by_start(cid), 0, -1)
        sched_ids, unsched_ids = pipe.execute()
        out = [MaintenanceEntry.of(m, True, now) for m in self._maintenances(sched_ids, True, cid)]
        out += [
            MaintenanceEntry.of(m, False, now) for m in self._maintenances(unsched_ids, False, cid)
        ]
        if not past:
            out = [e for e in out if e.end_time > now]
        return sorted(out, key=lambda e: (e.start_time, e.type, e.id))

    def end_maintenance(self, entity: str, check: str, mid: str, now: float) -> bool:
        """End a window early: a running one now (it stays listed as past), a later one is
        removed, an ended one is left as it is; False if the check has no such window."""
        cid = check_id(entity, check)
        k = self.keys
        for scheduled in (True, False):
            by_start = k.scheduled_by_start(cid) if scheduled else k.unscheduled_by_start(cid)
            if self.r.zscore(by_start, mid) is None:
                continue
            key = k.scheduled_maintenance(mid) if scheduled else k.unscheduled_maintenance(mid)
            attrs = self.r.hgetall(key)
            m = from_hash(Maintenance, attrs) if attrs else None
            if m is None or m.start_time > now:
                return self.delete_maintenance(entity, check, mid)
            if m.end_time > now:
                by_end = k.scheduled_by_end(cid) if scheduled else k.unscheduled_by_end(cid)
                pipe = self.r.pipeline(transaction=True)
                pipe.hset(key, "end_time", repr(now))
                pipe.zadd(by_end, {mid: now})
                pipe.execute()
            return True
        return False

    def list_maintenances(self, entity: str, check: str) -> builtins.list[Maintenance]:
        """Scheduled maintenances of the check by start time (unscheduled ones via ``get``)."""
        cid = check_id(entity, check)
        return self._maintenances(
            self.r.zrange(self.keys.scheduled_by_start(cid), 0, -1), True, cid
        )

    def list_silences(self, now: float, upcoming: bool = False) -> builtins.list[Silence]:
        """What is silenced at ``now`` across all checks (with ``upcoming``: later windows too),
        by end time; three pipelined round trips."""
        k = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.smembers(k.scheduled_maintenance_ids())
        pipe.smembers(k.unscheduled_maintenance_ids())
        sched_ids, unsched_ids = pipe.execute()
        kinds = [("maintenance", mid) for mid in sorted(sched_ids)]
        kinds += [("acknowledgement", mid) for mid in sorted(unsched_ids)]
        pipe = self.r.pipeline(transaction=False)
        for kind, mid in kinds:
            scheduled = kind == "maintenance"
            pipe.hgetall(
                k.scheduled_maintenance(mid) if scheduled else k.unscheduled_maintenance(mid)
            )
        found = [
            (kind, from_hash(Maintenance, a))
            for (kind, _), a in zip(kinds, pipe.execute(), strict=True)
            if a
        ]
        found = [(kind, m) for kind, m in found if m.end_time > now and (upcoming or m.covers(now))]
        cids = sorted({m.check_id for _, m in found})
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(k.check(cid), ["entity_name", "name"])
        names = dict(zip(cids, pipe.execute(), strict=True))
        out = [
            Silence(
                kind=kind,
                id=m.id,
                entity=names[m.check_id][0] or "?",
                check=names[m.check_id][1] or m.check_id,
                start_time=m.start_time,
                end_time=m.end_time,
                summary=m.summary,
                active=m.covers(now),
            )
            for kind, m in found
        ]
        return sorted(out, key=lambda x: (x.end_time, x.entity, x.check))

    def list_acknowledgements(self, entity: str, check: str) -> builtins.list[Maintenance]:
        """Unscheduled maintenances (acknowledgements) of the check by start time."""
        cid = check_id(entity, check)
        return self._maintenances(
            self.r.zrange(self.keys.unscheduled_by_start(cid), 0, -1), False, cid
        )

    def delete_maintenance(self, entity: str, check: str, mid: str) -> bool:
        """Delete a scheduled maintenance, or end an acknowledgement; False if not the check's."""
        cid = check_id(entity, check)
        k = self.keys
        if self.r.zscore(k.scheduled_by_start(cid), mid) is not None:
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(k.scheduled_by_start(cid), mid)
            pipe.zrem(k.scheduled_by_end(cid), mid)
            pipe.srem(k.scheduled_maintenance_ids(), mid)
            pipe.delete(k.scheduled_maintenance(mid))
            pipe.execute()
            return True
        if self.r.zscore(k.unscheduled_by_start(cid), mid) is not None:
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(k.unscheduled_by_start(cid), mid)
            pipe.zrem(k.unscheduled_by_end(cid), mid)
            pipe.srem(k.unscheduled_maintenance_ids(), mid)
            pipe.delete(k.unscheduled_maintenance(mid))
            pipe.execute()
            return True
        return False

    def _maintenances(
        self, mids: builtins.list[str], scheduled: bool, cid: str
    ) -> builtins.list[Maintenance]:
        if not mids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for mid in mids:
            key = self.keys.scheduled_maintenance(mid) if scheduled else None
            pipe.hgetall(key or self.keys.unscheduled_maintenance(mid))
        out = [from_hash(Maintenance, a) for a in pipe.execute() if a]
        return sorted((m for m in out if m.check_id == cid), key=lambda m: m.start_time)

    # ------------------------------------------------------------------ incidents

    def list_incidents(
        self,
        open: bool | None = None,
        level_lte: int | None = None,
        tag: str | None = None,
        offset: int = 0,
        limit: int = 100,
        acked: bool | None = None,
    ) -> builtins.list[Incident]:
        """Incidents newest first, filtered by open/acked/maximum level/tag (``key=value``).

        Walks the smallest fitting index (shared/incident_index.py) and stops
        once ``offset + limit`` incidents matched.
        """
        k = self.keys
        indexes = [k.incident_ids()]
        if open is True:
            indexes.append(k.incident_index("open"))
        if acked is True:
            indexes.append(k.incident_index("acked"))
        if tag is not None:
            indexes.append(k.incident_by_tag(tag))
        index = incident_index.pick(self.r, k, indexes)
        out: builtins.list[Incident] = []
        for batch in incident_index.newest_first(self.r, index, first=offset + limit):
            pipe = self.r.pipeline(transaction=False)
            for iid, _ in batch:
                pipe.hgetall(k.incident(iid))
            found = [from_hash(Incident, a) for a in pipe.execute() if a]
            for inc in sorted(found, key=lambda i: (i.start_time, i.id), reverse=True):
                if open is not None and inc.open != open:
                    continue
                if level_lte is not None and inc.level > level_lte:
                    continue
                if tag is not None and tag not in inc.tags:
                    continue
                if acked is not None and inc.acked != acked:
                    continue
                out.append(inc)
            if len(out) >= offset + limit:
                break
        return out[offset : offset + limit]

    def get_incident(self, iid: int | str) -> tuple[Incident, builtins.list[IncidentEvent]] | None:
        """An incident and its event log (oldest first), or None."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.incident(str(iid)))
        pipe.lrange(self.keys.incident_events(str(iid)), 0, -1)
        attrs, events = pipe.execute()
        if not attrs:
            return None
        return from_hash(Incident, attrs), [INCIDENT_EVENT_DECODER.decode(e) for e in events]


__all__ = [
    "LEVELS",
    "CheckDetail",
    "CheckRecord",
    "CheckStateEntry",
    "CheckStore",
    "Incident",
    "IncidentEvent",
    "Maintenance",
    "Silence",
    "StateRecord",
    "incident_tags",
]
