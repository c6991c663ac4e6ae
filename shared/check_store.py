"""The repository for check state: reads and manages checks, maintenances and incidents.

The processor writes these records (``services/processor/store.py``); the API,
the CLI, the scheduler and the notifier read and manage them through
:class:`CheckStore`.  The records themselves are in ``shared/checks.py``;
the maintenance and incident parts of :class:`CheckStore` are in
``shared/maintenance_store.py`` and ``shared/incident_store.py``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable

from shared.check_load import script_calls
from shared.checks import (
    LEVELS,
    CheckDetail,
    CheckRecord,
    CheckStateEntry,
    Maintenance,
    StateRecord,
)
from shared.incident_store import IncidentStore
from shared.keys import check_id
from shared.maintenance_store import MaintenanceStore
from shared.records import from_hash
from shared.store import is_cluster, ordered_steps


def _covering(attrs: Iterable[dict[str, str]], cid: str, t: float) -> list[Maintenance]:
    """The windows of check ``cid`` that cover ``t``, by start time."""
    found = (from_hash(Maintenance, a) for a in attrs if a)
    return sorted(
        (m for m in found if m.check_id == cid and m.covers(t)), key=lambda m: m.start_time
    )


# Per check: its hash (flat), tags, and the ids of scheduled and unscheduled windows
# ending after ARGV[1]; KEYS are four per check (check, tags, and the two by-end indexes).
_DETAILS = """
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k = i * 4
  out[i + 1] = {
    redis.call('HGETALL', KEYS[k + 1]),
    redis.call('SMEMBERS', KEYS[k + 2]),
    redis.call('ZRANGEBYSCORE', KEYS[k + 3], ARGV[1], '+inf'),
    redis.call('ZRANGEBYSCORE', KEYS[k + 4], ARGV[1], '+inf'),
  }
end
return out
"""
# Checks per script call: bounds how long one call holds Redis.
_DETAILS_CHUNK = 500


def _pairs(flat: builtins.list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


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


class CheckStore(MaintenanceStore, IncidentStore):
    """Read and manage checks, and (inherited) their maintenances and incidents.

    One object for the API and the CLI, which need all three; the check
    methods are here, the others in :class:`~shared.maintenance_store.MaintenanceStore`
    and :class:`~shared.incident_store.IncidentStore`.
    """

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
        maintenance covering ``t``: two pipelined round trips however many checks.

        The per-check reads go through one script call per chunk of checks, not four
        commands per check: a rollup storm reads every member's record for every batch,
        and redis-py building and parsing 40,000 commands was most of it.
        """
        k = self.keys
        calls = script_calls(self.r, k, cids, _DETAILS_CHUNK)
        pipe = self.r.pipeline(transaction=False)
        for call in calls:
            names = [
                key
                for cid in call
                for key in (
                    k.check(cid),
                    k.check_tags(cid),
                    k.scheduled_by_end(cid),
                    k.unscheduled_by_end(cid),
                )
            ]
            pipe.execute_command("EVAL", _DETAILS, len(names), *names, f"({t}")
        replies = [row for chunk in pipe.execute() for row in chunk]
        found = dict(zip([cid for call in calls for cid in call], replies, strict=True))
        rows = []
        for cid in cids:
            attrs, tags, sched_ids, unsched_ids = found[cid]
            if attrs:  # an unknown check has no hash
                rows.append((cid, _pairs(attrs), tags, sched_ids, unsched_ids))
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
        ordered_steps(
            self.r,
            lambda p: p.hset(k.check(cid), "enabled", "true" if enabled else "false"),
            lambda p: p.sadd(k.check_by_enabled(enabled), cid),
            lambda p: p.srem(k.check_by_enabled(not enabled), cid),
        )
        return True

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


__all__ = ["CheckStore"]
