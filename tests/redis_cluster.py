"""The private Redis Cluster of benchmarks/redis_cluster.py; the test is skipped without the binaries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from benchmarks import redis_cluster as nodes
from benchmarks.redis_cluster import cluster_ok, cluster_url, wait_for

__all__ = ["cluster_ok", "cluster_url", "redis_cluster", "redis_cluster_nodes", "wait_for"]


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[str]:
    """A fresh cluster of ``masters`` primaries; yields its ``redis://…?cluster=true`` URL."""
    with redis_cluster_nodes(masters) as ports:
        yield cluster_url(ports)


@contextmanager
def redis_cluster_nodes(masters: int = 3, replicas: int = 0) -> Iterator[list[int]]:
    """``masters`` primaries with ``replicas`` replicas each; yields every node's port."""
    if nodes.REDIS_SERVER is None or nodes.REDIS_CLI is None:
        pytest.skip("redis-server/redis-cli binary not found: cannot start a local Redis Cluster")
    with nodes.redis_cluster_nodes(masters, replicas) as ports:
        yield ports
