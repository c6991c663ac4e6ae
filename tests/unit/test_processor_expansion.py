"""The processor's own expansion step (``services/processor/expansion.py``), over fake handlers.

The step replaces the notification refs a processor batch would publish with
what the expansion handler returns, and hands refs to the notifier whenever
expanding them here fails.  Real Redis and RabbitMQ runs are in
tests/integration/test_processor_expansion.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import redis
from prometheus_client import CollectorRegistry

from services.processor.expansion import ExpansionMetrics, expanding
from shared.amqp import Names, OutMessage
from shared.broker import Message
from shared.handler import BatchResult

NAMES = Names("unit")


def ref(nid: str) -> OutMessage:
    return OutMessage("", NAMES.notifications, b'{"id":"%s"}' % nid.encode(), message_id=nid)


def delivery(did: str) -> OutMessage:
    return OutMessage(NAMES.deliveries, "webhook", b"{}", message_id=did)


def processor(outputs: list[OutMessage], done: list[str]) -> BatchResult:
    """What the processor's handler returns: its refs, and its outbox clearing to run after."""
    return BatchResult(outputs=list(outputs), after_publish=lambda: done.append("processor"))


class Expander:
    """A stand-in for the expansion handler: records what it was given."""

    def __init__(
        self,
        fail: BaseException | None = None,
        reject: Sequence[str] = (),
        done: list[str] | None = None,
    ) -> None:
        self.fail, self.reject, self.done = fail, set(reject), done
        self.seen: list[Message] = []

    def __call__(self, batch: Sequence[Message]) -> BatchResult:
        self.seen.extend(batch)
        if self.fail is not None:
            raise self.fail
        out = BatchResult()
        for msg in batch:
            if msg.message_id in self.reject:
                out.rejected.append((msg, "notification not found"))
            else:
                out.outputs.append(delivery(f"{msg.message_id}:m1"))
        if self.done is not None:
            done = self.done
            out.after_publish = lambda: done.append("expansion")
        return out


def fallbacks(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "tocsin_processor_expansion_fallbacks_total", {"reason": reason}
    )
    return value or 0.0


def step(
    expander: Expander, outputs: list[OutMessage], done: list[str], max_notifications: int = 100
) -> tuple[BatchResult, CollectorRegistry]:
    registry = CollectorRegistry()
    handle = expanding(
        lambda batch: processor(outputs, done),
        expander,
        NAMES,
        ExpansionMetrics(registry),
        max_notifications,
    )
    return handle([]), registry


def test_refs_become_the_deliveries_in_order_and_both_outboxes_clear_after_publish() -> None:
    done: list[str] = []
    expander = Expander(done=done)
    result, _ = step(expander, [ref("n1"), ref("n2")], done)
    assert [m.message_id for m in expander.seen] == ["n1", "n2"]
    assert all(m.queue == NAMES.notifications for m in expander.seen)
    assert [o.message_id for o in result.outputs] == ["n1:m1", "n2:m1"]
    assert result.after_publish is not None
    result.after_publish()
    # The processor's refs leave its outbox only once the deliveries are out.
    assert done == ["processor", "expansion"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (redis.exceptions.ConnectionError("gone"), "ConnectionError"),
        (ValueError("a bug"), "ValueError"),
    ],
)
def test_a_failed_expansion_hands_every_ref_to_the_notifier(
    error: BaseException, reason: str
) -> None:
    done: list[str] = []
    result, registry = step(Expander(fail=error), [ref("n1"), ref("n2")], done)
    assert [o.routing_key for o in result.outputs] == [NAMES.notifications] * 2
    assert [o.message_id for o in result.outputs] == ["n1", "n2"]
    assert result.rejected == []  # the processor's own batch does not fail for it
    assert fallbacks(registry, reason) == 2
    assert result.after_publish is not None
    result.after_publish()
    assert done == ["processor"]


def test_a_ref_the_expansion_cannot_use_goes_to_the_notifier_not_to_dead_letters() -> None:
    done: list[str] = []
    result, registry = step(Expander(reject=["n2"], done=done), [ref("n1"), ref("n2")], done)
    assert [(o.routing_key, o.message_id) for o in result.outputs] == [
        ("webhook", "n1:m1"),
        (NAMES.notifications, "n2"),
    ]
    assert result.rejected == []
    assert fallbacks(registry, "rejected") == 1


def test_a_batch_without_notifications_is_not_expanded() -> None:
    expander = Expander()
    result, _ = step(expander, [], [])
    assert expander.seen == [] and result.outputs == []


def test_interrupts_are_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        step(Expander(fail=KeyboardInterrupt()), [ref("n1")], [])


def test_a_storm_goes_to_the_notifier_without_being_expanded_here() -> None:
    expander = Expander()
    refs = [ref(f"n{i}") for i in range(4)]
    result, registry = step(expander, refs, [], max_notifications=3)
    assert expander.seen == []
    assert [o.message_id for o in result.outputs] == ["n0", "n1", "n2", "n3"]
    assert fallbacks(registry, "large_batch") == 4
    # At the limit it is still expanded here.
    result, _ = step(Expander(), refs[:3], [], max_notifications=3)
    assert [o.routing_key for o in result.outputs] == ["webhook"] * 3
