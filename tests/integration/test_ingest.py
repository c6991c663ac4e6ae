"""Ingest against the real broker: events in on NS.events, partitions and dead letters out."""

from __future__ import annotations

import json

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.worker import IngestMetrics, make_handler
from shared.amqp import Names, partition_of
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.models import CheckEvent
from shared.telemetry import ConsumerMetrics
from tests.support import collect, declare, publish, running

pytestmark = pytest.mark.integration


def _ingest(settings: Settings) -> BatchConsumer:
    names = Names(settings.namespace)
    registry = CollectorRegistry()
    return BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.ingest],
        handler=make_handler(names, settings.partitions, IngestMetrics(registry)),
        stage="ingest",
        metrics=ConsumerMetrics(registry, "ingest"),
        batch_wait_ms=5,
    )


def test_mixed_array_routes_good_events_to_partitions_and_bad_ones_to_dead(
    settings: Settings,
) -> None:
    names = Names(settings.namespace)
    declare(settings)
    body = json.dumps(
        [
            {"entity": "web1", "check": "http", "state": "critical", "time": 1000},
            {"entity": "web1", "check": "http", "state": "sideways"},
            {"entity": "db1", "check": "disk", "state": "OK", "summary": "fine"},
            {"check": "nameless", "state": "ok"},
        ]
    ).encode()
    with running(_ingest(settings)):
        publish(settings, body, message_id="m-1")
        queues = [names.processor(k) for k in range(settings.partitions)] + [names.dead]
        got = collect(settings, queues, n=4, timeout=10)

    dead = [m for m in got if m["queue"] == names.dead]
    good = [m for m in got if m["queue"] != names.dead]
    events = [e for m in good for e in msgspec.json.decode(m["body"], type=list[CheckEvent])]
    assert sorted((e.entity, e.check, e.state) for e in events) == [
        ("db1", "disk", "ok"),
        ("web1", "http", "critical"),
    ]
    for m in good:
        for e in msgspec.json.decode(m["body"], type=list[CheckEvent]):
            assert m["queue"] == names.processor(
                partition_of(e.entity, e.check, settings.partitions)
            )
    assert {e.id for e in events} == {"m-1:0", "m-1:2"}
    reasons = sorted(m["headers"]["x-tocsin-error"] for m in dead)
    assert len(reasons) == 2
    assert "state: unknown value 'sideways'" in reasons[1] and "$[1]" in reasons[1]
    assert "entity" in reasons[0] and "$[3]" in reasons[0]
    assert all(m["headers"]["x-tocsin-stage"] == "ingest" for m in dead)
    assert (
        json.loads(next(m for m in dead if "$[1]" in m["headers"]["x-tocsin-error"])["body"])[
            "state"
        ]
        == "sideways"
    )


def test_non_json_body_is_dead_lettered_and_worker_keeps_going(settings: Settings) -> None:
    names = Names(settings.namespace)
    declare(settings)
    with running(_ingest(settings)):
        publish(settings, b"\xff\xfe not json")
        publish(settings, b'{"entity":"a","check":"b","state":"ok"}')
        queues = [names.processor(k) for k in range(settings.partitions)] + [names.dead]
        got = collect(settings, queues, n=2, timeout=10)
    dead = [m for m in got if m["queue"] == names.dead]
    assert len(dead) == 1 and "not valid JSON" in dead[0]["headers"]["x-tocsin-error"]
    assert dead[0]["body"] == b"\xff\xfe not json"
    assert len(got) == 2


def test_large_bodies_are_split_into_bounded_messages_per_partition(settings: Settings) -> None:
    from shared.intake import MAX_EVENTS_PER_MESSAGE

    names = Names(settings.namespace)
    declare(settings)
    n = MAX_EVENTS_PER_MESSAGE * 2 + 7
    body = json.dumps(
        [{"entity": "e", "check": "same", "state": "ok", "time": 1000 + i} for i in range(n)]
    ).encode()
    with running(_ingest(settings)):
        publish(settings, body)
        queues = [names.processor(k) for k in range(settings.partitions)]
        got = collect(settings, queues, n=3, timeout=10)
    sizes = [len(msgspec.json.decode(m["body"], type=list[CheckEvent])) for m in got]
    assert sizes == [MAX_EVENTS_PER_MESSAGE, MAX_EVENTS_PER_MESSAGE, 7]
    times = [e.time for m in got for e in msgspec.json.decode(m["body"], type=list[CheckEvent])]
    assert times == sorted(times)  # order within the check is kept across the split
