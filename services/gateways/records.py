"""What the gateway writes to Redis after a send: delivered markers, lane exits, the delivery log.

Attempts are recorded as soon as they finish, in one round trip for the
sends that finished together: a delivered delivery gets its marker
(``NS:delivered:<id>``) and a finished one (delivered or dead) leaves its lane
before the lane's next delivery starts.  A crash (``kill -9``) between a send
and its marker pages twice on redelivery; writing it as soon as the receiver
confirmed, not at the end of the batch, shrinks that window to one Redis
round trip (tests/faults/test_crash.py).

Besides the markers in Redis, an in-process memory of recent successes
(:meth:`Records.delivered_recently`) keeps a batch retried after a Redis
hiccup from paging twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.gateways.deliveries import Attempt
from shared import packed_writes
from shared.delivery_log import append_entries, entry_for
from shared.keys import Keys
from shared.store import is_cluster

log = logging.getLogger(__name__)

RECENT_MAX = 50_000


@dataclass
class Records:
    """Writes the attempts' records; keeps the ones Redis refused for :meth:`flush`."""

    redis: Any
    keys: Keys
    retain_delivered_s: int
    _recent: OrderedDict[str, float] = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _unwritten: list[Attempt] = field(init=False, default_factory=list)

    def delivered_recently(self, delivery_id: str) -> bool:
        """Whether this process delivered it lately (whatever Redis says)."""
        return delivery_id in self._recent

    def record(self, attempts: Sequence[Attempt]) -> None:
        """Attempts that just finished: markers, lanes and log, in one round trip, at once.

        Called from the send threads.  If Redis fails here the attempts are
        kept for :meth:`flush`, and the memory of successes keeps a retried
        batch from paging twice.
        """
        now = time.time()
        with self._lock:
            for a in attempts:
                if a.decision.action == "delivered":
                    self._recent[a.item.delivery.id] = now
            while len(self._recent) > RECENT_MAX:
                self._recent.popitem(last=False)
        try:
            self._write(attempts, now)
        except Exception as exc:
            log.warning(
                "delivered marker not written yet",
                extra={"delivery_ids": [a.item.delivery.id for a in attempts], "error": repr(exc)},
            )
            with self._lock:
                self._unwritten.extend(attempts)

    def flush(self) -> None:
        """Write what Redis refused while sending; raises (failing the batch) if it still can't."""
        with self._lock:
            unwritten, self._unwritten = self._unwritten, []
        if unwritten:
            self._write(unwritten)

    def _write(self, attempts: Sequence[Attempt], now: float | None = None) -> None:
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        for a in attempts:
            did = a.item.delivery.id
            if a.decision.action == "delivered":
                pipe.set(self.keys.delivered(did), int(now), nx=True, ex=self.retain_delivered_s)
            if a.decision.action != "retry":
                pipe.zrem(self.keys.lane(a.item.lane), did)
        entries = [
            entry_for(
                a.item.delivery,
                outcome=a.decision.outcome,
                attempts=a.decision.progress.attempts,
                latency_ms=a.latency * 1000,
                error=a.result.error,
                now=now,
                status=a.result.status,
            )
            for a in attempts
        ]
        append_entries(pipe, self.keys, entries)
        if not is_cluster(self.redis):
            packed_writes.pack_pipeline(pipe)  # no reply is read; see the module
        pipe.execute()
