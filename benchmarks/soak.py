"""Soak test: the full pipeline for many minutes; Redis memory must level off, worker RSS stay flat.

``python -m benchmarks.soak [--minutes 20 | --seconds S] [--rate 200] [--checks 2000] [--retain 180]``
starts ingest, processor, notifier, the webhook gateway and the API as
subprocesses (as ``tocsin up`` does) in a fresh namespace, with every
``TOCSIN_RETAIN_*`` window shortened to ``--retain`` seconds so the steady
state arrives within the run.  One contact with a webhook medium takes every
notification.  Events: ``--rate`` per second over ``--checks`` checks chosen
at random, one in four critical, the rest ok, each failure notified at once
(``initial_failure_delay`` 0) - about 0.37 notifications per event.

Every ``--sample`` seconds it records the namespace's Redis bytes (the sum of
``MEMORY USAGE`` over its keys: the shared Redis has other users, so
``used_memory`` would measure them too), each worker's RSS, deliveries and
the load average.  At the end it stops sending, waits until everything sent
was delivered, and checks:

- Redis: growth over the last 5 minutes (``--window``) < 5% (``--max-growth``);
- RSS: each worker's growth over the second half of the run < 10%
  (``--max-rss-growth``; Python's allocator keeps some slack);
- deliveries: every delivery the notifier produced reached the receiver,
  none was dead-lettered.

Progress goes to stderr; the last line of stdout is one JSON object with the
samples and verdicts.  Exit status 1 if a check failed.  Not part of the test
suite: it runs for ``--minutes`` (docs/benchmarks.md "Soak").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.observe import Receiver, host_load, namespace_memory, proc_usage
from benchmarks.pipeline import (
    Progress,
    Worker,
    cleanup,
    configure,
    free_port,
    log,
    ready,
    start_workers,
    stop_workers,
    wait_until,
    worker_env,
)
from shared.amqp import Names, OutMessage, Publisher, connect
from shared.config import Settings
from shared.store import connect_redis

_ENCODER = msgspec.json.Encoder()
# Events per AMQP message: a glue service's batch.
CHUNK = 20


def retention_env(retain_s: int, sweep_s: float) -> dict[str, str]:
    """Every TOCSIN_RETAIN_* window set to ``retain_s`` (docs/scaling.md "Retention")."""
    names = (
        "INCIDENTS_S",
        "NOTIFICATIONS_S",
        "EXPLAIN_S",
        "HISTORY_S",
        "DELIVERED_S",
        "MAINTENANCES_S",
        "PROCESSED_S",
    )
    env = {f"TOCSIN_RETAIN_{n}": str(retain_s) for n in names}
    env["TOCSIN_RETAIN_SWEEP_INTERVAL_S"] = str(sweep_s)
    return env


def events(rng: random.Random, checks: int, count: int, now: float) -> list[dict[str, Any]]:
    """``count`` events on random checks, one in four critical."""
    out = []
    for _ in range(count):
        i = rng.randrange(checks)
        out.append(
            {
                "entity": f"soak-host-{i // 10:04d}",
                "check": f"svc-{i % 10}",
                "state": "critical" if rng.random() < 0.25 else "ok",
                "summary": "soak",
                "time": now,
                "initial_failure_delay": 0,
            }
        )
    return out


def growth(samples: list[dict[str, Any]], key: str, window_s: float) -> float:
    """Relative growth of ``key`` between the sample ``window_s`` before the last and the last."""
    last = samples[-1]
    start = min(samples, key=lambda s: abs(s["t"] - (last["t"] - window_s)))
    if not start[key]:
        return 0.0
    return float(last[key] - start[key]) / float(start[key])


def sample(
    settings: Settings, workers: list[Worker], receiver: Receiver, t0: float
) -> dict[str, Any]:
    mem = namespace_memory(connect_redis(settings), settings.namespace)
    rss = {w.name: proc_usage(w.proc.pid)["rss_mb"] for w in workers}
    with receiver.deliveries.lock:
        delivered = receiver.deliveries.count
    return {
        "t": round(time.time() - t0, 1),
        "redis_bytes": mem["total"],
        "redis_keys": mem["keys"],
        "by_kind": mem["by_kind"],
        "rss_mb": rss,
        "delivered": delivered,
        "load": host_load(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings.from_env()
    namespace = "soak" + secrets.token_hex(4)
    settings = msgspec.structs.replace(
        base,
        namespace=namespace,
        api_listen=f"127.0.0.1:{free_port()}",
        api_token=secrets.token_hex(16),
    )
    names = Names(namespace)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tocsin-soak-") as tmpdir, Receiver() as receiver:
        tmp = Path(tmpdir)
        env = {**worker_env(settings, tmp, "WARNING"), **retention_env(args.retain, args.sweep)}
        workers = start_workers(env, tmp, 1, settings.partitions)
        try:
            log(f"namespace {namespace}: " + ", ".join(f"{w.name}={w.proc.pid}" for w in workers))
            wait_until("workers ready", lambda: ready(settings, workers), 90, workers)
            configure(settings, receiver.url, 0)
            publisher = Publisher(connect(settings.amqp_url, name="tocsin-soak-publisher"))
            progress = Progress(workers)
            t0 = time.time()
            end = t0 + args.minutes * 60
            sent = 0
            samples: list[dict[str, Any]] = []
            next_sample = t0
            while time.time() < end:
                now = time.time()
                due = int((now - t0) * args.rate)
                if due > sent:
                    count = min(due - sent, CHUNK * 50)
                    batch = events(rng, args.checks, count, now)
                    publisher.publish(
                        OutMessage(names.events, "flapjack", _ENCODER.encode(batch[i : i + CHUNK]))
                        for i in range(0, len(batch), CHUNK)
                    )
                    sent += count
                if now >= next_sample:
                    for w in workers:
                        if w.proc.poll() is not None:
                            raise RuntimeError(f"worker {w.name} exited:\n{w.tail()}")
                    samples.append(sample(settings, workers, receiver, t0))
                    s = samples[-1]
                    log(
                        f"t={s['t']:.0f}s sent={sent} delivered={s['delivered']} "
                        f"redis={s['redis_bytes'] / 1e6:.2f} MB keys={s['redis_keys']} "
                        f"rss={s['rss_mb']} load={s['load']}"
                    )
                    next_sample += args.sample
                time.sleep(0.05)
            log("stopped sending; waiting for every delivery")
            p: dict[str, float] = {}

            def drained() -> bool:
                nonlocal p
                p = progress.read()
                return bool(
                    p["applied"] + p["duplicates"] >= sent
                    and p["expanded"] >= p["notifications"]
                    and p["sent"] + p["dead_letters"] >= p["deliveries"]
                    and p["gateway_acked"] >= p["gateway_consumed"]
                )

            wait_until("drained", drained, args.drain_timeout, workers)
            with receiver.deliveries.lock:
                received = receiver.deliveries.count
            mem_growth = growth(samples, "redis_bytes", args.window)
            half = args.minutes * 30
            rss_growth = {
                w.name: round(
                    (samples[-1]["rss_mb"][w.name] - _at(samples, half)["rss_mb"][w.name])
                    / max(1.0, _at(samples, half)["rss_mb"][w.name]),
                    4,
                )
                for w in workers
            }
            checks = {
                "redis_flat": mem_growth < args.max_growth,
                "rss_flat": all(g < args.max_rss_growth for g in rss_growth.values()),
                "all_delivered": received >= p["deliveries"] and p["dead_letters"] == 0,
            }
            return {
                "namespace": namespace,
                "minutes": args.minutes,
                "rate": args.rate,
                "checks_count": args.checks,
                "retain_s": args.retain,
                "events_sent": sent,
                "notifications": p["notifications"],
                "deliveries": p["deliveries"],
                "received": received,
                "dead_letters": p["dead_letters"],
                "redis_growth_last_window": round(mem_growth, 4),
                "window_s": args.window,
                "rss_growth_second_half": rss_growth,
                "redis_mb_peak": round(max(s["redis_bytes"] for s in samples) / 1e6, 2),
                "redis_mb_end": round(samples[-1]["redis_bytes"] / 1e6, 2),
                "checks": checks,
                "ok": all(checks.values()),
                "samples": [{k: v for k, v in s.items() if k != "by_kind"} for s in samples],
                "by_kind_end": samples[-1]["by_kind"],
            }
        finally:
            stop_workers(workers)
            cleanup(settings)


def _at(samples: list[dict[str, Any]], t: float) -> dict[str, Any]:
    return min(samples, key=lambda s: abs(s["t"] - t))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument(
        "--seconds",
        type=float,
        help="the run's length in seconds instead of --minutes: a smoke run of the harness "
        "(tests/integration/test_memory_benchmarks_smoke.py runs 4 s), not a soak",
    )
    p.add_argument("--rate", type=float, default=200.0, help="events/s")
    p.add_argument("--checks", type=int, default=2000)
    p.add_argument("--retain", type=int, default=180, help="every TOCSIN_RETAIN_* window, s")
    p.add_argument("--sweep", type=float, default=5.0, help="TOCSIN_RETAIN_SWEEP_INTERVAL_S")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    p.add_argument("--window", type=float, default=300.0, help="plateau window judged, s")
    p.add_argument("--max-growth", type=float, default=0.05)
    p.add_argument("--max-rss-growth", type=float, default=0.10)
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    args = p.parse_args(argv)
    if args.seconds is not None:
        args.minutes = args.seconds / 60
    if args.minutes * 60 < args.window + 2 * args.sample:
        p.error("--minutes must leave --window seconds of samples to judge the plateau")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    result = run(args)
    log(
        f"redis growth over the last {result['window_s']:g} s "
        f"{result['redis_growth_last_window']:.1%}, "
        f"rss growth {result['rss_growth_second_half']}, checks {result['checks']}"
    )
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
