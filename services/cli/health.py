"""``tocsin check``: is Redis up, is the broker up, and how deep is every queue."""

from __future__ import annotations

import msgspec
import pika.exceptions

from shared.amqp import Names, connect
from shared.config import Settings
from shared.consumer import AMQP_ERRORS
from shared.store import connect_redis


class QueueStatus(msgspec.Struct):
    name: str
    messages: int | None
    consumers: int | None
    problem: str | None = None


class HealthReport(msgspec.Struct):
    redis: str
    redis_memory_bytes: int | None
    amqp: str
    queues: list[QueueStatus]
    dead_letters: int | None

    @property
    def healthy(self) -> bool:
        return (
            self.redis == "ok" and self.amqp == "ok" and all(q.problem is None for q in self.queues)
        )


def gather(settings: Settings) -> HealthReport:
    """Probe Redis and every queue of the namespace (passive declares: nothing is created)."""
    names = Names(settings.namespace)
    redis_state, memory = "ok", None
    try:
        r = connect_redis(settings)
        r.ping()
        memory = int(r.info("memory").get("used_memory", 0))
    except Exception as exc:
        redis_state = f"unreachable: {exc}"
    queues: list[QueueStatus] = []
    amqp_state, dead = "ok", None
    try:
        conn = connect(settings.amqp_url, name="tocsin-check")
    except AMQP_ERRORS as exc:
        amqp_state = f"unreachable: {exc!r}"
    else:
        try:
            for name in names.all_queues(settings.partitions):
                channel = conn.channel()
                try:
                    ok = channel.queue_declare(name, passive=True)
                except pika.exceptions.ChannelClosedByBroker:
                    queues.append(
                        QueueStatus(name, None, None, "missing (no worker has started yet?)")
                    )
                    continue
                messages, consumers = ok.method.message_count, ok.method.consumer_count
                problem = None
                if name != names.dead and consumers == 0:
                    problem = "no consumer"
                if name == names.dead:
                    dead = messages
                queues.append(QueueStatus(name, messages, consumers, problem))
                channel.close()
        finally:
            conn.close()
    return HealthReport(redis_state, memory, amqp_state, queues, dead)
