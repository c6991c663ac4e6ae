"""What the harness observes: webhook deliveries, worker processes, metrics, Redis, queues.

The webhook receiver is a threaded ``http.server`` speaking HTTP/1.1 with
keep-alive (the gateway's pooled httpx client reuses connections), recording
only the receive time, the payload type and the stamp the event carried, so
it stays cheap next to the workers it measures.
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pika.exceptions
import redis
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.workloads import stamp_of
from shared.amqp import Names, connect
from shared.keys import ROUTING_TAG

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class _Payload(msgspec.Struct):
    type: str = ""
    summary: str = ""


_DECODER = msgspec.json.Decoder(_Payload)


@dataclass
class Deliveries:
    """Everything the receiver saw; guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # Publish stamps, one per latency sample (same order): when the slow ones were sent.
    stamps: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0

    def reset(self) -> None:
        """Forget the warm-up: count the timed phase only."""
        with self.lock:
            self.count = 0
            self.by_type.clear()
            self.latencies_ms.clear()
            self.stamps.clear()
            self.first = self.last = 0.0

    def record(self, body: bytes, received: float) -> None:
        try:
            payload = _DECODER.decode(body)
        except msgspec.DecodeError:
            payload = _Payload(type="invalid")
        stamp = stamp_of(payload.summary)
        with self.lock:
            self.count += 1
            self.by_type[payload.type] += 1
            if stamp is not None and payload.type != "rollup":
                self.latencies_ms.append((received - stamp) * 1000)
                self.stamps.append(stamp)
            self.first = self.first or received
            self.last = received


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a gateway opening a
    # burst of new connections; each dropped SYN is retransmitted after 1 s (3 s
    # the second time), which showed as seconds-long "stalls" at the start of a run.
    request_queue_size = 4096


class Receiver:
    """A local webhook endpoint for the gateway to deliver to."""

    def __init__(self) -> None:
        self.deliveries = Deliveries()
        sink = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.record(body, time.time())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bench"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def proc_usage(pid: int) -> dict[str, float]:
    """CPU seconds (user+system) and current/peak RSS in MB of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the parenthesised command name; utime and stime are 14 and 15.
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    status: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key] = int(value.split()[0]) / 1024
    return {
        "cpu_s": round(cpu, 2),
        "rss_mb": round(status.get("VmRSS", 0.0), 1),
        "peak_rss_mb": round(status.get("VmHWM", 0.0), 1),
    }


def host_load() -> dict[str, float]:
    """1-minute load average and CPU pressure (PSI ``some avg10``): how shared the box was."""
    out = {"loadavg_1m": os.getloadavg()[0]}
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()
        out["cpu_pressure_avg10"] = float(some[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return out


def pids_named(*names: str) -> dict[str, int]:
    """Pids of the first processes whose command name is one of ``names`` (Redis, RabbitMQ)."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in names and comm not in found:
            found[comm] = int(entry)
    return found


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each pid (0 when it is gone or unreadable)."""
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = proc_usage(pid)["cpu_s"]
        except OSError:
            out[name] = 0.0
    return out


def scrape(port: int, timeout: float = 2.0) -> dict[str, float]:
    """A worker's ``/metrics`` as ``{sample name: value summed over labels}`` (plus labelled keys)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
            if sample.labels:
                label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{label}}}"] = sample.value
    return out


def queue_depths(amqp_url: str, names: Names, queues: list[str]) -> dict[str, int | None]:
    """Ready messages per queue (passive declares; None when a queue does not exist)."""
    depths: dict[str, int | None] = {}
    conn = connect(amqp_url, name="tocsin-bench-depths")
    try:
        for queue in queues:
            short = queue.removeprefix(names.ns + ".")
            channel = conn.channel()
            try:
                ok = channel.queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                depths[short] = None
                continue
            depths[short] = ok.method.message_count
            channel.close()
    finally:
        conn.close()
    return depths


def namespace_memory(r: redis.Redis, namespace: str) -> dict[str, Any]:
    """Bytes (``MEMORY USAGE``) of every key of the namespace, in total and per-check keys only.

    Summing the namespace's own keys, rather than diffing ``used_memory``,
    keeps other users of the same Redis out of the figure.
    """
    total = per_check = keys = 0
    batch: list[str] = []
    kinds: Counter[str] = Counter()
    prefix = len(namespace) + 1

    def flush() -> None:
        nonlocal total, per_check
        pipe = r.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(batch, pipe.execute(), strict=True):
            total += int(size or 0)
            kinds[key_kind(key[prefix:])] += int(size or 0)
            if "{" in key and ROUTING_TAG not in key:  # check keys: the check id is the tag
                per_check += int(size or 0)
        batch.clear()

    for key in r.scan_iter(match=f"{namespace}:*", count=2000):
        batch.append(key)
        keys += 1
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return {"total": total, "check_keys": per_check, "keys": keys, "by_kind": dict(kinds)}


def key_kind(key: str) -> str:
    """``check:{ab12..}:attrs`` -> ``check:{id}:attrs``: one bucket per kind of key.

    The routing slot's tag is dropped first: ``{routing}:notified:<id>`` is a
    ``notified:<id>`` key, as it was named before the tag (shared/keys.py).
    """
    key = key.removeprefix(ROUTING_TAG + ":")
    key = re.sub(r"\{[^}]*\}[^:]*", "{id}", key)
    key = re.sub(r"(?<=:)[0-9a-f]{12,}[^:]*", "<id>", key)
    return re.sub(r"\d+", "#", key)
