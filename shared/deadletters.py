"""The dead-letter queue (``NS.dead``): read, name, replay and purge its messages.

Shared by ``tocsin dead`` and the dashboard's dead-letter page.  Dead letters
reach the queue two ways: a worker rejects a message with a reason (headers
``x-tocsin-stage``, ``x-tocsin-error``, ``x-tocsin-queue``,
``x-tocsin-routing-key``), or the broker gives up on a message that crashed its
consumer ``x-delivery-limit`` times (headers ``x-death`` and
``x-first-death-queue``/``-reason``).  Either way the queue it came from is
known, so a requeue publishes it straight back there (default exchange) with
the dead-letter and retry headers removed: a replayed delivery gets fresh
attempts.

Reading is non-destructive: messages are fetched with ``basic.get`` without
ack and go back, in order, when the channel closes; only the selected ones are
acked, after their copy was committed (AMQP transaction).  List positions
shift, so letters are named by :func:`letter_id`, which stays the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from shared.amqp import Names, connect
from shared.config import Settings

# Headers that describe a past death or past delivery attempts; a replay starts clean.
DROP_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "x-tocsin-", "x-delivery-count")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of ``NS.dead`` as an operator sees it."""

    position: int
    delivery_tag: int
    message_id: str | None
    stage: str
    reason: str
    queue: str | None
    routing_key: str
    time: int | None
    body: bytes
    headers: dict[str, Any]

    @property
    def id(self) -> str:
        """Stable between listings (positions shift): see ``dead_view.letter_id``."""
        return letter_id(self.message_id, self.body, self.reason)


def header_text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def origin(headers: Mapping[str, Any]) -> tuple[str | None, str, str, str]:
    """(queue, routing key, stage, reason) of a dead letter, from our headers or the broker's."""
    if "x-tocsin-queue" in headers:
        return (
            header_text(headers["x-tocsin-queue"]),
            header_text(headers.get("x-tocsin-routing-key", "")),
            header_text(headers.get("x-tocsin-stage", "?")),
            header_text(headers.get("x-tocsin-error", "")),
        )
    deaths = headers.get("x-death") or []
    first = deaths[-1] if deaths else {}  # the broker prepends; the oldest death is last
    queue = headers.get("x-first-death-queue") or first.get("queue")
    reason = headers.get("x-first-death-reason") or first.get("reason") or "unknown"
    keys = first.get("routing-keys") or [""]
    count = first.get("count")
    text = f"broker: {header_text(reason)}" + (f" after {count} death(s)" if count else "")
    if header_text(reason) == "delivery_limit":
        text += " (the message crashed or was rejected by its consumer too many times)"
    return (header_text(queue) if queue else None, header_text(keys[0]), "broker", text)


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers for a replayed copy: no death records, no retry progress; counts replays."""
    kept = {k: v for k, v in headers.items() if not k.startswith(DROP_PREFIXES)}
    kept["x-tocsin-requeued"] = int(headers.get("x-tocsin-requeued", 0) or 0) + 1
    return kept


def letter_id(message_id: str | None, body: bytes, reason: str) -> str:
    """The message id, else ``h`` + 11 hex characters of the body and reason (stable)."""
    if message_id:
        return message_id
    return "h" + hashlib.blake2b(body + b"\0" + reason.encode(), digest_size=8).hexdigest()[:11]


def check_of(body: bytes) -> str:
    """``entity:check`` the message is about (``web1:http +2`` for an array), or ``-``."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return "-"
    items = doc if isinstance(doc, list) else [doc]
    names = [
        f"{d['entity']}:{d['check']}"
        for d in items
        if isinstance(d, dict) and isinstance(d.get("entity"), str) and "check" in d
    ]
    if not names:
        return "-"
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")


@contextmanager
def dead_channel(settings: Settings) -> Iterator[tuple[BlockingChannel, str]]:
    """A channel and the dead-letter queue's name; fetched, unacked letters go back on exit."""
    conn = connect(settings.amqp_url, name="tocsin-dead")
    try:
        yield conn.channel(), Names(settings.namespace).dead
    finally:
        if conn.is_open:
            conn.close()  # unacked messages return to the queue in their order


def fetch(channel: BlockingChannel, queue: str, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, unacked (they return when the channel closes)."""
    letters: list[DeadLetter] = []
    while len(letters) < limit:
        method, props, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        headers = dict(props.headers or {})
        src_queue, rkey, stage, reason = origin(headers)
        stamp = headers.get("x-tocsin-time")
        letters.append(
            DeadLetter(
                position=len(letters) + 1,
                delivery_tag=method.delivery_tag,
                message_id=props.message_id,
                stage=stage,
                reason=reason,
                queue=src_queue,
                routing_key=rkey,
                time=int(stamp) if isinstance(stamp, int) else None,
                body=body,
                headers=headers,
            )
        )
    return letters


class RequeueRefused(Exception):
    """The broker refused a copy (``basic.nack``): no dead letter was removed."""


def requeue(channel: BlockingChannel, letters: Sequence[DeadLetter]) -> tuple[int, list[str]]:
    """Publish copies back to their queues, each confirmed by the broker, then ack the originals.

    Confirms, not a transaction: RabbitMQ 3.10 commits a transaction whose
    message a quorum queue without a leader refuses, and the copy is lost
    with the original acked.  A refused copy raises :class:`RequeueRefused`
    and no original is acked (a copy already confirmed is then a duplicate,
    which the consumers' redelivery checks absorb).
    """
    skipped: list[str] = []
    todo = []
    for d in letters:
        if not d.queue:
            skipped.append(f"{d.id}: origin unknown")
        else:
            todo.append(d)
    if not todo:
        return 0, skipped
    channel.confirm_delivery()
    for d in todo:
        assert d.queue is not None
        try:
            channel.basic_publish(
                "",
                d.queue,
                d.body,
                properties=pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent,
                    content_type="application/json",
                    message_id=d.message_id,
                    headers=replay_headers(d.headers),
                ),
            )
        except pika.exceptions.NackError as exc:
            raise RequeueRefused(
                f"the broker refused the copy of {d.id} for {d.queue} (a quorum queue "
                "refuses while its leader's node is down): no dead letter was removed; "
                "try again in a few seconds"
            ) from exc
    for d in todo:
        channel.basic_ack(d.delivery_tag)
    return len(todo), skipped


def purge(channel: BlockingChannel, queue: str) -> int:
    """Delete every dead letter; how many there were."""
    return int(channel.queue_purge(queue).method.message_count)
