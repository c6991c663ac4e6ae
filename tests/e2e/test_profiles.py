"""End to end: Argus notification profiles with the real Argus client and the whole pipeline.

Two profiles on one timeslot: one for unacknowledged incidents, one for
acknowledged ones, each with its own webhook destination.  An incident posted
through ``pyargus`` notifies the first; the ACK notifies only the second (the
acked state includes the ACK being created).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pyargus.client import Client
from pyargus.models import Incident
from pyargus.time import now

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


def _created(resp: httpx.Response) -> Any:
    assert resp.status_code == 201, resp.text
    return resp.json()


def _profile(api: httpx.Client, slot: int, name: str, blob: dict[str, Any], url: str) -> int:
    flt = _created(
        api.post("/api/v2/notificationprofiles/filters/", json={"name": name, "filter": blob})
    )
    dest = _created(
        api.post(
            "/api/v2/notificationprofiles/destinations/",
            json={"media": "webhook", "label": name, "settings": {"url": url}},
        )
    )
    body = {"name": name, "timeslot": slot, "filters": [flt["pk"]], "destinations": [dest["pk"]]}
    return int(_created(api.post("/api/v2/notificationprofiles/", json=body))["pk"])


def test_incident_notifies_its_profile_and_the_ack_only_the_acked_profile(
    pipeline: Pipeline,
) -> None:
    tag = uuid.uuid4().hex[:6]
    with Receiver() as fresh, Receiver() as acked, pipeline.api as api:
        media = api.get("/api/v2/notificationprofiles/media/").json()
        assert {"slug": "webhook", "installed": True} in [
            {"slug": m["slug"], "installed": m["installed"]} for m in media
        ]
        slot = _created(
            api.post(
                "/api/v2/notificationprofiles/timeslots/",
                json={
                    "name": f"always {tag}",
                    "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}],
                },
            )
        )["pk"]
        _profile(api, slot, f"fresh {tag}", {"acked": False, "tags": [f"run={tag}"]}, fresh.url)
        _profile(api, slot, f"acked {tag}", {"acked": True, "tags": [f"run={tag}"]}, acked.url)
        source = _created(
            api.post("/api/v2/incidents/sources/", json={"name": f"nav-{tag}", "type": "nav"})
        )
        client = Client(
            api_root_url=f"{pipeline.settings.api_url}/api/v2", token=source["token"], timeout=10
        )
        posted = client.post_incident(
            Incident(
                start_time=now(),
                source_incident_id=f"port-{tag}",
                description="sw1 port 3 down",
                level=2,
                tags={"run": tag, "host": "sw1"},
            )
        )
        start = fresh.wait_for(lambda d: True, 30)
        assert start is not None, pipeline.log_tail()
        assert acked.wait_for(lambda d: True, 1.5) is None

        resp = api.post(f"/api/v2/incidents/{posted.pk}/acks/", json={"description": "on it"})
        assert resp.status_code == 201, resp.text
        ack = acked.wait_for(lambda d: True, 30)
        assert ack is not None, pipeline.log_tail()
        assert fresh.wait_for(lambda d: True, 1.5) is None

    assert start["type"] == "problem" and start["summary"].startswith("Incident start")
    assert start["entity"] == f"nav-{tag}" and f"run={tag}" in start["tags"]
    assert start["id"] == f"argus:{posted.pk}:1:dest-1"
    assert ack["type"] == "acknowledgement" and ack["id"] == f"argus:{posted.pk}:2:dest-2"
