"""A private 3-node RabbitMQ cluster on loopback, for the cluster fault tests.

Each node is a :class:`PrivateRabbit` (own ``RABBITMQ_NODENAME``, ports, data
directory, enabled-plugins file) with one Erlang cookie shared by the three,
kept small for a 2-core box (one scheduler thread, no busy waiting:
``RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS``), and placing new queue leaders
``balanced`` over the nodes so the quorum queues Tocsin declares through
one node spread their leaders over all three.  Nodes two and three join the
first with ``rabbitmqctl join_cluster``.  Every node is killed on exit,
whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.conftest import RABBIT_SERVER, PrivateRabbit, wait_until

# One scheduler, no busy-wait spinning: three extra Erlang VMs on two cores.
SMALL_ERL_ARGS = "+S 1:1 +A 4 +sbwt none +sbwtdcpu none +sbwtdio none"
CLUSTER_CONF = "queue_leader_locator = balanced\ncluster_partition_handling = pause_minority"


@dataclass
class ClusterRabbit(PrivateRabbit):
    """A :class:`PrivateRabbit` with the cluster's cookie and small Erlang settings."""

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = SMALL_ERL_ARGS
        return env

    def start_process(self) -> None:
        """Start the node without waiting (the three boot side by side)."""
        log = (self.base / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [RABBIT_SERVER],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def must(self, *args: str) -> str:
        """``rabbitmqctl -n <node> args`` that must succeed; its stdout."""
        done = self.ctl(*args)
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout


@contextmanager
def rabbit_cluster(base: Path, size: int = 3) -> Iterator[list[ClusterRabbit]]:
    """``size`` joined nodes; the first is where clients connect (``nodes[0].url``)."""
    if not (os.path.exists(RABBIT_SERVER) and shutil.which("erl")):
        pytest.skip("rabbitmq-server is not installed here: cannot start a RabbitMQ cluster")
    cookie = secrets.token_hex(16)
    nodes = [ClusterRabbit(base / f"node{i}") for i in range(size)]
    try:
        for node in nodes:
            node.configure(CLUSTER_CONF)
            path = node.base / ".erlang.cookie"
            path.write_text(cookie)
            path.chmod(0o400)
            node.start_process()
        for node in nodes:
            assert wait_until(node._accepts_amqp, 90, step=0.3), (
                f"node {node.name} did not start: "
                + (node.base / "server.out").read_text(errors="replace")[-2000:]
            )
        for node in nodes[1:]:
            node.must("stop_app")
            node.must("reset")
            node.must("join_cluster", nodes[0].name)
            node.must("start_app")
        assert wait_until(lambda: len(running_nodes(nodes[0])) == size, 60, step=0.5), nodes[
            0
        ].must("cluster_status")
        yield nodes
    finally:
        for node in nodes:
            node.stop(kill=True)


def running_nodes(node: ClusterRabbit) -> list[str]:
    """The cluster's running nodes, as ``node`` sees them."""
    done = node.ctl("cluster_status", "--formatter", "json")
    if done.returncode != 0:
        return []
    return list(json.loads(done.stdout).get("running_nodes", []))


def quorum_queues(node: ClusterRabbit, prefix: str) -> dict[str, tuple[str, list[str]]]:
    """Quorum queues whose name starts with ``prefix``: name -> (leader, members)."""
    out = node.must("list_queues", "name", "type", "leader", "members", "--formatter", "json", "-q")
    return {
        q["name"]: (str(q["leader"]), [str(m) for m in q["members"]])
        for q in json.loads(out)
        if q["name"].startswith(prefix) and q["type"] == "quorum"
    }
