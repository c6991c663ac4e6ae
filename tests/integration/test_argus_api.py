"""The Argus-compatible API in-process: sources and tokens, incident rules, events, acks, tags.

Real Redis and RabbitMQ; what the API publishes for the pipeline is read back
from the ingest queue and decoded by the ingest decoder for routing key ``argus``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.keys import Keys
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import collect_events

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
START = "2026-11-23T10:00:00+00:00"

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def make_source(client: Client, name: str = "nav") -> tuple[dict[str, Any], dict[str, str]]:
    r = client.post("/api/v2/incidents/sources/", json={"name": name, "type": "nav"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    body = r.json()
    return body, {"Authorization": f"Token {body['token']}"}


def make_incident(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"start_time": START, "tags": [], **fields}
    r = client.post("/api/v2/incidents/", json=body, headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


def published(settings: Settings, n: int, timeout: float = 5) -> list[Any]:
    """The check events the API sent to the pipeline (routed to the processor's partitions)."""
    events = collect_events(settings, n, timeout)
    assert all(e.source == "argus" for e in events)
    return events


# --------------------------------------------------------------------------- auth


def test_source_creation_returns_the_token_once_and_stores_only_its_hash(
    client: Client, settings: Settings
) -> None:
    src, auth = make_source(client)
    token = auth["Authorization"].split()[1]
    assert src["type"] == {"name": "nav"} and src["user"] == src["pk"]
    listed = client.get("/api/v2/incidents/sources/", headers=ADMIN).json()
    assert {s["name"] for s in listed} == {"nav", "tocsin"}
    assert all("token" not in s for s in listed)
    r = connect_redis(settings)
    dump = str([r.hgetall(Keys(settings.namespace).argus_sources())])
    assert token not in dump
    dup = client.post(
        "/api/v2/incidents/sources/", json={"name": "nav", "type": "nav"}, headers=ADMIN
    )
    assert dup.status_code == 400 and dup.json()["field"] == "name"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no token"),
        pytest.param({"Authorization": "Token wrong"}, 401, id="wrong token"),
        pytest.param({"Authorization": "Basic abc"}, 401, id="wrong scheme"),
        pytest.param(ADMIN, 200, id="admin token"),
    ],
)
def test_argus_routes_need_a_token(client: Client, headers: dict[str, str], status: int) -> None:
    assert client.get("/api/v2/incidents/", headers=headers).status_code == status


def test_source_token_authenticates_with_token_and_bearer_but_not_elsewhere(
    client: Client,
) -> None:
    _, auth = make_source(client)
    token = auth["Authorization"].split()[1]
    assert client.get("/api/v2/incidents/mine/", headers=auth).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v2/incidents/mine/", headers=bearer).status_code == 200
    # A source token is no admin token: the management API knows it and refuses its role.
    assert client.get("/contacts", headers=auth).status_code == 403
    created = client.post(
        "/api/v2/incidents/sources/", json={"name": "x", "type": "y"}, headers=auth
    )
    assert created.status_code == 403


def test_a_source_cannot_change_another_sources_incident(client: Client) -> None:
    _, mine = make_source(client, "one")
    _, other = make_source(client, "two")
    inc = make_incident(client, mine, source_incident_id="a", end_time=None)
    pk = inc["pk"]
    r = client.post(
        f"/api/v2/incidents/{pk}/events/",
        json={"type": "OTH", "timestamp": START, "description": "x"},
        headers=other,
    )
    assert r.status_code == 403
    assert r.json()["error"] == "this incident belongs to another source system"
    assert (
        client.patch(f"/api/v2/incidents/{pk}/", json={"level": 1}, headers=other).status_code
        == 403
    )
    # Reading is allowed, as in Argus.
    assert client.get(f"/api/v2/incidents/{pk}/", headers=other).status_code == 200


# --------------------------------------------------------------------------- incident validation


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        pytest.param({"level": 0}, "level", "level must be between 1 and 5, not 0", id="level 0"),
        pytest.param({"level": 6}, "level", "level must be between 1 and 5, not 6", id="level 6"),
        pytest.param(
            {"end_time": "2026-11-23T09:00:00+00:00"},
            "end_time",
            "end_time may not be before start_time",
            id="end before start",
        ),
        pytest.param(
            {"start_time": "yesterday"},
            "start_time",
            "'yesterday' is not an ISO-8601 timestamp",
            id="bad start",
        ),
        pytest.param(
            {"tags": [{"tag": "Bad Key=x"}]},
            "tags",
            "tag key 'Bad Key' may only contain a-z, 0-9 and _",
            id="bad tag key",
        ),
        pytest.param(
            {"tags": [{"tag": "novalue"}]},
            "tags",
            "tag 'novalue' must look like key=value",
            id="tag",
        ),
    ],
)
def test_incident_creation_is_validated(
    client: Client, fields: dict[str, Any], field: str, message: str
) -> None:
    _, auth = make_source(client)
    r = client.post(
        "/api/v2/incidents/", json={"start_time": START, "tags": [], **fields}, headers=auth
    )
    assert r.status_code == 400
    body = r.json()
    assert body["field"] == field and body["error"] == message
    assert body[field] == [message]  # DRF-style, as Argus clients read it


def test_tags_are_required(client: Client) -> None:
    _, auth = make_source(client)
    r = client.post("/api/v2/incidents/", json={"start_time": START}, headers=auth)
    assert r.status_code == 400 and r.json()["field"] == "tags"


def test_duplicate_source_incident_id_is_refused_per_source(client: Client) -> None:
    _, one = make_source(client, "one")
    _, two = make_source(client, "two")
    make_incident(client, one, source_incident_id="42", end_time=None)
    r = client.post(
        "/api/v2/incidents/",
        json={"start_time": START, "tags": [], "source_incident_id": "42"},
        headers=one,
    )
    assert r.status_code == 400 and r.json()["field"] == "source_incident_id"
    # Another source may use the same id; incidents/mine/ finds each source's own.
    theirs = make_incident(client, two, source_incident_id="42", end_time=None)
    mine = client.get("/api/v2/incidents/mine/?source_incident_id=42", headers=two).json()
    assert [i["pk"] for i in mine["results"]] == [theirs["pk"]]
    none = client.get("/api/v2/incidents/mine/?source_incident_id=43", headers=two).json()
    assert none["results"] == []


def test_admin_must_name_the_source(client: Client) -> None:
    src, _ = make_source(client)
    r = client.post("/api/v2/incidents/", json={"start_time": START, "tags": []}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["field"] == "source"
    made = make_incident(client, ADMIN, source=src["pk"], end_time=None)
    assert made["source"]["pk"] == src["pk"]


def test_patch_changes_editable_fields_logs_chi_and_refuses_the_rest(client: Client) -> None:
    _, auth = make_source(client)
    inc = make_incident(client, auth, end_time=None, tags=[{"tag": "host=a"}])
    url = f"/api/v2/incidents/{inc['pk']}/"
    r = client.patch(
        url,
        json={"level": 2, "tags": [{"tag": "host=b"}], "ticket_url": "http://t/1"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["level"] == 2 and [t["tag"] for t in body["tags"]] == ["host=b"]
    events = client.get(url + "events/", headers=auth).json()
    changes = [e["description"] for e in events if e["type"]["value"] == "CHI"]
    assert len(changes) == 3 and any('"level": 5' in c for c in changes)
    bad = client.patch(url, json={"start_time": "2020-01-01T00:00:00+00:00"}, headers=auth)
    assert (
        bad.status_code == 400
        and bad.json()["error"] == '"start_time" is not allowed to be changed'
    )
    unknown = client.patch(url, json={"colour": "red"}, headers=auth)
    assert unknown.status_code == 400 and unknown.json()["error"] == '"colour" does not exist'
    # Read-only fields sent back unchanged (pyargus update_incident) are accepted.
    same = client.patch(
        url, json={"start_time": body["start_time"], "description": "d"}, headers=auth
    )
    assert same.status_code == 200 and same.json()["description"] == "d"


# --------------------------------------------------------------------------- events and acks


def test_ack_through_events_is_refused(client: Client) -> None:
    _, auth = make_source(client)
    inc = make_incident(client, auth)
    for headers in (auth, ADMIN):
        r = client.post(
            f"/api/v2/incidents/{inc['pk']}/events/",
            json={"type": "ACK", "timestamp": START},
            headers=headers,
        )
        assert r.status_code == 400
        assert r.json()["error"] == "acknowledgements are posted to incidents/<pk>/acks/"


@pytest.mark.parametrize(
    ("etype", "by_source", "error"),
    [
        pytest.param(
            "CLO", True, "a source system may not post events of type CLO", id="source CLO"
        ),
        pytest.param("END", False, "an end user may not post events of type END", id="user END"),
        pytest.param("STA", True, "the incident already has an STA event", id="second STA"),
        pytest.param("REO", False, "the incident is already open", id="reopen open"),
        pytest.param("XYZ", True, "'XYZ' is not a valid event type", id="unknown"),
    ],
)
def test_event_type_rules(client: Client, etype: str, by_source: bool, error: str) -> None:
    _, auth = make_source(client)
    inc = make_incident(client, auth)
    r = client.post(
        f"/api/v2/incidents/{inc['pk']}/events/",
        json={"type": etype, "timestamp": START},
        headers=auth if by_source else ADMIN,
    )
    assert r.status_code == 400 and r.json() == {"error": error, "field": "type", "type": [error]}


def test_lifecycle_publishes_the_checks_events(client: Client, settings: Settings) -> None:
    _, auth = make_source(client, "nav")
    inc = make_incident(
        client,
        auth,
        source_incident_id="sw1-down",
        level=2,
        tags=[{"tag": "host=sw1"}],
        description="sw1 down",
    )
    pk = inc["pk"]
    assert inc["open"] and inc["stateful"] and inc["end_time"] == "infinity"
    (problem,) = published(settings, 1)
    assert (problem.entity, problem.check, problem.state) == ("nav", "sw1-down", "critical")
    assert problem.initial_failure_delay == 0 and problem.incident_id == str(pk)
    assert problem.tags == ("host=sw1",) and problem.summary == "sw1 down"

    ack = client.post(
        f"/api/v2/incidents/{pk}/acks/",
        json={"description": "on it", "expiration": "2099-01-01T00:00:00+00:00"},
        headers=ADMIN,
    )
    assert ack.status_code == 201, ack.text
    assert ack.json()["event"]["type"] == {"value": "ACK", "display": "Acknowledge"}
    assert client.get(f"/api/v2/incidents/{pk}/", headers=auth).json()["acked"] is True
    (acked,) = published(settings, 1)
    assert acked.state == "acknowledgement" and acked.incident_id == str(pk)

    end = client.post(
        f"/api/v2/incidents/{pk}/events/",
        json={"type": "END", "timestamp": "2026-11-23T10:05:00+00:00", "description": "back"},
        headers=auth,
    )
    assert end.status_code == 201, end.text
    closed = client.get(f"/api/v2/incidents/{pk}/", headers=auth).json()
    assert closed["open"] is False and closed["end_time"].startswith("2026-11-23T10:05:00")
    (ok,) = published(settings, 1)
    assert ok.state == "ok" and ok.check == "sw1-down"

    # A second END from the source is recorded without effect (Argus leniency).
    again = client.post(
        f"/api/v2/incidents/{pk}/events/", json={"type": "END", "timestamp": START}, headers=auth
    )
    assert again.status_code == 201
    assert published(settings, 1, timeout=1) == []

    restart = client.post(
        f"/api/v2/incidents/{pk}/events/",
        json={"type": "RES", "timestamp": "2026-11-23T10:10:00+00:00"},
        headers=auth,
    )
    assert restart.status_code == 201
    assert client.get(f"/api/v2/incidents/{pk}/", headers=auth).json()["end_time"] == "infinity"
    (failing,) = published(settings, 1)
    assert failing.state == "critical"
    types = [
        e["type"]["value"]
        for e in client.get(f"/api/v2/incidents/{pk}/events/", headers=auth).json()
    ]
    assert sorted(types) == ["ACK", "END", "END", "RES", "STA"]


def test_stateless_and_closed_incidents_do_not_notify(client: Client, settings: Settings) -> None:
    _, auth = make_source(client)
    stateless = make_incident(client, auth, end_time=None)
    assert stateless["stateful"] is False and stateless["end_time"] is None
    closed = make_incident(client, auth, end_time="2026-11-23T11:00:00+00:00")
    assert closed["stateful"] is True and closed["open"] is False
    assert published(settings, 1, timeout=1) == []
    events = client.get(f"/api/v2/incidents/{stateless['pk']}/events/", headers=auth).json()
    assert [e["type"]["value"] for e in events] == ["LES"]


def test_tags_endpoint_adds_lists_and_removes(client: Client) -> None:
    _, auth = make_source(client)
    inc = make_incident(client, auth, end_time=None, tags=[{"tag": "a=1"}])
    url = f"/api/v2/incidents/{inc['pk']}/tags/"
    assert client.post(url, json={"tag": "b = 2"}, headers=auth).status_code == 201
    assert client.post(url, json={"tag": "b=2"}, headers=auth).status_code == 201  # idempotent
    assert [t["tag"] for t in client.get(url, headers=auth).json()] == ["a=1", "b=2"]
    assert client.delete(url + "a=1/", headers=auth).status_code == 204
    assert [t["tag"] for t in client.get(url, headers=auth).json()] == ["b=2"]
    assert client.delete(url + "a=1/", headers=auth).status_code == 404
