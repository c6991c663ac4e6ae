"""Fakes and helpers for the gateway integration tests: a scripted HTTP receiver, deliveries."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from services.gateways.worker import build_consumer
from shared.amqp import Names, connect
from shared.config import Settings
from shared.delivery_log import read_delivery_log
from shared.keys import Keys
from shared.models import ENCODER, ContactRef, Delivery, MediumRef, RollupItem
from shared.store import connect_redis
from tests.support import publish, running


@dataclass
class Reply:
    """How the fake answers one request: status, delay, headers; ``hold`` blocks until released."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hold: threading.Event | None = None


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    time: float
    answered: int | None = None  # status actually written back, None if the client went away


class FakeReceiver:
    """A local HTTP server answering from a script (then 200), recording every request."""

    def __init__(self, script: list[Reply] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                rec = Received(self.path, dict(self.headers.items()), body, time.time())
                with outer.lock:
                    outer.requests.append(rec)
                    reply = outer.script.pop(0) if outer.script else Reply()
                    outer.arrived.notify_all()
                if reply.hold is not None:
                    reply.hold.wait(30)
                    self.close_connection = True
                    return  # never answer: the sender must not count this as delivered
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    rec.answered = reply.status
                except OSError:
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 resets concurrent senders

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        # shutdown() waits for serve_forever to look at its flag: every 0.5 s by default,
        # 0.25 s per test on average.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``n`` requests arrived (or timeout); returns all so far."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < n and time.monotonic() < deadline:
                self.arrived.wait(0.05)
            return list(self.requests)

    @property
    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.answered is not None and 200 <= r.answered < 300]


def make_delivery(
    medium_type: str,
    address: str,
    *,
    type: str = "problem",
    state: str = "critical",
    entity: str = "web1",
    check: str = "http",
    settings: dict[str, str] | None = None,
    checks: tuple[RollupItem, ...] = (),
    did: str | None = None,
) -> Delivery:
    nid = uuid.uuid4().hex[:12]
    return Delivery(
        id=did or f"{nid}:m1",
        notification_id=nid,
        type=type,  # type: ignore[arg-type]
        entity=entity,
        check=check,
        state=state,
        previous_state="ok",
        time=1_700_000_000.0,
        contact=ContactRef("c1", "Alice Ops"),
        medium=MediumRef(id="m1", type=medium_type, address=address, settings=settings or {}),
        summary="connection refused",
        details="port 80 closed",
        duration=125.0,
        tags=("team=web",),
        checks=checks,
    )


def sequenced(settings: Settings, deliveries: list[Delivery]) -> list[Delivery]:
    """``deliveries`` numbered and queued in their lanes exactly as the notifier does it."""
    from shared.notifier.store import NotifierStore

    store = NotifierStore(connect_redis(settings), Keys(settings.namespace), 3600)
    out = store.sequence(deliveries)
    pipe = store.r.pipeline(transaction=True)
    store.queue_in_lanes(pipe, out)
    pipe.execute()
    return out


def send_delivery(settings: Settings, d: Delivery) -> None:
    """Publish ``d`` as the notifier does: to ``NS.deliveries`` with the medium type as key."""
    publish(
        settings,
        ENCODER.encode(d),
        routing_key=d.medium.type,
        exchange=Names(settings.namespace).deliveries,
        message_id=d.id,
    )


def send_deliveries(settings: Settings, deliveries: list[Delivery]) -> None:
    """Publish many deliveries on one connection (fast, so timing tests see a real burst)."""
    import pika

    names = Names(settings.namespace)
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for d in deliveries:
            ch.basic_publish(
                names.deliveries,
                d.medium.type,
                ENCODER.encode(d),
                properties=pika.BasicProperties(delivery_mode=2, message_id=d.id),
            )
    finally:
        conn.close()


def tuned(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with small timeouts and backoffs so failure tests stay fast."""
    base: dict[str, Any] = {
        "delivery_timeout_s": 2.0,
        "retry_base_s": 0.1,
        "retry_max_s": 0.5,
        "delivery_deadline_s": 30.0,
        "rate_per_s": 1000.0,
        "rate_burst": 1000,
    }
    base.update(changes)
    return msgspec.structs.replace(settings, **base)


@contextmanager
def gateway(
    settings: Settings, medium_type: str = "webhook", registry: CollectorRegistry | None = None
) -> Iterator[None]:
    """A gateway worker of ``medium_type`` running in a thread for the block."""
    consumer, runner = build_consumer(settings, medium_type, registry)
    try:
        with running(consumer):
            yield
    finally:
        runner.close()


def delivery_log(settings: Settings) -> list[Any]:
    """The namespace's delivery log, newest first."""
    return read_delivery_log(connect_redis(settings), Keys(settings.namespace), limit=1000)
