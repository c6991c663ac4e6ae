"""Redis memory against its limit: what ``tocsin check`` and ``/metrics`` report.

Redis holds all of Tocsin's state in RAM; at ``maxmemory`` with the
``noeviction`` policy it refuses writes (workers then keep their messages
unacked and retry, shared/consumer.py), and with an evicting policy it drops
keys silently, which for Tocsin means lost incidents, blocks and markers.
:func:`assess` turns ``INFO memory`` into a status with a problem an operator
can act on; docs/scaling.md "Memory budget" says how to size ``maxmemory``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Above this share of maxmemory ``tocsin check`` warns (deploy/alerts.yml alerts at the same).
WARN_RATIO = 0.8
# Above this share ``tocsin check`` reports Redis unhealthy: writes are about to be refused.
FULL_RATIO = 0.95


class MemoryStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Used memory, the limit (0 = none) and the eviction policy, with what is wrong."""

    used_bytes: int
    maxmemory_bytes: int
    policy: str
    # used / maxmemory; None without a limit.
    ratio: float | None = None
    # "ok", "warning" (an operator should act) or "full" (writes are, or are about to be, refused).
    level: str = "ok"
    problem: str | None = None


def assess(info: Mapping[str, Any]) -> MemoryStatus:
    """The status of ``INFO memory`` (pure: a dict in, a verdict out)."""
    used = int(info.get("used_memory", 0))
    limit = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", "noeviction"))
    ratio = used / limit if limit else None
    level, problem = "ok", None
    if ratio is not None and ratio >= FULL_RATIO:
        level = "full"
        problem = f"Redis uses {ratio:.0%} of maxmemory: writes are refused at 100%"
    elif ratio is not None and ratio >= WARN_RATIO:
        level = "warning"
        problem = f"Redis uses {ratio:.0%} of maxmemory (alert at {WARN_RATIO:.0%})"
    elif policy != "noeviction":
        level = "warning"
        problem = f"maxmemory-policy is {policy}: Redis may evict Tocsin's keys silently"
    elif limit == 0:
        level = "warning"
        problem = "no maxmemory set: Redis grows until the host runs out of memory"
    return MemoryStatus(
        used_bytes=used,
        maxmemory_bytes=limit,
        policy=policy,
        ratio=ratio,
        level=level,
        problem=problem,
    )


def read(r: redis.Redis) -> MemoryStatus:
    """Read and assess ``INFO memory`` (one round trip)."""
    return assess(r.info("memory"))


class RedisMemoryCollector(Collector):
    """Prometheus gauges read from Redis at scrape time (the API's ``/metrics``).

    ``tocsin_redis_used_memory_bytes`` and ``tocsin_redis_maxmemory_bytes``
    (0 = no limit); deploy/alerts.yml alerts when their ratio passes 80%.
    A scrape while Redis is unreachable reports nothing rather than failing.
    """

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            status = read(self.r)
        except redis.exceptions.RedisError:
            return
        yield GaugeMetricFamily(
            "tocsin_redis_used_memory_bytes", "Redis used_memory", value=status.used_bytes
        )
        yield GaugeMetricFamily(
            "tocsin_redis_maxmemory_bytes",
            "Redis maxmemory (0 = no limit)",
            value=status.maxmemory_bytes,
        )


__all__ = ["FULL_RATIO", "WARN_RATIO", "MemoryStatus", "RedisMemoryCollector", "assess", "read"]
