"""Gateway worker: ``NS.gateway.<type>`` -> the medium, through the shared delivery runner.

Run one per medium type: ``python -m services.gateways webhook``.  At start
it registers its type as installed (``NS:media::installed``) so the API
accepts media of that type, and declares its delay queues
(``NS.gateway.<type>.retry.<level>``), which dead-letter expired messages
back to ``NS.deliveries`` with the type as routing key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.gateways.core import RETRY_LEVELS
from services.gateways.metrics import RunnerMetrics
from services.gateways.registry import spec
from services.gateways.runner import DeliveryRunner
from services.gateways.send_context import Sender
from shared.amqp import Names, gateway_retry_args
from shared.config import Settings
from shared.consumer import BatchConsumer, BatchResult, Message
from shared.keys import Keys
from shared.store import connect_redis
from shared.telemetry import LATENCY_BUCKETS, ConsumerMetrics, configure_logging, serve_metrics

log = logging.getLogger(__name__)


class GatewayMetrics(RunnerMetrics):
    """Per medium type: sent, failed, retried, dead-lettered, latency, in flight."""

    def __init__(self, registry: CollectorRegistry, medium_type: str) -> None:
        labels = ["medium"]
        self._sent = Counter(
            "tocsin_gateway_sent", "Deliveries delivered", labels, registry=registry
        )
        self._failed = Counter(
            "tocsin_gateway_failed",
            "Deliveries refused for good by the receiver",
            labels,
            registry=registry,
        )
        self._retried = Counter(
            "tocsin_gateway_retried",
            "Attempts that failed transiently and were rescheduled",
            labels,
            registry=registry,
        )
        self._dead = Counter(
            "tocsin_gateway_dead_lettered", "Deliveries sent to NS.dead", labels, registry=registry
        )
        self._deferred = Counter(
            "tocsin_gateway_rate_limited",
            "Deliveries delayed by the per-address rate limit",
            labels,
            registry=registry,
        )
        self._parked = Counter(
            "tocsin_gateway_parked",
            "Deliveries put back to wait for an earlier delivery of their lane (ordering)",
            labels,
            registry=registry,
        )
        self._duplicates = Counter(
            "tocsin_gateway_duplicates",
            "Redelivered deliveries skipped (already delivered)",
            labels,
            registry=registry,
        )
        self._latency = Histogram(
            "tocsin_gateway_delivery_seconds",
            "Time of a successful send attempt",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "tocsin_gateway_in_flight", "Send attempts in progress", labels, registry=registry
        )
        self.medium = medium_type

    def sent(self, latency_s: float) -> None:
        self._sent.labels(self.medium).inc()
        self._latency.labels(self.medium).observe(latency_s)

    def failed(self) -> None:
        self._failed.labels(self.medium).inc()

    def retried(self) -> None:
        self._retried.labels(self.medium).inc()

    def dead(self) -> None:
        self._dead.labels(self.medium).inc()

    def deferred(self) -> None:
        self._deferred.labels(self.medium).inc()

    def parked(self) -> None:
        self._parked.labels(self.medium).inc()

    def duplicate(self) -> None:
        self._duplicates.labels(self.medium).inc()

    def in_flight(self, delta: int) -> None:
        self._in_flight.labels(self.medium).inc(delta)


def declare_retry_queues(consumer: BatchConsumer, medium_type: str) -> None:
    """Declare the delay queues of ``medium_type`` (idempotent; quorum, durable)."""
    names = consumer.names
    for level in range(RETRY_LEVELS):
        consumer.declare_queue(
            names.gateway_retry(medium_type, level), gateway_retry_args(names, medium_type)
        )


def register_installed(redis: object, settings: Settings, medium_type: str) -> None:
    """Tell the API this medium type has a gateway (HSET type -> now)."""
    redis.hset(Keys(settings.namespace).media_installed(), medium_type, repr(time.time()))  # type: ignore[attr-defined]


def build_consumer(
    settings: Settings,
    medium_type: str,
    registry: CollectorRegistry | None = None,
    send: Sender | None = None,
) -> tuple[BatchConsumer, DeliveryRunner]:
    """The consumer and runner of one gateway (tests run them in a thread; ``run`` runs them)."""
    medium = spec(medium_type)
    registry = registry if registry is not None else CollectorRegistry()
    names = Names(settings.namespace)
    redis = connect_redis(settings)
    runner = DeliveryRunner(
        settings=settings,
        medium_type=medium_type,
        send=send if send is not None else medium.send,
        # HTTP media go through the libcurl multi handle unless a test swaps the sender.
        request=medium.request if send is None else None,
        redis=redis,
        metrics=GatewayMetrics(registry, medium_type),
    )

    def handle(batch: Sequence[Message]) -> BatchResult:
        return runner.handle(batch)

    def on_connect(consumer: BatchConsumer) -> None:
        declare_retry_queues(consumer, medium_type)
        if medium_type == "sms" and not settings.sms_url:
            # Information, not an error: most installations page without SMS.
            log.info(
                "sms not installed; set TOCSIN_SMS_URL to your SMS provider to enable it",
                extra={"medium": "sms"},
            )
        else:
            register_installed(redis, settings, medium_type)

    concurrency = max(1, settings.gateway_concurrency)
    consumer = BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.gateway(medium_type)],
        handler=handle,
        stage=f"gateway.{medium_type}",
        metrics=ConsumerMetrics(registry, f"gateway.{medium_type}"),
        # A message holds one delivery or an array of up to 100 (from the notifier); a
        # batch of a few messages is what the sender runs at once, so a batch takes
        # about one send timeout at most (heartbeats, latency).
        # Prefetch is two batches: a slow receiver's backlog stays in the broker, not
        # in this process (at most 2 * concurrency / 8 messages of up to 100 deliveries).
        prefetch=min(settings.prefetch, 2 * max(1, concurrency // 8)),
        batch_size=min(settings.batch_size, max(1, concurrency // 8)),
        batch_wait_ms=settings.batch_wait_ms,
        on_connect=on_connect,
        probe=redis.ping,
        reconnect_max_s=settings.reconnect_max_s,
    )
    runner.keep_alive = consumer.keep_alive
    runner.stopping = lambda: consumer.stopping
    return consumer, runner


def run(settings: Settings, medium_type: str) -> None:
    """Run the gateway of ``medium_type`` until SIGTERM/SIGINT."""
    configure_logging(settings, f"gateway.{medium_type}")
    registry = CollectorRegistry()
    serve_metrics(registry, settings)
    consumer, runner = build_consumer(settings, medium_type, registry)
    consumer.install_signal_handlers()
    try:
        consumer.run()
    finally:
        runner.close()
