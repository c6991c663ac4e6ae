"""Maintenance windows and acknowledgements of checks: add, list, end, delete.

Scheduled maintenance silences problems whose event time falls inside it;
unscheduled maintenance (what an acknowledgement is) silences like an ack and
ends at the check's recovery.  The processor writes acknowledgements itself
(``services/processor/store.py``); the API and the CLI manage windows
through :class:`MaintenanceStore` (usually as part of
:class:`shared.check_store.CheckStore`).
"""

from __future__ import annotations

import builtins
import uuid
from typing import Literal

import redis

from shared.checks import Maintenance, MaintenanceEntry, Silence
from shared.keys import Keys, check_id
from shared.records import from_hash, to_hash
from shared.store import ordered_steps


class MaintenanceStore:
    """Read and manage the maintenance windows of checks."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

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
        ordered_steps(
            self.r,
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
                by_end = k.scheduled_by_end(cid) if scheduled else k.unscheduled_by_end(cid)
                self._end_at(key, by_end, mid, now)
            return True
        return False

    def _end_at(self, record: str, by_end: str, mid: str, now: float) -> None:
        """Move a window's end to ``now``: the record, then the check's end index."""
        ordered_steps(
            self.r,
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
        if self.r.zscore(k.scheduled_by_start(cid), mid) is not None:
            by_start, by_end = k.scheduled_by_start(cid), k.scheduled_by_end(cid)
            ids, record = k.scheduled_maintenance_ids(), k.scheduled_maintenance(mid)
        elif self.r.zscore(k.unscheduled_by_start(cid), mid) is not None:
            by_start, by_end = k.unscheduled_by_start(cid), k.unscheduled_by_end(cid)
            ids, record = k.unscheduled_maintenance_ids(), k.unscheduled_maintenance(mid)
        else:
            return False
        # The reverse of adding: unreachable first, the record last.
        ordered_steps(
            self.r,
            lambda p: p.zrem(by_start, mid).zrem(by_end, mid),
            lambda p: p.srem(ids, mid),
            lambda p: p.delete(record),
        )
        return True

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
