"""Structured logging and Prometheus metrics helpers shared by every worker.

Each worker owns one :class:`prometheus_client.CollectorRegistry` (no global
registry, so tests can build many workers in one process) and serves it on
``TOCSIN_METRICS_PORT`` when that is non-zero.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    make_wsgi_app,
)

from shared.config import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# No ``*_created`` series: they doubled the series count of every counter and
# histogram and nothing reads them.  A process-wide switch of prometheus_client,
# set once here because every worker (and the API) imports this module.
disable_created_metrics()  # type: ignore[no-untyped-call]

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)

# Batch and stage latencies: from 100 µs to 30 s.
LATENCY_BUCKETS = (
    0.0001,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Readable ``key=value`` lines for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        )
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(settings: Settings, worker: str) -> None:
    """Send logs to stderr as JSON (default) or text, tagged with the worker name."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    old_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = old_factory(*args, **kwargs)
        record.worker = worker
        return record

    logging.setLogRecordFactory(factory)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("pika").setLevel(logging.WARNING)


class ConsumerMetrics:
    """Metrics every consuming worker exposes, on the worker's own registry."""

    def __init__(self, registry: CollectorRegistry, worker: str) -> None:
        self.consumed = Counter(
            "tocsin_messages_consumed", "Messages taken from a queue", ["queue"], registry=registry
        )
        self.acked = Counter(
            "tocsin_messages_acked", "Messages acked", ["queue"], registry=registry
        )
        self.dead_lettered = Counter(
            "tocsin_dead_letters",
            "Messages sent to NS.dead",
            ["stage", "reason"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "tocsin_batch_seconds",
            "Time to process one batch, consume to ack",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "tocsin_batch_size",
            "Messages per batch",
            ["stage"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.retries = Counter(
            "tocsin_batch_retries",
            "Batches retried after a transient error",
            ["stage"],
            registry=registry,
        )
        self.reconnects = Counter(
            "tocsin_reconnects",
            "Reconnections to the broker or Redis",
            ["target"],
            registry=registry,
        )
        self.healthy = Gauge(
            "tocsin_worker_healthy", "1 while connected and consuming", registry=registry
        )
        self.redelivered = Counter(
            "tocsin_messages_redelivered",
            "Messages the broker delivered again (a worker died or a batch failed before its ack)",
            ["queue"],
            registry=registry,
        )
        self.queue_messages = Gauge(
            "tocsin_queue_messages",
            "Messages ready in a consumed queue (passive declare every few seconds)",
            ["queue"],
            registry=registry,
        )
        self.queue_consumers = Gauge(
            "tocsin_queue_consumers",
            "Consumers of a consumed queue, as the broker counts them",
            ["queue"],
            registry=registry,
        )
        self.last_batch = Gauge(
            "tocsin_last_batch_timestamp_seconds",
            "Unix time of the last acked batch (alerts: backlog but no progress)",
            ["stage"],
            registry=registry,
        )
        info = Info("tocsin_build", "Tocsin build information", registry=registry)
        info.info({"version": _version(), "worker": worker})


def serve_metrics(registry: CollectorRegistry, settings: Settings) -> None:
    """Serve ``/metrics`` and ``/health`` on ``TOCSIN_METRICS_HOST:TOCSIN_METRICS_PORT``.

    In a background thread; does nothing when the port is 0 (the default), so
    tests and one-off runs never fight over ports.  ``/health`` is the
    readiness probe of a worker: 200 while ``tocsin_worker_healthy`` is 1
    (connected and consuming), 503 otherwise (deploy/kubernetes/).
    """
    if not settings.metrics_port:
        return
    server = make_server(
        settings.metrics_host,
        settings.metrics_port,
        health_and_metrics(registry),
        _ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


def health_and_metrics(registry: CollectorRegistry) -> WSGIApplication:
    """``/health`` from the worker's health gauge; every other path the metrics."""
    metrics = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/health":
            body: Iterable[bytes] = metrics(environ, start_response)
            return body
        healthy = registry.get_sample_value("tocsin_worker_healthy") == 1.0
        status = "200 OK" if healthy else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [b"ok\n" if healthy else b"not connected or not consuming\n"]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tocsin")
    except Exception:
        return "unknown"
