"""What waiting for the broker costs per batch: an AMQP transaction against publisher confirms.

``python -m benchmarks.publish_modes [--rounds 3] [--sizes 1:2000,100:200,500:60]``
declares a quorum queue in a fresh namespace of the RabbitMQ at
``TOCSIN_AMQP_URL`` and publishes batches of each size (``size:batches``) to
it, alternating, per round, a transactional publisher (one ``tx_commit`` per
batch, what Tocsin did until 2026-12-04) and :class:`shared.amqp.Publisher`
(publisher confirms, one wait per batch).  It prints one line per round, size
and mode (p50 and p99 of the time to publish a batch, messages per second),
and one JSON object with every row on the last line of stdout.  The queue is
deleted afterwards.

Why it exists: the publisher changed from transactions to confirms because
RabbitMQ 3.10 commits messages a quorum queue without a leader then drops
(docs/reliability.md); this says what that change costs on one node.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable, Sequence

import pika
from pika.adapters.blocking_connection import BlockingConnection

from shared.amqp import JSON, QUORUM, OutMessage, Publisher, connect
from shared.config import Settings

Publish = Callable[[Sequence[OutMessage]], object]


def transactional(conn: BlockingConnection) -> Publish:
    """Tocsin's publisher before 2026-12-04: frames queued, one ``tx_commit`` per batch."""
    channel = conn.channel()
    channel.tx_select()

    def publish(batch: Sequence[OutMessage]) -> None:
        send = channel._impl.basic_publish
        props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type=JSON)
        for msg in batch:
            send(msg.exchange, msg.routing_key, msg.body, properties=props)
        channel.tx_commit()

    return publish


MODES: dict[str, Callable[[BlockingConnection], Publish]] = {
    "transaction": transactional,
    "confirms": lambda conn: Publisher(conn).publish,
}


def run(amqp_url: str, queue: str, mode: str, size: int, batches: int) -> dict[str, object]:
    """Publish ``batches`` batches of ``size`` messages; the batch times' p50 and p99."""
    conn = connect(amqp_url, name="tocsin-bench-publish")
    try:
        publish = MODES[mode](conn)
        times = []
        for _ in range(batches):
            batch = [OutMessage("", queue, b'{"n": 1}') for _ in range(size)]
            started = time.perf_counter()
            publish(batch)
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    times.sort()
    return {
        "mode": mode,
        "batch": size,
        "batches": batches,
        "p50_ms": round(statistics.median(times) * 1000, 3),
        "p99_ms": round(times[max(0, int(len(times) * 0.99) - 1)] * 1000, 3),
        "messages_per_s": round(size * batches / sum(times)),
    }


def measure(
    amqp_url: str, rounds: int, sizes: Sequence[tuple[int, int]]
) -> list[dict[str, object]]:
    """Every (round, size, mode) row; the queue is emptied between sizes and deleted at the end."""
    queue = f"bench-publish-{uuid.uuid4().hex[:12]}"
    admin = connect(amqp_url, name="tocsin-bench-publish-admin")
    channel = admin.channel()
    channel.queue_declare(queue, durable=True, arguments=QUORUM)
    rows = []
    try:
        for rnd in range(1, rounds + 1):
            for size, batches in sizes:
                for mode in MODES:
                    row = {
                        "round": rnd,
                        "queue": queue,
                        **run(amqp_url, queue, mode, size, batches),
                    }
                    rows.append(row)
                    print(
                        f"round {rnd} batch {size:>4} {mode:>11}: p50 {row['p50_ms']} ms, "
                        f"p99 {row['p99_ms']} ms, {row['messages_per_s']:,} msg/s",
                        flush=True,
                    )
                channel.queue_purge(queue)
    finally:
        channel.queue_delete(queue)
        admin.close()
    return rows


def _sizes(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in spec.split(","):
        size, _, batches = part.partition(":")
        out.append((int(size), int(batches)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish_modes", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes", type=_sizes, default=_sizes("1:2000,100:200,500:60"), help="size:batches,…"
    )
    args = parser.parse_args(argv)
    rows = measure(Settings.from_env().amqp_url, args.rounds, args.sizes)
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
