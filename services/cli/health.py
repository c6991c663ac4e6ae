"""``tocsin check``: is Redis up, is the broker up, and how deep is every queue."""

from __future__ import annotations

import time

import msgspec
import pika
import pika.exceptions
import redis

from shared import redis_memory
from shared.amqp import Names, connect, connection_parameters
from shared.config import Settings
from shared.consumer import AMQP_ERRORS
from shared.keys import Keys
from shared.redis_memory import MemoryStatus
from shared.store import connect_redis


class QueueStatus(msgspec.Struct):
    name: str
    messages: int | None
    consumers: int | None
    problem: str | None = None
    # Processor partitions with a backlog: seconds since the newest applied event was received.
    lag_s: float | None = None


class HealthReport(msgspec.Struct):
    redis: str
    redis_memory_bytes: int | None
    amqp: str
    queues: list[QueueStatus]
    dead_letters: int | None
    # Used memory against maxmemory, with a problem when it needs an operator (shared/redis_memory.py).
    redis_memory: MemoryStatus | None = None

    @property
    def healthy(self) -> bool:
        full = self.redis_memory is not None and self.redis_memory.level == "full"
        return (
            self.redis == "ok"
            and not full
            and self.amqp == "ok"
            and all(q.problem is None for q in self.queues)
        )


def memory_text(status: MemoryStatus | None) -> str:
    """`` (12.3 MB of 100.0 MB, 12%)`` and the problem, for the human output."""
    if status is None:
        return ""
    used = f"{status.used_bytes / 1e6:.1f} MB"
    if status.maxmemory_bytes and status.ratio is not None:
        text = f" ({used} of {status.maxmemory_bytes / 1e6:.1f} MB maxmemory, {status.ratio:.0%})"
    else:
        text = f" ({used} used)"
    return text + (f"; {status.problem}" if status.problem else "")


def gather(settings: Settings) -> HealthReport:
    """Probe Redis and every queue of the namespace (passive declares: nothing is created)."""
    names = Names(settings.namespace)
    redis_state, memory, status = "ok", None, None
    try:
        r = connect_redis(settings)
        r.ping()
        status = redis_memory.read(r)
        memory = status.used_bytes
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
        blocked = _blocked_reason(settings.amqp_url)
        if blocked is not None:
            amqp_state = f"blocked: {blocked} (broker resource alarm; publishers wait)"
    if redis_state == "ok":
        _add_processor_lag(r, settings, queues)
    return HealthReport(redis_state, memory, amqp_state, queues, dead, status)


def _blocked_reason(amqp_url: str, timeout_s: float = 2.0) -> str | None:
    """The broker's memory/disk alarm as a publisher sees it, or None.

    RabbitMQ tells a connection it is blocked (``connection.blocked``, with the
    reason) when it publishes during an alarm, and then stops reading from it.
    So, on a connection of its own that pika gives up on after ``timeout_s``
    blocked, publish one transient probe nobody receives (default exchange, no
    such queue: the broker drops it) and listen 0.3 s.  Needs
    no management plugin.
    """
    params = connection_parameters(amqp_url, "tocsin-check-alarm-probe")
    for p in params:
        p.blocked_connection_timeout = timeout_s
    reasons: list[str] = []
    try:
        conn = pika.BlockingConnection(params)
    except AMQP_ERRORS:
        return None  # reachability is reported by the main probe
    conn.add_on_connection_blocked_callback(
        lambda _c, frame: reasons.append(str(getattr(frame.method, "reason", "") or "alarm"))
    )
    try:
        channel = conn.channel()
        channel.basic_publish("", "tocsin-check-probe-no-such-queue", b"")
        # BlockingConnection runs the callback only from process_data_events.
        deadline = time.monotonic() + 0.3
        while not reasons and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        conn.close()
    except (*AMQP_ERRORS, pika.exceptions.ConnectionBlockedTimeout):
        pass
    return reasons[0] if reasons else None


def _add_processor_lag(r: redis.Redis, settings: Settings, queues: list[QueueStatus]) -> None:
    """Consumer lag of backlogged partitions, from the processor's applied-event log.

    The newest entry of ``NS:processed:p<k>`` is scored with the receive time
    of the last event the partition applied; with messages waiting, ``now``
    minus that is how far the partition is behind (a lower bound).
    """
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    backlogged = {
        names.processor(k): k
        for k in range(settings.partitions)
        if any(q.name == names.processor(k) and q.messages for q in queues)
    }
    if not backlogged:
        return
    pipe = r.pipeline(transaction=False)
    for k in backlogged.values():
        pipe.zrange(keys.processed_events(k), -1, -1, withscores=True)
    newest = dict(zip(backlogged, pipe.execute(), strict=True))
    now = time.time()
    for q in queues:
        if newest.get(q.name):
            q.lag_s = round(max(0.0, now - float(newest[q.name][0][1])), 1)
