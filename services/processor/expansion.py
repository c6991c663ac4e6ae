"""The processor expanding the notifications it has just written, in its own process.

Without this, each notification costs a durable hop more: a ref published to
``NS.notifications``, consumed by the notifier, which reads the notification
back and expands it.  With it, the processor's batch handler, once its MULTI
has made the notifications durable, hands their refs to the same expansion
handler the notifier runs (``shared/notifier/expander.py``: the WATCH
transaction, the ``notified`` markers, the ordering rules and the outbox are
unchanged) and publishes the deliveries in place of the refs.

The refs stay in the processor's outbox until the deliveries are published,
so a crash anywhere in between still republishes them to the notifier, which
skips what was expanded.  An expansion that fails (Redis, a commit race lost
too often, a bug) does not fail the processor's batch: its refs are published
to ``NS.notifications`` as before and the notifier expands them, or
dead-letters those it cannot.  A later notification of the same check,
expanded here, pulls an earlier unexpanded one into its own expansion first,
so the fallback never reorders a check's pages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis
from prometheus_client import CollectorRegistry, Counter

from shared.amqp import Names, OutMessage
from shared.broker import Message
from shared.errors import Retryable
from shared.handler import BatchResult, Handler

log = logging.getLogger(__name__)

# Failures that explain themselves in one line; anything else logs its traceback.
_EXPECTED = (redis.exceptions.RedisError, Retryable)

# A batch with more notifications than this is a storm: its refs go to the notifier, as
# before this step existed.  Expanding a storm takes about a second per 2,000 notifications
# onto one rollup medium (docs/benchmarks.md), and a processor expanding applies no events
# meanwhile; the notifier is a process of its own.  At a paced load a batch holds one to a
# few notifications, which is where one hop fewer pays.
MAX_NOTIFICATIONS = 100


class ExpansionMetrics:
    """Notification refs handed to the notifier instead of expanded here, and why."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fallbacks = Counter(
            "tocsin_processor_expansion_fallbacks",
            "Notification refs handed to the notifier instead of expanded in the processor: "
            "reason large_batch (a storm, by design), rejected, or the failure's exception",
            ["reason"],
            registry=registry,
        )


def expanding(
    process: Handler,
    expand: Handler,
    names: Names,
    metrics: ExpansionMetrics,
    max_notifications: int = MAX_NOTIFICATIONS,
) -> Handler:
    """``process``, then ``expand`` over the notification refs it would have published
    (unless there are more than ``max_notifications``: those go to the notifier)."""

    def handle(batch: Sequence[Message]) -> BatchResult:
        result = process(batch)
        refs = [o for o in result.outputs if _is_ref(names, o)]
        if not refs:
            return result
        if len(refs) > max_notifications:
            metrics.fallbacks.labels("large_batch").inc(len(refs))
            log.info(
                "a storm: the notifier expands this batch's notifications",
                extra={"notifications": len(refs), "max": max_notifications},
            )
            return result
        try:
            expanded = expand([_as_consumed(names, o) for o in refs])
        except Exception as exc:  # whatever it was, the notifier is the fallback
            metrics.fallbacks.labels(type(exc).__name__).inc(len(refs))
            log.warning(
                "expansion in the processor failed; the notifier takes its notifications",
                extra={"notifications": len(refs), "error": repr(exc)},
                exc_info=not isinstance(exc, _EXPECTED),
            )
            return result
        # A ref the expansion could not use (its notification missing or unreadable) goes
        # to the notifier, which dead-letters it with the reason, as it always did.
        unused = {msg.message_id for msg, _ in expanded.rejected}
        if unused:
            metrics.fallbacks.labels("rejected").inc(len(unused))
        others = [o for o in result.outputs if not _is_ref(names, o)]
        handed_on = [o for o in refs if o.message_id in unused]
        out = BatchResult(
            outputs=[*others, *expanded.outputs, *handed_on],
            rejected=result.rejected,
            after_publish=result.after_publish,
        )
        out.extend(BatchResult(after_publish=expanded.after_publish))  # the refs' clear first
        return out

    return handle


def _is_ref(names: Names, out: OutMessage) -> bool:
    return out.exchange == "" and out.routing_key == names.notifications


def _as_consumed(names: Names, out: OutMessage) -> Message:
    """A ref as the notifier would have consumed it (the id doubles as the message id)."""
    return Message(
        body=out.body,
        delivery_tag=0,
        queue=names.notifications,
        routing_key=names.notifications,
        message_id=out.message_id,
    )
