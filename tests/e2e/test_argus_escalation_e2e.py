"""End to end through `tocsin up`: an Argus source's incident reaches an escalation policy.

A notification profile (any incident tagged with this run) names a policy:
step 1 pages Kari, step 2 Ola after a 3 s wait, step 3 the lead.  A source
system posts an incident to ``/api/v2/incidents/``; the profile's own
destination gets the start, Kari and Ola are paged in turn, then the incident
is acknowledged through the Argus API and step 3 stops with reason
``acknowledged`` (the incident's own ack, not a Tocsin check's).  A second
incident, under a second profile whose policy waits a minute after step 1, is
closed by its source after step 1 and stops with ``recovered``.

A stop is recorded when the next step comes due.  The waits before the stops
are a minute, and once the ack or the close has landed (the Argus API writes
the incident before it answers) the test brings the next step's due time
forward to now (``_due_now``): the stops never race an ack's latency on a
loaded box, and nobody waits the minute.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline, pipeline  # noqa: F401  (module-scoped fixture)
from tests.e2e.test_escalation_e2e import _due_now, _person, _timeline_until

pytestmark = pytest.mark.e2e


def _created(resp: httpx.Response) -> Any:
    assert resp.status_code == 201, resp.text
    return resp.json()


def _pages_of(rx: Receiver, checks: set[str], timeout: float = 30) -> dict[str, dict[str, Any]]:
    """The first page ``rx`` gets for each of ``checks``, by check (arrival order is free)."""
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(checks) and (left := deadline - time.monotonic()) > 0:
        item = rx.wait_for(lambda d: d["check"] in checks - set(got), left)
        if item is None:
            break
        got[item["check"]] = item
    return got


def _profile(api: httpx.Client, tag: str, url: str, policy: str) -> int:
    slot = _created(
        api.post(
            "/api/v2/notificationprofiles/timeslots/",
            json={
                "name": f"always {tag}",
                "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}],
            },
        )
    )["pk"]
    flt = _created(
        api.post(
            "/api/v2/notificationprofiles/filters/",
            json={"name": f"run {tag}", "filter": {"tags": [f"run={tag}"]}},
        )
    )["pk"]
    dest = _created(
        api.post(
            "/api/v2/notificationprofiles/destinations/",
            json={"media": "webhook", "label": f"ops {tag}", "settings": {"url": url}},
        )
    )["pk"]
    body = {
        "name": f"page {tag}",
        "timeslot": slot,
        "filters": [flt],
        "destinations": [dest],
        "escalation_policy": policy,
    }
    return int(_created(api.post("/api/v2/notificationprofiles/", json=body))["pk"])


def test_an_argus_incident_escalates_through_a_profile_until_acked(
    pipeline: Pipeline,  # noqa: F811
) -> None:
    tag = uuid.uuid4().hex[:6]
    with (
        Receiver() as ops_rx,
        Receiver() as slow_ops_rx,
        Receiver() as kari_rx,
        Receiver() as ola_rx,
        Receiver() as lead_rx,
        pipeline.api as api,
    ):
        kari = _person(api, "Kari", kari_rx.url)
        ola = _person(api, "Ola", ola_rx.url)
        lead = _person(api, "Lead", lead_rx.url)
        policy = _created(
            api.post(
                "/escalation-policies",
                json={
                    "name": f"argus {tag}",
                    "steps": [
                        {"targets": [{"contact": kari}], "wait_s": 3},
                        {"targets": [{"contact": ola}], "wait_s": 60},
                        {"targets": [{"contact": lead}], "wait_s": 60},
                    ],
                },
            )
        )["id"]
        _profile(api, tag, ops_rx.url, policy)
        slow = _created(
            api.post(
                "/escalation-policies",
                json={
                    "name": f"argus slow {tag}",
                    "steps": [
                        {"targets": [{"contact": kari}], "wait_s": 60},
                        {"targets": [{"contact": ola}], "wait_s": 60},
                    ],
                },
            )
        )["id"]
        _profile(api, f"{tag}-slow", slow_ops_rx.url, slow)
        source = _created(
            api.post("/api/v2/incidents/sources/", json={"name": f"nav-{tag}", "type": "nav"})
        )
        nav = httpx.Client(
            base_url=f"{pipeline.settings.api_url}/api/v2",
            headers={"Authorization": f"Token {source['token']}"},
            timeout=10,
        )

        def post_incident(sid: str, run: str) -> int:
            body = {
                "start_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "end_time": "infinity",
                "source_incident_id": sid,
                "description": f"{sid} down",
                "level": 2,
                "tags": [{"tag": f"run={run}"}],
            }
            return int(_created(nav.post("/incidents/", json=body))["pk"])

        # Both incidents at once, so the two policies' waits run side by side.
        port, link = f"port-{tag}", f"link-{tag}"
        acked_pk = post_incident(port, tag)
        closed_pk = post_incident(link, f"{tag}-slow")
        start = ops_rx.wait_for(lambda d: d["check"] == port, 30)
        assert start is not None, pipeline.log_tail()
        kari_pages = _pages_of(kari_rx, {port, link})
        assert set(kari_pages) == {port, link}, pipeline.log_tail()
        first, paged = kari_pages[port], kari_pages[link]
        end = nav.post(
            f"/incidents/{closed_pk}/events/",
            json={
                "type": "END",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "description": "up again",
            },
        )
        assert end.status_code == 201, end.text
        link_paged = _timeline_until(api, f"nav-{tag}", link, lambda es: len(es) >= 1)
        (link_esc,) = api.get("/escalations", params={"entity": f"nav-{tag}", "check": link}).json()
        link_step_two_due = _due_now(pipeline, link_esc["id"])
        second = ola_rx.wait_for(lambda d: d["check"] == port, 30)
        assert second is not None, pipeline.log_tail()
        ack = api.post(f"/api/v2/incidents/{acked_pk}/acks/", json={"description": "on it"})
        assert ack.status_code == 201, ack.text
        port_paged = _timeline_until(api, f"nav-{tag}", port, lambda es: len(es) >= 2)
        (port_esc,) = api.get("/escalations", params={"entity": f"nav-{tag}", "check": port}).json()
        port_step_three_due = _due_now(pipeline, port_esc["id"])
        ended = _timeline_until(
            api, f"nav-{tag}", link, lambda es: any(e["outcome"] == "stopped" for e in es)
        )
        acked = _timeline_until(
            api, f"nav-{tag}", port, lambda es: any(e["outcome"] == "stopped" for e in es)
        )
        late = lead_rx.wait_for(lambda d: d["check"] == port, 1)
        nav.close()
        for cid in (kari, ola, lead):
            api.delete(f"/contacts/{cid}")

    assert start["type"] == "problem" and start.get("escalation") is None  # the profile's own
    assert first["escalation"] == {"policy_id": policy, "step": 1}
    assert second["escalation"] == {"policy_id": policy, "step": 2}
    assert first["entity"] == f"nav-{tag}" and second["time"] - first["time"] >= 3
    assert port_step_three_due == pytest.approx(port_paged[1]["time"] + 60, abs=0.01)
    assert link_step_two_due == pytest.approx(link_paged[0]["time"] + 60, abs=0.01)
    assert [(e["step"], e["outcome"], e["paged"]) for e in acked] == [
        (1, "paged", [kari]),
        (2, "paged", [ola]),
        (3, "stopped", []),
    ]
    assert acked[2]["reason"] == "acknowledged"
    assert late is None, "step 3 paged the lead after the incident was acknowledged"
    assert paged["escalation"] == {"policy_id": slow, "step": 1}
    assert [(e["step"], e["outcome"], e.get("reason", "")) for e in ended] == [
        (1, "paged", ""),
        (2, "stopped", "recovered"),
    ]
