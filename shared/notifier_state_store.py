"""Reads of the notifier's per-medium state (blocks, rollups, episodes), for a batch or a dry run.

The notifier store (``services/notifier/store.py``) reads it after its
``WATCH``, before deciding a batch; the dry run (``shared/explain/``) reads
it to show what the notifier would decide now.  One reader keeps the two the
same.  Reads only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import redis

from shared.check_store import CheckStore
from shared.keys import Keys
from shared.models import RollupItem
from shared.routing.notifier_state import NotifierState, RollupState, StateQuery

ROLLUP_ITEM_DECODER = msgspec.json.Decoder(RollupItem)


def read_notifier_state(
    r: redis.Redis, keys: Keys, q: StateQuery, notification_ids: Sequence[str] = ()
) -> tuple[NotifierState, frozenset[str]]:
    """The state ``q`` names, and which of ``notification_ids`` are expanded by now: one round trip.

    Blocks, rollups, episode media and checks' latest times; with rollups, the
    current record of each check in them too (two more round trips): a check
    counts toward a rollup only while it still alerts.
    """
    pipe = r.pipeline(transaction=False)
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
    return state, done
