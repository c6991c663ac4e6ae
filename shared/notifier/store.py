"""The notifier's Redis shell: batch reads, one MULTI of effects per batch, the outbox.

Round trips per batch, whatever the fan-out: one pipeline reading the
notification hashes, their ``notified`` markers and ``config::version``; one
``WATCH`` of the keys the decisions read; one pipeline reading that state
(``ZMSCORE`` per contact, rollup hashes, episode media) and the markers again;
one ``MULTI`` writing every effect together with the markers and the outbox;
one ``HDEL`` clearing the outbox after publishing.  A batch that produces
deliveries first reserves their ``seq`` numbers (one script call) and adds
each to its lane in the same MULTI (shared/lanes.py), so gateways send each
lane in production order.

Several notifiers share one queue, so two batches may read the same rollup
or block set at once.  The ``WATCH`` makes the read-decide-write of a batch
one optimistic transaction: if another notifier changed any key this batch
read (its markers, blocks, rollups, episodes, checks' latest times) before the ``MULTI`` ran, the
``EXEC`` fails with :class:`redis.WatchError` and the handler decides again
from fresh state.  Every committed batch therefore saw exactly the state the
batches committed before it left: the replicas' effects are those of one
notifier taking the batches in commit order (docs/scaling.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import msgspec
import redis

from shared import packed_reads, packed_writes
from shared.config import Settings
from shared.escalation import Escalation
from shared.escalation_store import EscalationStore
from shared.explain.storage import queue_records, write_records
from shared.keys import Keys
from shared.lanes import RESERVE_SEQ_LUA, delivery_lane
from shared.models import ENCODER, Delivery, Notification
from shared.notifier_state_store import read_notifier_state
from shared.records import from_hash
from shared.routing.notifier_state import (
    Block,
    Expansion,
    NotifierState,
    StateQuery,
    episode_key,
)
from shared.store import is_cluster

log = logging.getLogger(__name__)

# Block records outlive their expiry a little so operators can still see why a page was held.
BLOCK_RECORD_GRACE_S = 3600


class OutboxEntry(msgspec.Struct, frozen=True):
    """A delivery written with its notification's effects, until it has been published."""

    written: float
    delivery: Delivery


OUTBOX_DECODER = msgspec.json.Decoder(OutboxEntry)

# (first, count) of delivery seqs reserved for one batch.
SeqBlock = tuple[int, int]


class BatchInput(msgspec.Struct, frozen=True):
    notifications: dict[str, Notification | None]  # None: hash missing (expired or never written)
    invalid: dict[str, str]  # id -> why its hash does not decode
    done: frozenset[str]  # ids already expanded (marker present)
    config_version: int


class NotifierStore:
    """Reads and writes the notifier's Redis state for whole batches."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        ttl_s: int,
        explain_max_records: int = 200,
        explain_ttl_s: int = 7 * 86400,
    ) -> None:
        self.r = r
        self.k = keys
        self.ttl = ttl_s
        self.explain_max = explain_max_records
        self.explain_ttl = explain_ttl_s
        self._reserve_seq = r.register_script(RESERVE_SEQ_LUA)
        self.escalations = EscalationStore(r, keys)
        # Delivery ids the broker has taken that still sit in the outbox: they leave it
        # in the next commit's MULTI (or at :meth:`clear_published`), not in a round trip
        # of their own after every publish.
        self._published: list[str] = []

    @classmethod
    def from_settings(cls, r: redis.Redis, keys: Keys, settings: Settings) -> NotifierStore:
        """The store as a worker runs it: retention and decision records from ``settings``."""
        return cls(
            r,
            keys,
            settings.notification_ttl_s,
            explain_max_records=settings.explain_max_records,
            explain_ttl_s=settings.explain_ttl_s,
        )

    def read_batch(self, ids: Sequence[str]) -> BatchInput:
        """Notification hashes, ``notified`` markers and the config version in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        if is_cluster(self.r):
            for nid in ids:
                pipe.hgetall(self.k.notification(nid))
            for nid in ids:
                pipe.exists(self.k.notified(nid))
            pipe.get(self.k.config_version())
            res = pipe.execute()
            hashes: list[dict[str, str]] = res[: len(ids)]
            flags: list[int] = res[len(ids) : 2 * len(ids)]
        else:
            # Packed script calls instead of two commands per notification: what
            # redis-py spent building and parsing them was a fifth of the notifier's CPU.
            reads = [
                command
                for nid in ids
                for command in (
                    ["HGETALL", self.k.notification(nid)],
                    ["EXISTS", self.k.notified(nid)],
                )
            ]
            calls = packed_reads.queue(pipe, reads)
            pipe.get(self.k.config_version())
            res = pipe.execute()
            rows = packed_reads.replies(res[:calls])
            hashes = [packed_reads.as_dict(flat) for flat in rows[::2]]
            flags = rows[1::2]
        found: dict[str, Notification | None] = {}
        invalid: dict[str, str] = {}
        for nid, data in zip(ids, hashes, strict=True):
            if not data:
                found[nid] = None
                continue
            try:
                found[nid] = from_hash(Notification, data)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                invalid[nid] = f"notification {nid}: stored hash is invalid: {exc}"
        done = frozenset(nid for nid, hit in zip(ids, flags, strict=True) if hit)
        return BatchInput(found, invalid, done, int(res[-1] or 0))

    @contextmanager
    def transaction(self) -> Iterator[redis.client.Pipeline]:
        """A pipeline on its own connection for :meth:`watch` and :meth:`commit`; reset after."""
        with self.r.pipeline(transaction=True) as pipe:
            yield pipe

    def watch(self, pipe: redis.client.Pipeline, q: StateQuery, ids: Iterable[str]) -> None:
        """Watch every key the decisions will read, before reading them (one round trip).

        A change by anyone after this point makes the ``EXEC`` of :meth:`commit`
        fail, so the state read after it is the state the write applies to.
        """
        keys = [self.k.notified(nid) for nid in ids]
        keys += [self.k.contact_block_ids(cid) for cid in sorted(q.blocks)]
        for mid in sorted(q.rollup_media):
            keys += [self.k.medium_rollup(mid), self.k.medium_rollup_checks(mid)]
        keys += [self.k.episode_media(key) for key in sorted(q.episodes)]
        keys += [self.k.notified_latest(cid) for cid in sorted(q.checks)]
        pipe.watch(*keys)

    def read_state(self, q: StateQuery) -> NotifierState:
        """Blocks, rollups and episode media the batch's decisions read, in one round trip.

        With rollups, the current record of each check in them too (two more
        round trips): a check counts toward a rollup only while it still alerts.
        """
        return read_notifier_state(self.r, self.k, q)[0]

    def read_watched(
        self, q: StateQuery, notification_ids: Sequence[str], reserve_seqs: int = 0
    ) -> tuple[NotifierState, frozenset[str], SeqBlock | None]:
        """:meth:`read_state`, and which notifications are expanded by now, in one round trip.

        ``reserve_seqs``: an upper bound of the deliveries the batch will
        produce; their ``seq`` numbers are reserved in the same round trip
        (the third item, for :meth:`commit`; seqs need only increase, so
        unused ones are no gap anyone waits for).
        """
        state, done, first = read_notifier_state(self.r, self.k, q, notification_ids, reserve_seqs)
        return state, done, (first, reserve_seqs) if first is not None else None

    def commit(
        self,
        outcomes: Sequence[Expansion],
        explain: Mapping[str, Sequence[bytes]] | None = None,
        escalations: Sequence[Escalation] = (),
        pipe: redis.client.Pipeline | None = None,
        seqs: SeqBlock | None = None,
    ) -> list[Delivery]:
        """Write every effect, the ``notified`` markers, the outbox and decision records in one MULTI.

        ``explain``: encoded decision records per check id (shared/explain/records.py).
        ``pipe``: the :meth:`transaction` whose :meth:`watch` guards the batch;
        the ``EXEC`` then raises :class:`redis.WatchError` if a watched key
        changed, and nothing is written.
        ``seqs``: the block :meth:`read_watched` reserved for this batch.
        Returns the deliveries to publish (all of them are in the outbox too).
        """
        if pipe is None:
            pipe = self.r.pipeline(transaction=True)
        deliveries = self.sequence([d for o in outcomes for d in o.deliveries], seqs)
        written = time.time()
        cluster = is_cluster(self.r)
        if cluster and escalations:
            # Their keys are in the on-call slot, not the routing slot the MULTI is in.
            # Started first: the start is idempotent (deterministic id, NX writes),
            # so a lost race or a crash before the MULTI leaves nothing a redo
            # would not write again (docs/scaling.md, "the notifier on a cluster").
            starts = self.r.pipeline(transaction=True)
            for esc in escalations:
                self.escalations.start(starts, esc, written)
            starts.execute()
        pipe.multi()
        # Expired blocks leave each touched contact's ZSET (by event time, as decisions do).
        oldest: dict[str, float] = {}
        for o in outcomes:
            for b in o.effects.blocks_set:
                oldest[b.contact_id] = min(oldest.get(b.contact_id, math.inf), o.notification.time)
        for cid, t in oldest.items():
            pipe.zremrangebyscore(self.k.contact_block_ids(cid), "-inf", t)
        latest: dict[str, float] = {}
        for o in outcomes:
            self._write_effects(pipe, o)
            pipe.set(self.k.notified(o.notification.id), "1", ex=self.ttl)
            if o.effects.latest is not None:
                cid = o.notification.check_id
                latest[cid] = max(latest.get(cid, -math.inf), o.effects.latest)
        for cid, t in latest.items():
            pipe.set(self.k.notified_latest(cid), repr(t), ex=self.ttl)
        self.queue_in_lanes(pipe, deliveries)
        if deliveries:
            pipe.hset(
                self.k.notifier_outbox(),
                mapping={d.id: ENCODER.encode(OutboxEntry(written, d)) for d in deliveries},
            )
        published = self._published[:1000]
        if published:
            pipe.hdel(self.k.notifier_outbox(), *published)
        if explain and not cluster:
            queue_records(pipe, self.k, explain, self.explain_max, self.explain_ttl)
        if not cluster:
            for esc in escalations:  # due at once: the scheduler fires step 1 within a tick
                self.escalations.start(pipe, esc, written)
            packed_writes.pack_pipeline(pipe)  # no reply is read; see the module
        pipe.execute()
        del self._published[: len(published)]
        if explain and cluster:
            # Each check's records are in its own slot: after the commit, so none tells of
            # a decision that lost a race; a crash here loses records, never pages.
            write_records(self.r, self.k, explain, self.explain_max, self.explain_ttl)
        return deliveries

    def sequence(
        self, deliveries: Sequence[Delivery], seqs: SeqBlock | None = None
    ) -> list[Delivery]:
        """``deliveries`` with increasing ``seq`` numbers, in production order.

        From ``seqs`` (reserved by :meth:`read_watched`) as far as it goes,
        then from one script call (a second block, later than the first).
        """
        if not deliveries:
            return []
        numbers: list[int] = []
        if seqs is not None:
            first, count = seqs
            numbers = list(range(first, first + min(count, len(deliveries))))
        rest = len(deliveries) - len(numbers)
        if rest:
            more = int(self._reserve_seq(keys=[self.k.delivery_seq()], args=[rest]))
            numbers += range(more, more + rest)
        return [msgspec.structs.replace(d, seq=s) for d, s in zip(deliveries, numbers, strict=True)]

    def queue_in_lanes(self, pipe: redis.client.Pipeline, deliveries: Sequence[Delivery]) -> None:
        """Add sequenced deliveries to their lanes, where gateways find the order to keep."""
        lanes: dict[str, dict[str, int]] = defaultdict(dict)
        for d in deliveries:
            lanes[delivery_lane(d)][d.id] = d.seq
        for lane, members in lanes.items():
            pipe.zadd(self.k.lane(lane), members)
            pipe.expire(self.k.lane(lane), self.ttl)

    def _write_effects(self, pipe: redis.client.Pipeline, o: Expansion) -> None:
        fx = o.effects
        cleared: dict[str, list[str]] = defaultdict(list)
        for cid, bid in fx.blocks_cleared:
            cleared[cid].append(bid)
        for cid, bids in cleared.items():
            pipe.zrem(self.k.contact_block_ids(cid), *bids)
            pipe.delete(*(self.k.notification_block(b) for b in bids))
        by_contact: dict[str, list[Block]] = defaultdict(list)
        for b in fx.blocks_set:
            by_contact[b.contact_id].append(b)
            key = self.k.notification_block(b.id)
            record = {"expire_at": repr(b.expire_at), "rollup": "false" if b.check_id else "true"}
            record["medium_id"] = b.medium_id
            if b.check_id is not None and b.state is not None:
                record.update(check_id=b.check_id, state=b.state)
            pipe.hset(key, mapping=record)
            pipe.expire(key, max(1, int(b.expire_at - o.notification.time)) + BLOCK_RECORD_GRACE_S)
        for cid, blocks in by_contact.items():
            pipe.zadd(self.k.contact_block_ids(cid), {b.id: b.expire_at for b in blocks})
        for mid, check in fx.rollup_removed:
            pipe.hdel(self.k.medium_rollup_checks(mid), check)
        for mid, check, item in fx.rollup_put:
            pipe.hset(self.k.medium_rollup_checks(mid), check, ENCODER.encode(item))
            pipe.expire(self.k.medium_rollup_checks(mid), self.ttl)
        for mid, active in fx.rollup_active.items():
            pipe.hset(self.k.medium_rollup(mid), "active", "true" if active else "false")
        episode = self.k.episode_media(episode_key(o.notification))
        if fx.episode_ended:
            pipe.delete(episode)
        elif fx.episode_added:
            pipe.sadd(episode, *sorted(fx.episode_added))
            pipe.expire(episode, self.ttl)

    def published(self, delivery_ids: Iterable[str]) -> None:
        """The broker has these deliveries: clear them from the outbox with the next commit."""
        self._published.extend(delivery_ids)

    def clear_published(self) -> None:
        """Clear what :meth:`published` holds now (idle, stop): one round trip."""
        ids, self._published = self._published, []
        try:
            self.outbox_done(ids)
        except BaseException:
            self._published[:0] = ids
            raise

    def outbox_done(self, delivery_ids: Iterable[str]) -> None:
        """Forget deliveries the broker has, at once (the sweep's republished leftovers)."""
        ids = list(delivery_ids)
        for start in range(0, len(ids), 1000):
            self.r.hdel(self.k.notifier_outbox(), *ids[start : start + 1000])

    def outbox_leftovers(self, older_than_s: float, limit: int = 1000) -> list[Delivery]:
        """Deliveries written more than ``older_than_s`` ago and still not cleared (crash leftovers)."""
        cutoff = time.time() - older_than_s
        out: list[Delivery] = []
        for _did, raw in self.r.hscan_iter(self.k.notifier_outbox(), count=500):
            try:
                entry = OUTBOX_DECODER.decode(raw)
            except msgspec.DecodeError:
                log.warning("undecodable outbox entry dropped", extra={"delivery_id": _did})
                self.r.hdel(self.k.notifier_outbox(), _did)
                continue
            if entry.written <= cutoff:
                out.append(entry.delivery)
                if len(out) >= limit:
                    break
        return out
