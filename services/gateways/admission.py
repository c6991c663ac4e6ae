"""Which of a batch's deliveries may be sent now, in which order: one Redis round trip.

:meth:`Gate.admit` reads, in one pipeline (on a single Redis its per-delivery reads
as one packed script call, shared/packed_reads.py), whether each delivery was
delivered already (plus the in-process memory of recent successes), where
it stands in its *lane* (shared/lanes.py), and takes a token for it from the
per-address bucket in Redis, shared by every gateway process of the type.

- Deliveries of one (address, check) leave in the order the notifier
  produced them, so one that has an unfinished delivery ahead of it outside
  this batch is *parked* and looks again later.  The rest form chains, one
  per lane, each to be sent in order.
- One over the rate limit has reserved a slot and waits in a delay queue
  for it (never dropped); the rest of its lane waits behind it.
- Tokens are taken before the lane is known, so the round trip is shared;
  a delivery that turns out not to be sent now (a duplicate, or parked
  behind another) gives its token back (one more round trip, only then).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from services.gateways.deliveries import Item
from services.gateways.metrics import RunnerMetrics
from services.gateways.ratelimit import SharedRateLimiter, Want, limit_for
from services.gateways.records import Records
from services.gateways.requeue import Requeue
from shared import packed_reads
from shared.config import Settings
from shared.consumer import BatchResult
from shared.keys import Keys
from shared.lanes import Candidate, LaneView, plan
from shared.store import is_cluster

log = logging.getLogger(__name__)

# A rate-limit wait this short is not worth a trip through a delay queue.
SEND_ANYWAY_S = 0.05


@dataclass(frozen=True, slots=True)
class Gate:
    """Gate and throttle for one medium type (see the module docstring)."""

    settings: Settings
    medium_type: str
    redis: Any
    keys: Keys
    limiter: SharedRateLimiter
    records: Records
    requeue: Requeue
    metrics: RunnerMetrics

    def admit(self, items: list[Item], result: BatchResult, now: float) -> list[list[Item]]:
        """Gate and throttle ``items`` (see the module docstring); the chains to send now."""
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        reads: list[list[str]] = []
        for item in items:
            lane, did = self.keys.lane(item.lane), item.delivery.id
            reads.append(["EXISTS", self.keys.delivered(did)])
            reads.append(["ZRANK", lane, did])
            reads.append(["ZRANGE", lane, "0", "0", "WITHSCORES"])
        # One packed script call for the three reads of every delivery (replies raw).
        packed = not is_cluster(self.redis)
        calls = packed_reads.queue(pipe, reads, packed)
        # A delivery back from a rate-limit wait already holds its slot.
        asked = [i for i, item in enumerate(items) if item.progress.slot is None]
        wants = [self._want(items[i]) for i in asked]
        for want in wants:
            self.limiter.queue(pipe, want, now)
        replies = pipe.execute(raise_on_error=False)
        for reply in replies[:calls]:
            if isinstance(reply, Exception):
                raise reply
        gate_replies = packed_reads.replies(replies[:calls], packed)
        waits = dict(zip(asked, self.limiter.settle(replies[calls:], wants, now), strict=True))
        chains = self._gate(items, gate_replies, result, now)
        sent, waiting = self._throttle(chains, waits, result, now)
        used = {id(item) for chain in sent for item in chain} | waiting
        self.limiter.refund(
            [want for i, want in zip(asked, wants, strict=True) if id(items[i]) not in used]
        )
        return sent

    def _want(self, item: Item) -> Want:
        m = item.delivery.medium
        return (m.type, m.address, limit_for(m.type, m.settings, self.settings))

    def _gate(
        self, items: list[Item], replies: list[Any], result: BatchResult, now: float
    ) -> list[list[tuple[int, Item]]]:
        """Drop what was delivered already; park what has an unfinished delivery ahead of it."""
        seen: set[str] = set()
        fresh: list[tuple[int, Item]] = []
        candidates: list[Candidate] = []
        done_lanes: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            flag, rank, head = replies[3 * i : 3 * i + 3]
            did = item.delivery.id
            if flag or self.records.delivered_recently(did) or did in seen:
                if rank is not None:
                    done_lanes.append((item.lane, did))  # delivered, but still holding its lane
                self.metrics.duplicate()
                log.info(
                    "already delivered, skipping",
                    extra={"delivery_id": did, "medium": self.medium_type},
                )
                continue
            seen.add(did)
            head_id, head_seq = _head(head)
            view = LaneView(rank=rank, head_id=head_id, head_seq=head_seq)
            candidates.append(Candidate(len(fresh), item.lane, did, item.delivery.seq, view))
            fresh.append((i, item))
        gate = plan(candidates, now, self.settings.lane_stale_after_s)
        if gate.stale or done_lanes:
            pipe = self.redis.pipeline(transaction=False)
            for lane, did in done_lanes:
                pipe.zrem(self.keys.lane(lane), did)
            for lane, head_id in gate.stale:
                pipe.zrem(self.keys.lane(lane), head_id)
                log.warning(
                    "lane head presumed lost, no longer waited for",
                    extra={"delivery_id": head_id, "medium": self.medium_type},
                )
            pipe.execute()
        for index, why in gate.parked:
            result.outputs.append(self.requeue.park(fresh[index][1], why))
        return [[fresh[i] for i in chain] for chain in gate.chains]

    def _throttle(
        self,
        chains: list[list[tuple[int, Item]]],
        waits: dict[int, float],
        result: BatchResult,
        now: float,
    ) -> tuple[list[list[Item]], set[int]]:
        """Each lane goes until a delivery must wait for its slot; that one waits, the rest park.

        Returns the chains to send now and the ``id`` of each delivery that
        waits for the slot its token reserved (it keeps the token).
        """
        kept: list[list[Item]] = []
        waiting: set[int] = set()
        for chain in chains:
            going: list[Item] = []
            for depth, (i, item) in enumerate(chain):
                slot = item.progress.slot
                wait_s = waits[i] if slot is None else max(0.0, slot - now)
                if wait_s <= SEND_ANYWAY_S:
                    going.append(item)
                    continue
                progress = msgspec.structs.replace(item.progress, slot=now + wait_s)
                result.outputs.append(self.requeue.delayed(item, progress, wait_s, "rate limited"))
                waiting.add(id(item))
                self.metrics.deferred()
                for _, later in chain[depth + 1 :]:
                    result.outputs.append(
                        self.requeue.park(later, "behind a rate-limited delivery", wait_s)
                    )
                break
            if going:
                kept.append(going)
        return kept, waiting


def _head(reply: Any) -> tuple[str | None, int | None]:
    """A lane's head from ``ZRANGE lane 0 0 WITHSCORES``: raw (``[id, score]``, packed
    reads) or as redis-py gives it (``[(id, score)]``)."""
    if not reply:
        return None, None
    if isinstance(reply[0], (list, tuple)):
        member, score = reply[0]
    else:
        member, score = reply[0], reply[1]
    return str(member), int(float(score))
