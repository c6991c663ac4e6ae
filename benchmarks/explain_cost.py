"""What decision recording costs the processor: events/s with and without it.

``python -m benchmarks.explain_cost [--checks 1000] [--rounds 3]`` runs the
processor's batch handler in-process against the Redis of
``TOCSIN_REDIS_URL`` (no broker, so the relative cost is larger than
through AMQP), on the throughput workload (``--checks`` checks x 20 events,
every 10th check failing) and on the worst case where every check fails
(every event recorded), in batches of 500 events.  It prints one JSON object
per workload and exits 1 when recording costs more than the bound (10 % on
the throughput workload, 20 % when all fail).

The measurement is paired, because the machine is shared: two handlers, one
recording and one not, each in its own namespace, take the same batches
alternately (order flipped every batch), so load from elsewhere hits both
sides alike, and the median of the per-batch time ratios counts.  The
namespaces are deleted afterwards.  ``tests/integration/test_explain_cost.py``
runs the same harness on a tiny workload as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names, partition_of
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.keys import Keys
from shared.models import ENCODER, CheckEvent
from shared.store import connect_redis, delete_namespace, ensure_partitions

EVENTS_PER_CHECK = 20
PER_BODY = 100  # events per message body, as ingest sends them
BODIES_PER_BATCH = 5  # 500 events, the default batch size

Workload = Callable[[int, int], dict[int, list[list[CheckEvent]]]]


def _event(n: int, entity: str, t: float, state: str) -> CheckEvent:
    return CheckEvent(
        id=f"b{n}", entity=entity, check="load", type="service", state=state, time=t, received=t,
        summary="load 9" if state != "ok" else "load 1.2",
    )  # fmt: skip


def _bodies(events: dict[int, list[CheckEvent]]) -> dict[int, list[list[CheckEvent]]]:
    return {
        k: [evs[j : j + PER_BODY] for j in range(0, len(evs), PER_BODY)]
        for k, evs in events.items()
    }


def throughput(partitions: int, checks: int) -> dict[int, list[list[CheckEvent]]]:
    """``checks`` checks, events 10 s apart; every 10th check fails (problems and repeats)."""
    by_part: dict[int, list[CheckEvent]] = {k: [] for k in range(partitions)}
    n = 0
    for i in range(EVENTS_PER_CHECK):
        for c in range(checks):
            n += 1
            state = "critical" if c % 10 == 0 else "ok"
            by_part[partition_of(f"host{c}", "load", partitions)].append(
                _event(n, f"host{c}", 1_000_000.0 + i * 10, state)
            )
    return _bodies(by_part)


def all_failing(partitions: int, checks: int) -> dict[int, list[list[CheckEvent]]]:
    """The worst case for recording: every check fails, so every event is recorded."""
    by_part: dict[int, list[CheckEvent]] = {k: [] for k in range(partitions)}
    n = 0
    for i in range(EVENTS_PER_CHECK):
        for c in range(checks):
            n += 1
            by_part[partition_of(f"host{c}", "load", partitions)].append(
                _event(n, f"host{c}", 1_000_000.0 + i * 10, "critical")
            )
    return _bodies(by_part)


WORKLOADS: dict[str, tuple[Workload, float]] = {
    "throughput": (throughput, 0.10),
    "all_failing": (all_failing, 0.20),
}


def failing_checks(load: Workload, partitions: int, checks: int) -> int:
    """Checks with a failing event: the ones that get records (ok-only checks get none)."""
    return len(
        {
            (e.entity, e.check)
            for bodies in load(partitions, checks).values()
            for body in bodies
            for e in body
            if e.state != "ok"
        }
    )


def batches_of(names: Names, load: Workload, partitions: int, checks: int) -> list[list[Message]]:
    out: list[list[Message]] = []
    for k, bodies in load(partitions, checks).items():
        msgs = [
            Message(body=ENCODER.encode(body), delivery_tag=i, queue=names.processor(k), routing_key="")
            for i, body in enumerate(bodies)
        ]  # fmt: skip
        out += [msgs[i : i + BODIES_PER_BATCH] for i in range(0, len(msgs), BODIES_PER_BATCH)]
    return out


def _handler(s: Settings) -> Callable[[list[Message]], BatchResult]:
    r = connect_redis(s)
    delete_namespace(r, s.namespace)
    ensure_partitions(r, s)
    return make_handler(
        r, Names(s.namespace), Keys(s.namespace), s, ProcessorMetrics(CollectorRegistry())
    )


@dataclass(frozen=True, slots=True)
class Cost:
    """Seconds of the recording and non-recording handler, and what was recorded."""

    seconds_on: float
    seconds_off: float
    median_ratio: float  # per-batch time with recording / without
    recorded: int  # checks with records in the recording namespace
    unrecorded: int  # ... in the non-recording one (must be 0)
    events: int

    @property
    def cost(self) -> float:
        """Share of throughput lost, 1 - (events/on) / (events/off), from the median pair."""
        return 1 - 1 / self.median_ratio


def paired_cost(settings: Settings, load: Workload, checks: int, rounds: int) -> Cost:
    on_s = msgspec.structs.replace(settings, explain_max_records=200)
    off_s = msgspec.structs.replace(
        settings, namespace=f"{settings.namespace}off", explain_max_records=0
    )
    spent = {True: 0.0, False: 0.0}
    ratios: list[float] = []
    events = 0
    r = connect_redis(settings)
    try:
        for _ in range(rounds):
            handlers = {True: _handler(on_s), False: _handler(off_s)}
            # Same partition queue names in both namespaces' messages do not matter: the
            # handler only reads the partition number from the queue name's suffix.
            batches = batches_of(Names(settings.namespace), load, settings.partitions, checks)
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
            events += checks * EVENTS_PER_CHECK
        recorded = sum(1 for _ in r.scan_iter(match=f"{on_s.namespace}:check:*:explain"))
        unrecorded = sum(1 for _ in r.scan_iter(match=f"{off_s.namespace}:check:*:explain"))
    finally:
        delete_namespace(r, off_s.namespace)
        delete_namespace(r, on_s.namespace)
        r.close()
    return Cost(spent[True], spent[False], statistics.median(ratios), recorded, unrecorded, events)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    base = Settings.from_env()
    settings = msgspec.structs.replace(base, namespace="bench" + uuid.uuid4().hex[:10])
    worst = 0
    for name, (load, limit) in WORKLOADS.items():
        c = paired_cost(settings, load, args.checks, args.rounds)
        print(
            json.dumps(
                {
                    "workload": name,
                    "checks": args.checks,
                    "rounds": args.rounds,
                    "events_per_s_without": round(c.events / c.seconds_off),
                    "events_per_s_with": round(c.events / c.seconds_on),
                    "cost_median_pair": round(c.cost, 4),
                    "limit": limit,
                }
            )
        )
        worst |= c.cost > limit
    return int(worst)


if __name__ == "__main__":
    sys.exit(main())
