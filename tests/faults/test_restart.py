"""Restart RabbitMQ, and restart Redis, mid-stream (private servers only).

Workers notice (``tocsin_worker_healthy`` 0, API ``/health`` 503), reconnect
with backoff and resume; every expected page is delivered exactly once.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from tests.conftest import AMQP_URL, REDIS_URL, cleanup_namespace
from tests.faults.conftest import (
    CountingReceiver,
    PrivateRabbit,
    PrivateRedis,
    configure_webhook,
    fault_env,
    free_port,
    make_settings,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, compare, publish
from tests.faults.test_crash import drain, record, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WORKERS = "ingest,processor,notifier,gateway:webhook,api"
N_WORKERS = 5


def _free_block(n: int) -> int:
    """A base port with ``n`` free consecutive ports after it (metrics of each worker)."""
    for _ in range(50):
        base = free_port()
        if base + n >= 65000:
            continue
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free port block")


def _healthy_gauges(base: int) -> list[float | None]:
    """``tocsin_worker_healthy`` of each consuming worker (None: metrics unreachable)."""
    out: list[float | None] = []
    for port in range(base, base + N_WORKERS - 1):  # the api has no consumer loop
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            m = re.search(r"^tocsin_worker_healthy (\S+)$", text, re.M)
            out.append(float(m.group(1)) if m else None)
        except httpx.HTTPError:
            out.append(None)
    return out


def _first_failure(log: Path, context: int = 40) -> str:
    """The lines around the first worker exit or traceback: the tail alone often misses why."""
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "Traceback" in line or "worker exited" in line:
            return "first failure:\n" + "\n".join(lines[max(0, i - 5) : i + context])
    return "no worker exit or traceback in the log"


def _api_health(settings: Settings) -> int:
    try:
        return httpx.get(f"{settings.api_url}/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _run_with_outage(
    settings: Settings,
    receiver: CountingReceiver,
    tmp_path: Path,
    name: str,
    outage: Callable[[], None],
    resume: Callable[[], None],
) -> dict[str, object]:
    configure_webhook(settings, receiver.url)
    stream = Stream(count=6000, checks=100, t0=time.time(), rate=1000.0)
    expected = stream.expected()
    base = _free_block(N_WORKERS)
    env = fault_env(settings, TOCSIN_API_LISTEN=settings.api_listen)
    up = start_up(env, WORKERS, tmp_path / "up.log", metrics_port=base)
    try:
        wait_ready(settings, up.pid)
        assert wait_until(lambda: _api_health(settings) == 200, 30)
        for _ in publish(stream, settings.amqp_url, settings.namespace, 0, 3000):
            pass
        outage()
        unhealthy_api = wait_until(lambda: _api_health(settings) == 503, 30, 0.3)
        unhealthy_workers = wait_until(lambda: any(g == 0 for g in _healthy_gauges(base)), 30, 0.3)
        resume()
        log = tmp_path / "up.log"
        assert wait_until(lambda: _api_health(settings) == 200, 60, 0.3), (
            "API never recovered\n" + log.read_text(errors="replace")[-4000:]
        )
        assert wait_until(lambda: all(g == 1 for g in _healthy_gauges(base)), 60, 0.3), (
            f"gauges {_healthy_gauges(base)}\n{_first_failure(log)}\n"
            + log.read_text(errors="replace")[-4000:]
        )
        for _ in publish(stream, settings.amqp_url, settings.namespace, 3000, 6000):
            pass
        drain(settings, receiver, sum(expected.values()), timeout=90)
        wait_until(lambda: False, 2)
        result = compare(expected, receiver.snapshot())
    finally:
        stop_up(up)
    row = {"fault": name, "events": stream.count, **result}
    record(row)
    print(row, (tmp_path / "up.log").read_text(errors="replace")[-3000:])
    assert unhealthy_api, "API /health did not report the outage"
    assert unhealthy_workers, "no worker reported unhealthy in its metrics"
    assert result["lost"] == 0 and result["duplicated"] == 0, row
    return row


def test_rabbitmq_restart_mid_stream_loses_and_duplicates_nothing(
    services_up: None,
    private_rabbit: PrivateRabbit,
    receiver: CountingReceiver,
    tmp_path: Path,
) -> None:
    node = private_rabbit
    port = free_port()
    settings = make_settings(REDIS_URL, node.url, TOCSIN_API_LISTEN=f"127.0.0.1:{port}")
    try:
        _run_with_outage(
            settings,
            receiver,
            tmp_path,
            "RabbitMQ restarted mid-stream",
            outage=lambda: node.stop(),
            resume=lambda: node.start(),
        )
    finally:
        cleanup_namespace(settings)


def test_redis_restart_mid_stream_loses_and_duplicates_nothing(
    services_up: None, private_redis: PrivateRedis, receiver: CountingReceiver, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(private_redis.url, AMQP_URL, TOCSIN_API_LISTEN=f"127.0.0.1:{port}")
    try:
        _run_with_outage(
            settings,
            receiver,
            tmp_path,
            "Redis restarted mid-stream (AOF everysec)",
            outage=lambda: private_redis.stop(),
            resume=lambda: private_redis.start(),
        )
    finally:
        private_redis.start() if private_redis.proc is None else None
        cleanup_namespace(settings)
