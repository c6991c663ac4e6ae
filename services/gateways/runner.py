"""The shared delivery runner: everything a gateway does besides rendering and sending.

For a batch of deliveries of one medium type it

1. decodes them (a bad body is dead-lettered with the reason);
2. reads, in one pipeline, whether each was already delivered (plus an
   in-process memory of recent successes, so a Redis hiccup after a send
   cannot page twice) and where it stands in its *lane*
   (shared/lanes.py): deliveries of one (address, check) leave in the order
   the notifier produced them, so one that has an unfinished delivery ahead
   of it outside this batch is *parked* in a delay queue and looks again
   later;
3. takes a token per delivery from the per-address bucket in Redis, shared by
   every gateway process of the type; one over the limit reserves a slot and
   waits in a delay queue for it (never dropped), and the rest of its lane
   waits behind it;
4. sends: each lane's deliveries one after the other, different lanes at
   once.  HTTP media go through one libcurl multi handle in this thread
   (services/gateways/transport.py); other media (email) through a thread
   pool, a lane per task.  Each send is bounded by ``delivery_timeout_s``;
5. decides per attempt (:func:`services.gateways.core.decide`): delivered,
   retry later (republished durably to a delay queue; the lane waits), or
   dead-letter.  A finished delivery (delivered or dead) leaves its lane and
   a delivered one gets its marker at once, in one Redis round trip for the
   sends that finished together, before the lane's next delivery starts;
6. appends the delivery log.

The :class:`~shared.consumer.BatchConsumer` then publishes the retries,
parked deliveries and dead letters in one AMQP transaction and only then
acks the batch, so no delivery is acked before it is delivered, scheduled
or dead-lettered.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.gateways import transport
from services.gateways.core import (
    DeliveryDecision,
    HttpRequest,
    Progress,
    RetryPolicy,
    SendResult,
    decide,
    expiration_ms,
    park_delay,
    progress_from_headers,
    progress_headers,
    retry_level,
)
from services.gateways.ratelimit import SharedRateLimiter, limit_for
from shared.amqp import Names, OutMessage
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.delivery_log import append_entries, entry_for
from shared.destinations import Allowlist
from shared.keys import Keys
from shared.lanes import Candidate, LaneView, delivery_lane, plan
from shared.models import ENCODER, Delivery, decode_deliveries

log = logging.getLogger(__name__)

DELIVERED_TTL_S = 7 * 86400
RECENT_MAX = 50_000


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a medium's ``send`` may use: settings and the destination guard."""

    settings: Settings
    allow: Allowlist

    def execute(self, req: HttpRequest) -> SendResult:
        """Send one prepared request (blocking)."""
        return transport.perform(req, self.allow, self.settings.delivery_timeout_s)


Sender = Callable[[Delivery, SendContext], SendResult]
# HTTP media: the request for a delivery, or a result when there is nothing to send.
RequestBuilder = Callable[[Delivery, Settings], HttpRequest | SendResult]


class RunnerMetrics:
    """What the runner reports; implemented by the worker's Prometheus metrics."""

    def sent(self, latency_s: float) -> None: ...
    def failed(self) -> None: ...
    def retried(self) -> None: ...
    def dead(self) -> None: ...
    def deferred(self) -> None: ...
    def duplicate(self) -> None: ...
    def parked(self) -> None: ...
    def in_flight(self, delta: int) -> None: ...


@dataclass(slots=True)
class _Item:
    msg: Message
    delivery: Delivery
    progress: Progress
    lane: str
    alone: bool  # the message holds this delivery only (else it came in an array)

    def body(self) -> bytes:
        """This delivery's own body, for a retry, a wait in a delay queue or a dead letter."""
        return self.msg.body if self.alone else ENCODER.encode(self.delivery)

    def message(self) -> Message:
        """The message to dead-letter for this delivery alone."""
        return self.msg if self.alone else dataclasses.replace(self.msg, body=self.body())


@dataclass(slots=True)
class _Outcome:
    item: _Item
    result: SendResult
    decision: DeliveryDecision
    latency: float


@dataclass
class DeliveryRunner:
    """Runs batches of deliveries of one medium type (see the module docstring)."""

    settings: Settings
    medium_type: str
    send: Sender
    redis: Any
    metrics: RunnerMetrics = field(default_factory=RunnerMetrics)
    request: RequestBuilder | None = None
    # Called while waiting for sends, so the AMQP connection keeps its heartbeats.
    keep_alive: Callable[[], None] | None = None
    # True once the worker was asked to stop: sends not started yet go back to the queue.
    stopping: Callable[[], bool] | None = None
    names: Names = field(init=False)
    keys: Keys = field(init=False)
    policy: RetryPolicy = field(init=False)
    limiter: SharedRateLimiter = field(init=False)
    ctx: SendContext = field(init=False)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)
    _multi: transport.MultiSender | None = field(init=False, default=None)
    _recent: OrderedDict[str, float] = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _unrecorded: list[_Outcome] = field(init=False, default_factory=list)

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
        self.limiter = SharedRateLimiter(self.redis, self.keys)
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

    # ------------------------------------------------------------------ batch

    def handle(self, batch: Sequence[Message]) -> BatchResult:
        """Handle one batch; returns retries, parked deliveries and dead letters to publish."""
        result = BatchResult()
        items = self._decode(batch, result)
        now = time.time()
        chains = self._gate(items, result, now)
        chains = self._throttle(chains, result, now)
        outcomes = self._send_chains(chains, result)
        with self._lock:
            unrecorded, self._unrecorded = self._unrecorded, []
        if unrecorded:
            # Redis failed while sending: write now, or fail the batch so it is retried
            # (the memory of recent successes keeps those from being sent again).
            self._write_records(unrecorded)
        for o in outcomes:
            self._report(o, result)
        if outcomes:
            log.info(
                "batch delivered",
                extra={
                    "medium": self.medium_type,
                    "attempted": len(outcomes),
                    "delivered": sum(o.decision.action == "delivered" for o in outcomes),
                    "held": len(items) - len(outcomes),
                },
            )
        return result

    def _decode(self, batch: Sequence[Message], result: BatchResult) -> list[_Item]:
        items: list[_Item] = []
        for msg in batch:
            try:
                deliveries = decode_deliveries(msg.body)
            except msgspec.DecodeError as exc:
                result.rejected.append((msg, f"invalid delivery: {exc}"))
                self.metrics.dead()
                continue
            progress = progress_from_headers(msg.headers)
            alone = len(deliveries) == 1 and not msg.body.startswith(b"[")
            for delivery in deliveries:
                item = _Item(msg, delivery, progress, delivery_lane(delivery), alone)
                if delivery.medium.type != self.medium_type:
                    wrong = delivery.medium.type
                    why = f"medium.type: {wrong!r} sent to the {self.medium_type} gateway"
                    result.rejected.append((item.message(), why))
                    self.metrics.dead()
                    continue
                items.append(item)
        return items

    def _gate(self, items: list[_Item], result: BatchResult, now: float) -> list[list[_Item]]:
        """Drop what was delivered already; park what has an unfinished delivery ahead of it."""
        if not items:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            lane = self.keys.lane(item.lane)
            pipe.exists(self.keys.delivered(item.delivery.id))
            pipe.zrank(lane, item.delivery.id)
            pipe.zrange(lane, 0, 0, withscores=True)
        replies = pipe.execute()
        seen: set[str] = set()
        fresh: list[_Item] = []
        candidates: list[Candidate] = []
        done_lanes: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            flag, rank, head = replies[3 * i : 3 * i + 3]
            did = item.delivery.id
            if flag or did in self._recent or did in seen:
                if rank is not None:
                    done_lanes.append((item.lane, did))  # delivered, but still holding its lane
                self.metrics.duplicate()
                log.info(
                    "already delivered, skipping",
                    extra={"delivery_id": did, "medium": self.medium_type},
                )
                continue
            seen.add(did)
            view = LaneView(
                rank=rank,
                head_id=head[0][0] if head else None,
                head_seq=int(head[0][1]) if head else None,
            )
            candidates.append(Candidate(len(fresh), item.lane, did, item.delivery.seq, view))
            fresh.append(item)
        gate = plan(candidates, now, self.settings.lane_stale_after_s)
        if gate.stale or done_lanes:
            pipe = self.redis.pipeline(transaction=False)
            for lane, did in done_lanes:
                pipe.zrem(self.keys.lane(lane), did)
            for lane, head_id in gate.stale:
                pipe.zrem(self.keys.lane(lane), head_id)
                log.warning(
                    "lane head presumed lost, no longer waited for",
                    extra={"delivery_id": head_id, "medium": self.medium_type},
                )
            pipe.execute()
        for index, why in gate.parked:
            result.outputs.append(self._park(fresh[index], why))
        return [[fresh[i] for i in chain] for chain in gate.chains]

    def _throttle(
        self, chains: list[list[_Item]], result: BatchResult, now: float
    ) -> list[list[_Item]]:
        """Take a token per delivery; one over the limit waits for its slot, its lane behind it.

        Tokens are taken a rank at a time (the first of every chain, then the
        second of the chains still going, ...): a lane stopped by the limit
        takes no tokens for the deliveries parked behind it.  Chains longer
        than one are rare (two notifications of a check in one batch), so
        this is one round trip, seldom two.
        """
        kept: list[list[_Item]] = [[] for _ in chains]
        going = list(range(len(chains)))
        depth = 0
        while going:
            asks = [(c, chains[c][depth]) for c in going if depth < len(chains[c])]
            if not asks:
                break
            wants = []
            for _, item in asks:
                if item.progress.slot is None:
                    m = item.delivery.medium
                    wants.append((m.type, m.address, limit_for(m.type, m.settings, self.settings)))
            reserved = iter(self.limiter.reserve(wants, now))
            going = []
            for c, item in asks:
                slot = item.progress.slot
                wait_s = next(reserved) if slot is None else max(0.0, slot - now)
                if wait_s <= 0.05:
                    kept[c].append(item)
                    going.append(c)
                    continue
                progress = msgspec.structs.replace(item.progress, slot=now + wait_s)
                result.outputs.append(self._delayed(item, progress, wait_s, "rate limited"))
                self.metrics.deferred()
                for later in chains[c][depth + 1 :]:
                    result.outputs.append(
                        self._park(later, "behind a rate-limited delivery", wait_s)
                    )
            depth += 1
        return [k for k in kept if k]

    # ------------------------------------------------------------------ sending

    def _send_chains(self, chains: list[list[_Item]], result: BatchResult) -> list[_Outcome]:
        if not chains:
            return []
        if self._multi is not None:
            return self._send_http(chains, result)
        return self._send_threads(chains, result)

    def _send_http(self, chains: list[list[_Item]], result: BatchResult) -> list[_Outcome]:
        """Every lane through the libcurl multi handle; a lane's next starts when one finishes."""
        assert self._multi is not None and self.request is not None
        build = self.request
        outcomes: list[_Outcome] = []
        rest: dict[int, list[_Item]] = {}

        def start(item: _Item) -> tuple[_Item, HttpRequest | SendResult]:
            self.metrics.in_flight(1)
            try:
                return item, build(item.delivery, self.settings)
            except Exception as exc:  # a rendering bug must not lose the page: retry, bounded
                log.exception("request builder raised", extra={"delivery_id": item.delivery.id})
                return item, SendResult.retry(f"{type(exc).__name__}: {exc}")

        def finished(
            done: list[tuple[Any, SendResult, float]],
        ) -> Iterable[tuple[_Item, HttpRequest | SendResult]]:
            batch = [self._decided(item, res, latency) for item, res, latency in done]
            self._record(batch)
            outcomes.extend(batch)
            follow: list[tuple[_Item, HttpRequest | SendResult]] = []
            for o in batch:
                self.metrics.in_flight(-1)
                nxt = self._next_in_lane(o, rest.pop(id(o.item), []), result.outputs)
                if nxt:
                    rest[id(nxt[0])] = nxt[1:]
                    follow.append(start(nxt[0]))
            return follow

        first: list[tuple[_Item, HttpRequest | SendResult]] = []
        for chain in chains:
            rest[id(chain[0])] = chain[1:]
            first.append(start(chain[0]))
        left = self._multi.run(first, finished, self.keep_alive, self.stopping)
        for item, _req in left:
            self.metrics.in_flight(-1)
            result.outputs.append(self._park(item, "gateway stopping; sent after restart"))
            for later in rest.pop(id(item), []):
                result.outputs.append(self._park(later, "gateway stopping; sent after restart"))
        return outcomes

    def _send_threads(self, chains: list[list[_Item]], result: BatchResult) -> list[_Outcome]:
        """Each lane as one task on the pool (media whose client blocks, like SMTP)."""
        assert self._pool is not None
        parks: list[OutMessage] = []

        def run_chain(chain: list[_Item]) -> list[_Outcome]:
            done: list[_Outcome] = []
            todo = chain
            while todo:
                item, todo = todo[0], todo[1:]
                o = self._send_one(item)
                self._record([o])
                done.append(o)
                todo = self._next_in_lane(o, todo, parks)
            return done

        futures: list[Future[list[_Outcome]]] = [self._pool.submit(run_chain, c) for c in chains]
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
        result.outputs.extend(parks)
        return [o for f in futures for o in f.result()]

    def _send_one(self, item: _Item) -> _Outcome:
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

    def _decided(self, item: _Item, res: SendResult, latency: float) -> _Outcome:
        decision = decide(res, item.progress, time.time(), self.policy, random.random())
        return _Outcome(item, res, decision, latency)

    def _next_in_lane(self, o: _Outcome, todo: list[_Item], out: list[OutMessage]) -> list[_Item]:
        """What of the lane may go on after ``o``: all of it, unless ``o`` is retried.

        Then the rest of the lane is parked behind it (appended to ``out``).
        """
        if o.decision.action != "retry" or not todo:
            return todo
        for later in todo:
            out.append(self._park(later, "behind a delivery being retried", o.decision.delay))
        return []

    def _record(self, outcomes: Sequence[_Outcome]) -> None:
        """Attempts that just finished: markers, lanes and log, in one round trip, at once.

        Delivered deliveries get their marker and finished ones (delivered or
        dead) leave their lanes before the lane's next delivery starts.  A
        crash (``kill -9``) between a send and its marker pages twice on
        redelivery; writing it as soon as the receiver confirmed, not at the
        end of the batch, shrinks that window to one Redis round trip
        (tests/faults/test_crash.py).  If Redis fails here the outcomes are
        kept for :meth:`handle` to write once more (or fail the batch), and
        the in-process memory of successes keeps a retried batch from paging
        twice.
        """
        now = time.time()
        with self._lock:
            for o in outcomes:
                if o.decision.action == "delivered":
                    self._recent[o.item.delivery.id] = now
            while len(self._recent) > RECENT_MAX:
                self._recent.popitem(last=False)
        try:
            self._write_records(outcomes, now)
        except Exception as exc:
            log.warning(
                "delivered marker not written yet",
                extra={"delivery_ids": [o.item.delivery.id for o in outcomes], "error": repr(exc)},
            )
            with self._lock:
                self._unrecorded.extend(outcomes)

    def _write_records(self, outcomes: Sequence[_Outcome], now: float | None = None) -> None:
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        for o in outcomes:
            did = o.item.delivery.id
            if o.decision.action == "delivered":
                pipe.set(self.keys.delivered(did), int(now), nx=True, ex=DELIVERED_TTL_S)
            if o.decision.action != "retry":
                pipe.zrem(self.keys.lane(o.item.lane), did)
        entries = [
            entry_for(
                o.item.delivery,
                outcome=o.decision.outcome,
                attempts=o.decision.progress.attempts,
                latency_ms=o.latency * 1000,
                error=o.result.error,
                now=now,
                status=o.result.status,
            )
            for o in outcomes
        ]
        append_entries(pipe, self.keys, entries)
        pipe.execute()

    def _report(self, o: _Outcome, result: BatchResult) -> None:
        item, decision, res = o.item, o.decision, o.result
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
            self.metrics.sent(o.latency)
            log.info("delivered", extra={**extra, "latency_ms": round(o.latency * 1000, 1)})
        elif decision.action == "retry":
            result.outputs.append(self._delayed(item, decision.progress, decision.delay, res.error))
            self.metrics.retried()
            log.warning(
                "delivery failed, will retry",
                extra={**extra, "retry_in_s": round(decision.delay, 2)},
            )
        else:
            result.rejected.append((item.message(), f"{self.medium_type}: {decision.reason}"))
            if decision.outcome == "failed":
                self.metrics.failed()
            self.metrics.dead()
            log.warning("delivery dead-lettered", extra=extra)

    def _park(self, item: _Item, why: str, at_least: float = 0.0) -> OutMessage:
        """Back to the queue after a short wait, not counted as an attempt."""
        self.metrics.parked()
        progress = msgspec.structs.replace(item.progress, parked=item.progress.parked + 1)
        delay = park_delay(item.progress.parked, at_least)
        log.info(
            "delivery waits for its lane",
            extra={
                "delivery_id": item.delivery.id,
                "medium": self.medium_type,
                "reason": why,
                "retry_in_s": round(delay, 2),
            },
        )
        return self._delayed(item, progress, delay, "")

    def _delayed(self, item: _Item, progress: Progress, delay: float, error: str) -> OutMessage:
        """The delivery republished to the delay queue that returns it to the gateway after ``delay``."""
        return OutMessage(
            exchange="",
            routing_key=self.names.gateway_retry(self.medium_type, retry_level(delay)),
            body=item.body(),
            message_id=item.delivery.id,
            headers=progress_headers(progress, error),
            expiration=expiration_ms(delay),
        )
