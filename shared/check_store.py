"""The repository for check state: reads and manages checks, maintenances and incidents.

The processor writes these records (``services/processor/store.py``); the API,
the CLI, the scheduler and the notifier read and manage them through
:class:`CheckStore`.  The records themselves are in ``shared/checks.py``.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Literal

import redis

from shared import incident_index
from shared.checks import (
    INCIDENT_EVENT_DECODER,
    LEVELS,
    CheckDetail,
    CheckRecord,
    CheckStateEntry,
    Incident,
    IncidentEvent,
    Maintenance,
    MaintenanceEntry,
    Silence,
    StateRecord,
)
from shared.keys import Keys, check_id
from shared.records import from_hash, to_hash
from shared.store import is_cluster


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
        ids = self._members(sets or [k.check_ids()], union=False)
        if failing is not None:
            failing_ids = self._members([k.check_by_state(s) for s in LEVELS], union=True)
            ids = ids & failing_ids if failing else ids - failing_ids
        if tag is not None:
            ids = ids & set(self._with_tag(ids, tag))
        out = self._details(sorted(ids), time.time())
        out.sort(key=lambda d: (d.entity, d.check))
        return out[offset : offset + limit]

    def _members(self, sets: builtins.list[str], union: bool) -> set[str]:
        """SUNION or SINTER of ``sets``; on Redis Cluster (the sets are on several
        shards, which the server commands refuse) read each and combine here."""
        if not is_cluster(self.r):
            return set(self.r.sunion(sets) if union else self.r.sinter(sets))
        pipe = self.r.pipeline(transaction=False)
        for key in sets:
            pipe.smembers(key)
        members = [set(m) for m in pipe.execute()]
        return set.union(*members) if union else set.intersection(*members)

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
        # The record first, then the new index before leaving the old one: between
        # steps on a cluster the check is listed under both values, never neither.
        self._steps(
            lambda p: p.hset(k.check(cid), "enabled", "true" if enabled else "false"),
            lambda p: p.sadd(k.check_by_enabled(enabled), cid),
            lambda p: p.srem(k.check_by_enabled(not enabled), cid),
        )
        return True

    def _steps(self, *steps: Callable[[redis.client.Pipeline], object]) -> None:
        """Run ``steps`` as one MULTI; on Redis Cluster, one MULTI per step, in order.

        Each step touches one hash slot.  A cluster has no transaction across
        slots, so each method orders its steps so that a crash between two
        leaves nothing a reader trips on: a record is written before the
        indexes that lead to it and left after them (docs/scaling.md).
        """
        if not is_cluster(self.r):
            pipe = self.r.pipeline(transaction=True)
            for step in steps:
                step(pipe)
            pipe.execute()
            return
        for step in steps:
            pipe = self.r.pipeline(transaction=True)
            step(pipe)
            pipe.execute()

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
        # Record, then the id set (the sweeper's), then the check's indexes that
        # readers find it by (both in the check's slot, so one step).
        self._steps(
            lambda p: p.hset(record(mid), mapping=to_hash(m)),
            lambda p: p.sadd(ids(), mid),
            lambda p: p.zadd(by_start(cid), {mid: start}).zadd(by_end(cid), {mid: end}),
        )
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
                self._end_at(key, self._by_end(scheduled, cid), mid, now)
            return True
        return False

    def _end_at(self, record: str, by_end: str, mid: str, now: float) -> None:
        """Move a window's end to ``now``: the record, then the check's end index."""
        self._steps(
            lambda p: p.hset(record, "end_time", repr(now)),
            lambda p: p.zadd(by_end, {mid: now}),
        )

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
        found = [s for s in (True, False) if self.r.zscore(self._by_start(s, cid), mid) is not None]
        if not found:
            return False
        scheduled = found[0]
        by_start, by_end = self._by_start(scheduled, cid), self._by_end(scheduled, cid)
        ids = k.scheduled_maintenance_ids() if scheduled else k.unscheduled_maintenance_ids()
        record = k.scheduled_maintenance(mid) if scheduled else k.unscheduled_maintenance(mid)
        # The reverse of adding: unreachable first, the record last.
        self._steps(
            lambda p: p.zrem(by_start, mid).zrem(by_end, mid),
            lambda p: p.srem(ids, mid),
            lambda p: p.delete(record),
        )
        return True

    def _by_start(self, scheduled: bool, cid: str) -> str:
        k = self.keys
        return k.scheduled_by_start(cid) if scheduled else k.unscheduled_by_start(cid)

    def _by_end(self, scheduled: bool, cid: str) -> str:
        k = self.keys
        return k.scheduled_by_end(cid) if scheduled else k.unscheduled_by_end(cid)

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


__all__ = ["CheckStore"]
