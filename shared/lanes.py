"""Delivery order: lanes, sequence numbers and the gate a gateway applies before sending.

Promise (docs/payloads.md, "Order"): for one (medium address, check) deliveries leave Tocsin
in the order the notifier produced them, across batches, retries, rate-limit
waits, gateway restarts and several gateway processes.  Different checks and
addresses stay concurrent.

How it is kept, without locks or a single consumer per address:

- The notifier gives every delivery a ``seq`` (microseconds from Redis's clock,
  made strictly increasing by a script, so one counter serves every check and
  the number also tells how old a delivery is) and, in the same MULTI that
  writes its outbox, adds the delivery to its *lane*: a ZSET
  ``lane:{<lane id>}`` of unfinished delivery ids scored by ``seq``.
- A gateway sends a delivery only when it is at the head of its lane, or
  right behind earlier ones of the same lane in its own batch (it then sends
  them one after the other).  Anything else is *parked* in a delay queue and
  looks again later.
- A delivery leaves its lane when it is finished: delivered, or
  dead-lettered.  A retry or a rate-limit wait keeps it in the lane, so what
  comes after it waits.
- A head that stays unfinished far longer than any retry could take (its
  message was lost, e.g. a purged queue) is presumed lost after
  ``stale_after_s`` and removed, so one lost message cannot block a lane for
  ever.

Everything here is pure; the notifier's and the gateways' stores run the
Redis commands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.models import Delivery

# Reserve ``ARGV[1]`` consecutive seqs: max(now in microseconds, last + 1) onwards.
# Redis's clock, so several notifiers share one order; returns the first seq.
RESERVE_SEQ_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(now, last + 1)
redis.call('SET', KEYS[1], string.format('%.0f', first + tonumber(ARGV[1]) - 1))
return string.format('%.0f', first)
"""

ROLLUP_SUBJECT = "\x00rollup"


def lane_id(medium_type: str, address: str, entity: str, check: str, rollup: bool) -> str:
    """The lane of a delivery: its medium type and address, and its check (or "rollup").

    NUL separators keep the parts apart whatever characters they hold.
    """
    subject = ROLLUP_SUBJECT if rollup else f"{entity}\x00{check}"
    raw = f"{medium_type}\x00{address}\x00{subject}".encode()
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


def delivery_lane(d: Delivery) -> str:
    """The lane of ``d``; a medium's rollup messages share one lane per address."""
    rollup = d.type in ("rollup", "rollup_recovery")
    return lane_id(d.medium.type, d.medium.address, d.entity, d.check, rollup)


def seq_age_s(seq: int, now: float) -> float:
    """Seconds since the delivery with ``seq`` was produced (seqs are microseconds)."""
    return now - seq / 1_000_000


@dataclass(frozen=True, slots=True)
class LaneView:
    """What Redis says of one delivery's lane: its rank in it, and the lane's head."""

    rank: int | None  # None: not in the lane (unsequenced, or already finished)
    head_id: str | None = None
    head_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A delivery of the batch, as the gate sees it."""

    index: int  # position in the batch, handed back in the plan
    lane: str
    delivery_id: str
    seq: int
    view: LaneView


@dataclass(slots=True)
class GatePlan:
    """What to do with a batch: chains to send in order, deliveries to park, heads to drop."""

    chains: list[list[int]] = field(default_factory=list)
    parked: list[tuple[int, str]] = field(default_factory=list)  # (index, why)
    stale: list[tuple[str, str]] = field(default_factory=list)  # (lane, head delivery id)


def plan(candidates: Sequence[Candidate], now: float, stale_after_s: float) -> GatePlan:
    """Split a batch into per-lane send chains and parked deliveries.

    Within a lane, deliveries are taken in ``seq`` order.  A delivery may go
    when every lane member ahead of it is earlier in the same chain; the first
    one that may not parks, and so does everything after it in its lane (a
    later one must never pass it).  A delivery not in its lane at all was
    produced unsequenced or was finished before (a redelivery the delivered
    marker did not catch, or a dead letter requeued by hand) and goes at once,
    in a chain of its own.
    """
    out = GatePlan()
    lanes: dict[str, list[Candidate]] = {}
    for c in candidates:
        lanes.setdefault(c.lane, []).append(c)
    in_batch = {c.delivery_id for c in candidates}
    for lane, members in lanes.items():
        members.sort(key=lambda c: (c.seq, c.delivery_id))
        chain: list[int] = []
        ahead = 0  # lane members ahead of the next candidate that are already in ``chain``
        blocked = ""
        for c in members:
            if blocked:
                out.parked.append((c.index, blocked))
                continue
            rank = c.view.rank
            if rank is None:
                out.chains.append([c.index])  # no order to keep: on its own
                continue
            if rank == ahead:
                chain.append(c.index)
                ahead += 1
                continue
            head, head_seq = c.view.head_id, c.view.head_seq
            if (
                ahead == 0
                and rank == 1
                and head is not None
                and head_seq is not None
                and head not in in_batch
                and seq_age_s(head_seq, now) > stale_after_s
            ):
                out.stale.append((lane, head))
                chain.append(c.index)
                ahead = 2
                continue
            blocked = f"waiting behind {rank - ahead} earlier delivery(ies) of its lane"
            out.parked.append((c.index, blocked))
        if chain:
            out.chains.append(chain)
    return out
