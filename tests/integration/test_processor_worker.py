"""The processor against real Redis and RabbitMQ: state, outbox, redelivery, partitions."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import (
    ProcessorMetrics,
    PublishedRefs,
    build_consumer,
    make_handler,
    make_outbox_sweep,
)
from shared.amqp import Names, partition_key, partition_of
from shared.check_store import CheckStore
from shared.config import Settings
from shared.consumer import Message
from shared.keys import Keys, check_id
from shared.models import ENCODER, NOTIFICATION_REF_DECODER, CheckEvent, Notification
from shared.records import from_hash
from shared.store import connect_redis
from tests.support import collect, declare, publish, running

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The processor as a stage on its own: it publishes refs (no notifier runs here)."""
    return msgspec.structs.replace(settings, processor_expands=False)


_ids = itertools.count()


def ev(entity: str, check: str, t: float, state: str, **kw: object) -> CheckEvent:
    kind = "action" if state in ("acknowledgement", "test_notifications") else "service"
    return CheckEvent(
        id=str(kw.pop("id", f"i{next(_ids)}")),
        entity=entity,
        check=check,
        type=kind,
        state=state,
        time=t,
        received=t,
        **kw,  # type: ignore[arg-type]
    )


def send(settings: Settings, events: list[CheckEvent]) -> None:
    """Publish events the way ingest does: one array per partition."""
    names = Names(settings.namespace)
    by_part: dict[int, list[CheckEvent]] = {}
    for e in events:
        by_part.setdefault(partition_of(e.entity, e.check, settings.partitions), []).append(e)
    for k, evs in by_part.items():
        publish(settings, ENCODER.encode(evs), routing_key=partition_key(k), exchange=names.checks)


def message(settings: Settings, events: list[CheckEvent], tag: int = 1) -> Message:
    k = partition_of(events[0].entity, events[0].check, settings.partitions)
    return Message(
        body=ENCODER.encode(events),
        delivery_tag=tag,
        queue=Names(settings.namespace).processor(k),
        routing_key=partition_key(k),
    )


@pytest.fixture
def handler(settings: Settings) -> Iterator[object]:
    r = connect_redis(settings)
    yield make_handler(
        r,
        Names(settings.namespace),
        Keys(settings.namespace),
        settings,
        ProcessorMetrics(CollectorRegistry()),
    )


def refs(got: list[dict[str, object]]) -> list[str]:
    return [NOTIFICATION_REF_DECODER.decode(m["body"]).id for m in got]  # type: ignore[arg-type]


def test_failure_and_recovery_through_the_queues(settings: Settings) -> None:
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    declare(settings)
    r = connect_redis(settings)
    registry = CollectorRegistry()
    with running(build_consumer(settings, registry)):
        send(
            settings,
            [
                ev("web1", "http", 1000, "critical", tags=("role=web",)),
                ev("web1", "http", 1031, "critical"),
            ],
        )
        send(settings, [ev("web1", "http", 1040, "ok")])
        got = collect(settings, [names.notifications], n=2, timeout=15)
    ids = refs(got)
    assert len(ids) == 2
    notes = [from_hash(Notification, r.hgetall(keys.notification(i))) for i in ids]
    assert [(n.type, n.state, n.time) for n in notes] == [
        ("problem", "critical", 1031.0),
        ("recovery", "ok", 1040.0),
    ]
    assert notes[0].episode_id == notes[1].episode_id is not None
    assert 0 < r.ttl(keys.notification(ids[0])) <= settings.notification_ttl_s
    assert r.lrange(keys.notification_log(), 0, -1) == ids[::-1]
    assert all(not r.hlen(keys.outbox(k)) for k in range(settings.partitions))

    store = CheckStore(r, keys)
    detail = store.get("web1", "http")
    assert detail is not None and detail.state == "ok" and detail.tags == ("role=web",)
    assert detail.incident_id is None and detail.enabled
    history = store.history("web1", "http")
    assert [(h.state, h.count, h.notified) for h in history] == [
        ("ok", 1, True),
        ("critical", 2, True),
    ]
    incident, events = store.get_incident(notes[0].episode_id)  # type: ignore[misc,arg-type]
    assert incident.end_time == 1040.0 and incident.level == 1 and incident.tags == ("role=web",)
    assert [e.type for e in events] == ["STA", "END"]
    cid = check_id("web1", "http")
    assert r.sismember(keys.check_by_state("ok"), cid) and not r.sismember(
        keys.check_by_state("critical"), cid
    )
    assert r.hget(keys.check_by_name(), "web1:http") == cid
    sample = registry.get_sample_value(
        "tocsin_processor_decisions_total", {"filter": "state_change", "outcome": "notify"}
    )
    assert sample == 1.0


def test_redelivered_batch_notifies_once_and_counts_once(settings: Settings, handler) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(settings.namespace)
    r = connect_redis(settings)
    msg = message(settings, [ev("db1", "disk", 0, "critical", initial_failure_delay=0)])
    first = handler([msg])
    second = handler([msg])
    assert len(first.outputs) == 1 and second.outputs == []
    history = CheckStore(r, keys).history("db1", "disk")
    assert [(h.state, h.count) for h in history] == [("critical", 1)]


def test_outbox_is_republished_after_a_crash_before_publish(settings: Settings, handler) -> None:  # type: ignore[no-untyped-def]
    names = Names(settings.namespace)
    declare(settings)
    msg = message(settings, [ev("db2", "disk", 0, "critical", initial_failure_delay=0)])
    result = handler([msg])  # durable in Redis, then "crash": never published
    (out,) = result.outputs
    with running(build_consumer(settings, CollectorRegistry())):
        got = collect(settings, [names.notifications], n=1, timeout=10)
    assert refs(got) == [out.message_id]
    keys = Keys(settings.namespace)
    assert not any(connect_redis(settings).hlen(keys.outbox(k)) for k in range(settings.partitions))


def test_outbox_leftovers_go_out_before_anything_newer_of_the_check(
    settings: Settings, handler
) -> None:  # type: ignore[no-untyped-def]
    """A problem left in the outbox by a crash precedes the recovery processed after restart."""
    names = Names(settings.namespace)
    declare(settings)
    crashed = handler(
        [message(settings, [ev("db3", "disk", 0, "critical", initial_failure_delay=0)])]
    )
    (problem,) = crashed.outputs  # durable in Redis, never published
    publish(
        settings,
        ENCODER.encode([ev("db3", "disk", 60, "ok")]),
        routing_key=message(settings, [ev("db3", "disk", 60, "ok")]).routing_key,
        exchange=names.checks,
    )
    with running(build_consumer(settings, CollectorRegistry())):
        got = collect(settings, [names.notifications], n=2, timeout=10)
    assert refs(got)[0] == problem.message_id  # then the recovery


def test_rejected_ack_and_bad_body(settings: Settings, handler) -> None:  # type: ignore[no-untyped-def]
    ok = message(settings, [ev("app", "job", 0, "ok"), ev("app", "job", 5, "acknowledgement")])
    bad = Message(b"[{]", 2, ok.queue, ok.routing_key)
    result = handler([ok, bad])
    assert result.outputs == []
    assert [(m.delivery_tag, "body" in why) for m, why in result.rejected] == [(2, True)]


def test_api_maintenance_and_disable_are_honoured(settings: Settings, handler) -> None:  # type: ignore[no-untyped-def]
    r = connect_redis(settings)
    store = CheckStore(r, Keys(settings.namespace))
    first = handler([message(settings, [ev("m1", "cpu", 0, "ok")])])
    assert first.outputs == []
    mid = store.add_scheduled_maintenance("m1", "cpu", 100, 200, "patching")
    silent = handler(
        [message(settings, [ev("m1", "cpu", 150, "critical", initial_failure_delay=0)])]
    )
    assert silent.outputs == []
    loud = handler([message(settings, [ev("m1", "cpu", 200, "critical")])])
    assert len(loud.outputs) == 1
    assert store.delete_maintenance("m1", "cpu", mid)
    assert store.set_enabled("m1", "cpu", False)
    quiet = handler([message(settings, [ev("m1", "cpu", 300, "critical")])])
    assert quiet.outputs == []
    detail = store.get("m1", "cpu")
    assert detail is not None and not detail.enabled and detail.last_update == 300.0


def test_ack_via_action_event_silences_and_is_listed(settings: Settings, handler) -> None:  # type: ignore[no-untyped-def]
    r = connect_redis(settings)
    store = CheckStore(r, Keys(settings.namespace))
    res = handler(
        [
            message(
                settings,
                [
                    ev("q", "lag", 0, "warning", initial_failure_delay=0),
                    ev("q", "lag", 10, "acknowledgement", duration=600, summary="on it"),
                    ev("q", "lag", 100, "warning"),
                ],
            )
        ]
    )
    assert len(res.outputs) == 2
    detail = store.get("q", "lag", now=50)
    assert detail is not None and detail.acknowledgement is not None
    assert detail.acknowledgement.end_time == 610.0
    (incident,) = store.list_incidents(open=True, acked=True)
    assert incident.level == 3 and incident.check == "lag"
    assert store.list_incidents(open=False) == []


@pytest.mark.parametrize(
    ("overrides", "times", "expected"),
    [
        pytest.param(
            {"history_max_states": 3},
            [0, 10, 20, 30, 40, 50],
            [50.0, 40.0, 30.0],
            id="by count",
        ),
        pytest.param(
            {"history_max_age_s": 100},
            [0, 10, 20, 200, 210],
            [210.0, 200.0],
            id="by age",
        ),
    ],
)
def test_history_is_trimmed(
    settings: Settings, overrides: dict[str, int], times: list[int], expected: list[float]
) -> None:
    s = msgspec.structs.replace(settings, **overrides)
    r = connect_redis(s)
    keys = Keys(s.namespace)
    handle = make_handler(r, Names(s.namespace), keys, s, ProcessorMetrics(CollectorRegistry()))
    for i, t in enumerate(times):
        handle([message(s, [ev("h", "c", t, "critical" if i % 2 else "ok")])])
    history = CheckStore(r, keys).history("h", "c")
    assert [h.timestamp for h in history] == expected
    cid = check_id("h", "c")
    assert r.zcard(keys.check_state_ids(cid)) == len(expected)
    live = {k for k in r.scan_iter(match=f"{s.namespace}:check_state:*")}
    assert len(live) == len(expected)


def test_published_refs_leave_the_outbox_with_the_next_write_or_the_sweep(
    settings: Settings,
) -> None:
    """No round trip of its own per publish: the next batch's MULTI (or the idle sweep) clears it."""
    r = connect_redis(settings)
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    metrics = ProcessorMetrics(CollectorRegistry())
    published = PublishedRefs()
    handle = make_handler(r, names, keys, settings, metrics, published)

    def outbox() -> set[str]:
        return {i for k in range(settings.partitions) for i in r.hkeys(keys.outbox(k))}

    first = handle([message(settings, [ev("ob1", "disk", 0, "critical", initial_failure_delay=0)])])
    (one,) = first.outputs
    assert first.after_publish is not None
    first.after_publish()  # the broker has it; the entry stays until the next write
    assert outbox() == {one.message_id}
    second = handle(
        [message(settings, [ev("ob2", "disk", 0, "critical", initial_failure_delay=0)])]
    )
    (two,) = second.outputs
    assert outbox() == {two.message_id}  # one left with the second batch's write
    assert second.after_publish is not None
    second.after_publish()

    class NoRepublish:
        def publish(self, messages: object) -> None:
            raise AssertionError(f"published refs were republished: {messages!r}")

    sweep = make_outbox_sweep(r, names, keys, range(settings.partitions), metrics, published)
    sweep(NoRepublish())  # type: ignore[arg-type]
    assert outbox() == set()
    assert metrics.republished._value.get() == 0


def test_a_batch_redelivered_after_a_partial_write_keeps_the_incident_its_problem_named(
    settings: Settings, handler
) -> None:  # type: ignore[no-untyped-def]
    """On a Redis Cluster the write has steps; a crash after the first leaves notifications only.

    Simulated here: the notification stays, the check record and the
    processed-event ids are removed, and the batch comes back redelivered.
    Without reusing the id, the retry opened incident N+1 while the problem
    already sent named N, and the recovery later found nothing sent in its
    episode (tests/faults/test_replica_kill_cluster.py).
    """
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    msg = message(settings, [ev("pw", "disk", 0, "critical", initial_failure_delay=0)])
    first = handler([msg])
    (ref,) = first.outputs
    stored = from_hash(Notification, r.hgetall(keys.notification(ref.message_id)))
    cid = check_id("pw", "disk")
    r.delete(keys.check(cid), *(keys.processed_events(k) for k in range(settings.partitions)))
    again = handler([dataclasses.replace(msg, redelivered=True)])
    (ref2,) = again.outputs
    assert ref2.message_id == ref.message_id
    rewritten = from_hash(Notification, r.hgetall(keys.notification(ref.message_id)))
    assert rewritten.episode_id == stored.episode_id is not None
    detail = CheckStore(r, keys).get("pw", "disk")
    assert detail is not None and detail.incident_id == stored.episode_id
