"""Shared fixtures.

Integration and end-to-end tests talk to the Redis and RabbitMQ given by
``TOCSIN_REDIS_URL`` / ``TOCSIN_AMQP_URL`` (defaults: the local services).  Each
test gets its own ``TOCSIN_NAMESPACE`` (``t<random>``), so runs can go side by
side; the fixture deletes the namespace's keys, queues and exchanges after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from shared.config import Settings

REDIS_URL = os.environ.get("TOCSIN_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TOCSIN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _service_reachable() -> str | None:
    """None when Redis and RabbitMQ answer, else why not."""
    import pika
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} unreachable: {exc!r}"
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as exc:
        return f"RabbitMQ at {AMQP_URL} unreachable: {exc!r}"
    return None


@pytest.fixture(scope="session")
def services_up() -> None:
    problem = _service_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def settings(services_up: None, namespace: str) -> Iterator[Settings]:
    """Settings for a fresh namespace; its keys, queues and exchanges are removed after."""
    s = Settings.from_env(
        {
            "TOCSIN_REDIS_URL": REDIS_URL,
            "TOCSIN_AMQP_URL": AMQP_URL,
            "TOCSIN_NAMESPACE": namespace,
            "TOCSIN_PARTITIONS": "4",
            "TOCSIN_BATCH_WAIT_MS": "5",
            "TOCSIN_LOG_FORMAT": "text",
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
        }
    )
    yield s
    cleanup_namespace(s)


def cleanup_namespace(s: Settings) -> None:
    from shared.amqp import Names, connect, delete_topology
    from shared.store import connect_redis, delete_namespace

    delete_namespace(connect_redis(s), s.namespace)
    conn = connect(s.amqp_url, name="tocsin-test-cleanup")
    try:
        delete_topology(conn.channel(), Names(s.namespace), s.partitions)
    finally:
        conn.close()


def settings_env(s: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``s`` for a worker subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": s.redis_url,
            "TOCSIN_AMQP_URL": s.amqp_url,
            "TOCSIN_NAMESPACE": s.namespace,
            "TOCSIN_PARTITIONS": str(s.partitions),
            "TOCSIN_BATCH_WAIT_MS": str(s.batch_wait_ms),
            "TOCSIN_LOG_FORMAT": "text",
            "TOCSIN_DESTINATION_ALLOW": ",".join(s.destination_allow),
            "TOCSIN_PROCESSOR_EXPANDS": "true" if s.processor_expands else "false",
        }
    )
    return env
