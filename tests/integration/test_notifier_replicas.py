"""Two notifiers on one queue decide exactly as one would (docs/scaling.md, "Notifier replicas").

A rollup-heavy storm goes through two notifier consumers running side by side
on ``NS.notifications`` with small batches, so their batches interleave and
read the same rollup hash and block sets.  What reaches the gateway queues and
what is left in Redis must equal what one notifier taking the notifications
one after the other decides (the pure core run serially is the reference):
rollup messages and the checks they count, interval blocks, recovery routing.
Without the optimistic transaction (``WATCH``) the replicas both page checks
the rollup should hold and send the rollup more than once.  A second test has
one replica expand a recovery before another expands the problem before it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.notifier.worker import build_consumer
from shared.amqp import Names, OutMessage, Publisher, connect
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult, Message
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
from shared.notifier.store import NotifierStore
from shared.records import to_hash
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState, apply
from shared.routing.selection import Index, compile_index, select
from shared.store import connect_redis
from tests.support import collect_deliveries, declare, running, wait_consumers

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0
CHECKS = 60
THRESHOLD = 3

Summary = Counter[tuple[str, str, int]]  # (contact, delivery type, checks in a rollup) -> count


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_redis(settings)
    yield client
    client.close()


def configure(settings: Settings, r: redis.Redis) -> Index:
    """alice: webhook with a rollup threshold; bob: email without; both a 600 s interval."""
    d = Directory(r, Keys(settings.namespace))
    for cid, mtype, rollup in (("alice", "webhook", THRESHOLD), ("bob", "email", None)):
        d.put_contact(Contact(id=cid, name=cid.title()))
        d.put_medium(
            Medium(
                id=f"{cid}-m",
                contact_id=cid,
                type=mtype,
                address=f"{cid}@x",
                interval=600,
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
    return compile_index(d.snapshot())


def note(nid: str, check: str, t: float, ntype: str = "problem") -> Notification:
    return Notification(
        id=nid,
        type=ntype,  # type: ignore[arg-type]
        check_id=check,
        entity="web1",
        check=check,
        state="ok" if ntype == "recovery" else "critical",
        severity="critical",
        time=T0 + t,
        episode_id=f"ep-{check}",
        summary="down",
    )


def storm() -> tuple[list[Notification], list[Notification]]:
    """Every check fails, fails again 10 s later (inside the interval), then recovers."""
    checks = [f"c{i:02d}" for i in range(CHECKS)]
    problems = [note(f"p-{c}", c, 0) for c in checks] + [note(f"q-{c}", c, 10) for c in checks]
    recoveries = [note(f"ok-{c}", c, 100, "recovery") for c in checks]
    return problems, recoveries


def serial(index: Index, state: NotifierState, notes: Sequence[Notification]) -> Summary:
    """The reference: one notifier expanding ``notes`` one after the other."""
    out: Summary = Counter()
    for n in notes:
        outcome = expand(index, state, n, select(index, n))
        apply(state, outcome.effects, n)
        out.update((d.contact.id, d.type, len(d.checks)) for d in outcome.deliveries)
    return out


def summary(ds: Sequence[Delivery]) -> Summary:
    return Counter((d.contact.id, d.type, len(d.checks)) for d in ds)


def send(settings: Settings, r: redis.Redis, notes: Sequence[Notification]) -> None:
    keys, names = Keys(settings.namespace), Names(settings.namespace)
    pipe = r.pipeline(transaction=False)
    for n in notes:
        pipe.hset(keys.notification(n.id), mapping=to_hash(n))
    pipe.execute()
    conn = connect(settings.amqp_url, name="tocsin-test-replicas")
    try:
        Publisher(conn).publish(
            [
                OutMessage("", names.notifications, ENCODER.encode(NotificationRef(n.id)), n.id)
                for n in notes
            ]
        )
    finally:
        conn.close()


def through_two_notifiers(
    settings: Settings, r: redis.Redis, notes: Sequence[Notification], expected: int
) -> tuple[list[Delivery], list[CollectorRegistry]]:
    """Run two notifier consumers until every note is expanded and ``expected`` deliveries
    came out; they are stopped (their last batch published) before this returns."""
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    queues = [names.gateway("webhook"), names.gateway("email")]
    small = msgspec.structs.replace(settings, batch_size=8, prefetch=8, batch_wait_ms=5)
    registries = [CollectorRegistry(), CollectorRegistry()]
    clients = [connect_redis(small), connect_redis(small)]
    all_expanded = threading.Event()

    def signalling(consumer: BatchConsumer) -> BatchConsumer:
        inner = consumer.handler

        def handle(batch: Sequence[Message]) -> BatchResult:
            result = inner(batch)
            if r.exists(*(keys.notified(n.id) for n in notes)) == len(notes):
                all_expanded.set()
            return result

        consumer.handler = handle
        return consumer

    try:
        with (
            running(signalling(build_consumer(small, registries[0], clients[0]))),
            running(signalling(build_consumer(small, registries[1], clients[1]))),
        ):
            # Both must be consuming before the notes go out, or the first takes them all.
            wait_consumers(settings, names.notifications, 2)
            send(settings, r, notes)
            assert all_expanded.wait(timeout=60), "the notifiers did not expand every note"
            got = collect_deliveries(settings, queues, n=expected, timeout=30)
    finally:
        for c in clients:
            c.close()
    return [DELIVERY_DECODER.decode(m["body"]) for m in got], registries


def assert_settled(settings: Settings, r: redis.Redis, notes: Sequence[Notification]) -> None:
    """Every notification expanded and published, and nothing more waiting at a gateway."""
    keys, names = Keys(settings.namespace), Names(settings.namespace)
    pipe = r.pipeline(transaction=False)
    for n in notes:
        pipe.exists(keys.notified(n.id))
    assert all(pipe.execute())
    assert r.hlen(keys.notifier_outbox()) == 0
    conn = connect(settings.amqp_url, name="tocsin-test-replicas")
    try:
        ch = conn.channel()
        for q in (names.notifications, names.gateway("webhook"), names.gateway("email")):
            assert ch.queue_declare(q, passive=True).method.message_count == 0, q
    finally:
        conn.close()


def expanded_by(registry: CollectorRegistry) -> float:
    return sum(
        registry.get_sample_value("tocsin_notifier_notifications_total", {"type": t}) or 0.0
        for t in ("problem", "recovery")
    )


def test_two_notifiers_roll_up_block_and_route_recoveries_as_one(
    settings: Settings, r: redis.Redis
) -> None:
    declare(settings)
    index = configure(settings, r)
    keys = Keys(settings.namespace)
    problems, recoveries = storm()
    reference = NotifierState()
    want_problems = serial(index, reference, problems)
    # Any serial order gives the same summary: the two replicas may commit in any order.
    assert serial(index, NotifierState(), problems[::-1]) == want_problems
    assert want_problems == Counter(
        {
            ("alice", "problem", 0): THRESHOLD - 1,  # paged one by one below the threshold
            ("alice", "rollup", THRESHOLD): 1,  # then one rollup; the interval holds the rest
            ("bob", "problem", 0): CHECKS,  # once per check: the 10 s repeat is blocked
        }
    )

    got, registries = through_two_notifiers(settings, r, problems, want_problems.total())
    assert summary(got) == want_problems
    assert all(expanded_by(reg) > 0 for reg in registries), "both replicas must take batches"
    assert_settled(settings, r, problems)
    assert r.hget(keys.medium_rollup("alice-m"), "active") == "true"
    assert r.hlen(keys.medium_rollup_checks("alice-m")) == CHECKS
    # Interval blocks: one per check for bob; alice's individual pages plus the rollup's.
    assert r.zcard(keys.contact_block_ids("bob")) == CHECKS
    assert r.zcard(keys.contact_block_ids("alice")) == THRESHOLD

    want_recoveries = serial(index, reference, recoveries)
    assert want_recoveries == Counter(
        {
            ("alice", "recovery", 0): THRESHOLD - 1,  # only the checks alice was paged for
            ("alice", "rollup_recovery", THRESHOLD - 1): 1,  # the count drops below 3 once
            ("bob", "recovery", 0): CHECKS,
        }
    )
    got, registries = through_two_notifiers(settings, r, recoveries, want_recoveries.total())
    assert summary(got) == want_recoveries
    assert_settled(settings, r, recoveries)
    assert r.hget(keys.medium_rollup("alice-m"), "active") == "false"
    assert r.hlen(keys.medium_rollup_checks("alice-m")) == 0
    assert r.zcard(keys.contact_block_ids("alice")) == 0
    assert r.zcard(keys.contact_block_ids("bob")) == 0


def test_problem_expanded_after_its_recovery_by_another_replica_is_not_sent(
    settings: Settings, r: redis.Redis
) -> None:
    """Replica B takes the recovery before replica A takes the problem before it."""
    configure(settings, r)
    keys, names = Keys(settings.namespace), Names(settings.namespace)
    problem, recovery = note("p-c1", "c1", 0), note("ok-c1", "c1", 100, "recovery")
    pipe = r.pipeline(transaction=False)
    for n in (problem, recovery):
        pipe.hset(keys.notification(n.id), mapping=to_hash(n))
    pipe.execute()
    replicas = [
        make_handler(
            NotifierStore(r, keys, settings.notification_ttl_s),
            Directory(r, keys),
            names,
            NotifierMetrics(CollectorRegistry()),
        )
        for _ in range(2)
    ]
    first = replicas[1]([ref_message(recovery.id)])
    second = replicas[0]([ref_message(problem.id)])
    assert first.outputs == [] and second.outputs == []  # nobody was paged, so nobody is told
    assert r.exists(keys.notified(problem.id), keys.notified(recovery.id)) == 2
    assert float(r.get(keys.notified_latest("c1")) or 0) == recovery.time
    assert r.zcard(keys.contact_block_ids("bob")) == 0  # the stale problem set no block
    assert not r.exists(keys.episode_media("ep-c1"))
    # A new episode later on is paged as usual.
    again = note("p2-c1", "c1", 200)
    r.hset(keys.notification(again.id), mapping=to_hash(again))
    third = replicas[0]([ref_message(again.id)])
    assert sorted(d.contact.id for d in decoded(third.outputs)) == ["alice", "bob"]


def ref_message(nid: str) -> Message:
    return Message(
        body=ENCODER.encode(NotificationRef(nid)), delivery_tag=1, queue="q", routing_key="q"
    )


def decoded(outputs: Sequence[OutMessage]) -> list[Delivery]:
    return [d for o in outputs for d in decode_deliveries(o.body)]
