"""End-to-end benchmark: real workers, real broker and Redis, a local webhook receiver.

``python -m benchmarks.pipeline --workload steady|storm|flapping --events N
[--batch B] [--rate R] [--via amqp|api] [--processors P] [--notifiers N] [--gateways G]
[--redis-cluster]`` starts ingest, processor, notifier, the webhook
gateway and the API as subprocesses in a fresh namespace (P processors
splitting the partitions, N notifiers and G webhook gateways as competing
consumers; with ``--redis-cluster`` against a private 3-primary Redis Cluster
started for the run, benchmarks/redis_cluster.py), configures one
contact with a webhook medium and a catch-all rule through the API, sends
the workload to ``NS.events`` (or, with ``--via api``, as ``POST /events``
requests, the way HTTP sources arrive) and prints progress on stderr and one JSON
object (docs/benchmarks.md) on the last line of stdout.  The namespace (Redis keys,
queues, exchanges) is deleted afterwards.

Clock: ``t0`` is the first publish of the timed phase.  ``events_per_s`` is
timed events / (time the processor had applied them all - t0); likewise
``notifications_per_s`` up to the expansion (processor or notifier) having expanded every
notification and ``deliveries_per_s`` up to the last webhook received.
Progress is read from the workers' own ``/metrics`` every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from benchmarks.children import bound_to_me
from benchmarks.observe import (
    Receiver,
    cpu_seconds,
    host_load,
    namespace_memory,
    pids_named,
    proc_usage,
    queue_depths,
    scrape,
)
from benchmarks.ports import free_port
from benchmarks.redis_cluster import cluster_url, node_pids, redis_cluster_nodes
from benchmarks.workloads import DEFAULT_CHECKS, WORKLOADS, Plan, bodies, percentiles
from services.cli.supervisor import processor_shares, worker_argv
from services.gateways.core import RETRY_LEVELS
from shared.amqp import Names, OutMessage, Publisher, connect, delete_topology
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis, delete_namespace

WORKERS = ("ingest", "processor", "notifier", "gateway:webhook", "api")
POLL_S = 0.05


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port) if self.name != "api" else {}

    def tail(self, n: int = 20) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(f"  {self.name}| {line}" for line in lines)


def worker_env(settings: Settings, tmp: Path, log_level: str) -> dict[str, str]:
    """The workers' environment: the run's namespace, no rate limit, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": settings.redis_url,
            "TOCSIN_AMQP_URL": settings.amqp_url,
            "TOCSIN_NAMESPACE": settings.namespace,
            "TOCSIN_PARTITIONS": str(settings.partitions),
            "TOCSIN_API_LISTEN": settings.api_listen,
            "TOCSIN_API_TOKEN": settings.api_token or "",
            "TOCSIN_TOKEN_FILE": str(tmp / "token"),
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            # One receiver address takes every delivery: the per-address limit must not shape it.
            "TOCSIN_RATE_PER_S": "1000000",
            "TOCSIN_RATE_BURST": "1000000",
            "TOCSIN_PREFETCH": str(settings.prefetch),
            "TOCSIN_BATCH_SIZE": str(settings.batch_size),
            "TOCSIN_BATCH_WAIT_MS": str(settings.batch_wait_ms),
            "TOCSIN_PROCESSOR_EXPANDS": "true" if settings.processor_expands else "false",
            "TOCSIN_LOG_LEVEL": log_level,
            "TOCSIN_LOG_FORMAT": "json",
        }
    )
    return env


def plan_workers(
    processors: int, partitions: int, replicas: dict[str, int] | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(name, extra env) per worker process, labelled as `tocsin up` labels them.

    Several processors split the partitions; ``replicas`` (e.g. ``{"notifier":
    2}``) runs that many copies of another worker, competing on its queue
    (``notifier``, ``notifier#2``, …).
    """
    replicas = replicas or {}
    out: list[tuple[str, dict[str, str]]] = []
    for name in WORKERS:
        if name == "processor":
            out.extend(processor_shares(processors, partitions))
        else:
            count = replicas.get(name, 1)
            out.extend((name if i == 0 else f"{name}#{i + 1}", {}) for i in range(count))
    return out


def start_workers(
    env: dict[str, str],
    tmp: Path,
    processors: int = 1,
    partitions: int = 8,
    replicas: dict[str, int] | None = None,
) -> list[Worker]:
    workers = []
    for name, extra in plan_workers(processors, partitions, replicas):
        port = free_port()
        path = tmp / f"{name.replace(':', '-').replace('#', '-')}.log"
        with path.open("wb") as out:
            proc = subprocess.Popen(
                bound_to_me(worker_argv(name.split("#")[0])),
                env={**env, **extra, "TOCSIN_METRICS_PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        workers.append(Worker(name, proc, port, path))
    return workers


def stop_workers(workers: list[Worker]) -> None:
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def wait_until(what: str, cond: Callable[[], bool], timeout: float, workers: list[Worker]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker {w.name} exited while waiting for {what}:\n{w.tail()}")
        try:
            if cond():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(POLL_S)
    tails = "\n".join(w.tail(5) for w in workers)
    raise TimeoutError(f"{what}: not reached in {timeout:g} s\n{tails}")


def ready(settings: Settings, workers: list[Worker]) -> bool:
    """The API answers, the webhook gateway registered its type, every consumer is connected.

    Polled every ``POLL_S``: urllib, not ``httpx.get``, which builds a client and its TLS
    context per call (60 ms of CPU, taken from the workers starting beside it).
    """
    with urllib.request.urlopen(f"{settings.api_url}/health", timeout=2) as resp:
        if resp.status != 200:
            return False
    if not connect_redis(settings).hexists(Keys(settings.namespace).media_installed(), "webhook"):
        return False
    return all(w.metrics().get("tocsin_worker_healthy") == 1 for w in workers if w.name != "api")


def configure(settings: Settings, url: str, rollup: int) -> None:
    """One contact, one webhook medium (rollup if asked), one rule routing every severity to it."""
    headers = {"Authorization": f"Bearer {settings.api_token}"}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=10) as api:
        contact = api.post("/contacts", json={"name": "bench"})
        contact.raise_for_status()
        cid = contact.json()["id"]
        medium: dict[str, Any] = {"contact_id": cid, "type": "webhook", "address": url}
        medium["interval"] = 0 if not rollup else 60
        if rollup:
            medium["rollup_threshold"] = rollup
        api.post("/media", json=medium).raise_for_status()
        route = {"media": ["webhook"]}
        rule = {"contact_id": cid, "critical": route, "warning": route, "unknown": route}
        api.post("/rules", json=rule).raise_for_status()


class Progress:
    """Counters summed over the workers' ``/metrics``, relative to a baseline."""

    KEYS = {
        "applied": ("processor", "tocsin_processor_events_total"),
        "duplicates": ("processor", "tocsin_processor_duplicate_events_total"),
        "notifications": ("processor", "tocsin_processor_notifications_total"),
        "processor_consumed": ("processor", "tocsin_messages_consumed_total"),
        "processor_acked": ("processor", "tocsin_messages_acked_total"),
        "notifier_consumed": ("notifier", "tocsin_messages_consumed_total"),
        # The processor expands its own notifications (TOCSIN_PROCESSOR_EXPANDS), the
        # notifier those that reach NS.notifications: the expansion's counters, summed.
        "expanded": ("*", "tocsin_notifier_notifications_total"),
        "notifier_acked": ("notifier", "tocsin_messages_acked_total"),
        "deliveries": ("*", "tocsin_notifier_deliveries_total"),
        "gateway_consumed": ("gateway:webhook", "tocsin_messages_consumed_total"),
        "gateway_acked": ("gateway:webhook", "tocsin_messages_acked_total"),
        "sent": ("gateway:webhook", "tocsin_gateway_sent_total"),
        "parked": ("gateway:webhook", "tocsin_gateway_parked_total"),
        "retried": ("gateway:webhook", "tocsin_gateway_retried_total"),
        "rate_limited": ("gateway:webhook", "tocsin_gateway_rate_limited_total"),
        "dead_letters": ("*", "tocsin_dead_letters_total"),
        # Expansion batches decided again because another expanding worker committed first.
        "commit_conflicts": ("*", "tocsin_notifier_commit_conflicts_total"),
        "expansion_fallbacks": ("processor", "tocsin_processor_expansion_fallbacks_total"),
    }

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = [w for w in workers if w.name != "api"]
        self.base = self.read(relative=False)

    def read(self, relative: bool = True) -> dict[str, float]:
        scraped = [(w.name.split("#")[0], w.metrics()) for w in self.workers]
        out = {}
        for key, (worker, metric) in self.KEYS.items():
            sources = [m for name, m in scraped if worker in ("*", name)]
            out[key] = sum(s.get(metric, 0.0) for s in sources)
            if relative:
                out[key] -= self.base[key]
        return out


def publish(
    publisher: Publisher,
    names: Names,
    plan: Plan,
    batch: int,
    rate: float,
    state: str | None = None,
) -> None:
    """Send the plan's events (or one warm-up round in ``state``); paced when ``rate`` > 0.

    Through :class:`~shared.amqp.Publisher`, one wait for the broker's confirms
    per chunk: unconfirmed publishing lost a few messages in one run, and a
    benchmark that waits for every event must not lose any.
    """
    total = plan.checks if state else plan.events
    started = time.monotonic()
    sent = 0
    while sent < total:
        if rate > 0:
            # Publish what is due by now, in chunks of `batch` events per message.
            due = min(total, int((time.monotonic() - started) * rate) + batch)
            if due <= sent:
                time.sleep(min(0.002, batch / rate))
                continue
        else:
            due = min(total, sent + 1000)
        count = due - sent
        publisher.publish(
            OutMessage(names.events, "flapjack", body)
            for body in bodies(plan, sent, count, batch, time.time(), state)
        )
        sent = due


def post(
    settings: Settings,
    plan: Plan,
    batch: int,
    rate: float,
    state: str | None = None,
    connections: int = 4,
) -> None:
    """Send the plan's events as an HTTP source does: ``POST /events`` from keep-alive connections.

    Each body is stamped when it is sent, so latency is request start ->
    webhook received.  Paced when ``rate`` > 0: body k leaves at
    ``k * batch / rate`` seconds.  A refused request fails the run (the
    benchmark waits for every event).
    """
    total = plan.checks if state else plan.events
    firsts = iter(range(0, total, batch))
    lock = threading.Lock()
    failures: list[str] = []
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {settings.api_token}", "Content-Type": "application/json"}

    def sender() -> None:
        with httpx.Client(base_url=settings.api_url, headers=headers, timeout=30) as api:
            while not failures:
                with lock:
                    first = next(firsts, None)
                if first is None:
                    return
                if rate > 0:
                    wait = started + first / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                count = min(batch, total - first)
                body = next(bodies(plan, first, count, batch, time.time(), state))
                r = api.post("/events", content=body)
                if r.status_code != 202:
                    failures.append(f"POST /events: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(failures[0])


def send(
    args: argparse.Namespace,
    settings: Settings,
    publisher: Publisher,
    plan: Plan,
    batch: int,
    rate: float,
    state: str | None = None,
) -> None:
    """The workload through ``--via``: AMQP to ``NS.events`` (ingest) or HTTP to the API."""
    if args.via == "api":
        post(settings, plan, batch, rate, state)
    else:
        publish(publisher, Names(settings.namespace), plan, batch, rate, state)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.redis_cluster:
        return run_on(args, None, pids_named("redis-server"))
    with redis_cluster_nodes() as ports:
        nodes = {f"redis-server:{port}": pid for port, pid in node_pids(ports).items()}
        return run_on(args, cluster_url(ports), nodes)


def run_on(
    args: argparse.Namespace, redis_url: str | None, redis: dict[str, int]
) -> dict[str, Any]:
    """One run against the configured Redis, or ``redis_url`` (a cluster started for it).

    ``redis``: the Redis server processes whose CPU the run counts (the
    configured server, or the cluster's nodes).
    """
    base = Settings.from_env()
    namespace = "bench" + secrets.token_hex(4)
    settings = msgspec.structs.replace(
        base,
        namespace=namespace,
        api_listen=f"127.0.0.1:{free_port()}",
        api_token=secrets.token_hex(16),
        redis_url=redis_url or base.redis_url,
    )
    replicas = {"notifier": args.notifiers, "gateway:webhook": args.gateways}
    plan = Plan(args.workload, args.checks or DEFAULT_CHECKS[args.workload], args.events)
    rollup = args.rollup if args.rollup is not None else (10 if args.workload == "storm" else 0)
    names = Names(namespace)
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmpdir, Receiver() as receiver:
        tmp = Path(tmpdir)
        workers = start_workers(
            worker_env(settings, tmp, args.log_level),
            tmp,
            args.processors,
            settings.partitions,
            replicas,
        )
        try:
            log(
                f"namespace {namespace}: started "
                + ", ".join(f"{w.name}={w.proc.pid}" for w in workers)
            )
            wait_until("workers ready", lambda: ready(settings, workers), 60, workers)
            configure(settings, receiver.url, rollup)
            conn = connect(settings.amqp_url, name="tocsin-bench-publisher")
            publisher = Publisher(conn)
            progress = Progress(workers)
            if plan.warmup_state:
                log(f"warm-up: {plan.checks} checks {plan.warmup_state}")
                send(args, settings, publisher, plan, 100, 0, plan.warmup_state)
                wait_until(
                    "warm-up applied",
                    lambda: progress.read()["applied"] >= plan.checks,
                    args.timeout,
                    workers,
                )
                progress = Progress(workers)
            cpu_before = {w.name: proc_usage(w.proc.pid)["cpu_s"] for w in workers}
            # Broker and Redis share the two cores: their CPU is part of the cost.
            servers = {**pids_named("beam.smp"), **redis}
            servers_before = cpu_seconds(servers)
            receiver.deliveries.reset()
            log(
                f"timed: {plan.events} {args.workload} events, batch {args.batch}, rate {args.rate}"
            )
            load_before = host_load()
            t0 = time.time()
            send(args, settings, publisher, plan, args.batch, args.rate)
            t_published = time.time()
            conn.close()
            marks = drain(progress, plan, t0, args.timeout, workers)
            time.sleep(0.2)  # let the last acks and metrics settle before the final reading
            final = progress.read()
            load_after = host_load()
            stages = stage_times(workers)
            usage = {w.name: proc_usage(w.proc.pid) for w in workers}
            for name, u in usage.items():
                u["cpu_s"] = round(u["cpu_s"] - cpu_before[name], 2)
            servers_cpu = {
                name: round(cpu - servers_before[name], 2)
                for name, cpu in cpu_seconds(servers).items()
            }
            depths = queue_depths(
                settings.amqp_url,
                names,
                [*names.all_queues(settings.partitions, ("webhook",))],
            )
            memory = namespace_memory(connect_redis(settings), namespace)
        finally:
            stop_workers(workers)
            cleanup(settings)
    rx = receiver.deliveries
    processed_s = marks["processed"] - t0
    notified_s = marks["notified"] - t0
    delivered_s = (rx.last - t0) if rx.count else 0.0
    return {
        "workload": args.workload,
        "events": plan.events,
        "checks": plan.checks,
        "batch": args.batch,
        "rate": args.rate,
        "via": args.via,
        "rollup_threshold": rollup,
        "complete": marks["complete"],
        "elapsed_s": round(marks["end"] - t0, 3),
        "publish_s": round(t_published - t0, 3),
        "processed_s": round(processed_s, 3),
        "events_per_s": round(final["applied"] / processed_s, 1) if processed_s > 0 else 0.0,
        "notifications": int(final["notifications"]),
        "notifications_per_s": _rate(final["expanded"], notified_s),
        "deliveries": rx.count,
        "deliveries_per_s": _rate(rx.count, delivered_s),
        "deliveries_by_type": dict(rx.by_type),
        "rollup_messages": rx.by_type.get("rollup", 0),
        "latency_ms": {
            **percentiles(rx.latencies_ms),
            "max": round(max(rx.latencies_ms, default=0.0), 2),
            "samples": len(rx.latencies_ms),
        },
        "slow_seconds": slow_seconds(rx.stamps, rx.latencies_ms, t0),
        "workers": usage,
        "cpu_s": {name: u["cpu_s"] for name, u in usage.items()},
        "cpu_ms_per_event": cpu_per_event(usage, plan.events),
        "cpu_ms_per_delivery": cpu_per_event(usage, rx.count),
        "processes": {
            "processor": args.processors,
            "notifier": args.notifiers,
            "gateway:webhook": args.gateways,
        },
        "redis": "cluster of 3 primaries" if redis_url else "single",
        "rss_mb": {name: u["peak_rss_mb"] for name, u in usage.items()},
        "server_cpu_s": servers_cpu,
        "redis_cpu_ms_per_event": round(
            sum(v for k, v in servers_cpu.items() if k.startswith("redis-server"))
            * 1000
            / plan.events,
            3,
        ),
        "stage_batch_ms": stages,
        "redis_bytes_per_check": round(memory["total"] / plan.checks),
        "redis_check_keys_bytes_per_check": round(memory["check_keys"] / plan.checks),
        "redis_namespace_bytes": memory["total"],
        "redis_keys": memory["keys"],
        "redis_bytes_by_kind": dict(sorted(memory["by_kind"].items(), key=lambda kv: -kv[1])[:12]),
        "queue_depths": depths,
        "dead_letters": int(final["dead_letters"]),
        # Deliveries that waited in a delay queue: behind an earlier one of their
        # lane (parked), for a retry, or for a rate-limit slot.
        "gateway_waits": {k: int(final[k]) for k in ("parked", "retried", "rate_limited")},
        # The expansion's optimistic transactions lost to another expanding worker, and
        # the notifications the processor handed to the notifier instead (docs/scaling.md).
        "commit_conflicts": int(final["commit_conflicts"]),
        "expansion_fallbacks": int(final["expansion_fallbacks"]),
        "namespace": namespace,
        "host": {"before": load_before, "after": load_after, "cpus": os.cpu_count()},
    }


def slow_seconds(
    stamps: list[float], latencies_ms: list[float], t0: float, threshold_ms: float = 500.0
) -> list[dict[str, float]]:
    """Each second of the timed phase (by publish time) whose slowest delivery took over ``threshold_ms``.

    A stall shows as a run of consecutive seconds; a p99 alone cannot tell a
    stall from a slow pipeline.
    """
    worst: dict[int, float] = {}
    count: dict[int, int] = {}
    for stamp, latency in zip(stamps, latencies_ms, strict=True):
        second = int(stamp - t0)
        worst[second] = max(worst.get(second, 0.0), latency)
        if latency > threshold_ms:
            count[second] = count.get(second, 0) + 1
    return [{"second": s, "max_ms": round(worst[s], 1), "over": count[s]} for s in sorted(count)]


def stage_times(workers: list[Worker]) -> dict[str, dict[str, float]]:
    """Mean and count of each stage's batch time (consume to ack), from ``tocsin_batch_seconds``."""
    out = {}
    for w in workers:
        m = w.metrics()
        count = m.get("tocsin_batch_seconds_count", 0.0)
        if count:
            out[w.name] = {
                "mean": round(m["tocsin_batch_seconds_sum"] / count * 1000, 2),
                "batches": int(count),
                "mean_size": round(m.get("tocsin_batch_size_sum", 0.0) / count, 1),
            }
    return out


def cpu_per_event(usage: dict[str, dict[str, float]], count: int) -> dict[str, float]:
    """CPU ms per ``count`` (events or deliveries) of each stage, its replicas summed."""
    by_stage: dict[str, float] = {}
    for name, u in usage.items():
        stage = name.split("#")[0]
        by_stage[stage] = by_stage.get(stage, 0.0) + u["cpu_s"]
    return {
        stage: round(cpu * 1000 / count, 3) if count else 0.0 for stage, cpu in by_stage.items()
    }


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if count and seconds > 0 else 0.0


def drain(
    progress: Progress, plan: Plan, t0: float, timeout: float, workers: list[Worker]
) -> dict[str, Any]:
    """Poll until every timed event is applied, expanded and delivered; the times of each."""
    marks: dict[str, Any] = {"processed": 0.0, "notified": 0.0, "complete": False}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker {w.name} exited during the run:\n{w.tail()}")
        p = progress.read()
        now = time.time()
        # A stage is done when its input is all counted and its last batch is acked:
        # its output counters are final by then (they are bumped before the ack).
        if (
            not marks["processed"]
            and p["applied"] + p["duplicates"] >= plan.events
            and p["processor_acked"] >= p["processor_consumed"]
        ):
            marks["processed"] = now
        if (
            marks["processed"]
            and not marks["notified"]
            and p["expanded"] >= p["notifications"]
            and p["notifier_acked"] >= p["notifier_consumed"]
        ):
            marks["notified"] = now
        # Deliveries travel in arrays (one message per medium type and notifier batch),
        # so the gateway is done when every delivery was sent or dead-lettered.
        if (
            marks["notified"]
            and p["sent"] + p["dead_letters"] >= p["deliveries"]
            and p["gateway_acked"] >= p["gateway_consumed"]
        ):
            marks["complete"] = True
            break
        time.sleep(POLL_S)
    else:
        log("timed out before every event was delivered; figures are partial")
    marks["end"] = time.time()
    marks["processed"] = marks["processed"] or marks["end"]
    marks["notified"] = marks["notified"] or marks["end"]
    return marks


def cleanup(settings: Settings) -> None:
    """Delete the run's Redis keys, queues (gateway delay queues too) and exchanges."""
    names = Names(settings.namespace)
    delete_namespace(connect_redis(settings), settings.namespace)
    conn = connect(settings.amqp_url, name="tocsin-bench-cleanup")
    try:
        channel = conn.channel()
        delete_topology(channel, names, settings.partitions)
        for level in range(RETRY_LEVELS):
            channel.queue_delete(names.gateway_retry("webhook", level))
    finally:
        conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    p.add_argument("--workload", choices=WORKLOADS, required=True)
    p.add_argument("--events", type=int, required=True, help="timed events to send")
    p.add_argument(
        "--batch", type=int, default=100, help="events per message or request (1 = single)"
    )
    p.add_argument(
        "--via",
        choices=("amqp", "api"),
        default="amqp",
        help="amqp: publish to NS.events (ingest); api: POST /events from 4 connections",
    )
    p.add_argument("--rate", type=float, default=0.0, help="events/s to pace at (0 = flat out)")
    p.add_argument("--checks", type=int, default=0, help="distinct checks (default per workload)")
    p.add_argument(
        "--rollup", type=int, default=None, help="medium rollup threshold (default: 10 for storm)"
    )
    p.add_argument("--timeout", type=float, default=300.0, help="give up draining after this")
    p.add_argument("--log-level", default="WARNING", help="workers' TOCSIN_LOG_LEVEL")
    p.add_argument(
        "--processors",
        type=int,
        default=1,
        help="processor processes splitting the partitions (TOCSIN_PROCESSOR_PARTITIONS)",
    )
    p.add_argument("--notifiers", type=int, default=1, help="notifier processes (competing)")
    p.add_argument("--gateways", type=int, default=1, help="webhook gateway processes (competing)")
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        help="start a private 3-primary Redis Cluster for the run and use it (?cluster=true)",
    )
    args = p.parse_args(argv)
    if args.events < 1 or args.batch < 1:
        p.error("--events and --batch must be positive")
    if min(args.processors, args.notifiers, args.gateways) < 1:
        p.error("--processors, --notifiers and --gateways must be at least 1")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Turn SIGTERM (and SIGINT, which background shells ignore) into an
    # exception so run()'s cleanup stops the workers and deletes the namespace.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    result = run(args)
    log(
        f"{result['events_per_s']} events/s, {result['notifications_per_s']} notifications/s, "
        f"{result['deliveries_per_s']} deliveries/s, latency {result['latency_ms']}"
    )
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
