"""Ingest worker: ``NS.ingest`` -> validated, normalised events on ``NS.checks``.

Events are grouped per processor partition and published as one JSON array
per partition per batch (fewer, larger messages: docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from prometheus_client import CollectorRegistry

from services.ingest.redis_list import start_drain
from shared import intake
from shared.amqp import Names
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult, Handler, Message
from shared.formats.bodies import Decoded
from shared.intake import IngestMetrics
from shared.store import connect_redis, ensure_partitions
from shared.telemetry import ConsumerMetrics, configure_logging, serve_metrics

log = logging.getLogger(__name__)


def make_handler(
    names: Names,
    partitions: int,
    metrics: IngestMetrics,
    decoders: Mapping[str, Callable[[bytes, float, str | None, str], Decoded]] | None = None,
) -> Handler:
    """The batch handler: pure decoding plus grouping; no I/O besides what it returns."""
    table = intake.SOURCE_DECODERS if decoders is None else decoders

    def handle(batch: Sequence[Message]) -> BatchResult:
        routed = intake.Routed()
        now = time.time()
        for msg in batch:
            decoded = intake.decode_into(routed, msg, table, now)
            metrics.count(msg.routing_key or "flapjack", decoded)
        outputs = intake.partition_messages(names, partitions, routed.events)
        return BatchResult(outputs=outputs, rejected=routed.rejected)

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
    handler = make_handler(
        names,
        settings.partitions,
        IngestMetrics(registry),
        intake.decoders(settings.identity_labels),
    )
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
        reconnect_max_s=settings.reconnect_max_s,
    )
    consumer.install_signal_handlers()
    drain = start_drain(settings, handler, lambda: consumer.stopping)
    consumer.run()
    if drain is not None:
        drain.join(timeout=10)  # let it finish its batch and give up its lease
