"""A worker's ``/health`` (its Kubernetes readiness probe) follows ``tocsin_worker_healthy``."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry

from benchmarks.ports import free_port as _free_port
from shared.config import Settings
from shared.telemetry import ConsumerMetrics, serve_metrics


def test_health_is_503_until_consuming_then_200_and_metrics_still_served() -> None:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry, "notifier")
    port = _free_port()
    serve_metrics(registry, Settings(metrics_port=port))
    url = f"http://127.0.0.1:{port}"
    metrics.healthy.set(0)
    down = httpx.get(f"{url}/health", timeout=5)
    assert (down.status_code, down.text) == (503, "not connected or not consuming\n")
    metrics.healthy.set(1)
    up = httpx.get(f"{url}/health", timeout=5)
    assert (up.status_code, up.text) == (200, "ok\n")
    scraped = httpx.get(f"{url}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "tocsin_worker_healthy 1.0" in scraped.text
