"""The retention sweeper: deletes what has no TTL once its retention window has passed.

Most of what Tocsin keeps expires by itself (a TTL, a capped list or ZSET,
see docs/scaling.md "Retention").  Two kinds of record cannot: a closed
incident is several keys plus entries in shared indexes, and an ended
acknowledgement (unscheduled maintenance) is a hash plus entries in its
check's ZSETs and a global id set.  The sweeper removes them, and trims the
processor partitions' redelivery windows by age (they are capped by count
too, but a count alone keeps ids for days on a quiet system).

- **Cheap and incremental.**  Closed incidents are read from the ``closed``
  index (scored by when the close was recorded) with one ``ZRANGEBYSCORE
  ... LIMIT`` per batch, oldest first, so a run touches only what is due;
  redelivery windows lose their old ids by score; maintenances are read
  with an ``SSCAN`` cursor kept in Redis, a slice per run.  A run does at
  most ``max_batches`` batches, so it never holds a worker for long.
- **Safe in several replicas.**  A lease (``SET NX PX``) lets one replica
  sweep per interval; the others skip.  Even without it two sweepers would
  only repeat idempotent deletes, and each batch is one ``MULTI`` guarded by
  ``WATCH`` on the records it read, so an incident changed (reopened by the
  Argus API) between the read and the delete is left alone until the next run.

It runs in the processor's idle hook (``services/processor/worker.py``): the
processor is always deployed and already owns the incidents; no new process
or scheduler is needed.  The decision what is due is :func:`due_incident` /
:func:`due_maintenance`, pure functions of a record and the time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from shared import incident_index
from shared.checks import Maintenance
from shared.keys import Keys
from shared.records import from_hash
from shared.store import is_cluster

log = logging.getLogger(__name__)

BATCH = 200
MAX_BATCHES = 10


@dataclass(frozen=True, slots=True)
class Windows:
    """Retention windows in seconds (shared/config.py, ``TOCSIN_RETAIN_*``)."""

    incidents_s: float
    maintenances_s: float
    # Redelivery windows: event ids processor partitions applied (scored by receive time).
    processed_s: float = 86400.0
    partitions: int = 0


@dataclass(slots=True)
class Swept:
    """What one run removed."""

    incidents: int = 0
    maintenances: int = 0
    processed: int = 0
    skipped: bool = False


def due_incident(
    inc: incident_index.IndexedIncident | None, closed_at: float, now: float, retain_s: float
) -> bool:
    """Whether an incident is past retention: still closed, and closed ``retain_s`` ago.

    ``closed_at`` is its ``closed`` index score (when the close was recorded);
    ``inc`` None (the hash is gone or unreadable) leaves only index entries to drop.
    """
    if inc is not None and incident_index.retired_at(inc) is None:
        return False
    return closed_at + retain_s <= now


def due_maintenance(m: Maintenance, now: float, retain_s: float) -> bool:
    """Whether a maintenance window ended ``retain_s`` ago."""
    return m.end_time + retain_s <= now


class Sweeper:
    """One namespace's sweeper; call :meth:`run` periodically from any number of replicas."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        windows: Windows,
        interval_s: float,
        *,
        batch: int = BATCH,
        max_batches: int = MAX_BATCHES,
    ) -> None:
        self.r = r
        self.k = keys
        self.windows = windows
        self.interval_s = interval_s
        self.batch = batch
        self.max_batches = max_batches
        self.me = uuid.uuid4().hex

    def run(self, now: float, *, force: bool = False) -> Swept:
        """Sweep once if this replica holds the lease for this interval (``force``: always)."""
        lease_ms = max(1, int(self.interval_s * 1000))
        if not force and not self.r.set(self.k.sweep_lease(), self.me, nx=True, px=lease_ms):
            return Swept(skipped=True)
        out = Swept()
        for _ in range(self.max_batches):
            n, full = self._incidents(now)
            out.incidents += n
            if not full:
                break
        out.maintenances = self._maintenances(now)
        out.processed = self._processed(now)
        if out.incidents or out.maintenances:
            log.info(
                "retention sweep",
                extra={
                    "incidents": out.incidents,
                    "maintenances": out.maintenances,
                    "processed_ids": out.processed,
                },
            )
        return out

    # ------------------------------------------------------------------ incidents

    def _incidents(self, now: float) -> tuple[int, bool]:
        """One batch of closed incidents past retention; (deleted, batch was full)."""
        closed = self.k.incident_index("closed")
        cutoff = repr(now - self.windows.incidents_s)
        rows = self.r.zrangebyscore(closed, "-inf", cutoff, 0, self.batch, withscores=True)
        ids = [str(i) for i, _ in rows]
        scores = [float(s) for _, s in rows]
        if not ids:
            return 0, False
        watched = [self.k.incident(iid) for iid in ids]
        # A Redis Cluster has no WATCH/MULTI across slots: there the deletes are a plain
        # pipeline (idempotent; an incident reopened in between would be deleted).
        cluster = is_cluster(self.r)
        with self.r.pipeline(transaction=not cluster) as pipe:
            try:
                if not cluster:
                    pipe.watch(*watched)
                read = self.r.pipeline(transaction=False)
                for key in watched:
                    read.hgetall(key)
                found = read.execute()
                if not cluster:
                    pipe.multi()
                deleted = self._queue_incident_deletes(pipe, ids, scores, found, now)
                pipe.execute()
            except redis.WatchError:
                return 0, True  # changed under us: the next batch or run sees it again
        return deleted, len(ids) == self.batch

    def _queue_incident_deletes(
        self,
        pipe: redis.client.Pipeline,
        ids: Sequence[str],
        scores: Sequence[float],
        found: Sequence[Mapping[str, str]],
        now: float,
    ) -> int:
        deleted = 0
        for iid, closed_at, attrs in zip(ids, scores, found, strict=True):
            # Missing or unreadable: only its index entries are left to remove.
            inc = incident_index.from_attrs(attrs) if attrs else None
            if not due_incident(inc, closed_at, now, self.windows.incidents_s):
                # Reopened (the Argus API can): it is not closed any more.
                pipe.zrem(self.k.incident_index("closed"), iid)
                continue
            source = inc.source if inc is not None else "tocsin"
            tags = inc.tags if inc is not None else ()
            pipe.delete(
                self.k.incident(iid), self.k.incident_events(iid), self.k.incident_acks(iid)
            )
            incident_index.queue(pipe, incident_index.remove_commands(self.k, iid, source, tags))
            pipe.srem(self.k.incident_by_open(True), iid)
            pipe.srem(self.k.incident_by_open(False), iid)
            sid = attrs.get("source_incident_id") if attrs else None
            if source != "tocsin" and sid:
                pipe.hdel(self.k.incident_by_source_id(), f"{source}:{sid}")
            deleted += 1
        return deleted

    # ------------------------------------------------------------------ redelivery windows

    def _processed(self, now: float) -> int:
        """Drop applied-event ids older than the window from every partition (one pipeline)."""
        if not self.windows.partitions:
            return 0
        cutoff = repr(now - self.windows.processed_s)
        pipe = self.r.pipeline(transaction=False)
        for p in range(self.windows.partitions):
            pipe.zremrangebyscore(self.k.processed_events(p), "-inf", cutoff)
        return sum(int(n) for n in pipe.execute())

    # ------------------------------------------------------------------ maintenances

    def _maintenances(self, now: float) -> int:
        """One slice of the unscheduled maintenance ids (SSCAN cursor kept in Redis)."""
        cursor_key = self.k.sweep_cursor("unscheduled_maintenance")
        cursor = int(self.r.get(cursor_key) or 0)
        ids_key = self.k.unscheduled_maintenance_ids()
        cursor, mids = self.r.sscan(ids_key, cursor, count=self.batch)
        self.r.set(cursor_key, cursor)
        if not mids:
            return 0
        read = self.r.pipeline(transaction=False)
        for mid in mids:
            read.hgetall(self.k.unscheduled_maintenance(mid))
        pipe = self.r.pipeline(transaction=False)
        deleted = 0
        for mid, attrs in zip(mids, read.execute(), strict=True):
            if not attrs:
                pipe.srem(ids_key, mid)
                continue
            m = from_hash(Maintenance, attrs)
            if not due_maintenance(m, now, self.windows.maintenances_s):
                continue
            pipe.delete(self.k.unscheduled_maintenance(mid))
            pipe.srem(ids_key, mid)
            pipe.zrem(self.k.unscheduled_by_start(m.check_id), mid)
            pipe.zrem(self.k.unscheduled_by_end(m.check_id), mid)
            deleted += 1
        if len(pipe):
            pipe.execute()
        return deleted


__all__ = ["Sweeper", "Swept", "Windows", "due_incident", "due_maintenance"]
