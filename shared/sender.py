"""Publish events into the pipeline from outside it (API, CLI, demo).

A source body given to :meth:`Sender.send` is decoded here, as ingest would
decode it, and its events go straight to the processor's partition queues
on ``NS.checks`` (refused items to ``NS.dead``): the API has the body in
hand, so sending it through ``NS.events`` and ingest would only add a
durable hop, and a worker, to every page (``shared/intake.py``).  External
publishers still use ``NS.events``.

When :meth:`Sender.send` returns, the broker has the messages on disk.  The
API calls it from many request threads at once, so sends are *group
committed*: one publishing thread owns the connection, takes every send
waiting at that moment, publishes them all and commits them with one AMQP
transaction, then wakes each caller.  A lone request pays one commit as
before; concurrent requests share one instead of queueing for a commit each
(the Argus glue workload, ``POST /events`` and ``/api/v2/alerts`` under
load).  A lost connection is reopened once per group; a broker that stays
away fails the group's callers (the API answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pika.adapters.blocking_connection import BlockingConnection

from shared import intake
from shared.amqp import Names, OutMessage, Publisher, connect, declare_topology
from shared.config import Settings
from shared.consumer import AMQP_ERRORS
from shared.formats.bodies import Decoded

# A group never grows past this many messages (one transaction stays short).
GROUP_MAX_MESSAGES = 2000
# How long a caller waits for its group before giving up (a blocked broker).
SEND_TIMEOUT_S = 60.0
# The idle publishing thread services the connection this often (heartbeats).
IDLE_SERVICE_S = 5.0


@dataclass(slots=True)
class _Request:
    messages: list[OutMessage]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    # Called on the publishing thread once the group is committed (or failed).
    on_done: Callable[[BaseException | None], None] | None = None


class Sender:
    """A durable publisher to the events exchange, shared by threads (group commit)."""

    def __init__(
        self,
        settings: Settings,
        name: str = "tocsin-sender",
        metrics: intake.IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self._decoders = intake.decoders(settings.identity_labels)
        self.metrics = metrics
        self.name = name
        self._cv = threading.Condition()
        self._pending: list[_Request] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conn: BlockingConnection | None = None
        self._publisher: Publisher | None = None

    def send(
        self,
        bodies: Sequence[bytes],
        routing_key: str = "flapjack",
        exchange: str | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Publish each body; returns their message ids once they are durable.

        Without ``exchange`` each body is a source body in the format named by
        ``routing_key``, decoded and routed to the processor's partitions
        (event ids are ``<message id>:<index>``, as ingest gives them).  An
        explicit ``exchange`` publishes the body unchanged there; ``""`` with
        a queue name as the routing key publishes straight to that queue.
        ``message_ids`` replaces the random ids.
        """
        ids = list(message_ids) if message_ids else [uuid.uuid4().hex for _ in bodies]
        self._submit(_Request(self.messages(bodies, routing_key, exchange, ids)))
        return ids

    def messages(
        self,
        bodies: Sequence[bytes],
        routing_key: str = "flapjack",
        exchange: str | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> list[OutMessage]:
        """What :meth:`send` publishes, for a caller that commits it with other messages."""
        ids = list(message_ids) if message_ids else [uuid.uuid4().hex for _ in bodies]
        now = time.time()
        if exchange is not None:
            return [
                OutMessage(exchange, routing_key, body, message_id=mid, timestamp=int(now))
                for body, mid in zip(bodies, ids, strict=True)
            ]
        out: list[OutMessage] = []
        for body, mid in zip(bodies, ids, strict=True):
            out.extend(
                intake.direct_messages(
                    self.names,
                    self.settings.partitions,
                    self._decoders,
                    body=body,
                    routing_key=routing_key,
                    message_id=mid,
                    stage="intake",
                    now=now,
                    metrics=self.metrics,
                )
            )
        return out

    def send_messages(self, messages: Sequence[OutMessage]) -> None:
        """Publish prepared messages (to any exchanges) together; returns once durable."""
        self._submit(_Request(list(messages)))

    async def send_async(self, bodies: Sequence[bytes], routing_key: str = "flapjack") -> list[str]:
        """:meth:`send` for an event loop: waits for the commit without holding a thread.

        The API's intake routes use it: handing each request to a worker
        thread that only waits for the publishing thread cost a thread switch
        each way per request (docs/benchmarks.md).
        """
        ids = [uuid.uuid4().hex for _ in bodies]
        await self.send_messages_async(self.messages(bodies, routing_key, None, ids))
        return ids

    async def send_decoded_async(
        self, body: bytes, routing_key: str, decoded: Decoded, message_id: str, now: float
    ) -> None:
        """Publish a body the caller already decoded (with ``message_id`` and ``now``).

        The API's Alertmanager routes decode each body to answer with what
        they accepted; publishing those same events spares a second decode
        of up to thousands of alerts on the event loop.
        """
        if self.metrics is not None:
            self.metrics.count(routing_key, decoded)
        messages = intake.decoded_messages(
            self.names,
            self.settings.partitions,
            decoded,
            body=body,
            routing_key=routing_key,
            message_id=message_id,
            stage="intake",
            now=now,
        )
        await self.send_messages_async(messages)

    async def send_messages_async(self, messages: Sequence[OutMessage]) -> None:
        """:meth:`send_messages` for an event loop."""
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[BaseException | None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if not settled.done():
                settled.set_result(error)

        def on_done(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, error)

        self._enqueue(_Request(list(messages), on_done=on_done))
        try:
            error = await asyncio.wait_for(settled, SEND_TIMEOUT_S)
        except TimeoutError:
            raise ConnectionError(
                f"broker did not take the messages within {SEND_TIMEOUT_S:g} s"
            ) from None
        if error is not None:
            raise error

    def ping(self) -> bool:
        """True when the broker answers (opens the connection if needed)."""
        try:
            self._submit(_Request([]))
        except AMQP_ERRORS:
            return False
        return True

    def close(self) -> None:
        """Stop the publishing thread (after the groups already waiting) and close."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=SEND_TIMEOUT_S)

    # ------------------------------------------------------------------ the publishing thread

    def _submit(self, req: _Request) -> None:
        self._enqueue(req)
        if not req.done.wait(SEND_TIMEOUT_S):
            raise ConnectionError(f"broker did not take the messages within {SEND_TIMEOUT_S:g} s")
        if req.error is not None:
            raise req.error

    def _enqueue(self, req: _Request) -> None:
        with self._cv:
            if self._closed:
                raise ConnectionError("sender is closed")
            self._pending.append(req)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.name}-publisher", daemon=True
                )
                self._thread.start()
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                if not self._pending and not self._closed:
                    self._cv.wait(IDLE_SERVICE_S)
                if not self._pending:
                    if self._closed:
                        break
                    self._service()
                    continue
                group: list[_Request] = []
                size = 0
                while self._pending and (not group or size < GROUP_MAX_MESSAGES):
                    req = self._pending.pop(0)
                    group.append(req)
                    size += len(req.messages)
            error = self._publish([m for req in group for m in req.messages])
            for req in group:
                req.error = error
                req.done.set()
                if req.on_done is not None:
                    req.on_done(error)
        self._reset()

    def _publish(self, messages: list[OutMessage]) -> BaseException | None:
        for attempt in (1, 2):
            try:
                publisher = self._open()
                if messages:
                    publisher.publish(messages)
                else:  # a ping: make the broker answer on this connection
                    publisher.connection.process_data_events(time_limit=0)
                return None
            except AMQP_ERRORS as exc:
                self._reset()
                if attempt == 2:
                    return exc
        return None

    def _service(self) -> None:
        """Keep an idle connection alive (heartbeats); drop it if it broke."""
        if self._conn is None:
            return
        try:
            self._conn.process_data_events(time_limit=0)
        except AMQP_ERRORS:
            self._reset()

    def _open(self) -> Publisher:
        if self._conn is None or not self._conn.is_open or self._publisher is None:
            self._conn = connect(self.settings.amqp_url, name=self.name)
            declare_topology(self._conn.channel(), self.names, self.settings.partitions)
            self._publisher = Publisher(self._conn)
        return self._publisher

    def _reset(self) -> None:
        conn, self._conn, self._publisher = self._conn, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()
