"""Drain a Flapjack-style Redis list (``TOCSIN_FLAPJACK_LIST``) into the pipeline.

Existing Flapjack publishers and Nagios/Icinga bridges ``LPUSH`` JSON events
onto a Redis list (``events``).  When the setting is present, ingest runs this
drain in a thread: it takes batches off the list and feeds them through the
same handler as AMQP input (decode, group per partition, dead-letter rejects
with reasons), publishing in one AMQP transaction.

No event is lost on a crash: items are never only in memory.  ``BLMOVE``
waits for the first item and moves it atomically onto a processing list; a
script tops that list up to a batch and stamps it with a batch id; only after
the broker committed the batch's messages is the processing list deleted.
After a crash the processing list is replayed with the same batch id, so the
events get the same ids and the processor's redelivery dedup drops the copies
it already applied.  A lease lets one ingest process drain at a time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import pika
import redis

from shared.amqp import Names, OutMessage, Publisher, connect
from shared.config import Settings
from shared.consumer import AMQP_ERRORS, Handler, Message, dead_letter
from shared.keys import Keys

log = logging.getLogger(__name__)

BLOCK_S = 1.0
LEASE_S = 30
RETRY_S = 2.0

# KEYS: list, processing, batch; ARGV: batch size, new batch stamp.
# Returns nil when nothing is in flight, else {stamp, items} (oldest first).
_TAKE = """
if redis.call('LLEN', KEYS[2]) == 0 then return nil end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[2]) end
local need = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[2])
for _ = 1, need do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') then break end
end
return {redis.call('GET', KEYS[3]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# KEYS: lock; ARGV: owner, seconds.  1 when the caller holds the lease (taken or renewed).
_LEASE = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1
end
if owner == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""


# KEYS: lock; ARGV: owner.  Give the lease up on a clean stop.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class ListDrain:
    """One drainer of one Redis list; :meth:`run` loops until ``stopping()``."""

    def __init__(
        self,
        settings: Settings,
        list_name: str,
        handler: Handler,
        stopping: Callable[[], bool],
        batch_size: int | None = None,
    ) -> None:
        self.settings = settings
        self.list = list_name
        self.handler = handler
        self.stopping = stopping
        self.batch_size = batch_size or settings.batch_size
        self.names = Names(settings.namespace)
        keys = Keys(settings.namespace)
        self.processing = keys.drain_processing(list_name)
        self.batch_key = keys.drain_batch(list_name)
        self.lock = keys.drain_lock(list_name)
        self.owner = uuid.uuid4().hex
        # Raw bytes: a publisher's non-UTF-8 junk must reach the dead-letter queue as is.
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=BLOCK_S + 10, socket_connect_timeout=5
        )
        self._connection: pika.BlockingConnection | None = None
        self._publisher: Publisher | None = None

    def run(self) -> None:
        """Drain until stopped; connection errors are logged and retried."""
        log.info("draining Redis list", extra={"list": self.list})
        while not self.stopping():
            try:
                if not self._holds_lease():
                    self._wait(BLOCK_S)
                    continue
                self.drain_once()
            except (*AMQP_ERRORS, redis.exceptions.RedisError) as exc:
                log.warning("list drain error, retrying", extra={"error": repr(exc)})
                self._close()
                self._wait(RETRY_S)
            except Exception:  # a bug must not end the thread silently; the batch stays put
                log.exception("list drain failed, retrying", extra={"list": self.list})
                self._close()
                self._wait(RETRY_S)
        self._close()
        try:
            self.redis.eval(_RELEASE, 1, self.lock, self.owner)
        except redis.exceptions.RedisError:
            log.debug("could not release the drain lease; it expires", exc_info=True)

    def drain_once(self) -> int:
        """Take, decode, publish and forget one batch; returns how many list items it had."""
        taken = self._take()
        if taken is None:
            if self.redis.blmove(self.list, self.processing, BLOCK_S, "RIGHT", "RIGHT") is None:
                self._heartbeat()
                return 0
            taken = self._take()
            if taken is None:
                return 0
        stamp, items = taken
        batch_id, _, when = stamp.decode().partition(" ")
        messages = [
            Message(
                body=bytes(item),
                delivery_tag=0,
                queue=f"redis:{self.list}",
                routing_key="flapjack",
                message_id=f"{batch_id}-{i}",
                timestamp=int(when or time.time()),
            )
            for i, item in enumerate(items)
        ]
        result = self.handler(messages)
        out = list(result.outputs) + [
            dead_letter(self.names, msg, "ingest", reason) for msg, reason in result.rejected
        ]
        self._publish(out)
        # Committed on the broker: now the batch may go.
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.processing, self.batch_key)
        pipe.execute()
        if result.after_publish is not None:
            result.after_publish()
        log.debug(
            "drained batch",
            extra={"list": self.list, "items": len(items), "rejected": len(result.rejected)},
        )
        return len(items)

    def _take(self) -> tuple[bytes, list[bytes]] | None:
        stamp = f"{uuid.uuid4().hex} {int(time.time())}"
        got = self.redis.eval(
            _TAKE, 3, self.list, self.processing, self.batch_key, self.batch_size, stamp
        )
        if got is None:
            return None
        return got[0], list(got[1])

    def _holds_lease(self) -> bool:
        return bool(self.redis.eval(_LEASE, 1, self.lock, self.owner, LEASE_S))

    def _publish(self, messages: list[OutMessage]) -> None:
        if self._publisher is None:
            self._connection = connect(self.settings.amqp_url, name="tocsin-ingest-list-drain")
            self._publisher = Publisher(self._connection)
        self._publisher.publish(messages)

    def _heartbeat(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.process_data_events(time_limit=0)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _close(self) -> None:
        conn, self._connection, self._publisher = self._connection, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # closing a broken connection may fail; it is gone either way
                log.debug("closing drain connection failed", exc_info=True)


def start_drain(
    settings: Settings, handler: Handler, stopping: Callable[[], bool]
) -> threading.Thread | None:
    """Start the drain thread when ``TOCSIN_FLAPJACK_LIST`` is set; else do nothing."""
    if not settings.flapjack_list:
        return None
    drain = ListDrain(settings, settings.flapjack_list, handler, stopping)
    thread = threading.Thread(target=drain.run, name="flapjack-list-drain", daemon=True)
    thread.start()
    return thread
