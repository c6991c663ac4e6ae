"""The event stream of the fault tests and the notifications the pure core expects from it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from shared.amqp import Names, OutMessage, Publisher, PublishRefused, connect
from shared.formats.flapjack import decode_body
from shared.keys import check_id
from shared.processing.effects import CheckView
from shared.processing.state_machine import apply_event

# Per check: five failing events then five ok ones -> one problem and one recovery per ten events.
PATTERN = ("critical",) * 5 + ("ok",) * 5
Key = tuple[str, str, float]  # (check, notification type, event time)


@dataclass(frozen=True)
class Stream:
    """``count`` events over ``checks`` checks, event i at ``t0 + i / rate``."""

    count: int
    checks: int
    t0: float
    rate: float = 1000.0
    entity: str = "fault"
    prefix: str = "c"  # check names: ``<prefix><i % checks>`` (two streams side by side differ)

    def body(self, i: int) -> bytes:
        r = i // self.checks
        return json.dumps(
            {
                "entity": self.entity,
                "check": f"{self.prefix}{i % self.checks}",
                "state": PATTERN[r % len(PATTERN)],
                "summary": f"event {i}",
                "time": round(self.t0 + i / self.rate, 3),
                "initial_failure_delay": 0,
                "repeat_failure_delay": 1_000_000,
            }
        ).encode()

    def message_id(self, i: int) -> str:
        return f"ev-{self.t0:.0f}-{i}"

    def expected(self) -> Counter[Key]:
        """What the processor core decides for this stream, check by check, in order."""
        views: dict[str, CheckView] = {}
        out: Counter[Key] = Counter()
        for i in range(self.count):
            (ev,) = decode_body(self.body(i), self.t0 + i / self.rate, self.message_id(i)).accepted
            cid = check_id(ev.entity, ev.check)
            res = apply_event(views.get(cid, CheckView(id=cid)), ev, i + 1)
            views[cid] = res.view
            if res.notification is not None:
                n = res.notification
                out[(n.check, n.type, round(n.time, 3))] += 1
        return out


def publish(
    stream: Stream,
    amqp_url: str,
    namespace: str,
    start: int = 0,
    end: int | None = None,
    commit_every: int = 50,
    paced: bool = True,
) -> Iterator[int]:
    """Publish events ``start..end`` to ``NS.events`` at the stream's rate; yields progress.

    Each publish carries a stable message id (good publishers do: ingest derives
    event ids from it, so a redelivered message is recognised downstream).
    Waits for the broker's confirms every ``commit_every`` messages and publishes
    a refused group again (a quorum queue refuses while it has no leader; with
    AMQP transactions RabbitMQ 3.10 dropped such messages after a commit-ok).
    """
    end = stream.count if end is None else end
    names = Names(namespace)
    conn = connect(amqp_url, name="tocsin-fault-load")
    publisher = Publisher(conn)
    began = time.monotonic()
    try:
        for first in range(start, end, commit_every):
            last = min(first + commit_every, end)
            group = [
                OutMessage(names.events, "flapjack", stream.body(i), stream.message_id(i))
                for i in range(first, last)
            ]
            while True:
                try:
                    publisher.publish(group)
                    break
                except PublishRefused:
                    conn.sleep(0.1)
            yield last
            if paced:
                ahead = (last - start) / stream.rate - (time.monotonic() - began)
                if ahead > 0:
                    conn.sleep(ahead)
    finally:
        if conn.is_open:
            conn.close()


def delivered_keys(hits: list) -> Counter[Key]:  # type: ignore[type-arg]
    return Counter((h.check, h.type, round(h.time, 3)) for h in hits)


def compare(expected: Counter[Key], hits: list) -> dict[str, int]:  # type: ignore[type-arg]
    """Expected / delivered / duplicated / lost, by (check, type, time) and by delivery id."""
    got = delivered_keys(hits)
    ids = Counter(h.delivery_id for h in hits)
    lost = sum((expected - got).values())
    dup_keys = sum((got - expected).values())
    return {
        "expected": sum(expected.values()),
        "delivered": len(hits),
        "distinct_ids": len(ids),
        "duplicated": max(dup_keys, sum(c - 1 for c in ids.values())),
        "lost": lost,
    }
