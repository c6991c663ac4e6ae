"""End to end: `tocsin up` as processes, configured through the API, deliveries observed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

# Every worker: the test reads a consumer on every work queue and kills one.
PIPELINE_UP_ARGS: tuple[str, ...] = ()


def _configure(api: httpx.Client, url: str, name: str) -> str:
    contact = api.post("/contacts", json={"name": name}).json()
    medium = api.post(
        "/media",
        json={"contact_id": contact["id"], "type": "webhook", "address": url, "interval": 0},
    )
    assert medium.status_code == 201, medium.text
    route = {"media": ["webhook"]}
    rule = api.post(
        "/rules",
        json={"contact_id": contact["id"], "critical": route, "warning": route, "unknown": route},
    )
    assert rule.status_code == 201, rule.text
    return str(contact["id"])


def _wait_idle(pipe: Pipeline, timeout: float = 20) -> None:
    """Wait until every work queue of the namespace is empty (all effects done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = pipe.tocsin("check", "--json")
        report = json.loads(result.stdout)
        busy = [q for q in report["queues"] if q["messages"] and not q["name"].endswith(".dead")]
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError(f"queues still busy after {timeout} s")


def test_critical_then_ok_delivers_exactly_one_problem_and_one_recovery(pipeline: Pipeline) -> None:
    with Receiver() as receiver, pipeline.api as api:
        cid = _configure(api, receiver.url, "e2e one")
        check = "http-" + str(int(time.time()))
        event = {"entity": "web1", "check": check, "initial_failure_delay": 0, "tags": ["team=ops"]}
        assert (
            api.post(
                "/events", json={**event, "state": "critical", "summary": "HTTP 503"}
            ).status_code
            == 202
        )
        problem = receiver.wait_for(lambda d: d.get("check") == check, 30)
        assert problem is not None, pipeline.log_tail()
        assert (
            api.post("/events", json={**event, "state": "ok", "summary": "HTTP 200"}).status_code
            == 202
        )
        recovery = receiver.wait_for(lambda d: d.get("check") == check, 30)
        assert recovery is not None, pipeline.log_tail()
        _wait_idle(pipeline)
        api.delete(f"/contacts/{cid}")
    assert problem["type"] == "problem" and problem["state"] == "critical"
    assert problem["entity"] == "web1" and problem["summary"] == "HTTP 503"
    assert problem["contact"]["name"] == "e2e one" and problem["medium"]["type"] == "webhook"
    assert "team=ops" in problem["tags"]
    assert recovery["type"] == "recovery" and recovery["state"] == "ok"
    assert receiver.received.empty(), (
        f"unexpected extra deliveries: {list(receiver.received.queue)}"
    )


def test_bad_event_over_http_is_refused_and_over_amqp_is_dead_lettered(pipeline: Pipeline) -> None:
    with pipeline.api as api:
        r = api.post("/events", json={"entity": "web1", "check": "x", "state": "purple"})
    assert r.status_code == 422 and r.json()["field"] == "state"
    sent = pipeline.tocsin("send", "--entity", "web1", "--check", "x", "--state", "purple")
    assert sent.returncode == 1 and "unknown value 'purple'" in sent.stderr


def test_tocsin_check_reports_consumers_on_every_work_queue(pipeline: Pipeline) -> None:
    result = pipeline.tocsin("check", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["redis"] == "ok" and report["amqp"] == "ok"
    work = [q for q in report["queues"] if not q["name"].endswith(".dead")]
    assert work and all(q["consumers"] >= 1 for q in work)


def test_demo_command_sees_problem_and_recovery(pipeline: Pipeline) -> None:
    result = pipeline.tocsin("demo", "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr + pipeline.log_tail()
    assert "received PROBLEM" in result.stdout and "received RECOVERY" in result.stdout


def _children(pid: int, needle: str) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines() if needle in line]


def test_supervisor_restarts_a_killed_worker(pipeline: Pipeline) -> None:
    (victim,) = _children(pipeline.proc.pid, "services.notifier")
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = _children(pipeline.proc.pid, "services.notifier")
        if alive and alive[0] != victim:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("notifier was not restarted")
    # The restarted pipeline still delivers, exactly once.
    test_critical_then_ok_delivers_exactly_one_problem_and_one_recovery(pipeline)
