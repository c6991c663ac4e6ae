"""Argus API behaviour argus-api-client and the Argus frontend rely on (docs/argus.md).

Spellings follow Argus's own views (src/argus/incident/views.py): ``?count``
answers ``{"count", "params"}``; the bulk endpoints take ``{"ids", "ack"}`` or
``{"ids", "event"}`` and answer ``{"changes": {"<id>": {"ack"|"event",
"status", "errors"}}}``, 201 when at least one succeeded and 400 when none did.
"""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.integration.test_argus_api import ADMIN, Client, client, make_incident, make_source

pytestmark = pytest.mark.integration
__all__ = ["client"]

DEST = "/api/v2/notificationprofiles/destinations/"


def test_a_duplicate_destination_is_refused(client: Client, settings: Settings) -> None:
    connect_redis(settings).hset(Keys(settings.namespace).media_installed(), "email", "1")
    body = {"media": "email", "label": "ops", "settings": {"email_address": "ops@example.org"}}
    first = client.post(DEST, json=body, headers=ADMIN)
    assert first.status_code == 201, first.text
    again = client.post(DEST, json={**body, "label": "ops again"}, headers=ADMIN)
    assert again.status_code == 400, again.text
    assert "same" in again.text
    other = {**body, "settings": {"email_address": "dev@example.org"}}
    assert client.post(DEST, json=other, headers=ADMIN).status_code == 201
    # Changing a destination into a copy of another is refused the same way.
    pk = client.get(DEST, headers=ADMIN).json()[-1]["pk"]
    same = client.put(f"{DEST}{pk}/", json={**body, "label": "x"}, headers=ADMIN)
    assert same.status_code == 400, same.text


def test_bulk_acks_answer_per_id(client: Client) -> None:
    _, auth = make_source(client)
    a = make_incident(client, auth, source_incident_id="1", description="a")
    b = make_incident(client, auth, source_incident_id="2", description="b")
    body = {
        "ids": [a["pk"], b["pk"], 999999],
        "ack": {"timestamp": "2026-11-23T10:05:00+00:00", "description": "on it"},
    }
    r = client.post("/api/v2/incidents/acks/bulk/", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    changes = r.json()["changes"]
    assert changes[str(a["pk"])]["status"] == 201
    assert changes[str(a["pk"])]["ack"]["event"]["description"] == "on it"
    assert changes[str(a["pk"])]["errors"] is None
    assert changes["999999"]["status"] == 400 and changes["999999"]["ack"] is None
    assert "999999" in str(changes["999999"]["errors"])
    for pk in (a["pk"], b["pk"]):
        assert client.get(f"/api/v2/incidents/{pk}/", headers=ADMIN).json()["acked"] is True
    none = client.post(
        "/api/v2/incidents/acks/bulk/", json={**body, "ids": [999998]}, headers=ADMIN
    )
    assert none.status_code == 400
    bad = client.post("/api/v2/incidents/acks/bulk/", json={"ids": "x"}, headers=ADMIN)
    assert bad.status_code == 400


def test_bulk_events_close_and_reopen(client: Client) -> None:
    _, auth = make_source(client)
    a = make_incident(client, auth, source_incident_id="1", description="a")
    b = make_incident(client, auth, source_incident_id="2", description="b")
    end = {"type": "END", "timestamp": "2026-11-23T11:00:00+00:00", "description": "fixed"}
    r = client.post(
        "/api/v2/incidents/events/bulk/", json={"ids": [a["pk"]], "event": end}, headers=auth
    )
    assert r.status_code == 201, r.text
    assert r.json()["changes"][str(a["pk"])]["event"]["type"]["value"] == "END"
    assert client.get(f"/api/v2/incidents/{a['pk']}/", headers=ADMIN).json()["open"] is False
    # Closing both: the closed one fails, the open one closes; 201 with a 400 inside.
    close = {"type": "CLO", "timestamp": "2026-11-23T11:30:00+00:00"}
    both = client.post(
        "/api/v2/incidents/events/bulk/",
        json={"ids": [a["pk"], b["pk"]], "event": close},
        headers=ADMIN,
    )
    assert both.status_code == 201, both.text
    changes = both.json()["changes"]
    assert changes[str(a["pk"])]["status"] == 400 and changes[str(a["pk"])]["event"] is None
    assert "closed" in str(changes[str(a["pk"])]["errors"])
    assert changes[str(b["pk"])]["status"] == 201
    reopen = {"type": "REO", "timestamp": "2026-11-23T12:00:00+00:00"}
    again = client.post(
        "/api/v2/incidents/events/bulk/",
        json={"ids": [a["pk"], b["pk"]], "event": reopen},
        headers=ADMIN,
    )
    assert again.status_code == 201, again.text
    for pk in (a["pk"], b["pk"]):
        assert client.get(f"/api/v2/incidents/{pk}/", headers=ADMIN).json()["open"] is True
    gone = client.post(
        "/api/v2/incidents/events/bulk/", json={"ids": [424242], "event": close}, headers=ADMIN
    )
    assert gone.status_code == 400


def test_count(client: Client) -> None:
    _, auth = make_source(client)
    for i in range(3):
        make_incident(client, auth, source_incident_id=str(i), description=str(i))
    r = client.get("/api/v2/incidents/", params={"count": "true"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 3 and r.json()["params"]["count"] == "true"
    r = client.get(
        "/api/v2/incidents/", params={"count": "", "source_incident_id": "1"}, headers=ADMIN
    )
    assert r.json()["count"] == 1


def test_heartbeat_sets_last_seen(client: Client) -> None:
    src, auth = make_source(client)
    before = client.get(f"/api/v2/incidents/sources/{src['pk']}/", headers=ADMIN).json()
    assert before.get("last_seen") is None  # shown once a heartbeat came
    assert client.post("/api/v2/incidents/sources/heartbeat/", headers=auth).status_code == 204
    after = client.get(f"/api/v2/incidents/sources/{src['pk']}/", headers=ADMIN).json()
    assert after["last_seen"] is not None and after["last_seen"].startswith("20")
    listed = client.get("/api/v2/incidents/sources/", headers=ADMIN).json()
    assert next(s for s in listed if s["pk"] == src["pk"])["last_seen"] == after["last_seen"]


def test_cursor_next_keeps_the_trailing_slash(client: Client) -> None:
    _, auth = make_source(client)
    for i in range(3):
        make_incident(client, auth, source_incident_id=str(i), description=str(i))
    page = client.get("/api/v2/incidents/", params={"page_size": 2}, headers=ADMIN).json()
    assert page["next"] is not None
    assert "/api/v2/incidents/?" in page["next"], page["next"]
    rest = client.get(page["next"], headers=ADMIN)
    assert rest.status_code == 200 and len(rest.json()["results"]) == 1
    assert "/api/v2/incidents/?" in rest.json()["previous"]
