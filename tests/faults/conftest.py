"""Fault-injection helpers: private Redis / RabbitMQ nodes, a counting webhook receiver, workers.

The machine's shared Redis (6379) and RabbitMQ (5672) are never stopped or
restarted here; "restart the broker" always means a private node on a free
loopback port with its data in a temporary directory, removed after.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.ports import free_port, wait_listening
from shared.config import Settings
from tests.conftest import AMQP_URL, REDIS_URL, cleanup_namespace

RABBIT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBIT_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll an observable condition (not a sleep standing in for logic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --------------------------------------------------------------------- receiver


class ReceiverServer(http.server.ThreadingHTTPServer):
    # The default listen backlog (5) drops SYNs when a gateway opens a burst of
    # connections; each drop costs a 1 s retransmit.
    request_queue_size = 1024


@dataclass
class Hit:
    delivery_id: str
    check: str
    type: str
    time: float
    # When it arrived (monotonic), to tell which copies were in flight at a kill.
    at: float = field(default_factory=time.monotonic)


@dataclass
class CountingReceiver:
    """A webhook endpoint that records every delivery; ``status`` and ``delay_s`` are adjustable."""

    hits: list[Hit] = field(default_factory=list)
    status: int = 204
    refused: int = 0  # requests answered with an error ``status``
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> CountingReceiver:
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if rec.delay_s:
                    time.sleep(rec.delay_s)
                status = rec.status
                if status < 300:
                    d = json.loads(body)
                    with rec.lock:
                        rec.hits.append(Hit(d["id"], d["check"], d["type"], float(d["time"])))
                else:
                    with rec.lock:
                        rec.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def snapshot(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)

    def duplicates(self) -> int:
        counts = Counter(h.delivery_id for h in self.snapshot())
        return sum(c - 1 for c in counts.values())


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    rec = CountingReceiver().start()
    yield rec
    rec.stop()


# --------------------------------------------------------------------- private servers


@dataclass
class PrivateRedis:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_listening(self.port, 10), "private redis-server did not start"

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed")
    node = PrivateRedis(free_port(), tmp_path / "redis")
    node.dir.mkdir()
    node.start()
    yield node
    node.stop(kill=True)


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of our own (own name, ports, data and cookie), loopback only."""

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"tocsin-test-{uuid.uuid4().hex[:8]}@localhost")
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            {
                "HOME": str(self.base),
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.base / "rabbit"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "env.conf"),
                "RABBITMQ_PID_FILE": str(self.base / "pid"),
            }
        )
        return env

    def configure(self, extra: str = "") -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "plugins").write_text("[].\n")
        (self.base / "rabbit.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n{extra}\n"
        )

    def start(self, timeout: float = 60) -> None:
        log = (self.base / "server.out").open("ab")
        self.proc = subprocess.Popen(
            [RABBIT_SERVER],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ok = wait_until(self._accepts_amqp, timeout, step=0.3)
        assert ok, (
            f"private RabbitMQ did not start: {(self.base / 'server.out').read_text()[-2000:]}"
        )

    def _accepts_amqp(self) -> bool:
        import pika

        try:
            pika.BlockingConnection(pika.URLParameters(self.url + "?connection_attempts=1")).close()
            return True
        except Exception:
            return False

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RABBIT_CTL, "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # beam may outlive the wrapper script briefly; wait for the port to close.
        wait_until(lambda: not wait_listening(self.port, 0.2), 30, step=0.2)
        self.proc = None


@pytest.fixture(scope="session")
def _session_rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbit]:
    if not (os.path.exists(RABBIT_SERVER) and shutil.which("erl")):
        pytest.skip("rabbitmq-server is not installed here")
    node = PrivateRabbit(tmp_path_factory.mktemp("rabbit"))
    node.configure()
    try:
        yield node
    finally:
        node.stop(kill=True)


@pytest.fixture
def private_rabbit(_session_rabbit: PrivateRabbit) -> PrivateRabbit:
    """A private RabbitMQ node, running when the test starts; the test may stop, start or alarm it.

    One node per test process (xdist worker), started on first use: a boot costs
    about 7 CPU-seconds, and tests are apart anyway by namespace.  A test that
    left it stopped (or dead) gets it started again by the next one.
    """
    node = _session_rabbit
    if node.proc is not None and node.proc.poll() is not None:
        node.stop(kill=True)  # died: forget the process (and wait for the port to close)
    if node.proc is None:
        node.start()
    return node


# --------------------------------------------------------------------- settings and workers


def fault_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment reproducing ``settings`` for worker subprocesses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": settings.redis_url,
            "TOCSIN_AMQP_URL": settings.amqp_url,
            "TOCSIN_NAMESPACE": settings.namespace,
            "TOCSIN_PARTITIONS": str(settings.partitions),
            "TOCSIN_BATCH_WAIT_MS": "5",
            "TOCSIN_LOG_FORMAT": "text",
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_RATE_PER_S": "100000",
            "TOCSIN_RATE_BURST": "100000",
            "TOCSIN_RETRY_BASE_S": "0.2",
            "TOCSIN_RETRY_MAX_S": "2",
            # A restarted broker or Redis is retried within a second, not after the
            # production cap's 10-30 s (the outage tests wait for the recovery).
            "TOCSIN_RECONNECT_MAX_S": str(settings.reconnect_max_s or 1),
            "TOCSIN_API_TOKEN": "fault-" + uuid.uuid4().hex,
        }
    )
    env.update(extra)
    return env


def make_settings(redis_url: str = REDIS_URL, amqp_url: str = AMQP_URL, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "TOCSIN_REDIS_URL": redis_url,
            "TOCSIN_AMQP_URL": amqp_url,
            "TOCSIN_NAMESPACE": "f" + uuid.uuid4().hex[:12],
            "TOCSIN_PARTITIONS": "4",
            "TOCSIN_BATCH_WAIT_MS": "5",
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_RECONNECT_MAX_S": "1",
            **extra,
        }
    )


@pytest.fixture
def shared_settings(services_up: None) -> Iterator[Settings]:
    """A fresh namespace on the shared Redis/RabbitMQ, cleaned after."""
    s = make_settings()
    yield s
    cleanup_namespace(s)


def start_up(
    env: dict[str, str], workers: str, log_path: Path, metrics_port: int = 0, replicas: str = ""
) -> subprocess.Popen[bytes]:
    """``tocsin up --workers … [--replicas …]`` as a subprocess (its own process group)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "up",
                "--metrics-port",
                str(metrics_port),
                "--workers",
                workers,
                *(["--replicas", replicas] if replicas else []),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_up(proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def children(pid: int) -> dict[int, str]:
    """Child pids of ``pid`` and their command lines."""
    out = subprocess.run(
        # -ww: whole command lines (ps cuts them at $COLUMNS otherwise).
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
    ).stdout
    result = {}
    for line in out.splitlines():
        p, _, args = line.strip().partition(" ")
        result[int(p)] = args
    return result


def configure_webhook(settings: Settings, url: str, interval: int = 0) -> None:
    """One contact with one webhook medium and a rule routing every severity to it."""
    from shared.directory import Directory
    from shared.keys import Keys
    from shared.models import Contact, Medium, Rule, SeverityRoute
    from shared.store import connect_redis

    d = Directory(connect_redis(settings), Keys(settings.namespace))
    d.put_contact(Contact(id="c1", name="Fault tester"))
    d.put_medium(Medium(id="m1", contact_id="c1", type="webhook", address=url, interval=interval))
    route = SeverityRoute(media=("webhook",))
    d.put_rule(Rule(id="r1", contact_id="c1", critical=route, warning=route, unknown=route))


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting in every work queue of the namespace (0 if missing)."""
    import pika.exceptions

    from shared.amqp import Names, connect

    names = Names(settings.namespace)
    conn = connect(settings.amqp_url, name="tocsin-fault-probe")
    depths = {}
    try:
        for q in names.all_queues(settings.partitions):
            ch = conn.channel()
            try:
                depths[q] = ch.queue_declare(q, passive=True).method.message_count
                ch.close()
            except pika.exceptions.ChannelClosedByBroker:
                depths[q] = 0
    finally:
        conn.close()
    return depths
