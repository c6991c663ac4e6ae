"""The processor's write path sends changed fields only and batches commands into script calls.

These check that what lands in Redis is exactly what a full write would have
left: the check hash equals ``to_hash(record, omit_defaults=True)`` after
several batches (fields back at their default are deleted),
and commands too large for one script call or spread over several calls
still all apply, in order.
"""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry

from services.processor import store
from services.processor.batch import Pending
from services.processor.worker import ProcessorMetrics, make_handler
from shared import packed_writes
from shared.amqp import Names
from shared.check_load import LoadedChecks
from shared.check_store import CheckStore
from shared.checks import CheckRecord
from shared.config import Settings
from shared.handler import Handler
from shared.keys import Keys, check_id
from shared.processing.effects import CheckView, Result
from shared.records import from_hash, to_hash
from shared.store import connect_redis
from tests.integration.test_processor_worker import ev, message

pytestmark = pytest.mark.integration


def _handler(
    r: redis.Redis, settings: Settings, registry: CollectorRegistry | None = None
) -> Handler:
    """The processor's batch handler as its worker builds it."""
    metrics = ProcessorMetrics(registry or CollectorRegistry())
    return make_handler(r, Names(settings.namespace), Keys(settings.namespace), settings, metrics)


def test_check_hash_matches_the_record_after_partial_writes(settings: Settings) -> None:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    handle = _handler(r, settings)
    # First sight, a repeat, a state change with new summary, a recovery, a repeat.
    steps = [("ok", "a"), ("ok", "a"), ("critical", "b"), ("ok", ""), ("ok", "")]
    for n, (state, summary) in enumerate(steps):
        handle([message(settings, [ev("h", "c", 100.0 + 10 * n, state, summary=summary)], n)])
    cid = check_id("h", "c")
    stored = r.hgetall(keys.check(cid))
    rec = from_hash(CheckRecord, stored)
    assert rec.state == "ok" and rec.state_count == 2 and rec.last_update == 140.0
    # Every non-default field is stored with its full-write value, and no other
    # (``enabled`` is the API's and always present).
    expected = to_hash(rec, omit_defaults=True) | {"enabled": "true"}
    assert {f: v for f, v in stored.items() if f in CheckRecord.__struct_fields__} == expected
    assert "notified" not in stored and "problem_times" not in stored  # back at their defaults
    assert "episode_id" not in stored  # cleared on recovery (HDEL of a gone field)


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param(3, id="small command in the script"),
        pytest.param(packed_writes.MAX_ARGS + 10, id="command too large for one unpack"),
    ],
)
def test_large_and_chunked_writes_all_apply(settings: Settings, tags: int) -> None:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    checks = packed_writes.CHUNK // 10  # enough commands for several script calls
    pending = Pending()
    loaded = LoadedChecks(views={}, attrs={}, expired={}, seen=set())
    for i in range(checks):
        cid = check_id(f"h{i}", "c")
        rec = CheckRecord(entity_name=f"h{i}", name="c", state="ok", summary=str(i))
        names = tuple(f"t{j}" for j in range(tags if i == checks // 2 else 1))
        pending.add(cid, 0, Result(view=CheckView(id=cid, record=rec), changed=True))
        pending.tags[cid] = set(names)
    store.write(r, keys, loaded, pending, notification_ttl_s=60, history_max_states=10)
    for i in (0, checks // 2, checks - 1):
        cid = check_id(f"h{i}", "c")
        assert r.hget(keys.check(cid), "summary") == str(i)
        assert r.hget(keys.check(cid), "enabled") == "true"
        assert r.scard(keys.check_tags(cid)) == (tags if i == checks // 2 else 1)
    assert r.scard(keys.check_ids()) == checks
    assert r.scard(keys.check_by_state("ok")) == checks


SUMMARIES = [
    "",
    "x" * 31,
    "y" * 32,
    "z" * 255,
    "w" * 256,
    "v" * 70_000,
    "æøå ✓ 😀",
    "007",
    "1e3",
    "-0",
]


def test_values_arrive_byte_for_byte_through_the_packed_script_argument(settings: Settings) -> None:
    """The script's commands travel as one MessagePack array: every string size class
    (fixstr, str8, str16, str32), non-ASCII text and number-like strings stay exactly as sent."""
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    pending = Pending()
    loaded = LoadedChecks(views={}, attrs={}, expired={}, seen=set())
    for i, summary in enumerate(SUMMARIES):
        cid = check_id(f"h{i}", "c")
        rec = CheckRecord(entity_name=f"h{i}", name="c", state="ok", summary=summary)
        pending.add(cid, 0, Result(view=CheckView(id=cid, record=rec), changed=True))
        pending.tags[cid] = {f"tag-{summary[:8]}"}
    store.write(r, keys, loaded, pending, notification_ttl_s=60, history_max_states=10)
    for i, summary in enumerate(SUMMARIES):
        cid = check_id(f"h{i}", "c")
        assert r.hget(keys.check(cid), "summary") == (summary or None)  # "" is the default
        assert r.smembers(keys.check_tags(cid)) == {f"tag-{summary[:8]}"}


def test_a_redelivered_batch_larger_than_one_lookup_is_dropped_whole(settings: Settings) -> None:
    """The processed-event ids go to Redis packed, in chunks: a batch with more ids
    than one packed ZMSCORE (and one ZADD inside the write) takes is stored whole,
    and every one of its events is recognised when the batch comes back."""
    from shared.check_load import _SEEN_CHUNK

    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    registry = CollectorRegistry()
    handle = _handler(r, settings, registry)
    n = max(_SEEN_CHUNK, packed_writes.MAX_ARGS) + 100
    msg = message(settings, [ev("h", f"c{i}", 100.0, "ok") for i in range(n)])
    handle([msg])
    assert sum(r.zcard(keys.processed_events(p)) for p in range(settings.partitions)) == n
    handle([msg])
    assert registry.get_sample_value("tocsin_processor_duplicate_events_total") == n
    assert r.hget(keys.check(check_id("h", "c0")), "state_count") == "1"  # counted once


def test_history_records_refreshed_by_repeats_match_a_full_write(settings: Settings) -> None:
    """A repeat rewrites only what changes in the current history record (count,
    last update, summary...); its state and start, written when the state began,
    must still be there, in the record and as the history index's score."""
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    handle = _handler(r, settings)
    steps = [("ok", "a"), ("ok", "b"), ("critical", "c"), ("critical", "d"), ("critical", "e")]
    for n, (state, summary) in enumerate(steps):
        # Two events per message: the second repeats the first within the batch.
        events = [ev("h", "c", 100.0 + 10 * n, state, summary=summary)]
        events.append(ev("h", "c", 105.0 + 10 * n, state, summary=summary + "!"))
        handle([message(settings, events, n)])
    history = CheckStore(r, keys).history("h", "c")
    got = [(h.state, h.timestamp, h.last_update, h.summary, h.count) for h in history]
    assert got == [("critical", 120.0, 145.0, "e!", 6), ("ok", 100.0, 115.0, "b!", 4)]
    cid = check_id("h", "c")
    scores = r.zrange(keys.check_state_ids(cid), 0, -1, withscores=True)
    assert [s for _, s in scores] == [100.0, 120.0]
    for sid, _ in scores:
        assert set(r.hgetall(keys.check_state(sid))) >= {"state", "timestamp", "last_update"}
