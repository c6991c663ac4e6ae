"""kill -9 one replica of each stage mid-stream, on a 3-node Redis Cluster: no page lost or repeated.

``tocsin up --replicas processor=2,notifier=2,gateway:webhook=2,api=2`` runs
against a private Redis Cluster (tests/redis_cluster.py, ``?cluster=true``)
and the shared RabbitMQ.  Two streams run side by side: events published to
``NS.events`` (ingest → processor → notifier → gateway) and events posted
to ``POST /events`` (the API, one request per event, retried by the client
when a request fails, as an HTTP source does).  During them, one process of
each replicated stage is killed with SIGKILL, one after the other: a
processor (its partitions wait for the supervisor's restart), a notifier
(its unacked batch goes to the other), a webhook gateway and one of the
API's two uvicorn worker processes (the other keeps serving the port).

Every expected page must arrive; a page may arrive twice only if its first
copy was in flight at the gateway kill (docs/reliability.md), and each
check's pages must arrive in order.  Each check fails once and recovers
once, seconds apart, so two notifiers never see a check's notifications
close enough to supersede one (docs/scaling.md, "Notifier replicas").
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.conftest import AMQP_URL, cleanup_namespace
from tests.faults.conftest import (
    CountingReceiver,
    children,
    configure_webhook,
    fault_env,
    free_port,
    make_settings,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.load import Stream, compare, publish
from tests.faults.test_crash import drain, in_flight_at_kill, out_of_order, record
from tests.redis_cluster import redis_cluster

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.cluster]

WORKERS = "ingest,processor,notifier,gateway:webhook,api"
REPLICAS = "processor=2,notifier=2,gateway:webhook=2,api=2"
# Stage -> the module in a child's command line; killed in this order while events flow.
STAGES = (
    ("processor", "services.processor"),
    ("notifier", "services.notifier"),
    ("gateway", "services.gateways"),
    ("api", "services.api"),
)


def test_kill_minus_nine_one_replica_of_each_stage_on_redis_cluster(
    services_up: None, receiver: CountingReceiver, tmp_path: Path
) -> None:
    with redis_cluster() as url:
        settings = make_settings(url, AMQP_URL)
        settings = msgspec.structs.replace(settings, api_listen=f"127.0.0.1:{free_port()}")
        env = fault_env(
            settings,
            TOCSIN_API_LISTEN=settings.api_listen,
            TOCSIN_TOKEN_FILE=str(tmp_path / "token"),
        )
        # One check fails, then recovers 3 s later (300 checks, 10 events each, 500/s).
        amqp = Stream(count=3000, checks=300, t0=time.time(), rate=500.0)
        # Through the API: 60 checks, the recovery 300 requests after the problem.
        http = Stream(count=600, checks=60, t0=amqp.t0, rate=500.0, prefix="a")
        expected = amqp.expected() + http.expected()
        configure_webhook(settings, receiver.url)
        up = start_up(env, WORKERS, tmp_path / "up.log", replicas=REPLICAS)
        kills: dict[str, float] = {}
        posted = PostStats()
        try:
            assert wait_until(lambda: ready(settings, up.pid), 90, 0.2), (
                f"not ready: {children(up.pid)}\n"
                + (tmp_path / "up.log").read_text(errors="replace")[-3000:]
            )
            poster = threading.Thread(
                target=post_stream, args=(http, settings.api_url, env["TOCSIN_API_TOKEN"], posted)
            )
            poster.start()
            marks = {int(amqp.count * f): stage for f, stage in ((0.15, 0), (0.35, 1), (0.55, 2))}
            for sent in publish(amqp, settings.amqp_url, settings.namespace):
                for mark in [m for m in marks if sent >= m]:
                    name, module = STAGES[marks.pop(mark)]
                    kills[name] = kill_one(up.pid, module)
            wait_until(lambda: posted.sent >= http.count // 2, 60, 0.05)
            kills["api"] = kill_one(up.pid, "services.api")
            poster.join(timeout=120)
            drain(settings, receiver, sum(expected.values()), timeout=150)
            wait_until(lambda: False, 2)  # a late repeat would arrive now
            hits = receiver.snapshot()
        finally:
            stop_up(up)
            cleanup_namespace(settings)
    result = compare(expected, hits)
    in_flight = in_flight_at_kill(hits, [kills["gateway"]] if "gateway" in kills else [])
    log = (tmp_path / "up.log").read_text(errors="replace")
    row = {
        "fault": "kill -9 one replica of processor, notifier, gateway, api (Redis Cluster)",
        "events": amqp.count + http.count,
        "killed": sorted(kills),
        "restarts": log.count("worker exited; restarting"),
        "api_requests_retried": posted.retried,
        **result,
        "dups_in_flight_at_gateway_kill": in_flight,
        "out_of_order": out_of_order(hits),
    }
    record(row)
    print(row, log[-3000:])
    assert sorted(kills) == sorted(name for name, _ in STAGES), kills
    assert posted.sent == http.count and not posted.failures, posted.failures[:3]
    assert result["expected"] >= 700
    assert result["lost"] == 0, row
    assert result["distinct_ids"] == result["expected"], row
    # Repeats only of sends in flight at the gateway kill (at most its concurrency).
    assert result["duplicated"] == in_flight <= 32, row
    assert row["out_of_order"] == 0, row


def ready(settings: Settings, up_pid: int) -> bool:
    """The API answers, the gateways registered, and every replica process is running."""
    try:
        if httpx.get(f"{settings.api_url}/health", timeout=2).status_code != 200:
            return False
    except httpx.HTTPError:
        return False
    if not connect_redis(settings).hexists(Keys(settings.namespace).media_installed(), "webhook"):
        return False
    kids = children(up_pid)
    counts = {name: sum(module in a for a in kids.values()) for name, module in STAGES}
    if counts != {"processor": 2, "notifier": 2, "gateway": 2, "api": 1}:
        return False
    return len(api_workers(kids)) == 2


def api_workers(kids: dict[int, str]) -> list[int]:
    """The API's uvicorn worker processes (children of the API child; not its resource tracker)."""
    (api_pid,) = [p for p, a in kids.items() if "services.api" in a]
    return [p for p, a in children(api_pid).items() if "spawn_main" in a]


def kill_one(up_pid: int, module: str) -> float:
    """SIGKILL one child running ``module`` (for the API: one of its uvicorn workers); when."""
    kids = children(up_pid)
    if module == "services.api":
        (pid, *_) = api_workers(kids)
    else:
        (pid, *_) = [p for p, args in kids.items() if module in args]
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


class PostStats:
    """What the HTTP source did: requests accepted, retried, and the ones it gave up on."""

    def __init__(self) -> None:
        self.sent = 0
        self.retried = 0
        self.failures: list[str] = []


def post_stream(stream: Stream, api_url: str, token: str, stats: PostStats) -> None:
    """POST each event in order at the stream's rate; a failed request is sent again.

    A retried request the killed process had already published is a second
    copy of the same check result: the check's state does not change, so no
    second page comes of it.
    """
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    began = time.monotonic()
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as api:
        for i in range(stream.count):
            ahead = i / stream.rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)  # pacing the source, not waiting for an event
            for attempt in range(20):
                try:
                    if api.post("/events", content=stream.body(i)).status_code == 202:
                        break
                except httpx.HTTPError:
                    pass
                stats.retried += 1
                time.sleep(0.1 * (attempt + 1))
            else:
                stats.failures.append(f"event {i} refused 20 times")
            stats.sent += 1
