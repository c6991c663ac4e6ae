"""Notifier against real Redis and RabbitMQ: refs in on NS.notifications, deliveries out per medium."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.notifier.worker import build_consumer
from shared.amqp import Names, Publisher, connect
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.directory import Directory
from shared.keys import Keys
from shared.models import (
    DELIVERY_DECODER,
    ENCODER,
    Contact,
    Delivery,
    Medium,
    Notification,
    NotificationRef,
    Rule,
    SeverityRoute,
    decode_deliveries,
)
from shared.notifier.expander import NotifierMetrics, make_handler
from shared.notifier.store import NotifierStore, OutboxEntry
from shared.records import to_hash
from shared.routing.notifier_state import block_id
from shared.store import connect_redis
from tests.support import (
    collect,
    collect_deliveries,
    declare,
    publish,
    queue_depth,
    running,
    wait_acked,
)

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_redis(settings)
    yield client
    client.close()


def configure(
    settings: Settings, r: redis.Redis, rollup: int | None = None, interval: int = 600
) -> None:
    """Two contacts on different media types, both routed critical problems of web1."""
    d = Directory(r, Keys(settings.namespace))
    for cid, mtype in (("alice", "webhook"), ("bob", "email")):
        d.put_contact(Contact(id=cid, name=cid.title()))
        d.put_medium(
            Medium(
                id=f"{cid}-m",
                contact_id=cid,
                type=mtype,
                address=f"{cid}@x",
                interval=interval,
                rollup_threshold=rollup,
            )
        )
        d.put_rule(
            Rule(
                id=f"{cid}-r",
                contact_id=cid,
                entities=("web1",),
                critical=SeverityRoute(media=(mtype,)),
            )
        )


def notification(
    nid: str, ntype: str = "problem", t: float = 0, check: str = "http", state: str = "critical"
) -> Notification:
    return Notification(
        id=nid,
        type=ntype,
        check_id=check,
        entity="web1",
        check=check,
        state=state,  # type: ignore[arg-type]
        severity="critical",
        time=T0 + t,
        episode_id=f"ep-{check}",
        summary="down",
    )


def send(settings: Settings, r: redis.Redis, *notes: Notification) -> None:
    keys = Keys(settings.namespace)
    for n in notes:
        r.hset(keys.notification(n.id), mapping=to_hash(n))
    for n in notes:
        publish(
            settings,
            ENCODER.encode(NotificationRef(n.id)),
            routing_key=Names(settings.namespace).notifications,
            exchange="",
        )


def gateway_queues(settings: Settings) -> list[str]:
    names = Names(settings.namespace)
    return [names.gateway("webhook"), names.gateway("email")]


def deliveries(got: list[dict[str, object]]) -> list[Delivery]:
    return [DELIVERY_DECODER.decode(m["body"]) for m in got]  # type: ignore[arg-type]


def test_problem_fans_out_to_both_contacts_and_redelivery_adds_nothing(
    settings: Settings, r: redis.Redis
) -> None:
    declare(settings)
    configure(settings, r, interval=0)  # no interval block: only the marker stops a repeat
    keys = Keys(settings.namespace)
    registry = CollectorRegistry()
    with running(build_consumer(settings, registry, r)):
        send(settings, r, notification("n1"))
        got = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
        # The same ref again (a broker redelivery looks the same): nothing new.
        send(settings, r, notification("n1"))
        wait_acked(registry, Names(settings.namespace).notifications, 2)
        extra = queue_depth(settings, *gateway_queues(settings))
    ds = sorted(deliveries(got), key=lambda d: d.medium.type)
    assert [(d.medium.type, d.contact.id, d.type, d.id) for d in ds] == [
        ("email", "bob", "problem", "n1:bob-m"),
        ("webhook", "alice", "problem", "n1:alice-m"),
    ]
    assert {m["message_id"] for m in got} == {"n1:bob-m", "n1:alice-m"}
    assert {m["queue"] for m in got} == set(gateway_queues(settings))
    assert extra == 0
    assert r.exists(keys.notified("n1"))
    assert r.hlen(keys.notifier_outbox()) == 0


def test_interval_and_recovery_across_batches(settings: Settings, r: redis.Redis) -> None:
    declare(settings)
    configure(settings, r)
    registry = CollectorRegistry()
    with running(build_consumer(settings, registry, r)):
        send(settings, r, notification("p1"))
        first = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
        keys = Keys(settings.namespace)
        score = r.zscore(keys.contact_block_ids("alice"), block_id("alice-m", "http", "critical"))
        assert score == T0 + 600
        send(settings, r, notification("p2", t=300))  # blocked by the 600 s interval
        send(settings, r, notification("ok1", "recovery", t=400, state="ok"))
        rest = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
        wait_acked(registry, Names(settings.namespace).notifications, 3)  # p1, p2 and ok1
        extra = queue_depth(settings, *gateway_queues(settings))
    assert sorted(d.id for d in deliveries(first)) == ["p1:alice-m", "p1:bob-m"]
    assert sorted((d.type, d.id) for d in deliveries(rest)) == [
        ("recovery", "ok1:alice-m"),
        ("recovery", "ok1:bob-m"),
    ]
    assert extra == 0
    assert r.zcard(keys.contact_block_ids("alice")) == 0  # recovery cleared the block
    assert not r.exists(keys.episode_media("ep-http"))


def test_rollup_through_redis(settings: Settings, r: redis.Redis) -> None:
    declare(settings)
    configure(settings, r, rollup=2)
    keys = Keys(settings.namespace)
    with running(build_consumer(settings, CollectorRegistry(), r)):
        send(settings, r, notification("a", check="c1"))
        first = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
        send(settings, r, notification("b", t=10, check="c2"))
        second = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
    assert {d.type for d in deliveries(first)} == {"problem"}
    rolled = deliveries(second)
    assert {d.type for d in rolled} == {"rollup"}
    assert all(sorted(i.check for i in d.checks) == ["c1", "c2"] for d in rolled)
    assert r.hget(keys.medium_rollup("alice-m"), "active") == "true"
    assert sorted(r.hkeys(keys.medium_rollup_checks("alice-m"))) == ["c1", "c2"]


def test_missing_hash_and_bad_body_are_dead_lettered(settings: Settings, r: redis.Redis) -> None:
    declare(settings)
    configure(settings, r)
    names = Names(settings.namespace)
    with running(build_consumer(settings, CollectorRegistry(), r)):
        publish(
            settings,
            ENCODER.encode(NotificationRef("ghost")),
            routing_key=names.notifications,
            exchange="",
        )
        publish(settings, b"{not json", routing_key=names.notifications, exchange="")
        got = collect(settings, [names.dead], n=2, timeout=10)
    reasons = sorted(m["headers"]["x-tocsin-error"] for m in got)  # type: ignore[index]
    assert len(reasons) == 2
    assert reasons[1].startswith("notification ghost: no stored notification")
    assert reasons[0].startswith("body:")
    assert all(m["headers"]["x-tocsin-stage"] == "notifier" for m in got)  # type: ignore[index]


def test_outbox_leftovers_are_republished(settings: Settings, r: redis.Redis) -> None:
    declare(settings)
    keys = Keys(settings.namespace)
    d = Delivery(
        id="old:m",
        notification_id="old",
        type="problem",
        entity="e",
        check="c",
        state="critical",
        time=T0,
        contact={"id": "a", "name": "A"},  # type: ignore[arg-type]
        medium={"id": "m", "type": "webhook", "address": "x"},  # type: ignore[arg-type]
    )
    d = msgspec.convert(msgspec.to_builtins(d), Delivery)
    r.hset(keys.notifier_outbox(), d.id, ENCODER.encode(OutboxEntry(time.time() - 60, d)))
    with running(build_consumer(settings, CollectorRegistry(), r)):
        got = collect_deliveries(settings, gateway_queues(settings), n=1, timeout=10)
    assert [m["message_id"] for m in got] == ["old:m"]
    assert r.hlen(keys.notifier_outbox()) == 0


def test_config_change_is_picked_up(settings: Settings, r: redis.Redis) -> None:
    declare(settings)
    configure(settings, r)
    registry = CollectorRegistry()
    with running(build_consumer(settings, registry, r)):
        send(settings, r, notification("x1", check="c1"))
        first = collect_deliveries(settings, gateway_queues(settings), n=2, timeout=10)
        Directory(r, Keys(settings.namespace)).delete_contact("bob")
        send(settings, r, notification("x2", check="c2"))
        wait_acked(registry, Names(settings.namespace).notifications, 2)
        assert (
            queue_depth(settings, *gateway_queues(settings)) == 1
        )  # x2's deliveries, all published by now
        second = collect_deliveries(settings, gateway_queues(settings), n=1, timeout=10)
    assert len(first) == 2
    assert [d.contact.id for d in deliveries(second)] == ["alice"]


def test_fan_out_500_contacts_1500_media(
    settings: Settings, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One notification -> 1,500 deliveries with a bounded number of Redis round trips."""
    keys = Keys(settings.namespace)
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        cid = f"c{i}"
        pipe.hset(
            keys.contact(cid), mapping=to_hash(Contact(id=cid, name=cid, timezone="Europe/Oslo"))
        )
        pipe.sadd(keys.contact_ids(), cid)
        for mtype in ("webhook", "email", "sms"):
            m = Medium(id=f"{cid}-{mtype}", contact_id=cid, type=mtype, address=f"{cid}@x")
            pipe.hset(keys.medium(m.id), mapping=to_hash(m))
            pipe.sadd(keys.medium_ids(), m.id)
        rule = Rule(
            id=f"r{i}",
            contact_id=cid,
            entities=("web1",) if i % 2 else (),
            critical=SeverityRoute(media=("webhook", "email", "sms")),
        )
        pipe.hset(keys.rule(rule.id), mapping=to_hash(rule))
        pipe.sadd(keys.rule_ids(), rule.id)
    pipe.incr(keys.config_version())
    pipe.execute()
    n = notification("big")
    r.hset(keys.notification(n.id), mapping=to_hash(n))

    round_trips = 0
    real_execute = redis.client.Pipeline.execute

    def counting(self: redis.client.Pipeline, raise_on_error: bool = True) -> object:
        nonlocal round_trips
        round_trips += 1
        return real_execute(self, raise_on_error)

    names = Names(settings.namespace)
    store = NotifierStore(r, keys, settings.notification_ttl_s)
    registry = CollectorRegistry()
    handle = make_handler(store, Directory(r, keys), names, NotifierMetrics(registry))
    handle([_msg(NotificationRef("warmup"))])  # loads the configuration index (not measured)
    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    started = time.perf_counter()
    result = handle([_msg(NotificationRef(n.id))])
    elapsed = time.perf_counter() - started
    monkeypatch.undo()
    assert sum(len(decode_deliveries(o.body)) for o in result.outputs) == 1500
    assert len(result.outputs) == 15  # arrays of 100 per medium type
    # Read batch, read state, MULTI (plus a WATCH and the script call that numbers deliveries).
    assert round_trips <= 3, round_trips
    assert (
        registry.get_sample_value("tocsin_notifier_deliveries_total", {"medium_type": "sms"}) == 500
    )
    declare(settings)
    conn = connect(settings.amqp_url, name="tocsin-test-fanout")
    try:
        started = time.perf_counter()
        Publisher(conn).publish(result.outputs)
        published = time.perf_counter() - started
    finally:
        conn.close()
    print(
        f"\nexpand 1 notification -> 1500 deliveries: {elapsed * 1000:.1f} ms "
        f"({round_trips} Redis pipelines); publishing them in one AMQP tx: {published * 1000:.1f} ms"
    )
    assert elapsed < 5.0


def _msg(ref: NotificationRef) -> Message:
    return Message(
        body=ENCODER.encode(ref),
        delivery_tag=1,
        queue="q",
        routing_key="q",
    )


def _stored_handler(
    settings: Settings, r: redis.Redis
) -> tuple[Keys, NotifierStore, Callable[[Sequence[Message]], BatchResult]]:
    """The two contacts of :func:`configure` (no interval) and a handler over its own store."""
    configure(settings, r, interval=0)
    keys = Keys(settings.namespace)
    store = NotifierStore(r, keys, settings.notification_ttl_s)
    metrics = NotifierMetrics(CollectorRegistry())
    return keys, store, make_handler(store, Directory(r, keys), Names(settings.namespace), metrics)


def test_published_deliveries_leave_the_outbox_with_the_next_commit(
    settings: Settings, r: redis.Redis
) -> None:
    """No round trip of its own per publish: the next batch's MULTI (or the idle sweep) clears it."""
    keys, store, handle = _stored_handler(settings, r)
    for nid in ("p1", "p2"):
        r.hset(keys.notification(nid), mapping=to_hash(notification(nid, check=nid)))
    first = handle([_msg(NotificationRef("p1"))])
    assert first.after_publish is not None
    first.after_publish()  # the broker has them; they stay in the outbox until the next commit
    assert set(r.hkeys(keys.notifier_outbox())) == {"p1:alice-m", "p1:bob-m"}
    second = handle([_msg(NotificationRef("p2"))])
    assert set(r.hkeys(keys.notifier_outbox())) == {"p2:alice-m", "p2:bob-m"}
    assert second.after_publish is not None
    second.after_publish()
    store.clear_published()  # what the idle hook and a clean stop do
    assert r.hlen(keys.notifier_outbox()) == 0


def test_a_lone_notification_costs_four_redis_round_trips(
    settings: Settings, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read the batch, WATCH, read the state (with the seqs), MULTI: nothing more per page.

    At a few hundred pages a second each stage handles batches of one, so a
    round trip per batch is a fixed cost per page (docs/benchmarks.md).
    """
    keys, _store, handle = _stored_handler(settings, r)
    for nid in ("warm", "lone"):
        r.hset(keys.notification(nid), mapping=to_hash(notification(nid, check=nid)))
    warm = handle([_msg(NotificationRef("warm"))])  # loads the configuration index
    assert warm.after_publish is not None
    warm.after_publish()
    sent = 0
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, *args: object, **kw: object) -> None:
        nonlocal sent
        sent += 1
        real_send(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    result = handle([_msg(NotificationRef("lone"))])
    assert result.after_publish is not None
    result.after_publish()
    monkeypatch.undo()
    assert len(result.outputs) == 2  # webhook and email
    assert sent == 4, sent
    seqs = [d.seq for o in result.outputs for d in decode_deliveries(o.body)]
    assert all(s > 0 for s in seqs) and len(set(seqs)) == 2


def test_a_recovery_arriving_first_pulls_its_problem_in_ahead_of_it(
    settings: Settings, r: redis.Redis
) -> None:
    """Two notifiers, or a problem republished late from an outbox: the check's order holds."""
    keys, _store, handle = _stored_handler(settings, r)
    problem = notification("pr1", check="pc")
    recovery = msgspec.structs.replace(
        notification("rc1", ntype="recovery", t=60, check="pc", state="ok"), previous_id="pr1"
    )
    for n in (problem, recovery):
        r.hset(keys.notification(n.id), mapping=to_hash(n))
    first = handle([_msg(NotificationRef("rc1"))])  # the problem's ref has not come yet
    got = [(d.type, d.contact.id) for o in first.outputs for d in decode_deliveries(o.body)]
    assert sorted(got) == [
        ("problem", "alice"),
        ("problem", "bob"),
        ("recovery", "alice"),
        ("recovery", "bob"),
    ]
    seqs = {d.type: d.seq for o in first.outputs for d in decode_deliveries(o.body)}
    assert seqs["problem"] < seqs["recovery"]
    assert r.exists(keys.notified("pr1")) and r.exists(keys.notified("rc1"))
    late = handle([_msg(NotificationRef("pr1"))])  # its own ref, later: already expanded
    assert late.outputs == [] and late.rejected == []


def test_read_batch_reads_more_notifications_than_one_script_call_takes(
    settings: Settings, r: redis.Redis
) -> None:
    """Stored, missing, undecodable and already expanded notifications, in order,
    across the chunks the batch read is split into."""
    from shared import packed_writes

    keys = Keys(settings.namespace)
    n = packed_writes.CHUNK // 6 + 7  # six packed values per notification: two calls
    ids = [f"n{i}" for i in range(n)]
    pipe = r.pipeline(transaction=False)
    for i, nid in enumerate(ids):
        if i % 5 == 1:
            continue  # never stored
        if i % 5 == 2:
            pipe.hset(keys.notification(nid), mapping={"id": nid, "time": "not a number"})
            continue
        pipe.hset(keys.notification(nid), mapping=to_hash(notification(nid, t=i)))
        if i % 5 == 3:
            pipe.set(keys.notified(nid), "1")
    pipe.set(keys.config_version(), "42")
    pipe.execute()
    got = NotifierStore(r, keys, ttl_s=60).read_batch(ids)
    assert got.config_version == 42
    assert got.done == {nid for i, nid in enumerate(ids) if i % 5 == 3}
    assert set(got.invalid) == {nid for i, nid in enumerate(ids) if i % 5 == 2}
    for i, nid in enumerate(ids):
        found = got.notifications.get(nid)
        if i % 5 == 1:
            assert nid in got.notifications and found is None
        elif i % 5 != 2:
            assert found is not None and found.id == nid and found.time == T0 + i
