"""Sending a batch's chains: each lane's deliveries one after the other, different lanes at once.

HTTP media go through one libcurl multi handle in the calling thread
(services/gateways/transport.py); other media (email) through a thread pool,
a lane per task.  Each send is bounded by ``delivery_timeout_s``.

Each attempt is decided at once (:func:`services.gateways.core.decide`) and
recorded (:class:`~services.gateways.records.Records`) before the lane's
next delivery starts; a retried delivery stops its lane, the rest of which is
parked behind it.  When the worker is asked to stop, sends not started yet
are parked and go out after the restart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from services.gateways import transport
from services.gateways.core import HttpRequest, RetryPolicy, SendResult, decide
from services.gateways.deliveries import Attempt, Item
from services.gateways.metrics import RunnerMetrics
from services.gateways.records import Records
from services.gateways.requeue import Requeue
from services.gateways.send_context import RequestBuilder, SendContext, Sender
from shared.amqp import OutMessage
from shared.config import Settings
from shared.consumer import BatchResult
from shared.destinations import Allowlist

log = logging.getLogger(__name__)

STOPPING = "gateway stopping; sent after restart"


@dataclass
class SendLoop:
    """Sends chains of one medium type (see the module docstring); :meth:`close` when done."""

    settings: Settings
    medium_type: str
    send: Sender
    request: RequestBuilder | None
    policy: RetryPolicy
    records: Records
    requeue: Requeue
    metrics: RunnerMetrics
    ctx: SendContext = field(init=False)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)
    _multi: transport.MultiSender | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        s = self.settings
        self.ctx = SendContext(settings=s, allow=Allowlist.parse(s.destination_allow))
        concurrency = max(1, s.gateway_concurrency)
        if self.request is not None:
            self._multi = transport.MultiSender(
                self.ctx.allow, s.delivery_timeout_s, concurrency=concurrency
            )
        else:
            self._pool = ThreadPoolExecutor(
                max_workers=concurrency, thread_name_prefix=f"gw-{self.medium_type}"
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._multi is not None:
            self._multi.close()

    def run(
        self,
        chains: list[list[Item]],
        result: BatchResult,
        keep_alive: Callable[[], None] | None,
        stopping: Callable[[], bool] | None,
    ) -> list[Attempt]:
        """Send every chain; parked deliveries go to ``result``, attempts are returned.

        ``keep_alive`` is called while waiting for sends, so the AMQP
        connection keeps its heartbeats; ``stopping`` says the worker was asked
        to stop (HTTP media only: a thread's send cannot be taken back).
        """
        if not chains:
            return []
        if self._multi is not None:
            return self._send_http(chains, result, keep_alive, stopping)
        return self._send_threads(chains, result, keep_alive)

    def _send_http(
        self,
        chains: list[list[Item]],
        result: BatchResult,
        keep_alive: Callable[[], None] | None,
        stopping: Callable[[], bool] | None,
    ) -> list[Attempt]:
        """Every lane through the libcurl multi handle; a lane's next starts when one finishes."""
        assert self._multi is not None and self.request is not None
        build = self.request
        attempts: list[Attempt] = []
        rest: dict[int, list[Item]] = {}

        def start(item: Item) -> tuple[Item, HttpRequest | SendResult]:
            self.metrics.in_flight(1)
            try:
                return item, build(item.delivery, self.settings)
            except Exception as exc:  # a rendering bug must not lose the page: retry, bounded
                log.exception("request builder raised", extra={"delivery_id": item.delivery.id})
                return item, SendResult.retry(f"{type(exc).__name__}: {exc}")

        def finished(
            done: list[tuple[Any, SendResult, float]],
        ) -> Iterable[tuple[Item, HttpRequest | SendResult]]:
            batch = [self._decided(item, res, latency) for item, res, latency in done]
            self.records.record(batch)
            attempts.extend(batch)
            follow: list[tuple[Item, HttpRequest | SendResult]] = []
            for a in batch:
                self.metrics.in_flight(-1)
                nxt = self._next_in_lane(a, rest.pop(id(a.item), []), result.outputs)
                if nxt:
                    rest[id(nxt[0])] = nxt[1:]
                    follow.append(start(nxt[0]))
            return follow

        first: list[tuple[Item, HttpRequest | SendResult]] = []
        for chain in chains:
            rest[id(chain[0])] = chain[1:]
            first.append(start(chain[0]))
        left = self._multi.run(first, finished, keep_alive, stopping)
        for item, _req in left:
            self.metrics.in_flight(-1)
            result.outputs.append(self.requeue.park(item, STOPPING))
            for later in rest.pop(id(item), []):
                result.outputs.append(self.requeue.park(later, STOPPING))
        return attempts

    def _send_threads(
        self,
        chains: list[list[Item]],
        result: BatchResult,
        keep_alive: Callable[[], None] | None,
    ) -> list[Attempt]:
        """Each lane as one task on the pool (media whose client blocks, like SMTP)."""
        assert self._pool is not None
        parks: list[OutMessage] = []

        def run_chain(chain: list[Item]) -> list[Attempt]:
            done: list[Attempt] = []
            todo = chain
            while todo:
                item, todo = todo[0], todo[1:]
                a = self._send_one(item)
                self.records.record([a])
                done.append(a)
                todo = self._next_in_lane(a, todo, parks)
            return done

        futures: list[Future[list[Attempt]]] = [self._pool.submit(run_chain, c) for c in chains]
        pending = set(futures)
        try:
            while True:
                # Wait on the sends first: a fast receiver answers within the first wait.
                _, pending = wait(pending, timeout=0.05)
                if not pending:
                    break
                if keep_alive is not None:
                    keep_alive()  # AMQP heartbeats keep flowing during slow sends
        finally:
            # If the broker connection dropped (keep_alive raised), still let every started
            # send finish and write its delivered-marker before the batch is redelivered.
            wait(pending)
        result.outputs.extend(parks)
        return [a for f in futures for a in f.result()]

    def _send_one(self, item: Item) -> Attempt:
        self.metrics.in_flight(1)
        started = time.perf_counter()
        try:
            res = self.send(item.delivery, self.ctx)
        except Exception as exc:
            # A bug or an unexpected library error: retry (bounded), never lose the page.
            log.exception(
                "sender raised",
                extra={"delivery_id": item.delivery.id, "medium": self.medium_type},
            )
            res = SendResult.retry(f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.in_flight(-1)
        return self._decided(item, res, time.perf_counter() - started)

    def _decided(self, item: Item, res: SendResult, latency: float) -> Attempt:
        decision = decide(res, item.progress, time.time(), self.policy, random.random())
        return Attempt(item, res, decision, latency)

    def _next_in_lane(self, a: Attempt, todo: list[Item], out: list[OutMessage]) -> list[Item]:
        """What of the lane may go on after ``a``: all of it, unless ``a`` is retried.

        Then the rest of the lane is parked behind it (appended to ``out``).
        """
        if a.decision.action != "retry" or not todo:
            return todo
        for later in todo:
            out.append(
                self.requeue.park(later, "behind a delivery being retried", a.decision.delay)
            )
        return []
