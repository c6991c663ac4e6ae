"""`tocsin up --replicas`: two notifiers, two webhook gateways and two API processes on one port.

The run's ``--json`` line lists each process and the replicas per worker;
``tocsin check --json`` sees two consumers on the notifier's and the webhook
gateway's queues; events sent to the API (either API process) come out at a
webhook receiver exactly once each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from shared.amqp import Names
from shared.config import Settings
from tests.conftest import AMQP_URL, REDIS_URL, cleanup_namespace
from tests.e2e.conftest import TOKEN, free_port

pytestmark = pytest.mark.e2e

REPLICAS = "notifier=2,gateway:webhook=2,api=2"
WORKERS = "ingest,processor,notifier,gateway:webhook,api"


@pytest.fixture(scope="module")
def up(
    services_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], dict[str, str], Settings]]:
    tmp = tmp_path_factory.mktemp("replicas")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": REDIS_URL,
            "TOCSIN_AMQP_URL": AMQP_URL,
            "TOCSIN_NAMESPACE": "e" + uuid.uuid4().hex[:12],
            "TOCSIN_PARTITIONS": "2",
            "TOCSIN_API_LISTEN": f"127.0.0.1:{free_port()}",
            "TOCSIN_API_TOKEN": TOKEN,
            "TOCSIN_TOKEN_FILE": str(tmp / "token"),
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_BATCH_WAIT_MS": "5",
        }
    )
    settings = Settings.from_env(env)
    stdout, stderr = tmp / "up.json", tmp / "up.log"
    argv = [sys.executable, "-m", "services.cli.main", "up", "--metrics-port", "0"]
    argv += ["--workers", WORKERS, "--processors", "1", "--replicas", REPLICAS, "--json"]
    with stdout.open("wb") as o, stderr.open("wb") as e:
        proc = subprocess.Popen(argv, env=env, stdout=o, stderr=e)
    try:
        doc = _first_json_line(proc, stdout, stderr)
        yield doc, env, settings
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cleanup_namespace(settings)


def _first_json_line(proc: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> dict[str, Any]:
    """`tocsin up --json` prints its one line once the API answered (or gave up waiting)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, stderr.read_text(errors="replace")
        text = stdout.read_text()
        if text.endswith("\n"):
            [line] = text.splitlines()  # --json: nothing else on stdout
            return dict(json.loads(line))
        time.sleep(0.1)  # waiting for a process to start, not standing in for logic
    pytest.fail(f"no --json line in 90 s:\n{stderr.read_text(errors='replace')}")


def _check(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return dict(json.loads(done.stdout))


def test_up_json_lists_the_replicas(up: tuple[dict[str, Any], dict[str, str], Settings]) -> None:
    doc, _, settings = up
    assert doc["api_healthy"] is True and doc["api"] == settings.api_url
    assert doc["replicas"] == {
        "ingest": 1,
        "processor": 1,
        "notifier": 2,
        "gateway:webhook": 2,
        "api": 2,
    }
    names = [p["name"] for p in doc["processes"]]
    assert names == [
        "ingest",
        "processor",
        "notifier",
        "notifier#2",
        "gateway:webhook",
        "gateway:webhook#2",
        "api",
    ]
    assert all(isinstance(p["pid"], int) for p in doc["processes"])
    assert next(p for p in doc["processes"] if p["name"] == "api")["processes"] == 2


def test_two_consumers_per_replicated_queue_and_every_event_delivered_once(
    up: tuple[dict[str, Any], dict[str, str], Settings],
) -> None:
    _, env, settings = up
    names = Names(settings.namespace)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with Receiver() as rx, httpx.Client(base_url=settings.api_url, headers=headers) as api:
        contact = api.post("/contacts", json={"name": "alice"}).json()
        medium = api.post(
            "/media",
            json={"contact_id": contact["id"], "type": "webhook", "address": rx.url, "interval": 0},
        )
        assert medium.status_code == 201, medium.text
        route = {"media": ["webhook"]}
        rule = api.post("/rules", json={"contact_id": contact["id"], "critical": route})
        assert rule.status_code == 201, rule.text
        deadline = time.monotonic() + 30
        while True:  # the gateways register their consumers after starting
            queues = {q["name"]: q for q in _check(env)["queues"]}
            ready = (
                queues[names.notifications]["consumers"],
                queues[names.gateway("webhook")]["consumers"],
            )
            if ready == (2, 2) or time.monotonic() > deadline:
                break
        assert ready == (2, 2), queues
        checks = [f"disk-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
        for check in checks:
            body = {
                "entity": "db1",
                "check": check,
                "state": "critical",
                "initial_failure_delay": 0,
            }
            assert api.post("/events", json=body).status_code == 202
        got: list[dict[str, Any]] = []
        while len(got) < len(checks):
            item = rx.wait_for(lambda _d: True, 60)
            if item is None:
                break
            got.append(item)
        late = rx.wait_for(lambda _d: True, 2)
    assert sorted(d["check"] for d in got) == sorted(checks)
    assert all(d["type"] == "problem" for d in got)
    assert late is None, late
