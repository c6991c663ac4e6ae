"""The batch consumer loop every worker runs: collect, handle, publish, ack.

One loop, one order of effects (arroyo's rule: the commit is the last step):

1. collect what the broker has already sent, up to ``batch_size``; only a
   worker under load (its last batch was at least half full) also waits up
   to ``batch_wait_ms`` for more, so an idle pipeline pays no batch wait at
   any stage and a busy one still fills its batches;
2. call the worker's handler, which makes its effects durable (Redis) and
   returns the messages to publish and the inputs it rejects;
3. publish outputs and dead letters in one broker transaction;
4. run the handler's ``after_publish`` step (e.g. clearing an outbox);
5. ack the whole batch with one cumulative ack (``basic_ack(multiple=True)``).

A crash anywhere before 5 makes the broker redeliver, so handlers are
idempotent.  Transient errors (Redis down) retry the batch with backoff while
the messages stay unacked; any other exception retries the batch one message
at a time so a single poison message is dead-lettered with its reason and the
rest go through.  The loop reconnects with exponential backoff and stops
cleanly, finishing its current batch, when :meth:`BatchConsumer.stop` is
called (from a SIGTERM/SIGINT handler); asked to stop while a batch waits
for its retry, it leaves that batch unacked for the next worker.

The loop talks to a :class:`~shared.broker.Broker`, not to pika: RabbitMQ in
production, :class:`~shared.memory_broker.InMemoryBroker` in its unit tests
(``tests/unit/test_consumer_loop.py``).  What a handler returns is in
``shared/handler.py``, which errors are retried and how long it waits in
``shared/retry.py``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions

from shared.amqp import PUBLISH_FAILURES, Names, OutMessage
from shared.broker import Broker, BrokerSession, Message
from shared.errors import InvalidMessage
from shared.handler import BatchResult, Handler, dead_letter, reason_label
from shared.pika_broker import AMQP_ERRORS, PikaBroker
from shared.retry import TRANSIENT_ERRORS, backoff_delay
from shared.telemetry import ConsumerMetrics

__all__ = [
    "AMQP_ERRORS",
    "TRANSIENT_ERRORS",
    "BatchConsumer",
    "BatchResult",
    "Handler",
    "Message",
    "backoff_delay",
    "dead_letter",
]

log = logging.getLogger(__name__)

# Longest an idle loop waits on the broker before it looks at its stop flag again.
STOP_POLL_S = 0.2
# Default caps of the reconnect and batch-retry backoffs (Settings.reconnect_max_s).
AMQP_RECONNECT_MAX_S = 15.0
BATCH_RETRY_MAX_S = 10.0


class _StopDuringRetry(Exception):
    """Stop was asked while a batch waited to be retried: leave it unacked and return."""


class BatchConsumer:
    """Consume ``queues``, hand batches to ``handler``, publish its outputs, ack last.

    The broker is RabbitMQ at ``amqp_url`` unless a :class:`~shared.broker.Broker`
    is given (tests pass :class:`~shared.memory_broker.InMemoryBroker`).
    """

    def __init__(
        self,
        *,
        names: Names,
        partitions: int,
        queues: Sequence[str],
        handler: Handler,
        stage: str,
        metrics: ConsumerMetrics,
        amqp_url: str | None = None,
        broker: Broker | None = None,
        prefetch: int = 1000,
        batch_size: int = 500,
        batch_wait_ms: int = 10,
        on_connect: Callable[[BatchConsumer], None] | None = None,
        on_idle: Callable[[BatchConsumer], None] | None = None,
        on_stop: Callable[[BatchConsumer], None] | None = None,
        idle_interval_s: float = 1.0,
        queue_stats_interval_s: float = 5.0,
        probe: Callable[[], object] | None = None,
        reconnect_max_s: float | None = None,
    ) -> None:
        if broker is None:
            if amqp_url is None:
                raise ValueError("BatchConsumer needs amqp_url or broker")
            broker = PikaBroker(amqp_url)
        self.broker = broker
        self.names = names
        self.partitions = partitions
        self.queues = list(queues)
        self.handler = handler
        self.stage = stage
        self.metrics = metrics
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.on_connect = on_connect
        self.on_idle = on_idle
        # Runs once after the last batch of a clean stop (e.g. a deferred outbox clear).
        self.on_stop = on_stop
        self.idle_interval = idle_interval_s
        self.queue_stats_interval = queue_stats_interval_s
        # Pings the worker's other dependency (Redis) with the queue stats, so an
        # outage shows in ``tocsin_worker_healthy`` even while no batch arrives.
        self.probe = probe
        # Backoff caps: reconnecting to the broker, retrying a batch after a Redis error
        # (``Settings.reconnect_max_s`` sets both; unset keeps 15 s and 10 s).
        self.reconnect_max_s = AMQP_RECONNECT_MAX_S if reconnect_max_s is None else reconnect_max_s
        self.retry_max_s = BATCH_RETRY_MAX_S if reconnect_max_s is None else reconnect_max_s
        self._stopping = False
        self._buffer: list[Message] = []
        self._last_batch = 0
        # Labelled metric children, looked up once: a lone page is a batch of one,
        # and label lookups were a tenth of a small batch's CPU (py-spy).
        self._consumed = {q: metrics.consumed.labels(q) for q in self.queues}
        self._acked = {q: metrics.acked.labels(q) for q in self.queues}
        self._last_batch_gauge = metrics.last_batch.labels(stage)
        self._batch_size = metrics.batch_size.labels(stage)
        self._batch_seconds = metrics.batch_seconds.labels(stage)
        self.session: BrokerSession | None = None

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return (signal-safe)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def sleep(self, seconds: float) -> None:
        """Wait while keeping the broker connection alive (heartbeats); handlers use this."""
        deadline = self.broker.monotonic() + seconds
        while not self._stopping:
            left = deadline - self.broker.monotonic()
            if left <= 0:
                return
            session = self.session
            if session is not None and session.is_open:
                session.sleep(min(left, 0.5))
            else:
                self.broker.sleep(min(left, 0.5))

    def keep_alive(self) -> None:
        """Service the broker connection once, without waiting (heartbeats during long handler work).

        Unlike ``sleep(s)``, it never blocks: a handler polling its own work
        (e.g. sends on a thread pool) calls it between short waits.  What
        arrives meanwhile joins the next batch.
        """
        if self.session is not None and self.session.is_open:
            self._buffer.extend(self.session.poll(0))

    def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish in one transaction through the consumer's session (handlers' side outputs)."""
        assert self.session is not None, "publish() is only valid while running"
        self.session.publish(messages)

    def declare_queue(self, queue: str, arguments: dict[str, Any]) -> None:
        """Declare an extra durable queue (``on_connect`` hooks: a gateway's delay queues)."""
        assert self.session is not None, "declare_queue() is only valid while running"
        self.session.declare_queue(queue, arguments)

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        """Run until :meth:`stop`; reconnects with exponential backoff and jitter."""
        attempt = 0
        while not self._stopping:
            try:
                self._run_connected()
                attempt = 0
            except _StopDuringRetry:
                log.info(
                    "stopped during a retry; the batch stays unacked", extra={"stage": self.stage}
                )
            except self.broker.connection_errors as exc:
                attempt += 1
                self.metrics.healthy.set(0)
                self.metrics.reconnects.labels("amqp").inc()
                delay = backoff_delay(attempt, base=0.2, cap=self.reconnect_max_s, jitter=0.5)
                log.warning(
                    # A refused publish is retried on a new connection too: the unacked
                    # batch comes back and is published again (docs/reliability.md).
                    "broker refused a publish, reconnecting"
                    if isinstance(exc, PUBLISH_FAILURES)
                    else "broker connection lost, reconnecting",
                    extra={"stage": self.stage, "error": repr(exc), "retry_in_s": round(delay, 2)},
                )
                self._buffer.clear()
                self._close_quietly()
                self.sleep(delay)
            finally:
                self._close_quietly()
        self.metrics.healthy.set(0)

    def _run_connected(self) -> None:
        session = self.session = self.broker.connect(f"tocsin-{self.stage}")
        session.declare_topology(self.names, self.partitions)
        if self.on_connect is not None:
            self.on_connect(self)
        for queue in self.queues:
            session.consume(queue, self.prefetch)
        self.metrics.healthy.set(1)
        log.info("consuming", extra={"stage": self.stage, "queues": self.queues})
        last_idle = last_stats = self.broker.monotonic()
        self._export_queue_stats()
        while not self._stopping:
            batch = self._collect()
            if batch:
                self._process(batch)
            now = self.broker.monotonic()
            if self.on_idle is not None and now - last_idle >= self.idle_interval:
                last_idle = now
                self.on_idle(self)
            if now - last_stats >= self.queue_stats_interval:
                last_stats = now
                self._export_queue_stats()
                self._run_probe()
        # Stopping: finish what was already handed to us, then leave cleanly.
        self._buffer.extend(session.poll(0))
        if self._buffer:
            self._process(self._take(len(self._buffer)))
        if self.on_stop is not None:
            self.on_stop(self)
        log.info("stopped", extra={"stage": self.stage})

    def _export_queue_stats(self) -> None:
        """Depth and consumer count of the consumed queues, for backlog alerts and dashboards."""
        assert self.session is not None
        for queue in self.queues:
            stats = self.session.queue_stats(queue)
            if stats is None:
                return
            self.metrics.queue_messages.labels(queue).set(stats.messages)
            self.metrics.queue_consumers.labels(queue).set(stats.consumers)

    def _run_probe(self) -> None:
        """Healthy = broker connected (we are here) and the probe (Redis ping) answers."""
        if self.probe is None:
            return
        try:
            self.probe()
        except TRANSIENT_ERRORS as exc:
            self.metrics.healthy.set(0)
            log.warning("dependency unreachable", extra={"stage": self.stage, "error": repr(exc)})
            return
        self.metrics.healthy.set(1)

    def _collect(self) -> list[Message]:
        assert self.session is not None
        if not self._buffer:
            # Short polls, so a stop (SIGTERM) is seen within STOP_POLL_S; the
            # on_idle cadence is kept by the clock in _run_connected.
            self._buffer.extend(self.session.poll(min(self.idle_interval, STOP_POLL_S)))
            if not self._buffer:
                return []
        # What already arrived joins the batch without waiting.
        self._buffer.extend(self.session.poll(0))
        if self._last_batch * 2 >= self.batch_size:
            deadline = self.broker.monotonic() + self.batch_wait
            while len(self._buffer) < self.batch_size and not self._stopping:
                left = deadline - self.broker.monotonic()
                if left <= 0:
                    break
                self._buffer.extend(self.session.poll(left))
        batch = self._take(self.batch_size)
        self._last_batch = len(batch)
        return batch

    def _take(self, n: int) -> list[Message]:
        batch, self._buffer = self._buffer[:n], self._buffer[n:]
        return batch

    def _process(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        per_queue = Counter(m.queue for m in batch)
        for queue, n in per_queue.items():
            self._counter(self._consumed, self.metrics.consumed, queue).inc(n)
        result = self._handle_with_retry(batch)
        assert self.session is not None
        dead = [dead_letter(self.names, msg, self.stage, reason) for msg, reason in result.rejected]
        self.session.publish([*result.outputs, *dead])
        for msg, reason in result.rejected:
            self.metrics.dead_lettered.labels(self.stage, reason_label(reason)).inc()
            log.warning(
                "rejected to dead letters",
                extra={"stage": self.stage, "reason": reason[:300], "queue": msg.queue},
            )
        if result.after_publish is not None:
            try:
                result.after_publish()
            except TRANSIENT_ERRORS as exc:
                # Effects are durable and published; the follow-up is a cleanup
                # that the handler's idle sweep repeats, so it may fail here.
                log.warning(
                    "after-publish step failed", extra={"stage": self.stage, "error": repr(exc)}
                )
        self.session.ack(batch[-1].delivery_tag)
        for queue, n in per_queue.items():
            self._counter(self._acked, self.metrics.acked, queue).inc(n)
        redelivered = [m.queue for m in batch if m.redelivered]
        for queue in set(redelivered):
            self.metrics.redelivered.labels(queue).inc(redelivered.count(queue))
        self._last_batch_gauge.set(time.time())
        self._batch_size.observe(len(batch))
        self._batch_seconds.observe(time.perf_counter() - started)

    @staticmethod
    def _counter(cache: dict[str, Any], family: Any, queue: str) -> Any:
        child = cache.get(queue)
        if child is None:
            child = cache[queue] = family.labels(queue)
        return child

    def _handle_with_retry(self, batch: list[Message]) -> BatchResult:
        attempt = 0
        while True:
            try:
                result = self._handle(batch)
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                self.metrics.retries.labels(self.stage).inc()
                if attempt == 1 and isinstance(exc, redis.exceptions.ConnectionError):
                    # redis-py reconnects by itself on the retry; count the outage once.
                    self.metrics.reconnects.labels("redis").inc()
                self.metrics.healthy.set(0)
                delay = getattr(exc, "retry_after", None) or backoff_delay(
                    attempt, base=0.1, cap=self.retry_max_s, jitter=0.2
                )
                log.warning(
                    "transient error, retrying batch",
                    extra={"stage": self.stage, "error": repr(exc), "attempt": attempt},
                )
                self.sleep(delay)
                if self._stopping:
                    # Leave the batch unacked; the broker redelivers it to the next worker.
                    raise _StopDuringRetry from exc
                continue
            if attempt:
                self.metrics.healthy.set(1)
            return result

    def _handle(self, batch: list[Message]) -> BatchResult:
        try:
            return self.handler(batch)
        except TRANSIENT_ERRORS:
            raise
        except (*AMQP_ERRORS, *self.broker.connection_errors):
            # The broker went away under a handler that waits with ``sleep`` (gateways):
            # not the messages' fault, so reconnect and let them be redelivered.
            raise
        except InvalidMessage as exc:
            if len(batch) == 1:
                return BatchResult(rejected=[(batch[0], exc.reason)])
            return self._handle_one_by_one(batch)
        except Exception:
            if len(batch) == 1:
                log.exception("handler failed on a single message", extra={"stage": self.stage})
                return BatchResult(rejected=[(batch[0], _describe_current_exception())])
            log.exception("handler failed on a batch; isolating", extra={"stage": self.stage})
            return self._handle_one_by_one(batch)

    def _handle_one_by_one(self, batch: list[Message]) -> BatchResult:
        result = BatchResult()
        for msg in batch:
            result.extend(self._handle([msg]))
        return result

    def _close_quietly(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()


def _describe_current_exception() -> str:
    import sys

    exc = sys.exc_info()[1]
    return f"{type(exc).__name__}: {exc}" if exc else "unknown error"
