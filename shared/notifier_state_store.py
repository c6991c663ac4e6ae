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

from shared.check_store import CheckStore
from shared.keys import Keys
from shared.lanes import RESERVE_SEQ_LUA
from shared.models import RollupItem
from shared.routing.notifier_state import NotifierState, RollupState, StateQuery

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
    for nid in notification_ids:
        pipe.exists(keys.notified(nid))
    block_order = [(cid, sorted(ids)) for cid, ids in q.blocks.items()]
    for cid, ids in block_order:
        pipe.zmscore(keys.contact_block_ids(cid), ids)
    rollup_order = sorted(q.rollup_media)
    for mid in rollup_order:
        pipe.hget(keys.medium_rollup(mid), "active")
        pipe.hgetall(keys.medium_rollup_checks(mid))
    episode_order = sorted(q.episodes)
    for key in episode_order:
        pipe.smembers(keys.episode_media(key))
    check_order = sorted(q.checks)
    for cid in check_order:
        pipe.get(keys.notified_latest(cid))
    res = iter(pipe.execute())
    first_seq = int(next(res)) if reserve_seqs > 0 else None
    done = frozenset(nid for nid in notification_ids if next(res))
    state = NotifierState()
    for _cid, ids in block_order:
        for bid, score in zip(ids, next(res), strict=True):
            if score is not None:
                state.blocks[bid] = float(score)
    for mid in rollup_order:
        active, raw = next(res), next(res)
        items = {cid: ROLLUP_ITEM_DECODER.decode(v) for cid, v in raw.items()}
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
