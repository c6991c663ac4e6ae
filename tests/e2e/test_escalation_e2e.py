"""End to end through `tocsin up`: a rule routes a critical to an escalation policy.

Step 1 pages whoever is on call in the primary schedule (Kari), step 2 pages
the secondary (Ola) when nobody acknowledged within step 1's wait, step 3
would page the lead.  Kari's page arrives, no ack, Ola's arrives; then the
check is acknowledged and the escalation stops at step 3 with reason
``acknowledged``: the lead is never paged.  Step 1's 3 s wait is waited out;
step 2's is a minute, and once the ack has landed the test brings step 3's due
time forward to now (:func:`_due_now`), so the stop never races the ack's
latency on a loaded box and nobody waits the minute.  Every other wait is for
an event (a delivery, a timeline entry, the ack on the check), never a sleep.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from shared.keys import Keys
from shared.store import connect_redis
from tests.e2e.conftest import Pipeline, pipeline  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.e2e


def _person(api: httpx.Client, name: str, url: str) -> str:
    """A contact with one webhook medium and no rules: paged on every medium."""
    contact = api.post("/contacts", json={"name": name}).json()
    medium = api.post(
        "/media",
        json={"contact_id": contact["id"], "type": "webhook", "address": url, "interval": 0},
    )
    assert medium.status_code == 201, medium.text
    return str(contact["id"])


def _timeline_until(
    api: httpx.Client, entity: str, check: str, done: Any, timeout: float = 40
) -> list[dict[str, Any]]:
    """Poll the escalation timeline until ``done(entries)`` (the scheduler writes it)."""
    deadline = time.monotonic() + timeout
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = api.get("/escalations", params={"entity": entity, "check": check}).json()
        entries = [e for esc in got for e in esc["timeline"]]
        if done(entries):
            return entries
        time.sleep(0.2)  # polling an API for an event, not waiting out a duration
    raise AssertionError(f"timeline never got there: {entries}")


def _poll(what: str, get: Any, timeout: float = 30) -> Any:
    """Poll ``get()`` until it returns something truthy (an event through the pipeline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := get():
            return got
        time.sleep(0.1)  # polling an API for an event, not waiting out a duration
    raise AssertionError(f"{what} never happened")


def _due_now(pipe: Pipeline, escalation_id: str) -> float:
    """Make ``escalation_id``'s next step due now; returns when it was due.

    A stop is recorded when the next step comes due.  A test waiting out a
    wait long enough for an ack to land on a loaded box spent 20 s per run (and
    a 6 s wait once lost the race), so the wait is long and the test moves the
    due time, like a virtual clock; the scheduler then claims and fires it
    as it would at that time."""
    r = connect_redis(pipe.settings)
    due_key = Keys(pipe.settings.namespace).escalation_due()
    due = r.zscore(due_key, escalation_id)
    assert due is not None, f"escalation {escalation_id} has no next step due"
    assert r.zadd(due_key, {escalation_id: time.time()}, xx=True, ch=True) == 1
    return float(due)


def test_primary_then_secondary_then_ack_stops(pipeline: Pipeline) -> None:  # noqa: F811
    with Receiver() as kari_rx, Receiver() as ola_rx, Receiver() as lead_rx, pipeline.api as api:
        kari = _person(api, "Kari", kari_rx.url)
        ola = _person(api, "Ola", ola_rx.url)
        lead = _person(api, "Lead", lead_rx.url)
        team = api.post("/contacts", json={"name": "team"}).json()["id"]
        sched = api.post(
            "/schedules",
            json={
                "name": "primary",
                "timezone": "Europe/Oslo",
                "layers": [{"members": [kari], "shift_hours": 24, "handoff": "2026-01-01T09:00"}],
            },
        )
        assert sched.status_code == 201, sched.text
        policy = api.post(
            "/escalation-policies",
            json={
                "name": "ops",
                "steps": [
                    {"targets": [{"schedule": sched.json()["id"]}], "wait_s": 3},
                    {"targets": [{"contact": ola}], "wait_s": 60},
                    {"targets": [{"contact": lead}], "wait_s": 60},
                ],
            },
        )
        assert policy.status_code == 201, policy.text
        pid = policy.json()["id"]
        entity, check = "esc-host", f"http-{time.time_ns()}"
        rule = api.post(
            "/rules",
            json={
                "contact_id": team,
                "entities": [entity],
                "critical": {"escalation_policy_id": pid},
            },
        )
        assert rule.status_code == 201, rule.text
        event = {"entity": entity, "check": check, "initial_failure_delay": 0}
        assert api.post("/events", json=event | {"state": "critical"}).status_code == 202

        first = kari_rx.wait_for(lambda d: d["check"] == check, 30)
        assert first is not None, pipeline.log_tail()
        second = ola_rx.wait_for(lambda d: d["check"] == check, 30)
        assert second is not None, pipeline.log_tail()
        ack = api.post("/events", json=event | {"state": "acknowledgement", "summary": "on it"})
        assert ack.status_code == 202
        _poll(
            "the ack on the check",
            lambda: api.get(f"/checks/{entity}/{check}").json().get("acknowledgement"),
        )
        paged_two = _timeline_until(api, entity, check, lambda es: len(es) >= 2)
        (esc,) = api.get("/escalations", params={"entity": entity, "check": check}).json()
        step_three_due = _due_now(pipeline, esc["id"])

        entries = _timeline_until(
            api, entity, check, lambda es: any(e["outcome"] == "stopped" for e in es)
        )
        late = lead_rx.wait_for(lambda d: d["check"] == check, 1)
        # Kari and Ola have no rules: they hear how the page they got ended.
        kari_ack = kari_rx.wait_for(lambda d: d["type"] == "acknowledgement", 30)
        explained = api.get(f"/checks/{entity}/{check}/explain", params={"since": "all"}).json()
        for cid in (kari, ola, lead, team):
            api.delete(f"/contacts/{cid}")

    assert first["type"] == "problem" and first["escalation"] == {"policy_id": pid, "step": 1}
    assert second["escalation"] == {"policy_id": pid, "step": 2}
    assert second["time"] - first["time"] >= 3
    assert step_three_due == pytest.approx(paged_two[1]["time"] + 60, abs=0.01)
    assert [(e["step"], e["outcome"], e["paged"]) for e in entries] == [
        (1, "paged", [kari]),
        (2, "paged", [ola]),
        (3, "stopped", []),
    ]
    assert entries[0]["on_call"] == {sched.json()["id"]: kari}
    assert entries[2]["reason"] == "acknowledged"
    assert late is None, "step 3 paged the lead after the ack"
    steps = [
        (i["step"], i["outcome"], i.get("paged", []), i.get("reason", ""))
        for i in sorted(explained["items"], key=lambda i: i["time"])
        if i["kind"] == "escalation"
    ]
    assert steps == [
        (1, "paged", ["Kari"], ""),
        (2, "paged", ["Ola"], ""),
        (3, "stopped", [], "acknowledged"),
    ]
    assert kari_ack is not None and kari_ack["summary"] == "on it"
