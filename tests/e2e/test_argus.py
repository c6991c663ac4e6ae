"""End to end with the real Argus client: a glue service drives Tocsin through ``pyargus``.

The source is created with the admin token; everything else goes through
``pyargus.client.Client`` exactly as an Argus glue service does, and the
problem and the recovery arrive at a webhook configured through the
management API.
"""

from __future__ import annotations

import uuid

import pytest
from pyargus.client import Client
from pyargus.models import Event, Incident
from pyargus.time import now

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import _configure

pytestmark = pytest.mark.e2e


def test_glue_service_incident_lifecycle_notifies_problem_and_recovery(
    pipeline: Pipeline,
) -> None:
    name = "nav-" + uuid.uuid4().hex[:6]
    sid = "sw1-port-" + uuid.uuid4().hex[:6]
    with Receiver() as receiver, pipeline.api as api:
        contact = _configure(api, receiver.url, "argus glue")
        created = api.post("/api/v2/incidents/sources/", json={"name": name, "type": "nav"})
        assert created.status_code == 201, created.text
        source = created.json()
        client = Client(
            api_root_url=f"{pipeline.settings.api_url}/api/v2", token=source["token"], timeout=10
        )
        assert client.supports_heartbeat()
        client.send_heartbeat()

        posted = client.post_incident(
            Incident(
                start_time=now(),
                source_incident_id=sid,
                description="sw1 port 3 down",
                level=2,
                tags={"host": "sw1", "port": "3"},
            )
        )
        assert posted.pk and posted.open and posted.stateful and posted.source.name == name
        (found,) = list(client.get_my_incidents(source_incident_id=sid))
        assert found.pk == posted.pk and found.tags.getlist("host") == ["sw1"]

        problem = receiver.wait_for(lambda d: d.get("check") == sid, 30)
        assert problem is not None, pipeline.log_tail()

        client.post_incident_event(
            posted.pk, Event(type="OTH", description="still down", timestamp=now())
        )
        # pyargus always sends ``tags`` (a full replacement set), so keep them.
        updated = client.update_incident(
            Incident(pk=posted.pk, ticket_url="https://tickets.example/1", tags=posted.tags)
        )
        assert updated.ticket_url == "https://tickets.example/1"
        assert updated.tags.getlist("port") == ["3"]
        client.resolve_incident(posted, description="port 3 up again")

        recovery = receiver.wait_for(lambda d: d.get("check") == sid, 30)
        assert recovery is not None, pipeline.log_tail()

        still_open = {i.pk for i in client.get_incidents(open=True)}
        mine_open = list(client.get_my_incidents(open=True))
        events = client.get_incident_events(posted.pk)
        closed = client.get_incident(posted.pk)
        api.delete(f"/contacts/{contact}")

    assert problem["type"] == "problem" and problem["state"] == "critical"
    assert problem["entity"] == name and problem["summary"] == "sw1 port 3 down"
    assert {"host=sw1", "port=3"} <= set(problem["tags"])
    assert recovery["type"] == "recovery" and recovery["state"] == "ok"
    assert posted.pk not in still_open and mine_open == []
    assert closed.open is False and closed.end_time is not None
    assert sorted(e.type for e in events) == ["CHI", "END", "OTH", "STA"]
    assert all(e.actor == name for e in events)
    assert receiver.received.empty(), f"unexpected deliveries: {list(receiver.received.queue)}"
