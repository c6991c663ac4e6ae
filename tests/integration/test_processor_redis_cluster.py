"""The processor against a local 3-node Redis Cluster: same state and notifications as one Redis.

The test starts three ``redis-server`` processes in cluster mode on free
loopback ports, joins them with ``redis-cli --cluster create`` and runs the
processor's batch handler on the same batches against the cluster and
against the single Redis of the ``settings`` fixture; every key the two
namespaces hold must then be equal.  A last step runs the worker through
RabbitMQ against the cluster (publish, outbox, idle sweep).
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, build_consumer, make_handler
from shared.amqp import Names, partition_key, partition_of
from shared.config import Settings
from shared.consumer import Message
from shared.keys import Keys, check_id
from shared.models import ENCODER, NOTIFICATION_REF_DECODER, CheckEvent, Notification
from shared.records import from_hash
from shared.store import connect_redis
from tests.redis_cluster import redis_cluster
from tests.support import collect, declare, publish, running

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The processor as a stage on its own: it publishes refs (no notifier runs here)."""
    return msgspec.structs.replace(settings, processor_expands=False)


@pytest.fixture
def cluster_url() -> Iterator[str]:
    """A fresh 3-master Redis Cluster on loopback; processes and files removed after."""
    with redis_cluster() as url:
        yield url


def _events(n_checks: int) -> list[list[CheckEvent]]:
    """Rounds of events for ``n_checks`` checks: failures, repeats, acks, recoveries."""
    script = [
        (0, "critical"),
        (40, "critical"),
        (50, "acknowledgement"),
        (100, "warning"),
        (160, "ok"),
        (200, "critical"),
        (260, "critical"),
    ]
    rounds: list[list[CheckEvent]] = []
    for r, (t, state) in enumerate(script):
        evs = []
        for i in range(n_checks):
            # Stagger some checks so the rounds mix first events, repeats and recoveries.
            if i % 5 == 0 and r == 1:
                continue
            kind = "action" if state == "acknowledgement" else "service"
            evs.append(
                CheckEvent(
                    id=f"e{r}-{i}",
                    entity=f"host{i % 17}",
                    check=f"svc{i}",
                    type=kind,
                    state=state,
                    time=1000.0 + t + i % 3,
                    received=1000.0 + t + i % 3,
                    summary=f"{state} {i}",
                    tags=(f"shard={i % 3}",) if r == 0 else (),
                )
            )
        rounds.append(evs)
    return rounds


def _batch(settings: Settings, events: list[CheckEvent]) -> list[Message]:
    """One message per partition, as ingest publishes them."""
    by_part: dict[int, list[CheckEvent]] = {}
    for e in events:
        by_part.setdefault(partition_of(e.entity, e.check, settings.partitions), []).append(e)
    names = Names(settings.namespace)
    return [
        Message(
            body=ENCODER.encode(evs),
            delivery_tag=k + 1,
            queue=names.processor(k),
            routing_key=partition_key(k),
        )
        for k, evs in sorted(by_part.items())
    ]


def _dump(r: redis.Redis, namespace: str) -> dict[str, object]:
    """Every key of the namespace with its value (outbox stamps left out: wall clock)."""
    out: dict[str, object] = {}
    for key in r.scan_iter(match=f"{namespace}:*", count=1000):
        kind = r.type(key)
        if kind == "hash":
            value: object = r.hgetall(key)
            if ":outbox:" in key:
                value = sorted(value)  # type: ignore[arg-type]
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
            if key.endswith(":idx:closed"):
                # Scored by when Tocsin recorded the close (wall clock, for retention).
                value = sorted(m for m, _ in value)  # type: ignore[union-attr]
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        else:
            value = r.get(key)
        out[key] = value
    return out


def test_processor_on_a_redis_cluster_matches_single_redis(
    settings: Settings, cluster_url: str
) -> None:
    csettings = msgspec.structs.replace(settings, redis_url=cluster_url)
    single, cluster = connect_redis(settings), connect_redis(csettings)
    assert isinstance(cluster, redis.cluster.RedisCluster)
    keys = Keys(settings.namespace)
    handlers = [
        make_handler(r, Names(s.namespace), keys, s, ProcessorMetrics(CollectorRegistry()))
        for r, s in ((single, settings), (cluster, csettings))
    ]
    n_checks = 90
    rounds = _events(n_checks)
    outputs: list[list[str | None]] = [[], []]
    for events in rounds + rounds[2:3]:  # the third round twice: a redelivery
        batch = _batch(settings, events)
        for out, handle in zip(outputs, handlers, strict=True):
            result = handle(batch)
            assert result.rejected == []
            out.extend(m.message_id for m in result.outputs)

    # The same notification refs, in the same order (the redelivered round included).
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > n_checks
    # The checks are spread over all three shards.
    slots = {
        cluster.keyslot(keys.check(check_id(f"host{i % 17}", f"svc{i}"))) for i in range(n_checks)
    }
    owners = {cluster.nodes_manager.get_node_from_slot(s).name for s in slots}
    assert len(owners) == 3
    # Every key (check records and indexes, history, incidents, notifications,
    # the outbox, processed-event ids, decision records) is the same.
    want, got = _dump(single, settings.namespace), _dump(cluster, settings.namespace)
    assert len(want) > 10 * n_checks and set(got) == set(want)
    assert {k: v for k, v in got.items() if v != want[k]} == {}
    first = from_hash(Notification, cluster.hgetall(keys.notification(outputs[1][0] or "")))
    assert first.type == "problem"

    # The worker itself through RabbitMQ: recoveries are published and the outbox drains.
    declare(settings)
    names = Names(settings.namespace)
    with running(build_consumer(csettings, CollectorRegistry())):
        recoveries = [
            CheckEvent(
                id=f"rec-{i}",
                entity=f"host{i % 17}",
                check=f"svc{i}",
                type="service",
                state="ok",
                time=2000.0,
                received=2000.0,
            )
            for i in range(n_checks)
        ]
        for msg in _batch(settings, recoveries):
            publish(settings, msg.body, routing_key=msg.routing_key, exchange=names.checks)
        got_refs = collect(
            settings, [names.notifications], n=n_checks + len(outputs[1]), timeout=20
        )
    ids = {NOTIFICATION_REF_DECODER.decode(m["body"]).id for m in got_refs}
    # The handler-run notifications were never published: the idle sweep sends them from the outbox.
    assert set(outputs[1]) <= ids
    new = ids - set(outputs[1])
    assert len(new) == n_checks
    notes = [from_hash(Notification, cluster.hgetall(keys.notification(i))) for i in new]
    assert {(n.type, n.state) for n in notes} == {("recovery", "ok")}
    assert not any(cluster.hlen(keys.outbox(k)) for k in range(settings.partitions))
    assert {
        cluster.hget(keys.check(check_id(f"host{i % 17}", f"svc{i}")), "state")
        for i in range(n_checks)
    } == {"ok"}
