"""One alert can be traced from event to delivery by its notification id in the JSON logs."""

from __future__ import annotations

import json
import time

import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import _configure

pytestmark = pytest.mark.e2e


def _json_lines(pipe: Pipeline) -> list[dict[str, object]]:
    out = []
    for line in pipe.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def test_notification_id_is_logged_by_processor_expansion_and_gateway(pipeline: Pipeline) -> None:
    check = f"trace-{int(time.time() * 1000)}"
    with Receiver() as receiver, pipeline.api as api:
        cid = _configure(api, receiver.url, "e2e trace")
        ev = {"entity": "web9", "check": check, "state": "critical", "initial_failure_delay": 0}
        assert api.post("/events", json=ev).status_code == 202
        got = receiver.wait_for(lambda d: d.get("check") == check, 30)
        assert got is not None
        deadline = time.monotonic() + 10
        stages: set[str] = set()
        while time.monotonic() < deadline and len(stages) < 3:
            lines = [
                x
                for x in _json_lines(pipeline)
                if x.get("check") == check and x.get("notification_id")
            ]
            stages = {str(x["msg"]) for x in lines}
            if {"notification created", "notification expanded", "delivered"} <= stages:
                break
            time.sleep(0.2)
        api.delete(f"/contacts/{cid}")
    assert {"notification created", "notification expanded", "delivered"} <= stages, stages
    ids = {str(x["notification_id"]) for x in lines}
    assert len(ids) == 1
    assert str(got["id"]).startswith(next(iter(ids)))  # delivery id = <notification id>:<medium id>
    workers = {x["worker"] for x in lines}
    assert {"processor", "gateway.webhook"} <= workers
    # The processor expands its own notifications (TOCSIN_PROCESSOR_EXPANDS): the line
    # names the stage, the worker field where it ran.
    (expanded,) = [x for x in lines if x["msg"] == "notification expanded"]
    assert (expanded["worker"], expanded["stage"]) == ("processor", "notifier")
