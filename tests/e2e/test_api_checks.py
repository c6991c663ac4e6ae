"""End to end through the API: check state, history, acknowledgement, maintenance, logs."""

from __future__ import annotations

import time

import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import _configure

pytestmark = pytest.mark.e2e


def _wait(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_check_lifecycle_through_the_api(pipeline: Pipeline) -> None:
    check = f"disk-{int(time.time() * 1000)}"
    with Receiver() as receiver, pipeline.api as api:
        cid = _configure(api, receiver.url, "e2e checks")
        ev = {"entity": "db1", "check": check, "initial_failure_delay": 0, "tags": ["role=db"]}
        assert (
            api.post("/events", json={**ev, "state": "warning", "summary": "85% full"}).status_code
            == 202
        )
        assert receiver.wait_for(lambda d: d.get("check") == check and d["type"] == "problem", 30)

        detail = _wait(
            lambda: (r := api.get(f"/checks/db1/{check}")).status_code == 200 and r.json()
        )
        assert (
            detail["state"] == "warning"
            and detail["failing"] is True
            and "role=db" in detail["tags"]
        )
        failing = api.get("/checks", params={"failing": "true", "entity": "db1"}).json()
        assert check in [c["check"] for c in failing["items"]]
        assert api.get("/checks", params={"state": "purple"}).status_code == 400
        states = api.get(f"/checks/db1/{check}/states").json()["items"]
        assert states[0]["state"] == "warning" and states[0]["notified"] is True

        ack = api.post(
            f"/checks/db1/{check}/acknowledgements", json={"summary": "on it", "duration": 600}
        )
        assert ack.status_code == 202, ack.text
        got = receiver.wait_for(lambda d: d.get("check") == check, 30)
        assert got is not None and got["type"] == "acknowledgement"
        acked = _wait(lambda: api.get(f"/checks/db1/{check}").json()["acknowledgement"])
        assert acked["end_time"] - acked["start_time"] == pytest.approx(600, abs=1)

        now = time.time()
        m = api.post(
            f"/checks/db1/{check}/maintenances",
            json={"start_time": now + 3600, "end_time": now + 7200, "summary": "disk swap"},
        )
        assert m.status_code == 201, m.text
        bad = api.post(
            f"/checks/db1/{check}/maintenances", json={"start_time": now, "end_time": now - 1}
        )
        assert bad.status_code == 422 and bad.json()["field"] == "end_time"
        listed = api.get(f"/checks/db1/{check}/maintenances").json()["items"]
        # Both kinds: the acknowledgement (unscheduled) and the window (scheduled).
        assert [(x["type"], x["summary"]) for x in listed] == [
            ("unscheduled", "on it"),
            ("scheduled", "disk swap"),
        ]
        assert api.delete(f"/checks/db1/{check}/maintenances/{m.json()['id']}").status_code == 204
        left = api.get(f"/checks/db1/{check}/maintenances").json()["items"]
        assert [x["type"] for x in left] == ["unscheduled"]

        assert api.post("/events", json={**ev, "state": "ok"}).status_code == 202
        assert receiver.wait_for(lambda d: d.get("check") == check and d["type"] == "recovery", 30)
        late = api.post(f"/checks/db1/{check}/acknowledgements", json={})
        assert late.status_code == 409 and "only a failing check" in late.json()["error"]

        def delivered_types() -> set[str]:
            items = api.get("/deliveries", params={"check": check}).json()["items"]
            types = {e["type"] for e in items if e["outcome"] == "delivered"}
            return types if types >= {"problem", "acknowledgement", "recovery"} else set()

        assert _wait(delivered_types) == {"problem", "acknowledgement", "recovery"}
        notes = api.get("/notifications", params={"check": check}).json()["items"]
        assert [n["type"] for n in notes][::-1][:3] == ["problem", "acknowledgement", "recovery"]

        assert api.patch(f"/checks/db1/{check}", json={"enabled": False}).json()["enabled"] is False
        assert api.get(f"/checks/db1/{check}").json()["enabled"] is False
        assert api.get("/checks/db1/never-seen").status_code == 404
        api.delete(f"/contacts/{cid}")
