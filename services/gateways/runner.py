"""The shared delivery runner: everything a gateway does besides rendering and sending.

For a batch of deliveries of one medium type it

1. decodes them (a bad body is dead-lettered with the reason);
2. drops the ones already delivered (``NS:delivered:<id>`` marker, one
   pipeline read, plus an in-process memory of recent successes so a Redis
   hiccup after a send cannot page twice);
3. applies the per-address token bucket: a delivery over the limit reserves a
   slot and is parked in a delay queue until then (never dropped);
4. sends the rest concurrently on a thread pool, so one slow receiver does
   not hold the others; each send is bounded by ``delivery_timeout_s``;
5. decides per attempt (:func:`services.gateways.core.decide`): delivered,
   retry later (republished durably to a delay queue), or dead-letter;
6. writes markers and the delivery log in one Redis transaction.

The :class:`~shared.consumer.BatchConsumer` then publishes the retries and
dead letters in one AMQP transaction and only then acks the batch, so no
delivery is acked before it is delivered, scheduled or dead-lettered.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from services.gateways.core import (
    Decision,
    Outcome,
    Progress,
    RetryPolicy,
    SendResult,
    classify,
    decide,
    expiration_ms,
    parse_retry_after,
    progress_from_headers,
    progress_headers,
    retry_level,
)
from services.gateways.destinations import Allowlist, DestinationDenied, check_destination
from services.gateways.log import DeliveryLogEntry, append_entries, entry_for
from services.gateways.ratelimit import RateLimiter
from shared.amqp import Names, OutMessage
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.keys import Keys
from shared.models import DELIVERY_DECODER, Delivery

log = logging.getLogger(__name__)

DELIVERED_TTL_S = 7 * 86400
RECENT_MAX = 50_000
USER_AGENT = "tocsin-gateway/0.1"


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a medium's ``send`` may use: settings, a shared HTTP client, the destination guard."""

    settings: Settings
    http: httpx.Client
    allow: Allowlist

    def post_json(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> SendResult:
        """POST ``body`` as JSON to a checked destination and classify the answer."""
        try:
            check_destination(url, self.allow)
        except DestinationDenied as exc:
            return SendResult.failed(str(exc))
        except OSError as exc:
            return SendResult.retry(f"cannot resolve destination: {exc}")
        try:
            response = self.http.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        except httpx.TimeoutException as exc:
            return SendResult.retry(
                f"timeout after {self.settings.delivery_timeout_s:g} s: {type(exc).__name__}"
            )
        except httpx.HTTPError as exc:
            return SendResult.retry(f"{type(exc).__name__}: {exc}")
        outcome = classify(response.status_code)
        if outcome is Outcome.DELIVERED:
            return SendResult.ok(response.status_code)
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        if outcome is Outcome.RETRY:
            after = parse_retry_after(response.headers.get("retry-after"), time.time())
            return SendResult.retry(error, status=response.status_code, retry_after=after)
        return SendResult.failed(error, status=response.status_code)


Sender = Callable[[Delivery, SendContext], SendResult]


def make_http_client(settings: Settings) -> httpx.Client:
    """One pooled client per gateway; redirects are not followed (they would skip the guard)."""
    return httpx.Client(
        timeout=settings.delivery_timeout_s,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max(4, settings.gateway_concurrency)),
        headers={"User-Agent": USER_AGENT},
    )


class RunnerMetrics:
    """What the runner reports; implemented by the worker's Prometheus metrics."""

    def sent(self, latency_s: float) -> None: ...
    def failed(self) -> None: ...
    def retried(self) -> None: ...
    def dead(self) -> None: ...
    def deferred(self) -> None: ...
    def duplicate(self) -> None: ...
    def in_flight(self, delta: int) -> None: ...


@dataclass(slots=True)
class _Item:
    msg: Message
    delivery: Delivery
    progress: Progress


@dataclass
class DeliveryRunner:
    """Runs batches of deliveries of one medium type (see the module docstring)."""

    settings: Settings
    medium_type: str
    send: Sender
    redis: Any
    metrics: RunnerMetrics = field(default_factory=RunnerMetrics)
    http: httpx.Client | None = None
    # Called while waiting for sends, so the AMQP connection keeps its heartbeats.
    keep_alive: Callable[[], None] | None = None
    names: Names = field(init=False)
    keys: Keys = field(init=False)
    policy: RetryPolicy = field(init=False)
    limiter: RateLimiter = field(init=False)
    pool: ThreadPoolExecutor = field(init=False)
    ctx: SendContext = field(init=False)
    _recent: OrderedDict[str, float] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        s = self.settings
        self.names = Names(s.namespace)
        self.keys = Keys(s.namespace)
        self.policy = RetryPolicy(
            attempts=s.delivery_attempts,
            deadline_s=s.delivery_deadline_s,
            base_s=s.retry_base_s,
            max_s=s.retry_max_s,
        )
        self.limiter = RateLimiter(rate=s.rate_per_s, burst=s.rate_burst)
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, s.gateway_concurrency), thread_name_prefix=f"gw-{self.medium_type}"
        )
        self.ctx = SendContext(
            settings=s,
            http=self.http if self.http is not None else make_http_client(s),
            allow=Allowlist.parse(s.destination_allow),
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.ctx.http.close()

    # ------------------------------------------------------------------ batch

    def handle(self, batch: Sequence[Message]) -> BatchResult:
        """Handle one batch; returns retries to publish and deliveries to dead-letter."""
        result = BatchResult()
        items = self._decode(batch, result)
        items = self._fresh(items)
        now = time.time()
        to_send: list[_Item] = []
        for item in items:
            wait_s = self._rate_wait(item, now)
            if wait_s > 0:
                slot = Progress(
                    attempts=item.progress.attempts,
                    first_attempt=item.progress.first_attempt,
                    slot=now + wait_s,
                )
                result.outputs.append(self._delayed(item, slot, wait_s, "rate limited"))
                self.metrics.deferred()
            else:
                to_send.append(item)
        outcomes = self._send_all(to_send)
        entries: list[DeliveryLogEntry] = []
        delivered: list[str] = []
        done = time.time()
        for item, (res, latency) in zip(to_send, outcomes, strict=True):
            decision = decide(res, item.progress, done, self.policy, random.random())
            entries.append(
                entry_for(
                    item.delivery,
                    outcome=decision.outcome,
                    attempts=decision.progress.attempts,
                    latency_ms=latency * 1000,
                    error=res.error,
                    now=done,
                    status=res.status,
                )
            )
            self._apply(item, res, decision, latency, result, delivered)
        self._write(delivered, entries)
        if entries:
            log.info(
                "batch delivered",
                extra={
                    "medium": self.medium_type,
                    "attempted": len(entries),
                    "delivered": len(delivered),
                    "deferred": len(items) - len(to_send),
                },
            )
        if len(self.limiter) > 10_000:
            self.limiter.prune(done)
        return result

    def _decode(self, batch: Sequence[Message], result: BatchResult) -> list[_Item]:
        items: list[_Item] = []
        for msg in batch:
            try:
                delivery = DELIVERY_DECODER.decode(msg.body)
            except msgspec.DecodeError as exc:
                result.rejected.append((msg, f"invalid delivery: {exc}"))
                self.metrics.dead()
                continue
            if delivery.medium.type != self.medium_type:
                result.rejected.append(
                    (
                        msg,
                        f"medium.type: {delivery.medium.type!r} sent to the {self.medium_type} gateway",
                    )
                )
                self.metrics.dead()
                continue
            items.append(_Item(msg, delivery, progress_from_headers(msg.headers)))
        return items

    def _fresh(self, items: list[_Item]) -> list[_Item]:
        """Drop deliveries already delivered (Redis marker or recent memory) and in-batch copies."""
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            pipe.exists(self.keys.delivered(item.delivery.id))
        flags = pipe.execute()
        seen: set[str] = set()
        out: list[_Item] = []
        for item, flag in zip(items, flags, strict=True):
            did = item.delivery.id
            if flag or did in self._recent or did in seen:
                self.metrics.duplicate()
                log.info(
                    "already delivered, skipping",
                    extra={"delivery_id": did, "medium": self.medium_type},
                )
                continue
            seen.add(did)
            out.append(item)
        return out

    def _rate_wait(self, item: _Item, now: float) -> float:
        slot = item.progress.slot
        if slot is not None and slot <= now + 0.05:
            return 0.0  # this message already holds a reserved slot that has come
        if slot is not None:
            return slot - now  # came back early (should not happen with TTLs): wait the rest
        return self.limiter.reserve(item.delivery.medium.address, now)

    def _send_all(self, items: list[_Item]) -> list[tuple[SendResult, float]]:
        futures: list[Future[tuple[SendResult, float]]] = []
        for item in items:
            self.metrics.in_flight(1)
            futures.append(self.pool.submit(self._send_one, item.delivery))
        pending = set(futures)
        try:
            while True:
                # Wait on the sends first: a fast receiver answers within the first wait.
                _, pending = wait(pending, timeout=0.05)
                if not pending:
                    break
                if self.keep_alive is not None:
                    self.keep_alive()  # AMQP heartbeats keep flowing during slow sends
        finally:
            # If the broker connection dropped (keep_alive raised), still let every started
            # send finish and write its delivered-marker before the batch is redelivered.
            wait(pending)
        return [f.result() for f in futures]

    def _send_one(self, delivery: Delivery) -> tuple[SendResult, float]:
        started = time.perf_counter()
        try:
            res = self.send(delivery, self.ctx)
        except Exception as exc:
            # A bug or an unexpected library error: retry (bounded), never lose the page.
            log.exception(
                "sender raised", extra={"delivery_id": delivery.id, "medium": self.medium_type}
            )
            res = SendResult.retry(f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.in_flight(-1)
        if res.outcome is Outcome.DELIVERED:
            self._mark_delivered(delivery.id)
        return res, time.perf_counter() - started

    def _mark_delivered(self, delivery_id: str) -> None:
        """Record a success the moment the receiver confirmed it, not at the end of the batch.

        A crash (``kill -9``) between a send and this marker pages twice on
        redelivery; writing it here, from the sending thread, shrinks that
        window from the whole batch's send time to one Redis round trip
        (measured in tests/faults/test_crash.py).  ``_write`` sets it again with
        the log; if Redis is down here, the in-process memory covers retries.
        """
        try:
            self.redis.set(
                self.keys.delivered(delivery_id), int(time.time()), nx=True, ex=DELIVERED_TTL_S
            )
        except Exception as exc:  # any Redis trouble: the batch write tries again
            log.warning(
                "delivered marker not written yet",
                extra={"delivery_id": delivery_id, "error": repr(exc)},
            )

    def _apply(
        self,
        item: _Item,
        res: SendResult,
        decision: Decision,
        latency: float,
        result: BatchResult,
        delivered: list[str],
    ) -> None:
        extra = {
            "delivery_id": item.delivery.id,
            "notification_id": item.delivery.notification_id,
            "entity": item.delivery.entity,
            "check": item.delivery.check,
            "medium": self.medium_type,
            "outcome": decision.outcome,
            "attempt": decision.progress.attempts,
            "error": res.error[:300],
        }
        if decision.action == "delivered":
            delivered.append(item.delivery.id)
            self.metrics.sent(latency)
            log.info("delivered", extra={**extra, "latency_ms": round(latency * 1000, 1)})
        elif decision.action == "retry":
            result.outputs.append(self._delayed(item, decision.progress, decision.delay, res.error))
            self.metrics.retried()
            log.warning(
                "delivery failed, will retry",
                extra={**extra, "retry_in_s": round(decision.delay, 2)},
            )
        else:
            result.rejected.append((item.msg, f"{self.medium_type}: {decision.reason}"))
            if decision.outcome == "failed":
                self.metrics.failed()
            self.metrics.dead()
            log.warning("delivery dead-lettered", extra=extra)

    def _delayed(self, item: _Item, progress: Progress, delay: float, error: str) -> OutMessage:
        """The delivery republished to the delay queue that returns it to the gateway after ``delay``."""
        return OutMessage(
            exchange="",
            routing_key=self.names.gateway_retry(self.medium_type, retry_level(delay)),
            body=item.msg.body,
            message_id=item.msg.message_id or item.delivery.id,
            headers=progress_headers(progress, error),
            expiration=expiration_ms(delay),
        )

    def _write(self, delivered: list[str], entries: list[DeliveryLogEntry]) -> None:
        """Markers and log in one transaction; remember successes locally first (Redis may fail)."""
        now = time.time()
        for did in delivered:
            self._recent[did] = now
        while len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)
        if not delivered and not entries:
            return
        pipe = self.redis.pipeline(transaction=True)
        for did in delivered:
            pipe.set(self.keys.delivered(did), int(now), nx=True, ex=DELIVERED_TTL_S)
        append_entries(pipe, self.keys, entries)
        pipe.execute()
