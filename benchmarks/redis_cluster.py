"""A private Redis Cluster on loopback, for the cluster tests and ``benchmarks.pipeline --redis-cluster``.

``redis_cluster()`` starts three ``redis-server --cluster-enabled yes``
processes on free ports, joins them with ``redis-cli --cluster create`` and
yields a ``?cluster=true`` URL (shared/store.connect_redis); the processes and
their files are removed on exit, whatever happened.  Without the binaries it
raises :class:`ClusterUnavailable` (tests/redis_cluster.py turns that into a
skip).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from benchmarks.ports import ephemeral_low

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


class ClusterUnavailable(RuntimeError):
    """redis-server or redis-cli is not installed here."""


def _free_port() -> int:
    """A loopback port that is free together with its cluster bus port (+10000).

    Both come from below the kernel's ephemeral range (32768 and up here), where
    ``bind(("127.0.0.1", 0))`` never lands: another test's free-port pick (a private
    RabbitMQ, say) cannot take the bus port between this check and the node's start.
    """
    low = ephemeral_low()
    for _ in range(200):
        port = random.randrange(12000, max(12001, min(22000, low - 10000)))
        try:
            with socket.socket() as s, socket.socket() as bus:
                s.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[str]:
    """A fresh cluster of ``masters`` primaries; yields its ``redis://…?cluster=true`` URL."""
    with redis_cluster_nodes(masters) as ports:
        yield cluster_url(ports)


def cluster_url(ports: list[int]) -> str:
    """The ``?cluster=true`` URL of a cluster (any node will do; the client finds the rest)."""
    return f"redis://127.0.0.1:{ports[0]}/0?cluster=true"


@contextmanager
def redis_cluster_nodes(masters: int = 3, replicas: int = 0) -> Iterator[list[int]]:
    """``masters`` primaries with ``replicas`` replicas each; yields every node's port.

    With replicas, it returns once each replica's link to its primary is up,
    so a ``CLUSTER FAILOVER`` may be asked of it at once.
    """
    if REDIS_SERVER is None or REDIS_CLI is None:
        raise ClusterUnavailable(
            "redis-server/redis-cli binary not found: cannot start a local Redis Cluster"
        )
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-cluster-"))
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(masters * (1 + replicas)):
            port = _free_port()
            while port in ports:
                port = _free_port()
            ports.append(port)
            procs.append(
                subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(tmp / f"nodes-{port}.conf"),
                        "--cluster-node-timeout", "5000",
                        "--save", "",
                        "--appendonly", "no",
                        "--dir", str(tmp),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in ports:
            wait_for(lambda p=port: redis.Redis(port=p, socket_connect_timeout=1).ping(), 10)
        subprocess.run(
            [REDIS_CLI, "--cluster", "create"]
            + [f"127.0.0.1:{p}" for p in ports]
            + ["--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in ports:
            node = redis.Redis(port=port, decode_responses=True)
            wait_for(lambda n=node: cluster_ok(n.execute_command("CLUSTER INFO")), 20)
            wait_for(lambda n=node: _replica_linked(n), 20)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def node_pids(ports: list[int]) -> dict[int, int]:
    """Port -> pid of the node on it (``INFO server``: Redis rewrites its command line)."""
    return {p: int(redis.Redis(port=p).info("server")["process_id"]) for p in ports}


def _replica_linked(node: redis.Redis) -> bool:
    """A primary, or a replica whose replication link is up."""
    info = node.info("replication")
    return info.get("role") == "master" or info.get("master_link_status") == "up"


def cluster_ok(info: object) -> bool:
    """``cluster_state:ok`` in CLUSTER INFO (redis-py parses it into a dict)."""
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in str(info)


def wait_for(ready: Callable[[], object], timeout: float) -> None:
    """Poll ``ready()`` until it is true (start-up of external processes, not test logic)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Redis Cluster did not come up")
        time.sleep(0.05)
