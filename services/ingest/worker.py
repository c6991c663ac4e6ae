"""Ingest worker: ``NS.ingest`` -> validated, normalised events on ``NS.checks``.

Events are grouped per processor partition and published as one JSON array
per partition per batch (fewer, larger messages: docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter

from services.ingest.redis_list import start_drain
from shared.amqp import Names, OutMessage, partition_key, partition_of
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult, Handler, Message
from shared.formats import alertmanager, generic
from shared.formats.bodies import Decoded
from shared.formats.flapjack import decode_body
from shared.models import ENCODER, CheckEvent
from shared.store import connect_redis, ensure_partitions
from shared.telemetry import ConsumerMetrics, configure_logging, serve_metrics

log = logging.getLogger(__name__)

# Events per message on NS.checks: large enough to amortise a publish, small
# enough that a processor batch (and its memory) stays bounded in a storm.
MAX_EVENTS_PER_MESSAGE = 500

# Routing keys on NS.events this worker decodes; others are dead-lettered.
SOURCE_DECODERS = {
    "flapjack": decode_body,
    "alertmanager": alertmanager.decode_body,
    "generic": generic.decode_body,
    # Argus incidents: the API publishes Flapjack-shaped events (services/api/argus/).
    "argus": decode_body,
}


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tocsin_ingest_events",
            "Events seen by ingest, per source format and outcome",
            ["source", "outcome"],
            registry=registry,
        )


def make_handler(
    names: Names,
    partitions: int,
    metrics: IngestMetrics,
    decoders: Mapping[str, Callable[[bytes, float, str | None, str], Decoded]] | None = None,
) -> Handler:
    """The batch handler: pure decoding plus grouping; no I/O besides what it returns."""

    def handle(batch: Sequence[Message]) -> BatchResult:
        result = BatchResult()
        by_partition: dict[int, list[CheckEvent]] = defaultdict(list)
        now = time.time()
        for msg in batch:
            source = msg.routing_key or "flapjack"
            decode = (SOURCE_DECODERS if decoders is None else decoders).get(source)
            if decode is None:
                result.rejected.append(
                    (
                        msg,
                        f"routing key: unknown source format {source!r} (known: {', '.join(SOURCE_DECODERS)})",
                    )
                )
                metrics.events.labels("unknown", "rejected").inc()
                continue
            ts = msg.timestamp
            received = float(ts) if ts and abs(now - float(ts)) < 86400 else now
            decoded = decode(msg.body, received, msg.message_id, source)
            for event in decoded.accepted:
                by_partition[partition_of(event.entity, event.check, partitions)].append(event)
            for raw, reason in decoded.rejected:
                result.rejected.append((dataclasses.replace(msg, body=raw), reason))
            if decoded.accepted:
                metrics.events.labels(source, "accepted").inc(len(decoded.accepted))
            if decoded.rejected:
                metrics.events.labels(source, "rejected").inc(len(decoded.rejected))
        for k, events in sorted(by_partition.items()):
            for start in range(0, len(events), MAX_EVENTS_PER_MESSAGE):
                chunk = events[start : start + MAX_EVENTS_PER_MESSAGE]
                result.outputs.append(
                    OutMessage(names.checks, partition_key(k), ENCODER.encode(chunk))
                )
        return result

    return handle


def run(settings: Settings) -> None:
    """Run the ingest worker until SIGTERM/SIGINT."""
    configure_logging(settings, "ingest")
    ensure_partitions(connect_redis(settings), settings)
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry, "ingest")
    serve_metrics(registry, settings)
    names = Names(settings.namespace)
    # Alertmanager check names carry the deployment's identity labels.
    decoders = {
        **SOURCE_DECODERS,
        "alertmanager": alertmanager.decoder(settings.identity_labels),
    }
    handler = make_handler(names, settings.partitions, IngestMetrics(registry), decoders)
    consumer = BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.ingest],
        handler=handler,
        stage="ingest",
        metrics=metrics,
        prefetch=settings.prefetch,
        batch_size=settings.batch_size,
        batch_wait_ms=settings.batch_wait_ms,
    )
    consumer.install_signal_handlers()
    drain = start_drain(settings, handler, lambda: consumer.stopping)
    consumer.run()
    if drain is not None:
        drain.join(timeout=10)  # let it finish its batch and give up its lease
