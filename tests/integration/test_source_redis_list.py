"""Flapjack Redis-list drain against real Redis/RabbitMQ: batches, dead letters, crash safety."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.ingest.redis_list import ListDrain, start_drain
from services.ingest.worker import IngestMetrics, make_handler
from shared.amqp import Names
from shared.config import Settings
from shared.consumer import BatchResult, Handler, Message
from shared.keys import Keys
from shared.models import CheckEvent
from tests.support import collect, declare

pytestmark = pytest.mark.integration

LINES = (
    (Path(__file__).resolve().parent.parent / "data" / "sources" / "flapjack_list_events.jsonl")
    .read_bytes()
    .splitlines()
)


@pytest.fixture
def listed(settings: Settings) -> Iterator[Settings]:
    """Settings whose Flapjack list is private to the test (the list is not namespaced)."""
    s = msgspec.structs.replace(settings, flapjack_list=f"{settings.namespace}-events")
    declare(s)
    yield s
    redis.Redis.from_url(s.redis_url).delete(s.flapjack_list or "")


def _handler(settings: Settings) -> Handler:
    names = Names(settings.namespace)
    return make_handler(names, settings.partitions, IngestMetrics(CollectorRegistry()))


def _push(settings: Settings, lines: Sequence[bytes]) -> None:
    # Publishers LPUSH; the oldest item is at the right end.
    r = redis.Redis.from_url(settings.redis_url)
    for line in lines:
        r.lpush(settings.flapjack_list or "", line)


def _events(got: list[dict[str, object]], dead: str) -> list[CheckEvent]:
    return [
        e
        for m in got
        if m["queue"] != dead
        for e in msgspec.json.decode(m["body"], type=list[CheckEvent])  # type: ignore[arg-type]
    ]


def test_drain_thread_routes_good_events_and_dead_letters_bad_ones(listed: Settings) -> None:
    names = Names(listed.namespace)
    _push(listed, LINES)
    stop = threading.Event()
    thread = start_drain(listed, _handler(listed), stop.is_set)
    assert thread is not None
    try:
        queues = [names.processor(k) for k in range(listed.partitions)] + [names.dead]
        got = collect(listed, queues, n=4, timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    events = _events(got, names.dead)
    assert sorted((e.entity, e.check, e.state, e.time) for e in events) == [
        ("nagios-host-1", "HTTP", "ok", 1714550401.0),
        ("nagios-host-1", "PING", "critical", 1714550400.0),
    ]
    dead = sorted(m["headers"]["x-tocsin-error"] for m in got if m["queue"] == names.dead)
    assert len(dead) == 2
    assert "not valid JSON" in dead[0] and "state: unknown value 'sideways'" in dead[1]
    r = redis.Redis.from_url(listed.redis_url)
    keys = Keys(listed.namespace)
    assert r.llen(listed.flapjack_list or "") == 0
    assert r.exists(keys.drain_processing(listed.flapjack_list or "")) == 0
    assert r.exists(keys.drain_lock(listed.flapjack_list or "")) == 0  # released on stop


def test_no_drain_without_the_setting(settings: Settings) -> None:
    assert start_drain(settings, _handler(settings), lambda: True) is None


def test_crash_before_publish_loses_nothing_and_replays_with_the_same_ids(listed: Settings) -> None:
    names = Names(listed.namespace)
    keys = Keys(listed.namespace)
    name = listed.flapjack_list or ""
    _push(listed, LINES[:2])
    first_ids: list[str] = []
    handler = _handler(listed)

    def recording(batch: Sequence[Message]) -> BatchResult:
        result = handler(batch)
        for out in result.outputs:
            first_ids.extend(e.id for e in msgspec.json.decode(out.body, type=list[CheckEvent]))
        return result

    crashing = ListDrain(listed, name, recording, lambda: False)

    def broker_dies(_messages: object) -> None:
        raise RuntimeError("process killed between pop and publish")

    crashing._publish = broker_dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.drain_once()
    r = redis.Redis.from_url(listed.redis_url)
    assert r.llen(name) == 0
    assert r.lrange(keys.drain_processing(name), 0, -1) == LINES[:2]
    assert len(first_ids) == 2

    _push(listed, LINES[2:3])  # arrives while "down": joins the replayed batch, after it
    restarted = ListDrain(listed, name, handler, lambda: False)
    assert restarted.drain_once() == 3
    restarted._close()
    queues = [names.processor(k) for k in range(listed.partitions)] + [names.dead]
    got = collect(listed, queues, n=3, timeout=10)
    replayed = _events(got, names.dead)
    assert sorted(e.id for e in replayed) == sorted(first_ids)
    assert len([m for m in got if m["queue"] == names.dead]) == 1
    assert r.exists(keys.drain_processing(name), keys.drain_batch(name)) == 0


def test_batches_are_capped_and_keep_arrival_order(listed: Settings) -> None:
    name = listed.flapjack_list or ""
    lines = [
        b'{"entity":"e","check":"c%d","state":"ok","time":%d}' % (i, 1000 + i) for i in range(7)
    ]
    _push(listed, lines)
    seen: list[list[bytes]] = []
    handler = _handler(listed)

    def recording(batch: Sequence[Message]) -> BatchResult:
        seen.append([m.body for m in batch])
        return handler(batch)

    drain = ListDrain(listed, name, recording, lambda: False, batch_size=3)
    try:
        assert [drain.drain_once() for _ in range(3)] == [3, 3, 1]
    finally:
        drain._close()
    assert seen == [lines[0:3], lines[3:6], lines[6:7]]


def test_only_the_lease_holder_drains(listed: Settings) -> None:
    name = listed.flapjack_list or ""
    a = ListDrain(listed, name, _handler(listed), lambda: False)
    b = ListDrain(listed, name, _handler(listed), lambda: False)
    assert a._holds_lease() and not b._holds_lease()
    assert a._holds_lease()  # renewal
