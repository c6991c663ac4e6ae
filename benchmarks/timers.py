"""Durable timers: the Redis sorted set we run against RabbitMQ delay queues (docs/oncall.md).

``python -m benchmarks.timers [--timers 1500] [--window 15] [--kills 3]
[--mechanisms zset,ttl,perdelay]`` against the Redis and RabbitMQ of
``TOCSIN_REDIS_URL`` / ``TOCSIN_AMQP_URL``, in a fresh namespace (keys and
queues deleted afterwards).  Every timer is "fired" by a worker *subprocess*
that appends ``id|fire time`` to a Redis list; the parent only schedules,
kills and counts.  Mechanisms:

- ``zset``: what the scheduler does (``shared/escalation_store.py``, the
  production Lua scripts): timers are ``ZADD``-ed to the due set; the worker
  claims due ids under the lease every ``--tick-ms``, records the fire, then
  advances (compare-and-set), as ``services/scheduler/worker.py`` pages then
  advances.
- ``ttl``: one durable delay queue, a per-message ``expiration`` of
  ``due - now`` and a dead-letter exchange routing expired messages to a ready
  queue the worker consumes (manual ack after recording the fire).
- ``perdelay``: one delay queue per delay, rounded up to ``--bucket-ms``, each
  with a queue-wide ``x-message-ttl`` and the same dead-lettering, so every
  queue is FIFO in due order.

Scenarios, per mechanism:

- ``in_order``: ``--timers`` due uniformly over ``--window`` seconds, scheduled
  in due order; lateness = fire time - due time (p50/p99/max), fired, missing,
  duplicates.
- ``shuffled``: the same timers scheduled in random order (as escalations of
  different policies and waits are).
- ``kill``: in due order, and the worker is killed with SIGKILL ``--kills``
  times, evenly spread over the window, each time restarted at once; counts
  missing and duplicate fires (exactly-once) and the lateness that costs.
- ``head_of_line``: two timers, one due in ``--hol-s`` seconds scheduled
  first, one due in 1 s scheduled second: how late the second fires.

A run's clock starts once its worker is up (the worker says so on a Redis
list), so ``--lead`` covers the scheduling, not the worker's start; a worker
restarted after a kill is not waited for (its start is part of what a kill
costs).  ``--parallel`` runs the mechanisms at once, each with its own worker
in its own namespace: a smoke run of the harness
(``tests/integration/test_timers_benchmark_smoke.py``); their timings disturb
each other, so its figures are not the benchmark's.

It prints one JSON object (the figures, the arguments, the load average
before and after) and a table on stderr.  The worker mode (``worker MECH``)
is internal.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pika
import redis

from shared.amqp import connect
from shared.config import Settings
from shared.escalation import Escalation
from shared.escalation_store import EscalationStore
from shared.keys import Keys
from shared.store import connect_redis, delete_namespace

MECHANISMS = ("zset", "ttl", "perdelay")
SCENARIOS = ("in_order", "shuffled", "kill", "head_of_line")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Opts:
    timers: int
    window: float
    lead: float
    kills: int
    tick_ms: int
    lease_ms: int
    inflight_s: float
    bucket_ms: int
    hol_s: float


def fired_key(ns: str) -> str:
    return f"{Keys(ns).p}bench:timers:fired"


def worker_up_key(ns: str) -> str:
    return f"{Keys(ns).p}bench:timers:worker-up"


def ready_queue(ns: str) -> str:
    return f"{ns}.bench.timers.ready"


def ttl_queue(ns: str) -> str:
    return f"{ns}.bench.timers.delay"


def perdelay_queue(ns: str, ms: int) -> str:
    return f"{ns}.bench.timers.delay.{ms}"


# --------------------------------------------------------------------------- pure accounting


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def account(due: dict[str, float], fires: list[tuple[str, float]]) -> dict[str, Any]:
    """Lateness of each timer's first fire, and how many were missed or fired twice."""
    first: dict[str, float] = {}
    total = 0
    for tid, t in fires:
        if tid not in due:
            continue
        total += 1
        first[tid] = min(t, first.get(tid, t))
    late = [first[tid] - due[tid] for tid in first]
    out: dict[str, Any] = {
        "timers": len(due),
        "fired": len(first),
        "missing": len(due) - len(first),
        "duplicates": total - len(first),
    }
    if late:
        out["lateness_s"] = {
            "p50": round(percentile(late, 50), 3),
            "p99": round(percentile(late, 99), 3),
            "max": round(max(late), 3),
            "min": round(min(late), 3),
        }
    return out


# --------------------------------------------------------------------------- workers


def _record(r: redis.Redis, key: str, ids: list[str]) -> None:
    now = time.time()
    if ids:
        r.rpush(key, *[f"{tid}|{now!r}" for tid in ids])


def zset_worker(settings: Settings, opts: Opts) -> None:
    """The scheduler's claim/fire/advance loop over bare timers (no policies, no pages)."""
    r = connect_redis(settings)
    store = EscalationStore(r, Keys(settings.namespace))
    holder = f"bench:{os.getpid()}"
    key = fired_key(settings.namespace)
    r.rpush(worker_up_key(settings.namespace), os.getpid())
    while True:
        _, ids = store.claim(holder, opts.lease_ms, time.time(), 500, opts.inflight_s)
        if ids:
            _record(r, key, ids)
            store.advance([(tid, 0, None, None) for tid in ids])
        time.sleep(opts.tick_ms / 1000)


def amqp_worker(settings: Settings) -> None:
    """Consume dead-lettered timers; record, then ack (at-least-once, as our consumers are)."""
    r = connect_redis(settings)
    key = fired_key(settings.namespace)
    conn = connect(settings.amqp_url, name="bench-timers")
    ch = conn.channel()
    ch.basic_qos(prefetch_count=200)

    def on_message(channel: Any, method: Any, _props: pika.BasicProperties, body: bytes) -> None:
        _record(r, key, [body.decode().split("|")[0]])
        channel.basic_ack(method.delivery_tag)

    ch.basic_consume(ready_queue(settings.namespace), on_message)
    r.rpush(worker_up_key(settings.namespace), os.getpid())
    ch.start_consuming()


# --------------------------------------------------------------------------- scheduling


class Bench:
    def __init__(self, settings: Settings, opts: Opts) -> None:
        self.settings = settings
        self.opts = opts
        self.ns = settings.namespace
        self.r = connect_redis(settings)
        self.keys = Keys(self.ns)
        self.conn = connect(settings.amqp_url, name="bench-timers-parent")
        # No publisher confirms: a blocking confirm per message made scheduling 1,500
        # timers take 3-8 s on a loaded box, longer than the lead, so early timers were
        # published after they were due.  Confirms cost publish rate, not timer precision.
        self.ch = self.conn.channel()
        self.perdelay: set[int] = set()

    # -- setup and teardown

    def reset(self) -> None:
        self.r.delete(
            fired_key(self.ns),
            worker_up_key(self.ns),
            self.keys.escalation_due(),
            self.keys.scheduler_lease(),
        )
        for q in (ready_queue(self.ns), ttl_queue(self.ns)):
            self.ch.queue_delete(q)
        for ms in self.perdelay:
            self.ch.queue_delete(perdelay_queue(self.ns, ms))
        self.perdelay.clear()
        self.ch.queue_declare(ready_queue(self.ns), durable=True)
        self.ch.queue_declare(
            ttl_queue(self.ns),
            durable=True,
            arguments={
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": ready_queue(self.ns),
            },
        )

    def close(self) -> None:
        try:
            for q in (ready_queue(self.ns), ttl_queue(self.ns)):
                self.ch.queue_delete(q)
            for ms in self.perdelay:
                self.ch.queue_delete(perdelay_queue(self.ns, ms))
            self.conn.close()
        finally:
            delete_namespace(self.r, self.ns)

    # -- scheduling one timer per mechanism

    def schedule(self, mech: str, timers: list[tuple[str, float]]) -> int:
        """Schedule ``timers`` (id, due); returns how many were scheduled after their due
        time (the lead was too short: their lateness is the benchmark's, not the timer's)."""
        late = 0
        if mech == "zset":
            store = EscalationStore(self.r, self.keys)
            for start in range(0, len(timers), 500):
                pipe = self.r.pipeline(transaction=False)
                for tid, due in timers[start : start + 500]:
                    esc = Escalation(
                        id=tid,
                        policy_id="bench",
                        notification_id=tid,
                        check_id="bench",
                        episode_id=tid,
                        started=due,
                    )
                    store.start(pipe, esc, due)
                pipe.execute()
                late += sum(1 for _, due in timers[start : start + 500] if due < time.time())
            return late
        for tid, due in timers:
            delay_ms = max(0, math.ceil((due - time.time()) * 1000))
            late += delay_ms == 0
            body = f"{tid}|{due!r}".encode()
            if mech == "ttl":
                props = pika.BasicProperties(delivery_mode=2, expiration=str(delay_ms))
                self.ch.basic_publish("", ttl_queue(self.ns), body, props)
                continue
            bucket = self.opts.bucket_ms
            ms = max(bucket, math.ceil(delay_ms / bucket) * bucket)
            if ms not in self.perdelay:
                self.ch.queue_declare(
                    perdelay_queue(self.ns, ms),
                    durable=True,
                    arguments={
                        "x-message-ttl": ms,
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": ready_queue(self.ns),
                        "x-expires": ms + 600_000,
                    },
                )
                self.perdelay.add(ms)
            self.ch.basic_publish(
                "", perdelay_queue(self.ns, ms), body, pika.BasicProperties(delivery_mode=2)
            )
        return late

    # -- workers

    def spawn(self, mech: str, wait: bool = False) -> subprocess.Popen[bytes]:
        """Start a worker; with ``wait``, return once it consumes (or claims)."""
        o = self.opts
        env = dict(os.environ, TOCSIN_NAMESPACE=self.ns)
        args = [
            sys.executable,
            "-m",
            "benchmarks.timers",
            "worker",
            "zset" if mech == "zset" else "amqp",
            f"--tick-ms={o.tick_ms}",
            f"--lease-ms={o.lease_ms}",
            f"--inflight-s={o.inflight_s}",
        ]
        worker = subprocess.Popen(args, cwd=ROOT, env=env)
        if wait and self.r.blpop([worker_up_key(self.ns)], timeout=60) is None:
            worker.kill()
            raise RuntimeError(f"{mech} worker not up after 60 s")
        return worker

    def fires(self) -> list[tuple[str, float]]:
        out = []
        for raw in self.r.lrange(fired_key(self.ns), 0, -1):
            tid, t = str(raw).split("|")
            out.append((tid, float(t)))
        return out

    def run(self, mech: str, scenario: str, rnd: random.Random) -> dict[str, Any]:
        o = self.opts
        self.reset()
        worker = self.spawn(mech, wait=True)
        kills: list[float] = []
        try:
            t0 = time.time() + o.lead
            tag = f"{mech}-{scenario}"  # timer ids never repeat across runs (HSETNX in start)
            if scenario == "head_of_line":
                timers = [(f"{tag}-long", t0 + o.hol_s), (f"{tag}-short", t0 + 1.0)]
            else:
                timers = sorted(
                    ((f"{tag}-{i}", t0 + rnd.uniform(0, o.window)) for i in range(o.timers)),
                    key=lambda x: x[1],
                )
                if scenario == "shuffled":
                    rnd.shuffle(timers)
            scheduled_late = self.schedule(mech, timers)
            scheduled_by = time.time()
            due = dict(timers)
            last_due = max(due.values())
            if scenario == "kill":
                for k in range(o.kills):
                    at = t0 + o.window * (k + 1) / (o.kills + 1)
                    time.sleep(max(0.0, at - time.time()))
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
                    kills.append(time.time())
                    worker = self.spawn(mech)
            # Wait for every timer, then long enough for a lost claim or an unacked
            # message to come back (a duplicate would show up by then).
            settle = o.inflight_s + o.lease_ms / 1000 + 2 * o.tick_ms / 1000 + 1
            deadline = last_due + 2 * settle + 30
            while time.time() < deadline:
                if len({tid for tid, _ in self.fires()}) >= len(due):
                    break
                time.sleep(0.2)
            quiet_until = max([time.time() + 1.0] + [k + settle for k in kills])
            time.sleep(max(0.0, quiet_until - time.time()))
        finally:
            worker.terminate()
            worker.wait()
        out = account(due, self.fires())
        out["scheduling_s"] = round(scheduled_by - (t0 - o.lead), 3)
        out["scheduled_after_due"] = scheduled_late
        if kills:
            out["kills"] = len(kills)
        if scenario == "head_of_line":
            first = {tid: t for tid, t in sorted(self.fires(), key=lambda x: -x[1])}
            short = f"{mech}-{scenario}-short"
            late = first.get(short)
            out["short_timer_late_s"] = None if late is None else round(late - due[short], 3)
        if mech == "perdelay":
            out["delay_queues"] = len(self.perdelay)
        return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'mechanism':9} {'scenario':13} {'fired':>6} {'miss':>5} {'dup':>4} "
        f"{'p50 s':>7} {'p99 s':>7} {'max s':>7}"
    ]
    for mech, per in result["results"].items():
        for scen, x in per.items():
            lat = x.get("lateness_s", {})
            lines.append(
                f"{mech:9} {scen:13} {x['fired']:>6} {x['missing']:>5} {x['duplicates']:>4} "
                f"{lat.get('p50', float('nan')):>7.3f} {lat.get('p99', float('nan')):>7.3f} "
                f"{lat.get('max', float('nan')):>7.3f}"
            )
    return "\n".join(lines)


def run_alone(
    base: Settings, opts: Opts, mechs: list[str], scens: list[str], seed: int
) -> dict[str, dict[str, Any]]:
    """Each scenario of each of ``mechs``, one after another, in a fresh namespace."""
    settings = msgspec.structs.replace(base, namespace="bench-timers-" + uuid.uuid4().hex[:8])
    rnd = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    bench = Bench(settings, opts)
    try:
        for mech in mechs:
            for scen in scens:
                out.setdefault(mech, {})[scen] = bench.run(mech, scen, rnd)
    finally:
        bench.close()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        ap = argparse.ArgumentParser(prog="benchmarks.timers worker")
        ap.add_argument("_worker")
        ap.add_argument("kind", choices=("zset", "amqp"))
        ap.add_argument("--tick-ms", type=int, default=500)
        ap.add_argument("--lease-ms", type=int, default=5000)
        ap.add_argument("--inflight-s", type=float, default=10.0)
        w = ap.parse_args()
        settings = Settings.from_env()
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        if w.kind == "zset":
            zset_worker(settings, Opts(0, 0, 0, 0, w.tick_ms, w.lease_ms, w.inflight_s, 0, 0))
        else:
            amqp_worker(settings)
        return
    base = Settings.from_env()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timers", type=int, default=1500)
    ap.add_argument("--window", type=float, default=15.0, help="seconds the timers are due over")
    ap.add_argument("--lead", type=float, default=5.0, help="seconds before the first is due")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--tick-ms", type=int, default=base.scheduler_tick_ms)
    ap.add_argument("--lease-ms", type=int, default=base.scheduler_lease_ms)
    ap.add_argument("--inflight-s", type=float, default=base.scheduler_inflight_s)
    ap.add_argument("--bucket-ms", type=int, default=100, help="perdelay: delay rounding")
    ap.add_argument("--hol-s", type=float, default=6.0, help="head_of_line: the long delay")
    ap.add_argument("--mechanisms", default=",".join(MECHANISMS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="run the mechanisms at once, each in its own namespace: a smoke run of the "
        "harness, whose figures are not the benchmark's",
    )
    args = ap.parse_args()
    mechs = [m for m in args.mechanisms.split(",") if m]
    scens = [s for s in args.scenarios.split(",") if s]
    for name, allowed in ((mechs, MECHANISMS), (scens, SCENARIOS)):
        bad = [x for x in name if x not in allowed]
        if bad:
            ap.error(f"unknown {bad}; choose from {', '.join(allowed)}")
    opts = Opts(
        timers=args.timers,
        window=args.window,
        lead=args.lead,
        kills=args.kills,
        tick_ms=args.tick_ms,
        lease_ms=args.lease_ms,
        inflight_s=args.inflight_s,
        bucket_ms=args.bucket_ms,
        hol_s=args.hol_s,
    )
    result: dict[str, Any] = {"args": vars(args), "load_before": loadavg(), "results": {}}
    if args.parallel:
        with concurrent.futures.ThreadPoolExecutor(len(mechs)) as pool:
            runs = [pool.submit(run_alone, base, opts, [m], scens, args.seed) for m in mechs]
            for run in runs:
                result["results"].update(run.result())
    else:
        result["results"] = run_alone(base, opts, mechs, scens, args.seed)
    result["load_after"] = loadavg()
    print(table(result), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
