"""``tocsin up``: run every worker as a supervised child process on one host.

A child that dies is restarted with exponential backoff (1 s doubling to 30 s,
reset once it has stayed up for a minute).  SIGINT/SIGTERM stops the children
with SIGTERM (they finish their current batch) and SIGKILLs any still running
after the grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shared.models import MEDIUM_TYPES

log = logging.getLogger(__name__)

STABLE_AFTER_S = 60.0
MAX_BACKOFF_S = 30.0
GRACE_S = 20.0


@dataclass
class Child:
    """One supervised worker process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def worker_argv(worker: str) -> list[str]:
    """The command line of one worker (``gateway:<type>`` for gateways)."""
    if worker.startswith("gateway:"):
        return [sys.executable, "-m", "services.gateways", worker.split(":", 1)[1]]
    return [sys.executable, "-m", f"services.{worker}"]


def default_workers(medium_types: tuple[str, ...] = MEDIUM_TYPES) -> list[str]:
    return [
        "ingest",
        "processor",
        "notifier",
        "scheduler",
        *(f"gateway:{t}" for t in medium_types),
        "api",
    ]


def default_processors(cores: int | None = None) -> int:
    """Processor processes ``tocsin up`` runs by default: one per core, at most 4.

    One processor serialises its own CPU with Redis's round trips; a second
    one overlaps them (measured 13-16k -> 22-25k batched events/s on 2 cores,
    docs/benchmarks.md).  Past four, the partitions (8 by default) and Redis
    itself are the limit on one host.
    """
    found = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(4, found))


def processor_shares(processors: int, partitions: int) -> list[tuple[str, dict[str, str]]]:
    """(label, extra env) of each processor when ``processors`` split the partitions.

    Partitions go round-robin (``TOCSIN_PROCESSOR_PARTITIONS``); the first
    processor is labelled ``processor``, the others ``processor#2`` …
    """
    if processors <= 1:
        return [("processor", {})]
    shares = []
    for i in range(processors):
        mine = ",".join(str(k) for k in range(partitions) if k % processors == i)
        label = "processor" if i == 0 else f"processor#{i + 1}"
        shares.append((label, {"TOCSIN_PROCESSOR_PARTITIONS": mine}))
    return shares


MAX_REPLICAS = 16


def parse_replicas(spec: str, workers: list[str]) -> dict[str, int]:
    """``notifier=2,gateway:webhook=2,api=2`` -> {worker: count}; ValueError says what is wrong.

    Each name must be one of ``workers`` (the ones ``tocsin up`` runs), once,
    with a count from 1 to :data:`MAX_REPLICAS`.
    """
    counts: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or not raw.strip().isdigit():
            raise ValueError(f"{part!r}: expected <worker>=<count>, e.g. notifier=2")
        if name not in workers:
            raise ValueError(f"{name!r} is not a worker here; one of: {', '.join(workers)}")
        if name in counts:
            raise ValueError(f"{name!r} is given twice")
        count = int(raw)
        if not 1 <= count <= MAX_REPLICAS:
            raise ValueError(f"{name}={count}: the count must be between 1 and {MAX_REPLICAS}")
        counts[name] = count
    return counts


def plan_children(
    workers: list[str],
    base_env: Mapping[str, str],
    metrics_base_port: int,
    processors: int = 1,
    partitions: int = 8,
    replicas: Mapping[str, int] | None = None,
) -> list[Child]:
    """Children with their environment; each gets its own metrics port when enabled.

    ``replicas``: processes per worker (competing consumers on the worker's
    queue, labelled ``notifier``, ``notifier#2`` …).  The API is the
    exception: its replicas are uvicorn worker processes of one child sharing
    the one listening port (``TOCSIN_API_WORKERS``).  Processors are counted
    by ``processors`` instead (they split the partitions).
    """
    replicas = replicas or {}
    planned: list[tuple[str, dict[str, str]]] = []
    for worker in workers:
        count = replicas.get(worker, 1)
        if worker == "processor":
            planned.extend(processor_shares(processors, partitions))
        elif worker == "api" and count > 1:
            planned.append((worker, {"TOCSIN_API_WORKERS": str(count)}))
        else:
            planned.extend((worker if i == 0 else f"{worker}#{i + 1}", {}) for i in range(count))
    children = []
    for i, (label, extra) in enumerate(planned):
        env = {**base_env, **extra}
        port = metrics_base_port + i if metrics_base_port else 0
        env["TOCSIN_METRICS_PORT"] = str(port)
        argv = worker_argv(label.split("#")[0])
        children.append(Child(name=label, argv=argv, env=env, metrics_port=port))
    return children


class Supervisor:
    """Starts children, restarts the ones that die, stops them all on request."""

    def __init__(self, children: list[Child], poll_s: float = 0.5) -> None:
        self.children = children
        self.poll_s = poll_s
        self._stopping = False
        self._wake = threading.Event()  # set by stop: the loop ends without finishing its sleep

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def start_all(self) -> None:
        for child in self.children:
            child.start()
            log.info(
                "started",
                extra={"child": child.name, "pid": child.proc.pid if child.proc else None},
            )

    def tick(self) -> None:
        """Restart children that died, respecting their backoff."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                if now >= child.next_start:
                    child.start()
                continue
            code = child.proc.poll()
            if code is None:
                continue
            child.exits.append(code)
            if now - child.started_at >= STABLE_AFTER_S:
                child.restarts = 0
            delay = min(MAX_BACKOFF_S, 2.0**child.restarts)
            child.restarts += 1
            child.proc = None
            child.next_start = now + delay
            log.warning(
                "worker exited; restarting",
                extra={"child": child.name, "exit_code": code, "restart_in_s": delay},
            )

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Supervise until :meth:`stop`, then stop the children."""
        while not self._stopping:
            self.tick()
            if on_tick is not None:
                on_tick()
            self._wake.wait(self.poll_s)
        self.shutdown()

    def shutdown(self) -> None:
        for child in self.children:
            if child.running and child.proc is not None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killing", extra={"child": child.name})
                child.proc.kill()
                child.proc.wait()


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
