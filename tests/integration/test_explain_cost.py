"""What decision recording costs the processor: events/s with and without it.

The processor's batch handler runs in-process against real Redis (no broker,
so the relative cost is larger than through AMQP) on the workload of
``test_processor_throughput`` (1,000 checks x 20 events, 10 % failing), and on
the worst case where every check fails (every event recorded), in batches of
500 events.

The measurement is paired, because the machine is shared: two handlers, one
recording and one not, each in its own namespace, take the same batches
alternately (order flipped every batch), so load from elsewhere hits both
sides alike, and the median of the per-batch time ratios counts.  Recording
must cost at most 10 % on the throughput workload.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names, partition_of
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.keys import Keys
from shared.models import ENCODER, CheckEvent
from shared.store import connect_redis, delete_namespace, ensure_partitions
from tests.integration.test_processor_throughput import PER_BODY, workload
from tests.integration.test_processor_worker import ev

pytestmark = pytest.mark.integration

CHECKS = 1_000
EVENTS = CHECKS * 20
BODIES_PER_BATCH = 5  # 500 events, the default batch size
ROUNDS = 3

Workload = Callable[[int, int], dict[int, list[list[CheckEvent]]]]


def all_failing(partitions: int, checks: int) -> dict[int, list[list[CheckEvent]]]:
    """The worst case for recording: every check fails, so every event is recorded."""
    by_part: dict[int, list[CheckEvent]] = {k: [] for k in range(partitions)}
    for i in range(20):
        for c in range(checks):
            by_part[partition_of(f"host{c}", "load", partitions)].append(
                ev(f"host{c}", "load", 1_000_000.0 + i * 10, "critical", summary="load 9")
            )
    return {
        k: [evs[j : j + PER_BODY] for j in range(0, len(evs), PER_BODY)]
        for k, evs in by_part.items()
    }


def checks_that_fail(load: Workload, partitions: int) -> int:
    """Checks with a failing event: the ones that get records (ok-only checks get none)."""
    return len(
        {
            (e.entity, e.check)
            for bodies in load(partitions, CHECKS).values()
            for body in bodies
            for e in body
            if e.state != "ok"
        }
    )


def batches_of(names: Names, load: Workload, partitions: int) -> list[list[Message]]:
    out: list[list[Message]] = []
    for k, bodies in load(partitions, CHECKS).items():
        msgs = [
            Message(
                body=ENCODER.encode(body),
                delivery_tag=i,
                queue=names.processor(k),
                routing_key="",
            )
            for i, body in enumerate(bodies)
        ]
        out += [msgs[i : i + BODIES_PER_BATCH] for i in range(0, len(msgs), BODIES_PER_BATCH)]
    return out


def handler(s: Settings) -> Callable[[list[Message]], BatchResult]:
    r = connect_redis(s)
    delete_namespace(r, s.namespace)
    ensure_partitions(r, s)
    return make_handler(
        r, Names(s.namespace), Keys(s.namespace), s, ProcessorMetrics(CollectorRegistry())
    )


def paired_seconds(settings: Settings, load: Workload) -> tuple[float, float, float]:
    """Seconds spent by the recording and the non-recording handler on the same batches,
    and the median of the per-batch ratios (robust to a load spike hitting one side)."""
    on_s = msgspec.structs.replace(settings, explain_max_records=200)
    off_s = msgspec.structs.replace(
        settings, namespace=f"{settings.namespace}off", explain_max_records=0
    )
    spent = {True: 0.0, False: 0.0}
    ratios: list[float] = []
    r = connect_redis(settings)
    try:
        for _ in range(ROUNDS):
            handlers = {True: handler(on_s), False: handler(off_s)}
            # Same partition queue names in both namespaces' messages do not matter: the
            # handler only reads the partition number from the queue name's suffix.
            batches = batches_of(Names(settings.namespace), load, settings.partitions)
            for i, batch in enumerate(batches):
                took = {}
                for side in (True, False) if i % 2 else (False, True):
                    started = time.perf_counter()
                    res = handlers[side](batch)
                    took[side] = time.perf_counter() - started
                    spent[side] += took[side]
                    if res.after_publish:
                        res.after_publish()
                ratios.append(took[True] / took[False])
        recorded = sum(1 for _ in r.scan_iter(match=f"{on_s.namespace}:check:*:explain"))
        unrecorded = sum(1 for _ in r.scan_iter(match=f"{off_s.namespace}:check:*:explain"))
        assert (recorded, unrecorded) == (checks_that_fail(load, settings.partitions), 0)
    finally:
        delete_namespace(r, off_s.namespace)
        r.close()
    return spent[True], spent[False], statistics.median(ratios)


@pytest.mark.parametrize(
    ("load", "limit"),
    [
        pytest.param(workload, 0.10, id="throughput workload (10% failing)"),
        # Every event recorded: reported, with a looser bound against regressions.
        pytest.param(all_failing, 0.20, id="all failing"),
    ],
)
def test_recording_cost(settings: Settings, load: Workload, limit: float) -> None:
    on, off, ratio = paired_seconds(settings, load)
    events = EVENTS * ROUNDS
    # Share of throughput lost, 1 - (events/on) / (events/off), from the median batch pair.
    cost = 1 - 1 / ratio
    print(
        f"\nprocessor handler ({load.__name__}): {events / off:,.0f} events/s without "
        f"recording, {events / on:,.0f} with (totals: {1 - off / on:.1%}); "
        f"median batch pair: {cost:.1%} of throughput"
    )
    assert cost <= limit, f"recording costs {cost:.1%} of processor throughput"
