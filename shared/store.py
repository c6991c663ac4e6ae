"""Redis connection and per-namespace metadata."""

from __future__ import annotations

import redis

from shared.config import Settings
from shared.errors import ConfigError
from shared.keys import Keys


def connect_redis(settings: Settings) -> redis.Redis:
    """A Redis client that returns ``str`` and fails fast instead of hanging."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def meta_key(namespace: str) -> str:
    return f"{namespace}:meta"


def ensure_partitions(r: redis.Redis, settings: Settings) -> None:
    """Pin the partition count of the namespace; refuse to start with a different one.

    Changing it would move checks to other partitions while events for them are
    still queued in the old ones, breaking per-check ordering.
    """
    key = meta_key(settings.namespace)
    r.hsetnx(key, "partitions", settings.partitions)
    stored = int(r.hget(key, "partitions") or settings.partitions)
    if stored != settings.partitions:
        raise ConfigError(
            f"namespace {settings.namespace!r} was created with TOCSIN_PARTITIONS={stored}; "
            f"got {settings.partitions}. Use the same value (or a new namespace)."
        )


def delete_namespace(r: redis.Redis, namespace: str) -> int:
    """Delete every key of the namespace; returns how many (for tests and resets)."""
    deleted = 0
    batch: list[str] = []
    for key in r.scan_iter(match=Keys(namespace).pattern(), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += r.unlink(*batch)
            batch.clear()
    if batch:
        deleted += r.unlink(*batch)
    deleted += r.unlink(meta_key(namespace))
    return int(deleted)
