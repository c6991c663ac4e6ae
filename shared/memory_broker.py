"""An in-memory broker with a virtual clock, for testing the consumer loop in milliseconds.

In the style of arroyo's ``LocalBroker``: the same contract as
:class:`shared.pika_broker.PikaBroker` (one suite checks both), in one
thread, with no network.  It models what the consumer loop relies on:

- direct, topic (``*``/``#``) and fanout exchanges and the default
  exchange, as :func:`shared.amqp.declare_topology` declares them;
- per-consumer prefetch, cumulative acks, and redelivery (``redelivered``
  set) of whatever a closed or lost session had not acked;
- the quorum queues' ``x-delivery-limit``: a message returned more often
  is dead-lettered to the queue's ``x-dead-letter-exchange``;
- all-or-nothing transactional publishing.

Time is virtual: :meth:`InMemoryBroker.sleep` and a :meth:`poll` that
finds nothing advance the clock at once instead of waiting, so backoff
delays cost nothing.  :meth:`InMemoryBroker.lose_connection` makes every
open session fail as a dropped TCP connection would.  Per-message TTLs
(the gateways' delay queues) are not modelled: such messages stay queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.amqp import Names, OutMessage, declare_topology
from shared.broker import Message, QueueStats


class ConnectionLost(ConnectionError):
    """The in-memory session was closed under its user (see ``lose_connection``)."""


@dataclass(slots=True)
class _Stored:
    body: bytes
    routing_key: str
    message_id: str | None
    headers: Mapping[str, Any]
    timestamp: int | None
    returned: int = 0  # times it went back to the queue unacked


@dataclass(slots=True)
class _Queue:
    arguments: Mapping[str, Any]
    ready: deque[_Stored] = field(default_factory=deque)
    consumers: int = 0


@dataclass(slots=True)
class _Exchange:
    kind: str
    bindings: list[tuple[str, str]] = field(default_factory=list)  # (queue, routing key)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


class InMemoryBroker:
    """Queues and exchanges in memory; one thread; a virtual clock starting at 0."""

    connection_errors: tuple[type[BaseException], ...] = (ConnectionLost,)

    def __init__(self) -> None:
        self.now = 0.0
        self.queues: dict[str, _Queue] = {}
        self.exchanges: dict[str, _Exchange] = {}
        self.sessions: list[InMemorySession] = []
        self.publishes = 0  # committed transactions, for tests of batching

    # ------------------------------------------------------------------ Broker

    def connect(self, name: str) -> InMemorySession:
        session = InMemorySession(self, name)
        self.sessions.append(session)
        return session

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    # ------------------------------------------------------------------ for tests

    def lose_connection(self) -> None:
        """Every open session fails from now on; its unacked deliveries go back."""
        for session in list(self.sessions):
            session.close()
            session.lost = True

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish one message outside any session (a test's producer)."""
        self.route(OutMessage(exchange, routing_key, body, message_id, headers))

    def bodies(self, queue: str) -> list[bytes]:
        """The bodies waiting (not delivered) in ``queue``, in order."""
        return [m.body for m in self.queues[queue].ready]

    def unacked(self) -> int:
        """Deliveries handed out and not yet acked, over all sessions."""
        return sum(len(s.unacked) for s in self.sessions)

    # ------------------------------------------------------------------ internals

    def route(self, msg: OutMessage) -> None:
        for queue in self._targets(msg.exchange, msg.routing_key):
            self.queues[queue].ready.append(
                _Stored(msg.body, msg.routing_key, msg.message_id, msg.headers or {}, msg.timestamp)
            )

    def _targets(self, exchange: str, routing_key: str) -> list[str]:
        if exchange == "":
            return [routing_key] if routing_key in self.queues else []
        ex = self.exchanges.get(exchange)
        if ex is None:
            raise ConnectionLost(f"NOT_FOUND - no exchange {exchange!r}")
        match: Callable[[str], bool]
        if ex.kind == "fanout":
            match = lambda key: True  # noqa: E731
        elif ex.kind == "topic":
            match = lambda key: topic_matches(key, routing_key)  # noqa: E731
        else:
            match = lambda key: key == routing_key  # noqa: E731
        return list(dict.fromkeys(q for q, key in ex.bindings if match(key)))

    def give_back(self, queue: str, stored: _Stored) -> None:
        """An unacked delivery returns to the head of its queue, or is dead-lettered past the limit."""
        q = self.queues.get(queue)
        if q is None:
            return
        stored.returned += 1
        limit = q.arguments.get("x-delivery-limit")
        if limit is not None and stored.returned > int(limit):
            dlx = q.arguments.get("x-dead-letter-exchange")
            if dlx is not None:
                self.route(
                    OutMessage(
                        dlx, stored.routing_key, stored.body, stored.message_id, stored.headers
                    )
                )
            return
        q.ready.appendleft(stored)


class InMemorySession:
    """A :class:`~shared.broker.BrokerSession` on an :class:`InMemoryBroker`."""

    def __init__(self, broker: InMemoryBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self.open = True
        self.lost = False
        self.prefetch: dict[str, int] = {}
        self.unacked: dict[int, tuple[str, _Stored]] = {}
        self._next_tag = 1

    def _check(self) -> None:
        if not self.open:
            raise ConnectionLost(f"session {self.name} is closed")

    # Pika channel method names, so shared.amqp.declare_topology declares on us too.
    def exchange_declare(self, exchange: str, exchange_type: str = "direct", **_: Any) -> None:
        self._check()
        self.broker.exchanges.setdefault(exchange, _Exchange(exchange_type))

    def queue_declare(
        self, queue: str, arguments: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        self._check()
        self.broker.queues.setdefault(queue, _Queue(dict(arguments or {})))

    def queue_bind(
        self, queue: str, exchange: str, routing_key: str | None = None, **_: Any
    ) -> None:
        self._check()
        binding = (queue, queue if routing_key is None else routing_key)
        bindings = self.broker.exchanges[exchange].bindings
        if binding not in bindings:
            bindings.append(binding)

    # ------------------------------------------------------------------ BrokerSession

    def declare_topology(self, names: Names, partitions: int) -> None:
        declare_topology(self, names, partitions)

    def declare_queue(self, queue: str, arguments: Mapping[str, Any]) -> None:
        self.queue_declare(queue, arguments=arguments)

    def consume(self, queue: str, prefetch: int) -> None:
        self._check()
        self.broker.queues[queue].consumers += 1
        self.prefetch[queue] = prefetch

    def poll(self, timeout: float) -> list[Message]:
        self._check()
        got: list[Message] = []
        for queue, prefetch in self.prefetch.items():
            q = self.broker.queues[queue]
            in_flight = sum(1 for name, _ in self.unacked.values() if name == queue)
            while q.ready and in_flight < prefetch:
                stored = q.ready.popleft()
                tag = self._next_tag
                self._next_tag += 1
                self.unacked[tag] = (queue, stored)
                in_flight += 1
                got.append(
                    Message(
                        body=stored.body,
                        delivery_tag=tag,
                        queue=queue,
                        routing_key=stored.routing_key,
                        message_id=stored.message_id,
                        headers=dict(stored.headers),
                        timestamp=stored.timestamp,
                        redelivered=stored.returned > 0,
                    )
                )
        if not got:
            self.broker.sleep(timeout)
        return got

    def publish(self, messages: Sequence[OutMessage]) -> None:
        self._check()
        # A missing exchange fails the whole batch, as the broker's channel error does.
        for msg in messages:
            if msg.exchange and msg.exchange not in self.broker.exchanges:
                raise ConnectionLost(f"NOT_FOUND - no exchange {msg.exchange!r}")
        for msg in messages:
            self.broker.route(msg)
        if messages:
            self.broker.publishes += 1

    def ack(self, delivery_tag: int) -> None:
        self._check()
        if delivery_tag not in self.unacked:
            self.close()
            raise ConnectionLost(f"PRECONDITION_FAILED - unknown delivery tag {delivery_tag}")
        for tag in [t for t in self.unacked if t <= delivery_tag]:
            del self.unacked[tag]

    def queue_stats(self, queue: str) -> QueueStats | None:
        self._check()
        q = self.broker.queues.get(queue)
        return None if q is None else QueueStats(len(q.ready), q.consumers)

    def sleep(self, seconds: float) -> None:
        self._check()
        self.broker.sleep(seconds)

    @property
    def is_open(self) -> bool:
        return self.open

    def close(self) -> None:
        if not self.open:
            return
        self.open = False
        for queue in self.prefetch:
            if queue in self.broker.queues:
                self.broker.queues[queue].consumers -= 1
        # Return in reverse so the oldest ends up first again at each queue's head.
        for tag in sorted(self.unacked, reverse=True):
            queue, stored = self.unacked[tag]
            self.broker.give_back(queue, stored)
        self.unacked.clear()
        if self in self.broker.sessions:
            self.broker.sessions.remove(self)
