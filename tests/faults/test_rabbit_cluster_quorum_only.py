"""The node that led the dead-letter and delay queues dies mid-stream, with retries parked in them.

Those queues (``NS.dead``, ``NS.gateway.<type>.retry.<level>``) used to be
classic queues, held by the one node that declared them: killing it left the
gateways unable to redeclare their delay queues and delivery stalled (324 of
1,200 pages in 180 s in an earlier run).  They are quorum queues now
(shared/amqp.py), so they must survive like the work queues.

On the test's own 3-node cluster (tests/faults/rabbit_cluster.py) the
topology is declared through the first node, as a worker would; the victim
is the node leading most of those queues, and it is also the first node in
the workers' ``TOCSIN_AMQP_URL`` (so every worker is connected to it and
must move to a survivor).  The webhook receiver answers 503 from just before
the kill until two seconds after it, so deliveries are parked in the delay
queues while their leader dies; then every expected page must arrive
exactly once.

One outcome is the broker's, not Tocsin's: RabbitMQ 3.10 (this machine's)
sometimes loses a delay queue's dead-letter worker in the elections after
the kill, and the parked deliveries then never leave the queue
(docs/reliability.md, "Delay queues after a broker node failure").  When the
pages missing are no more than the messages the delay queues still hold a
minute later, and none is repeated, the test reports that as an expected
failure with the counts; any other shortfall fails it.

A failing run also says where the missing pages' events went: per processor
partition, how many were recorded as applied and what state their checks
hold, and per partition queue how many messages the broker enqueued.  That is
how its two other failure shapes (one partition's recoveries missing; the
deliveries parked after the kill missing) were traced to RabbitMQ 3.10
committing, then dropping, messages published while a queue had no leader
(docs/reliability.md, "Publishing while a queue has no leader").
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from shared.amqp import (
    GATEWAY_RETRY_LEVELS,
    Names,
    connect,
    declare_queue,
    declare_topology,
    gateway_retry_args,
    partition_of,
)
from shared.config import Settings
from shared.keys import Keys, check_id
from shared.queue_migration import formerly_classic
from shared.store import connect_redis, delete_namespace
from tests.conftest import REDIS_URL
from tests.faults.conftest import (
    CountingReceiver,
    configure_webhook,
    fault_env,
    make_settings,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Key, Stream, compare, delivered_keys, publish
from tests.faults.rabbit_cluster import (
    ClusterRabbit,
    quorum_queues,
    rabbit_cluster,
    running_nodes,
)
from tests.faults.test_crash import drain, record, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]

# Every delivery is normally in within 10 s of the receiver answering again.  A wait that
# long, with time left before the test's own timeout, lets a stall say what it was.
DRAIN_S = 60
# RabbitMQ before rabbitmq-server#16203 (merged 2026-04) can lose a quorum queue's
# at-least-once dead-letter worker when two leader elections follow each other closely:
# expired messages then stay in the delay queue for good (docs/reliability.md).
BROKER_BUG = "https://github.com/rabbitmq/rabbitmq-server/pull/16203"

WORKERS = "ingest,processor,notifier,gateway:webhook"


@pytest.mark.timeout(180)
def test_killing_the_leader_of_the_dead_letter_and_delay_queues_loses_and_repeats_no_page(
    services_up: None, receiver: CountingReceiver, tmp_path: Path
) -> None:
    with rabbit_cluster(tmp_path / "rabbit") as nodes:
        first = make_settings(REDIS_URL, nodes[0].url)
        names = Names(first.namespace)
        conn = connect(nodes[0].url, name="tocsin-test-declare")
        channel = conn.channel()
        declare_topology(channel, names, first.partitions)
        for level in range(GATEWAY_RETRY_LEVELS):
            declare_queue(
                channel, names.gateway_retry("webhook", level), gateway_retry_args(names, "webhook")
            )
        conn.close()
        watched = {s.name for s in formerly_classic(names, ("webhook",))}
        before = quorum_queues(nodes[0], names.ns + ".")
        leaders = Counter(before[q][0] for q in watched if q in before)
        victim = next(n for n in nodes if n.name == leaders.most_common(1)[0][0])
        survivors = [n for n in nodes if n is not victim]
        settings = msgspec.structs.replace(
            first, amqp_url=",".join(n.url for n in (victim, *survivors))
        )
        stream = Stream(count=2000, checks=200, t0=time.time(), rate=500.0)
        expected = stream.expected()
        configure_webhook(settings, receiver.url)
        env = fault_env(settings, TOCSIN_DELIVERY_ATTEMPTS="30")
        up = start_up(env, WORKERS, tmp_path / "up.log")
        try:
            wait_ready(settings, up.pid)
            half = stream.count // 2
            # Every delivery of the first half is refused, so they wait in the delay
            # queues. (Flipping the receiver mid-publish relied on deliveries still
            # being in flight then; once the receiver stopped dropping SYNs they all
            # arrived before the flip and nothing was parked.)
            receiver.status = 503
            for _ in publish(stream, victim.url, names.ns, 0, half):
                pass
            # Wait until deliveries were refused, i.e. parked in the delay queues.
            assert wait_until(lambda: receiver.refused >= 20, 20, 0.05), "nothing was refused"
            victim.stop(kill=True)
            killed_at = time.monotonic()
            for _ in publish(stream, survivors[0].url, names.ns, half):
                pass
            wait_until(lambda: time.monotonic() - killed_at > 2, 5)
            receiver.status = 204
            drained = drain(settings, receiver, sum(expected.values()), timeout=DRAIN_S)
            wait_until(lambda: False, 2)  # a late repeat would arrive now
            result = compare(expected, receiver.snapshot())
            applied = trace_lost(settings, stream, expected, receiver) if result["lost"] else {}
            # Messages still in a delay queue this long after their few seconds' TTL: the
            # broker holds them (the check above found no delivery anywhere else).
            delay = sorted(q for q in watched if ".retry." in q)
            stranded = {} if drained else backlog(survivors[0], delay)
            workers = {n.name: dead_letter_workers(n) for n in survivors} if stranded else {}
            after = quorum_queues(survivors[0], names.ns + ".")
            # And where else pages may wait: the namespace's other quorum queues (ingest,
            # the processor's partitions, notifications, the gateway's own queue, dead).
            others = [] if drained else sorted(q for q in after if ".retry." not in q)
            held_elsewhere = holding(survivors[0], others) if others else {}
            partitions = [q for q in others if ".processor.p" in q]
            enqueued = enqueue_counts(survivors[0], partitions) if partitions else {}
            alive = running_nodes(survivors[0])
        finally:
            stop_up(up)
            delete_namespace(connect_redis(settings), settings.namespace)
    log = (tmp_path / "up.log").read_text(errors="replace")[-3000:]
    row = {
        "fault": "leader of NS.dead / delay queues killed mid-stream (3-node cluster)",
        "events": stream.count,
        "delay_and_dead_queues_led_by_victim": leaders[victim.name],
        "refused_by_receiver": receiver.refused,
        **result,
        "stranded_ready_and_dead_lettered": stranded,
        "dead_letter_workers": workers,
        "held_in_other_queues": held_elsewhere,
        "partition_queues_raft_index_enqueues_enqueuers": enqueued,
        "lost_pages_checks": applied,
    }
    record(row)
    print(row, log)
    held = sum(ready + dead for ready, dead in stranded.values())
    if 0 < result["lost"] <= held and result["duplicated"] == 0:
        pytest.xfail(
            f"the broker holds {held} deliveries in delay queues a minute past their TTL "
            f"(ready, dead-lettered: {stranded}; dead-letter workers per node: {workers}), "
            f"{result['lost']} pages not yet delivered: RabbitMQ lost a queue's dead-letter "
            f"worker ({BROKER_BUG}); Tocsin lost none"
        )
    names_all = {n.name for n in nodes}
    # NS.dead and every webhook delay queue: quorum queues with a member on each node.
    assert watched <= before.keys(), sorted(watched - before.keys())
    assert all(set(before[q][1]) == names_all for q in watched), before
    assert leaders[victim.name] >= 1
    assert victim.name not in alive and len(alive) == 2
    assert all(after[q][0] != victim.name for q in watched), after
    assert result["expected"] >= 300
    assert result["lost"] == 0, row
    assert result["duplicated"] == 0, row
    assert result["distinct_ids"] == result["expected"], row


def backlog(node: ClusterRabbit, queues: list[str]) -> dict[str, tuple[int, int]]:
    """Per queue holding any: (ready, dead-lettered but not yet forwarded), from the Raft state
    of ``node``'s member (``list_queues`` does not count the second kind)."""
    rows = fifo_overview(
        node,
        queues,
        "maps:get(num_ready_messages, O), "
        "maps:get(num_discarded, O) + maps:get(num_discard_checked_out, O)",
    )
    return {q: (ready, held) for q, (ready, held) in rows.items() if ready or held}


def holding(node: ClusterRabbit, queues: list[str]) -> dict[str, tuple[int, int]]:
    """Per queue holding any: (ready, delivered to a consumer but not acked), from the Raft
    state of ``node``'s member."""
    rows = fifo_overview(
        node, queues, "maps:get(num_ready_messages, O), maps:get(num_checked_out, O)"
    )
    return {q: (ready, out) for q, (ready, out) in rows.items() if ready or out}


def fifo_overview(node: ClusterRabbit, queues: list[str], terms: str) -> dict[str, list[int]]:
    """Per quorum queue, the integers ``terms`` computes from its ``rabbit_fifo`` overview ``O``
    and last applied Raft index ``I``, read from ``node``'s member."""
    names = ", ".join(f'<<"{q}">>' for q in queues)
    out = node.must(
        "eval",
        '[begin {ok, {{I, _}, O}, _} = ra:local_query({binary_to_atom(<<"%2F_", Q/binary>>), '
        f"node()}}, fun rabbit_fifo:overview/1), {{Q, {terms}}} end || Q <- [{names}]].",
    )
    found = re.findall(r'\{<<"([^"]+)">>,(-?\d+(?:,-?\d+)*)\}', out)
    return {q: [int(n) for n in numbers.split(",")] for q, numbers in found}


def trace_lost(
    settings: Settings, stream: Stream, expected: Counter[Key], receiver: CountingReceiver
) -> dict[str, object]:
    """Where the events behind the lost pages went, per processor partition: how many lost
    pages it owed, how many of those checks' events it recorded as applied, and the states
    those checks hold now (a check still ``critical`` never saw its ``ok`` events)."""
    keys = Keys(settings.namespace)
    r = connect_redis(settings)
    lost = expected - delivered_keys(receiver.snapshot())
    checks = sorted({check for check, _, _ in lost})
    out: dict[str, object] = {}
    for partition in range(settings.partitions):
        mine = [
            c for c in checks if partition_of(stream.entity, c, settings.partitions) == partition
        ]
        if not mine:
            continue
        indices = [i for i in range(stream.count) if f"{stream.prefix}{i % stream.checks}" in mine]
        ids = [stream.message_id(i) + ":0" for i in indices]
        scores = r.zmscore(keys.processed_events(partition), ids) if ids else []
        half = stream.count // 2
        states = Counter(
            str(r.hget(keys.check(check_id(stream.entity, c)), "state") or "?") for c in mine
        )
        out[f"p{partition}"] = {
            "lost_pages": sum(n for (c, _, _), n in lost.items() if c in mine),
            "checks": len(mine),
            "their_events": len(ids),
            "applied_first_half": sum(
                sc is not None for i, sc in zip(indices, scores, strict=True) if i < half
            ),
            "applied_second_half": sum(
                sc is not None for i, sc in zip(indices, scores, strict=True) if i >= half
            ),
            "states_now": dict(states),
            "outbox": r.hlen(keys.outbox(partition)),
        }
    return out


def enqueue_counts(node: ClusterRabbit, queues: list[str]) -> dict[str, tuple[int, int, int]]:
    """Per queue: (last applied Raft index, messages enqueued since the queue's start,
    publishers known), from ``node``'s member.  A partition whose count stopped at the kill
    never received what ingest published to it afterwards."""
    rows = fifo_overview(
        node,
        queues,
        "I, maps:get(release_cursor_enqueue_counter, O, -1), maps:get(num_enqueuers, O, -1)",
    )
    return {q: (i, n, e) for q, (i, n, e) in rows.items()}


def dead_letter_workers(node: ClusterRabbit) -> int:
    """How many at-least-once dead-letter workers run on ``node``."""
    out = node.must("eval", "supervisor:count_children(rabbit_fifo_dlx_sup).")
    found = re.search(r"\{workers,(\d+)\}", out)
    return int(found.group(1)) if found else -1
