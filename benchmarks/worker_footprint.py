"""Memory and CPU per worker of a running ``tocsin up``, for sizing (deploy/kubernetes/).

Starts ``tocsin up --json`` (ingest, one processor, notifier, webhook gateway,
API) in a fresh namespace, routes one webhook contact to a local receiver,
posts ``--events`` critical events one by one through the API, waits for every
delivery, and prints one JSON line: per worker its resident memory (from
/proc) and the CPU it spent per event.  Needs the local Redis and RabbitMQ.

    python -m benchmarks.worker_footprint --events 500
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.ports import free_port as _free_port
from services.cli.demo import Receiver
from shared.config import Settings

TOKEN = "footprint-" + uuid.uuid4().hex
TICK = os.sysconf("SC_CLK_TCK")


def _usage(pid: int) -> tuple[int, float]:
    """(resident KiB, CPU seconds) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
    return rss, (int(fields[11]) + int(fields[12])) / TICK


def _start(env: dict[str, str], out: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    argv = [sys.executable, "-m", "services.cli.main", "up", "--json", "--metrics-port", "0"]
    argv += ["--workers", "ingest,processor,notifier,gateway:webhook,api", "--processors", "1"]
    with out.open("wb") as o:
        proc = subprocess.Popen(argv, env=env, stdout=o, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not out.read_text().endswith("\n"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("tocsin up did not start")
        time.sleep(0.2)  # waiting for the pipeline to start
    doc = json.loads(out.read_text().splitlines()[0])
    return proc, {p["name"]: p["pid"] for p in doc["processes"]}


def measure(events: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="footprint"))
    env.update(
        {
            "TOCSIN_NAMESPACE": "f" + uuid.uuid4().hex[:12],
            "TOCSIN_PARTITIONS": "2",
            "TOCSIN_API_LISTEN": f"127.0.0.1:{port}",
            "TOCSIN_API_TOKEN": TOKEN,
            "TOCSIN_TOKEN_FILE": str(tmp / "token"),
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_LOG_LEVEL": "WARNING",
        }
    )
    proc, pids = _start(env, tmp / "up.json")
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{port}"
        with Receiver() as rx, httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            contact = api.post("/contacts", json={"name": "footprint"}).json()
            medium = {"contact_id": contact["id"], "type": "webhook", "address": rx.url}
            api.post("/media", json={**medium, "interval": 0}).raise_for_status()
            route = {"media": ["webhook"]}
            api.post("/rules", json={"contact_id": contact["id"], "critical": route})
            before = {name: _usage(pid) for name, pid in pids.items()}
            started = time.monotonic()
            for i in range(events):
                body = {"entity": "e", "check": f"c{i}", "state": "critical"}
                api.post("/events", json={**body, "initial_failure_delay": 0}).raise_for_status()
            delivered = 0
            while delivered < events and rx.wait_for(lambda _d: True, 60) is not None:
                delivered += 1
            wall = time.monotonic() - started
            after = {name: _usage(pid) for name, pid in pids.items()}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        from tests.conftest import cleanup_namespace

        cleanup_namespace(Settings.from_env(env))
    return {
        "events": events,
        "delivered": delivered,
        "seconds": round(wall, 1),
        "load_average": os.getloadavg()[0],
        "workers": {
            name: {
                "rss_mib": round(after[name][0] / 1024, 1),
                "cpu_ms_per_event": round(1000 * (after[name][1] - before[name][1]) / events, 2),
            }
            for name in pids
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    print(json.dumps(measure(parser.parse_args().events)))


if __name__ == "__main__":
    main()
