"""Reads of the notifier's per-medium state (blocks, rollups, episodes), for a batch or a dry run.

The notifier store (``shared/notifier/store.py``) reads it after its
``WATCH``, before deciding a batch; the dry run (``shared/explain/``) reads
it to show what the notifier would decide now.  One reader keeps the two the
same.  Reads only, except the ``seq`` reservation the notifier may add to
the same round trip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import redis

from shared import packed_reads, packed_writes
from shared.check_store import CheckStore
from shared.keys import Keys
from shared.lanes import RESERVE_SEQ_LUA
from shared.models import RollupItem
from shared.routing.notifier_state import NotifierState, RollupState, StateQuery
from shared.store import is_cluster

ROLLUP_ITEM_DECODER = msgspec.json.Decoder(RollupItem)


def read_notifier_state(
    r: redis.Redis,
    keys: Keys,
    q: StateQuery,
    notification_ids: Sequence[str] = (),
    reserve_seqs: int = 0,
) -> tuple[NotifierState, frozenset[str], int | None]:
    """The state ``q`` names, and which of ``notification_ids`` are expanded by now: one round trip.

    Blocks, rollups, episode media and checks' latest times; with rollups, the
    current record of each check in them too (two more round trips): a check
    counts toward a rollup only while it still alerts.

    ``reserve_seqs``: also reserve that many delivery ``seq`` numbers
    (shared/lanes.py) in the same round trip; the third item is the first
    (None when none was asked).
    """
    pipe = r.pipeline(transaction=False)
    if reserve_seqs > 0:
        # EVAL, not a registered Script: that would add a SCRIPT EXISTS round trip.
        pipe.execute_command("EVAL", RESERVE_SEQ_LUA, 1, keys.delivery_seq(), reserve_seqs)
    block_order = [(cid, sorted(ids)) for cid, ids in q.blocks.items()]
    rollup_order = sorted(q.rollup_media)
    episode_order = sorted(q.episodes)
    check_order = sorted(q.checks)
    reads: list[list[str]] = [["EXISTS", keys.notified(nid)] for nid in notification_ids]
    for cid, ids in block_order:
        reads.append(["ZMSCORE", keys.contact_block_ids(cid), *ids])
    for mid in rollup_order:
        reads.append(["HGET", keys.medium_rollup(mid), "active"])
        reads.append(["HGETALL", keys.medium_rollup_checks(mid)])
    reads += [["SMEMBERS", keys.episode_media(key)] for key in episode_order]
    reads += [["GET", keys.notified_latest(cid)] for cid in check_order]
    packed = not is_cluster(r) and all(len(c) <= packed_writes.MAX_ARGS + 1 for c in reads)
    # One script call instead of one command per notification, episode and check
    # (the replies come back raw: hashes as flat lists, sets as lists).
    calls = packed_reads.queue(pipe, reads, packed)
    raw = pipe.execute()
    first_seq = int(raw[0]) if reserve_seqs > 0 else None
    rest = raw[1:] if reserve_seqs > 0 else raw
    res = iter(packed_reads.replies(rest[:calls], packed))
    done = frozenset(nid for nid in notification_ids if next(res))
    state = NotifierState()
    for _cid, ids in block_order:
        for bid, score in zip(ids, next(res), strict=True):
            if score is not None:
                state.blocks[bid] = float(score)
    for mid in rollup_order:
        active, checks = next(res), packed_reads.as_dict(next(res))
        items = {cid: ROLLUP_ITEM_DECODER.decode(v) for cid, v in checks.items()}
        state.rollups[mid] = RollupState(active == "true", items)
    for key in episode_order:
        state.episodes[key] = set(next(res))
    for cid in check_order:
        latest = next(res)
        if latest is not None:
            state.latest[cid] = float(latest)
    members = sorted({cid for rollup in state.rollups.values() for cid in rollup.items})
    if members:
        state.checks = dict(CheckStore(r, keys).details_at(members, time.time()))
    return state, done, first_seq
