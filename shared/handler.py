"""What a worker's batch handler returns to the consumer loop, and the dead letters it makes.

A handler (:data:`Handler`) makes its effects durable and returns a
:class:`BatchResult`: messages to publish, inputs it rejects (each becomes a
:func:`dead_letter` on ``NS.dead`` with its reason in the headers) and an
optional follow-up to run once they are published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.amqp import Names, OutMessage
from shared.broker import Message

MAX_ERROR_LEN = 1000


@dataclass(slots=True)
class BatchResult:
    """What a handler wants done after its durable effects: publish, reject, then a follow-up."""

    outputs: list[OutMessage] = field(default_factory=list)
    rejected: list[tuple[Message, str]] = field(default_factory=list)
    after_publish: Callable[[], None] | None = None

    def extend(self, other: BatchResult) -> None:
        self.outputs.extend(other.outputs)
        self.rejected.extend(other.rejected)
        if other.after_publish is not None:
            first, second = self.after_publish, other.after_publish
            self.after_publish = second if first is None else _chain(first, second)


Handler = Callable[[Sequence[Message]], BatchResult]


def _chain(a: Callable[[], None], b: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        a()
        b()

    return both


def dead_letter(names: Names, msg: Message, stage: str, reason: str) -> OutMessage:
    """The ``NS.dead`` message for a rejected input: original body, reason in headers."""
    headers = dict(msg.headers)
    headers.update(
        {
            "x-tocsin-stage": stage,
            "x-tocsin-error": reason[:MAX_ERROR_LEN],
            "x-tocsin-queue": msg.queue,
            "x-tocsin-routing-key": msg.routing_key,
            "x-tocsin-time": int(time.time()),
        }
    )
    return OutMessage(names.dead, "", msg.body, message_id=msg.message_id, headers=headers)


def reason_label(reason: str) -> str:
    """A low-cardinality metric label for a dead-letter reason (the field, or the error kind)."""
    if "`$" in reason:
        path = reason.rsplit("`$", 1)[1].rstrip("`")
        return "field:" + "".join(c for c in path if not c.isdigit()).strip(".[]") or "body"
    head = reason.split(":", 1)[0]
    return head if len(head) <= 40 and " " not in head else "other"
