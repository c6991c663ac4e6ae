"""What one page costs each stage: CPU, Redis round trips and wall time per message.

``python -m benchmarks.stage_cost [--pages N] [--batch B]`` runs the
processor, the notifier and the webhook gateway one after the other, in
this process, each as its real :class:`~shared.consumer.BatchConsumer` on
the real Redis and RabbitMQ, in a fresh namespace (deleted afterwards):

1. N single-event messages (``critical`` for N distinct checks) go to the
   processor's partition queues; the processor turns them into N
   notifications;
2. the notifier expands them for one contact with one webhook medium (the
   processor runs with ``TOCSIN_PROCESSOR_EXPANDS=false``, so this step is
   measured on its own; by default the processor does it in its batch);
3. the webhook gateway delivers them to a local HTTP receiver.

Each stage drains its queue in batches of ``B`` messages (default 1: at a
few hundred pages a second every stage sees batches of one, so per-batch
costs are per-page costs).  Per stage it reports the consumer thread's own
CPU time (``pthread_getcpuclockid``: the load generator, the receiver and
other processes on the box are not counted), the Redis round trips that
thread made (calls of ``send_packed_command``: one per command or
pipeline), and the wall time, from the first batch to the last ack.  The
broker's and Redis's own CPU are not in these figures (see
``benchmarks.pipeline`` for whole-process figures).

The CPU and round-trip counts do not depend on how busy the box is the way
latency does, so they compare two trees measured in the same sitting
(docs/benchmarks.md).  One JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import CollectorRegistry

from benchmarks.observe import Receiver, host_load
from services.gateways.worker import build_consumer as build_gateway
from services.notifier.worker import build_consumer as build_notifier
from services.processor.worker import build_consumer as build_processor
from shared.amqp import (
    Names,
    OutMessage,
    Publisher,
    connect,
    declare_topology,
    delete_topology,
    partition_key,
    partition_of,
)
from shared.config import Settings
from shared.consumer import BatchConsumer, Message
from shared.directory import Directory
from shared.keys import Keys
from shared.models import ENCODER, CheckEvent, Contact, Medium, Rule, SeverityRoute
from shared.store import connect_redis, delete_namespace


def log(msg: str) -> None:
    print(f"[stage-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class StageCost:
    """What one stage spent on its messages (consumer thread only)."""

    stage: str
    messages: int
    cpu_s: float
    wall_s: float
    redis_round_trips: int

    def report(self) -> dict[str, Any]:
        n = max(1, self.messages)
        return {
            "messages": self.messages,
            "cpu_ms_per_message": round(self.cpu_s * 1000 / n, 3),
            "redis_round_trips_per_message": round(self.redis_round_trips / n, 2),
            "wall_ms_per_message": round(self.wall_s * 1000 / n, 3),
            "cpu_s": round(self.cpu_s, 3),
            "wall_s": round(self.wall_s, 3),
        }


class RoundTrips:
    """Counts Redis commands/pipelines sent by one thread (patched in for the run)."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.count = 0

    @contextmanager
    def installed(self) -> Iterator[RoundTrips]:
        conn_class = redis.connection.AbstractConnection
        real = conn_class.send_packed_command
        counter = self

        def counting(conn: Any, *args: Any, **kw: Any) -> Any:
            if threading.get_ident() == counter.thread:
                counter.count += 1
            return real(conn, *args, **kw)

        conn_class.send_packed_command = counting  # type: ignore[method-assign]
        try:
            yield self
        finally:
            conn_class.send_packed_command = real  # type: ignore[method-assign]


def measure(
    stage: str, consumer: BatchConsumer, done: Callable[[], bool], timeout: float
) -> StageCost:
    """Run ``consumer`` in a thread until ``done()``; its CPU from its first batch on."""
    trips = RoundTrips()
    started: dict[str, float] = {}
    handler = consumer.handler

    def first_batch_clock(batch: Sequence[Message]) -> Any:
        if not started:
            started["cpu"] = time.thread_time()
            started["wall"] = time.perf_counter()
            trips.thread = threading.get_ident()
        return handler(batch)

    consumer.handler = first_batch_clock
    thread = threading.Thread(target=consumer.run, name=f"stage-{stage}", daemon=True)
    with trips.installed():
        thread.start()
        assert thread.ident is not None
        clock = time.pthread_getcpuclockid(thread.ident)
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or not thread.is_alive():
                consumer.stop()
                raise RuntimeError(f"{stage}: not done within {timeout} s")
            time.sleep(0.005)
        cpu = time.clock_gettime(clock)
        wall = time.perf_counter()
        consumer.stop()
        thread.join(timeout=15)
    return StageCost(
        stage=stage,
        messages=0,
        cpu_s=cpu - started.get("cpu", cpu),
        wall_s=wall - started.get("wall", wall),
        redis_round_trips=trips.count,
    )


def acked(registry: CollectorRegistry, queues: Sequence[str]) -> float:
    """Messages the stage's consumer acked on ``queues`` (its own metrics registry)."""
    return sum(
        registry.get_sample_value("tocsin_messages_acked_total", {"queue": q}) or 0.0
        for q in queues
    )


def settled(registry: CollectorRegistry, queues: Sequence[str]) -> bool:
    """Every message the consumer took is acked (deliveries come in arrays: count messages)."""
    consumed = sum(
        registry.get_sample_value("tocsin_messages_consumed_total", {"queue": q}) or 0.0
        for q in queues
    )
    return consumed > 0 and acked(registry, queues) >= consumed


def configure(r: redis.Redis, keys: Keys, url: str) -> None:
    """One contact with one webhook medium and a rule routing every problem and recovery to it."""
    d = Directory(r, keys)
    d.put_contact(Contact(id="bench", name="Bench"))
    d.put_medium(Medium(id="bench-w", contact_id="bench", type="webhook", address=url, interval=0))
    route = SeverityRoute(media=("webhook",))
    d.put_rule(Rule(id="bench-r", contact_id="bench", critical=route, warning=route))


def events(pages: int, run: str) -> Iterator[CheckEvent]:
    now = time.time()
    for i in range(pages):
        yield CheckEvent(
            id=f"{run}-{i}",
            entity=f"host{i}",
            check="disk",
            type="service",
            state="critical",
            time=now,
            received=now,
            summary="disk full",
            initial_failure_delay=0,
        )


def settings_for(namespace: str, batch: int) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    for key in ("TOCSIN_REDIS_URL", "TOCSIN_AMQP_URL"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(
        {
            "TOCSIN_NAMESPACE": namespace,
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_RATE_PER_S": "1000000",
            "TOCSIN_RATE_BURST": "1000000",
            "TOCSIN_BATCH_SIZE": str(batch),
            # Each stage on its own: the processor hands its refs to the notifier
            # instead of expanding them in its own batch, as it does by default.
            "TOCSIN_PROCESSOR_EXPANDS": "false",
        }
    )
    return Settings.from_env(env)


def run(pages: int, batch: int, timeout: float) -> dict[str, Any]:
    namespace = f"stage{secrets.token_hex(4)}"
    settings = settings_for(namespace, batch)
    names, keys = Names(namespace), Keys(namespace)
    r = connect_redis(settings)
    conn = connect(settings.amqp_url, name="tocsin-stage-cost")
    results: dict[str, StageCost] = {}
    load_before = host_load()
    try:
        declare_topology(conn.channel(), names, settings.partitions)
        with Receiver() as receiver:
            configure(r, keys, receiver.url)
            messages = [
                OutMessage(
                    names.checks,
                    partition_key(partition_of(ev.entity, ev.check, settings.partitions)),
                    ENCODER.encode([ev]),
                    message_id=ev.id,
                )
                for ev in events(pages, namespace)
            ]
            publisher = Publisher(conn)
            for start in range(0, len(messages), 500):
                publisher.publish(messages[start : start + 500])
            log(f"{pages} events queued for the processor in {namespace}")

            registry = CollectorRegistry()
            processor = build_processor(settings, registry, r)
            queues = processor.queues
            cost = measure(
                "processor",
                processor,
                lambda: acked(registry, queues) >= pages,
                timeout,
            )
            cost.messages = pages
            results["processor"] = cost
            log(f"processor: {cost.report()}")

            registry = CollectorRegistry()
            notifier = build_notifier(settings, registry, r)
            cost = measure(
                "notifier",
                notifier,
                lambda: acked(registry, [names.notifications]) >= pages,
                timeout,
            )
            cost.messages = pages
            results["notifier"] = cost
            log(f"notifier: {cost.report()}")

            registry = CollectorRegistry()
            gateway, runner = build_gateway(settings, "webhook", registry)
            try:
                cost = measure(
                    "gateway:webhook",
                    gateway,
                    lambda: (
                        receiver.deliveries.count >= pages
                        and settled(registry, [names.gateway("webhook")])
                    ),
                    timeout,
                )
            finally:
                runner.close()
            cost.messages = pages
            results["gateway:webhook"] = cost
            log(f"gateway:webhook: {cost.report()}")
            delivered = receiver.deliveries.count
    finally:
        # A fresh connection: the first one sat idle (no heartbeats) while the stages ran.
        with contextlib.suppress(Exception):
            conn.close()
        cleanup = connect(settings.amqp_url, name="tocsin-stage-cost")
        try:
            delete_topology(cleanup.channel(), names, settings.partitions)
        finally:
            cleanup.close()
        delete_namespace(r, namespace)
    return {
        "namespace": namespace,
        "pages": pages,
        "batch": batch,
        "delivered": delivered,
        "stages": {name: c.report() for name, c in results.items()},
        "total_cpu_ms_per_page": round(sum(c.cpu_s for c in results.values()) * 1000 / pages, 3),
        "total_redis_round_trips_per_page": round(
            sum(c.redis_round_trips for c in results.values()) / pages, 2
        ),
        "host": {"before": load_before, "after": host_load(), "cpus": os.cpu_count()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stage_cost", description=__doc__)
    parser.add_argument("--pages", type=int, default=2000, help="events, one page each")
    parser.add_argument("--batch", type=int, default=1, help="messages per batch at every stage")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up on a stage after this"
    )
    args = parser.parse_args(argv)
    if args.pages < 1 or args.batch < 1:
        parser.error("--pages and --batch must be at least 1")
    print(json.dumps(run(args.pages, args.batch, args.timeout), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
