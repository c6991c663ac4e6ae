"""Packed writes leave Redis exactly as the same commands sent one by one do."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from shared import packed_writes
from shared.config import Settings
from shared.store import connect_redis

pytestmark = pytest.mark.integration


def _queue(pipe: Any, ns: str) -> None:
    pipe.set(f"{ns}:s", "v", ex=600)
    pipe.hset(f"{ns}:h", mapping={"text": "æøå ✓", "raw": b"\x00\xff", "n": 7, "f": 0.1})
    pipe.zadd(f"{ns}:z", {"a": 1796375595.1696382, "b": -2.5e-7})
    pipe.rpush(f"{ns}:l", *[str(i) for i in range(packed_writes.MAX_ARGS + 5)])
    pipe.eval("return redis.call('INCR', KEYS[1])", 1, f"{ns}:n")
    pipe.sadd(f"{ns}:set", "x", "y")
    pipe.srem(f"{ns}:set", "x")
    pipe.expire(f"{ns}:set", 600)


def _dump(r: redis.Redis, ns: str) -> dict[str, Any]:
    plain = redis.Redis.from_url(r.get_connection_kwargs().get("url", "redis://127.0.0.1:6379"))
    out: dict[str, Any] = {}
    for key in sorted(r.scan_iter(f"{ns}:*")):
        short = key[len(ns) + 1 :]
        out[short] = (r.type(key), plain.dump(key), r.ttl(key) > 0)
    plain.close()
    return out


def test_a_packed_transaction_writes_what_the_plain_one_writes(settings: Settings) -> None:
    r = connect_redis(settings)
    ns = settings.namespace
    for side, packed in (("plain", False), ("packed", True)):
        with r.pipeline(transaction=True) as pipe:
            pipe.watch(f"{ns}:{side}:n")
            pipe.multi()
            _queue(pipe, f"{ns}:{side}")
            if packed:
                packed_writes.pack_pipeline(pipe)
                assert len(pipe.command_stack) < 8  # folded into a few calls
            pipe.execute()
    plain, packed = _dump(r, f"{ns}:plain"), _dump(r, f"{ns}:packed")
    assert plain and packed == plain
    assert r.zscore(f"{ns}:packed:z", "a") == 1796375595.1696382


def test_a_watched_key_changed_by_someone_else_still_aborts_the_packed_write(
    settings: Settings,
) -> None:
    r = connect_redis(settings)
    ns = settings.namespace
    with r.pipeline(transaction=True) as pipe:
        pipe.watch(f"{ns}:guard")
        r.set(f"{ns}:guard", "changed")  # another client, between WATCH and EXEC
        pipe.multi()
        pipe.set(f"{ns}:written", "1")
        packed_writes.pack_pipeline(pipe)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get(f"{ns}:written") is None
