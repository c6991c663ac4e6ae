"""Redis connection and per-namespace metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.cluster import RedisCluster

from shared.config import Settings
from shared.errors import ConfigError
from shared.keys import Keys


def connect_redis(settings: Settings) -> redis.Redis:
    """A Redis client that returns ``str`` and fails fast instead of hanging.

    ``?cluster=true`` on ``TOCSIN_REDIS_URL`` selects a Redis Cluster client
    (docs/scaling.md): the flag lives in the URL so every process and
    subprocess that gets the URL agrees on the mode.
    """
    url, cluster = _split_cluster_flag(settings.redis_url)
    if cluster:
        # Duck-typed as redis.Redis: callers only use commands and pipelines.
        return RedisCluster.from_url(
            url,
            decode_responses=True,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def _split_cluster_flag(url: str) -> tuple[str, bool]:
    """``(url without its cluster flag, flag)``; a URL without the flag is returned as is."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [v.lower() for k, v in query if k == "cluster"]
    if not flags:
        return url, False
    if flags[-1] not in ("true", "1", "yes", "false", "0", "no"):
        raise ConfigError(f"TOCSIN_REDIS_URL: cluster={flags[-1]!r} is not true/false")
    rest = urlencode([(k, v) for k, v in query if k != "cluster"])
    return urlunsplit(parts._replace(query=rest)), flags[-1] in ("true", "1", "yes")


def is_cluster(r: object) -> bool:
    """Whether ``r`` is a Redis Cluster client (commands must then stay within one slot)."""
    return isinstance(r, RedisCluster)


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


# Keys of the routing and people slots as they were named before their hash tags
# (shared/keys/): the new name is the old one with the tag after the namespace.
_UNTAGGED_ROUTING = (
    "contact:",
    "medium:",
    "notification_rule:",
    "notification_block:",
    "config::version",
    "argus_",
    "timeslot::",
    "lane:",
    "notified:",
    "notifier::outbox",
    "episode:",
)
_UNTAGGED_PEOPLE = ("users", "auth:bootstrap_disabled", "audit", "ui:session:", "ui:user_sessions:")
ROUTING_LAYOUT = "2"


def migrate_routing_keys(r: redis.Redis, namespace: str) -> int:
    """Rename a namespace's routing and people keys to their tagged names once; how many moved.

    Before those slots existed (docs/scaling.md) contacts, media, rules, the
    notifier's state, users, tokens and sessions had untagged names; a
    namespace written then would look empty to this version.  Each key is moved with ``RENAMENX``
    (a key already renamed by a concurrent start, or written under the new
    name, is left alone), then ``NS:meta`` records the layout so later
    starts skip the scan.  Only on a single Redis: a cluster never held the
    old names (the API and notifier could not run on one) and could not
    rename across slots.
    """
    meta = meta_key(namespace)
    if is_cluster(r) or r.hget(meta, "routing_layout") == ROUTING_LAYOUT:
        return 0
    keys = Keys(namespace)
    moved = 0
    routing = tuple(keys.p + prefix for prefix in _UNTAGGED_ROUTING)
    people = tuple(keys.p + prefix for prefix in _UNTAGGED_PEOPLE)
    for old in r.scan_iter(match=keys.pattern(), count=1000):
        if old.startswith(routing):
            new = keys.rp + old[len(keys.p) :]
        elif old.startswith(people):
            new = keys.pp + old[len(keys.p) :]
        else:
            continue
        try:
            moved += int(r.renamenx(old, new))
        except redis.ResponseError:  # gone: renamed by another process meanwhile
            continue
    r.hset(meta, "routing_layout", ROUTING_LAYOUT)
    return moved


def ordered_steps(r: redis.Redis, *steps: Callable[[Any], object]) -> None:
    """Run ``steps`` as one MULTI; on Redis Cluster, one MULTI per step, in order.

    Each step touches one hash slot.  A cluster has no transaction across
    slots, so callers order their steps so that a crash between two leaves
    nothing a reader trips on: a record is written before the indexes that
    lead to it and removed after them (docs/scaling.md).
    """
    if not is_cluster(r):
        pipe = r.pipeline(transaction=True)
        for step in steps:
            step(pipe)
        pipe.execute()
        return
    for step in steps:
        pipe = r.pipeline(transaction=True)
        step(pipe)
        pipe.execute()
