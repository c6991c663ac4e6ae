"""The notifier's state read: packed into one script call, or command by command.

On a single Redis the read goes as one packed script call (shared/packed_reads.py)
and its replies come back raw; a command too large to pack sends the whole read
command by command, with redis-py's own reply types.  Both must give the same
state.
"""

from __future__ import annotations

import pytest

from shared import packed_reads, packed_writes
from shared.config import Settings
from shared.keys import Keys
from shared.models import ENCODER, RollupItem
from shared.notifier_state_store import read_notifier_state
from shared.routing.notifier_state import StateQuery
from shared.store import connect_redis

pytestmark = pytest.mark.integration


def test_packed_and_plain_reads_give_the_same_state(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    r.zadd(keys.contact_block_ids("alice"), {"b1": 1_790_000_000.5, "b2": 1_790_000_100.0})
    r.hset(keys.medium_rollup("m1"), "active", "true")
    item = RollupItem(entity="web1", check="http", state="critical", summary="down", duration=4.5)
    r.hset(keys.medium_rollup_checks("m1"), "c1", ENCODER.encode(item))
    r.sadd(keys.episode_media("e1"), "m1", "m2")
    r.set(keys.notified_latest("c1"), "1790000000.25")
    r.set(keys.notified("n1"), "1")
    q = StateQuery(
        blocks={"alice": {"b1", "b2", "b3"}, "bob": {"b9"}},
        rollup_media={"m1", "m2"},
        episodes={"e1", "e2"},
        checks={"c1", "c2"},
    )
    queued: list[int] = []  # commands per packed queueing
    real_queue = packed_reads.queue

    def spy(pipe: object, cmds: list[list[str]], packed: bool = True) -> int:
        if packed:
            queued.append(len(cmds))
        return real_queue(pipe, cmds, packed)

    monkeypatch.setattr(packed_reads, "queue", spy)
    packed = read_notifier_state(r, keys, q, ["n1", "n2"], reserve_seqs=3)
    assert queued == [2 + 2 + 2 * 2 + 2 + 2]  # every read went into the packed call
    assert packed[0].blocks == {"b1": 1_790_000_000.5, "b2": 1_790_000_100.0}
    assert packed[0].rollups["m1"].active and packed[0].rollups["m1"].items == {"c1": item}
    assert not packed[0].rollups["m2"].active and packed[0].rollups["m2"].items == {}
    assert packed[0].episodes == {"e1": {"m1", "m2"}, "e2": set()}
    assert packed[0].latest == {"c1": 1790000000.25}
    assert packed[1] == {"n1"} and packed[2] is not None

    monkeypatch.setattr(packed_writes, "MAX_ARGS", 0)  # nothing fits: command by command
    plain = read_notifier_state(r, keys, q, ["n1", "n2"], reserve_seqs=3)
    assert len(queued) == 1  # not packed this time
    assert plain[0].blocks == packed[0].blocks
    assert plain[0].rollups == packed[0].rollups
    assert plain[0].episodes == packed[0].episodes
    assert plain[0].latest == packed[0].latest
    assert plain[1] == packed[1]
    assert plain[2] is not None and plain[2] > packed[2]  # seqs only increase
