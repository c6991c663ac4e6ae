"""Turn the classic queues an older Tocsin declared into quorum queues (``tocsin queues migrate``).

Before this version ``NS.dead`` and the gateways' delay queues
(``NS.gateway.<type>.retry.<level>``) were classic queues, which live on the
one node that declared them: when that node of a cluster dies nobody can
redeclare them and retries and dead letters stall (docs/scaling.md).  They
are quorum queues now.  RabbitMQ cannot change a queue's type, and declaring
an existing classic queue as quorum fails with ``PRECONDITION_FAILED``; the
workers then log :class:`shared.amqp.QueueTypeMismatch`, which names this
command, and retry until it has run.

For each such queue that exists as classic, with its messages kept:

1. declare a quorum *holding* queue ``<queue>.migrating`` with the final
   arguments and bindings (a delay queue's holding queue expires its
   messages into the gateway queue as the old one did);
2. unbind the old queue, move its messages into the holding queue, delete
   it (only if empty: a message that arrived in between is moved first);
3. declare the queue again as quorum with its bindings, unbind the holding
   queue, move the messages back, delete the holding queue.

Each move takes a chunk of messages, waits for the broker to confirm each
copy and only then acks the originals, so a crash leaves every
message in one queue or the other (at worst a chunk in both, never in
neither), and a second run finishes the work: it also empties a holding
queue left behind.
Delay-queue messages restart their per-message TTL when moved, so a retry
may wait up to its delay once more.

Run it with every worker of the old version stopped (it refuses while any
of the namespace's queues has a consumer): an old gateway would go on
publishing to a delay queue between its deletion and redeclaration, where
the broker drops what no queue takes.  Workers of the new version may be
running: they are stuck declaring their topology until the queues are
quorum queues, and resume by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from shared.amqp import (
    GATEWAY_RETRY_LEVELS,
    Names,
    QueueTypeMismatch,
    dead_queue_args,
    declare_queue,
    gateway_retry_args,
)
from shared.models import MEDIUM_TYPES

# Messages moved per ack of the originals.
CHUNK = 200
HOLDING_SUFFIX = ".migrating"

State = Literal["absent", "current", "classic"]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue that must be a quorum queue: its arguments and its (exchange, routing key) bindings."""

    name: str
    arguments: dict[str, Any]
    bindings: tuple[tuple[str, str], ...] = ()

    @property
    def holding(self) -> str:
        return self.name + HOLDING_SUFFIX


@dataclass(frozen=True, slots=True)
class Migrated:
    """One queue moved to quorum: how many messages it got back from the holding queue."""

    queue: str
    messages: int


def formerly_classic(names: Names, medium_types: Iterable[str] = MEDIUM_TYPES) -> list[QueueSpec]:
    """Every queue older versions declared as classic, with what it must be now."""
    specs = [QueueSpec(names.dead, dead_queue_args(), ((names.dead, names.dead),))]
    for mtype in medium_types:
        specs.extend(
            QueueSpec(names.gateway_retry(mtype, level), gateway_retry_args(names, mtype))
            for level in range(GATEWAY_RETRY_LEVELS)
        )
    return specs


def queue_state(conn: BlockingConnection, spec: QueueSpec) -> State:
    """Whether ``spec``'s queue is missing, already what Tocsin declares, or of another type."""
    if not _exists(conn, spec.name):
        return "absent"
    channel = conn.channel()
    try:
        declare_queue(channel, spec.name, spec.arguments)
    except QueueTypeMismatch:
        return "classic"
    channel.close()
    return "current"


def busy_queues(conn: BlockingConnection, queues: Iterable[str]) -> dict[str, int]:
    """Queues (of those that exist) with consumers: name -> consumer count."""
    busy = {}
    for queue in queues:
        channel = conn.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            continue
        channel.close()
        if ok.method.consumer_count:
            busy[queue] = int(ok.method.consumer_count)
    return busy


def migrate_queue(conn: BlockingConnection, spec: QueueSpec) -> Migrated | None:
    """Make ``spec``'s queue a quorum queue, keeping its messages; None if nothing was to do."""
    state = queue_state(conn, spec)
    leftover = _exists(conn, spec.holding)
    if state != "classic" and not leftover:
        return None
    channel = conn.channel()
    channel.confirm_delivery()
    if state == "classic":
        declare_queue(channel, spec.holding, spec.arguments)
        _bind(channel, spec.holding, spec.bindings)
        for exchange, key in spec.bindings:
            channel.queue_unbind(spec.name, exchange, routing_key=key)
        _drain_and_delete(conn, channel, spec.name, spec.holding)
        declare_queue(channel, spec.name, spec.arguments)
    # Bound before the holding queue is unbound: a letter routed in between lands
    # in both (a copy), never in neither.
    _bind(channel, spec.name, spec.bindings)
    for exchange, key in spec.bindings:
        channel.queue_unbind(spec.holding, exchange, routing_key=key)
    moved = _drain_and_delete(conn, channel, spec.holding, spec.name)
    channel.close()
    return Migrated(spec.name, moved)


def migrate(conn: BlockingConnection, specs: Sequence[QueueSpec]) -> list[Migrated]:
    """Migrate each queue that needs it, in order; what was migrated."""
    done = []
    for spec in specs:
        result = migrate_queue(conn, spec)
        if result is not None:
            done.append(result)
    return done


def _exists(conn: BlockingConnection, queue: str) -> bool:
    channel = conn.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    channel.close()
    return True


def _bind(channel: BlockingChannel, queue: str, bindings: Iterable[tuple[str, str]]) -> None:
    for exchange, key in bindings:
        channel.queue_bind(queue, exchange, routing_key=key)


def _drain_and_delete(
    conn: BlockingConnection, channel: BlockingChannel, source: str, target: str
) -> int:
    """Move every message of ``source`` to ``target``, then delete ``source`` once empty.

    The classic queue is deleted with ``if-empty``, so a message published to
    it by name after the last get is moved too.  Quorum queues refuse
    ``if-empty`` (NOT_IMPLEMENTED in 3.10); the only quorum source is the
    holding queue, unbound by then and never published to by name, so
    nothing can arrive in it after the last get.
    """
    moved = 0
    if_empty = not source.endswith(HOLDING_SUFFIX)
    while True:
        moved += _move(conn, channel, source, target)
        # Refused (and the channel closed) if a message arrived since the last get.
        probe = conn.channel()
        try:
            probe.queue_delete(source, if_empty=if_empty)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:
                raise
            continue
        probe.close()
        return moved


def _move(conn: BlockingConnection, publisher: BlockingChannel, source: str, target: str) -> int:
    """Copy ``source``'s messages to ``target`` with their properties, a chunk at a time.

    Each copy is confirmed by the broker (``publisher`` is in confirm mode)
    before the originals are acked, on another channel.  Not a transaction:
    RabbitMQ 3.10 cannot ack a quorum queue's message inside one (the channel
    crashes), and it commits a message that a quorum queue without a leader
    then refuses; a refused copy raises ``NackError`` instead.
    """
    getter = conn.channel()
    moved = 0
    while True:
        count = 0
        last_tag = 0
        while count < CHUNK:
            method, props, body = getter.basic_get(source, auto_ack=False)
            if method is None:
                break
            headers = {k: v for k, v in (props.headers or {}).items() if k != "x-delivery-count"}
            props.headers = headers or None
            publisher.basic_publish("", target, body, properties=props)
            last_tag = method.delivery_tag
            count += 1
        if count:
            getter.basic_ack(last_tag, multiple=True)
        moved += count
        if count < CHUNK:
            getter.close()
            return moved
