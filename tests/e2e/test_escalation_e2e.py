"""End to end through `tocsin up`: a rule routes a critical to an escalation policy.

Step 1 pages whoever is on call in the primary schedule (Kari), step 2 pages
the secondary (Ola) when nobody acknowledged within step 1's wait, step 3
would page the lead.  Kari's page arrives, no ack, Ola's arrives; then the
check is acknowledged and the escalation stops at step 3 with reason
``acknowledged``: the lead is never paged.  Waits are seconds and every wait
in the test is for an event (a delivery, a timeline entry), never a sleep.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
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


# The ack must land within step 2's wait (the stop is recorded when step 3
# comes due): 20 s is far longer than an ack takes on a loaded box, so this
# test runs with the others, not alone.
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
                    {"targets": [{"contact": ola}], "wait_s": 20},
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
