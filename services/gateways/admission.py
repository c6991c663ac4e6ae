"""Which of a batch's deliveries may be sent now, in which order.

1. :meth:`Admission.gate`: one pipeline reads whether each delivery was
   delivered already (plus the in-process memory of recent successes) and
   where it stands in its *lane* (shared/lanes.py): deliveries of one
   (address, check) leave in the order the notifier produced them, so one
   that has an unfinished delivery ahead of it outside this batch is
   *parked* and looks again later.  The result is a list of chains, one per
   lane, each to be sent in order.
2. :meth:`Admission.throttle`: a token per delivery from the per-address
   bucket in Redis, shared by every gateway process of the type; one over
   the limit reserves a slot and waits in a delay queue for it (never
   dropped), and the rest of its lane waits behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from services.gateways.deliveries import Item
from services.gateways.metrics import RunnerMetrics
from services.gateways.ratelimit import SharedRateLimiter, limit_for
from services.gateways.records import Records
from services.gateways.requeue import Requeue
from shared.config import Settings
from shared.consumer import BatchResult
from shared.keys import Keys
from shared.lanes import Candidate, LaneView, plan

log = logging.getLogger(__name__)

# A rate-limit wait this short is not worth a trip through a delay queue.
SEND_ANYWAY_S = 0.05


@dataclass(frozen=True, slots=True)
class Admission:
    """Gate and throttle for one medium type (see the module docstring)."""

    settings: Settings
    medium_type: str
    redis: Any
    keys: Keys
    limiter: SharedRateLimiter
    records: Records
    requeue: Requeue
    metrics: RunnerMetrics

    def gate(self, items: list[Item], result: BatchResult, now: float) -> list[list[Item]]:
        """Drop what was delivered already; park what has an unfinished delivery ahead of it."""
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            lane = self.keys.lane(item.lane)
            pipe.exists(self.keys.delivered(item.delivery.id))
            pipe.zrank(lane, item.delivery.id)
            pipe.zrange(lane, 0, 0, withscores=True)
        replies = pipe.execute()
        seen: set[str] = set()
        fresh: list[Item] = []
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
            view = LaneView(
                rank=rank,
                head_id=head[0][0] if head else None,
                head_seq=int(head[0][1]) if head else None,
            )
            candidates.append(Candidate(len(fresh), item.lane, did, item.delivery.seq, view))
            fresh.append(item)
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
            result.outputs.append(self.requeue.park(fresh[index], why))
        return [[fresh[i] for i in chain] for chain in gate.chains]

    def throttle(
        self, chains: list[list[Item]], result: BatchResult, now: float
    ) -> list[list[Item]]:
        """Take a token per delivery; one over the limit waits for its slot, its lane behind it.

        Tokens are taken a rank at a time (the first of every chain, then the
        second of the chains still going, ...): a lane stopped by the limit
        takes no tokens for the deliveries parked behind it.  Chains longer
        than one are rare (two notifications of a check in one batch), so
        this is one round trip, seldom two.
        """
        kept: list[list[Item]] = [[] for _ in chains]
        going = list(range(len(chains)))
        depth = 0
        while going:
            asks = [(c, chains[c][depth]) for c in going if depth < len(chains[c])]
            if not asks:
                break
            wants = []
            for _, item in asks:
                if item.progress.slot is None:
                    m = item.delivery.medium
                    wants.append((m.type, m.address, limit_for(m.type, m.settings, self.settings)))
            reserved = iter(self.limiter.reserve(wants, now))
            going = []
            for c, item in asks:
                slot = item.progress.slot
                wait_s = next(reserved) if slot is None else max(0.0, slot - now)
                if wait_s <= SEND_ANYWAY_S:
                    kept[c].append(item)
                    going.append(c)
                    continue
                progress = msgspec.structs.replace(item.progress, slot=now + wait_s)
                result.outputs.append(self.requeue.delayed(item, progress, wait_s, "rate limited"))
                self.metrics.deferred()
                for later in chains[c][depth + 1 :]:
                    result.outputs.append(
                        self.requeue.park(later, "behind a rate-limited delivery", wait_s)
                    )
            depth += 1
        return [k for k in kept if k]
