"""The management API in-process against real Redis/RabbitMQ: auth, config CRUD, validation, intake."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.media import validate_medium_settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import collect_events

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    r = connect_redis(s)
    ctx = ApiContext(
        settings=s, redis=r, sender=Sender(s), validate_medium_settings=validate_medium_settings
    )
    r.hset(ctx.keys.media_installed(), mapping={"webhook": "1", "email": "1"})
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def test_health_is_public_and_reports_both_services(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "redis": "ok", "amqp": "ok"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no token"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, id="wrong token"),
        pytest.param({"Authorization": "Basic abc"}, 401, id="wrong scheme"),
        pytest.param(AUTH, 200, id="admin token"),
    ],
)
def test_config_routes_need_the_token(
    client: TestClient, headers: dict[str, str], status: int
) -> None:  # type: ignore[type-arg]
    assert client.get("/contacts", headers=headers).status_code == status


def test_contact_medium_rule_lifecycle(client: TestClient) -> None:  # type: ignore[type-arg]
    c = client.post("/contacts", json={"name": "Ada", "timezone": "Europe/Oslo"}, headers=AUTH)
    assert c.status_code == 201, c.text
    cid = c.json()["id"]
    m = client.post(
        "/media",
        json={
            "contact_id": cid,
            "type": "webhook",
            "address": "http://127.0.0.1:9/x",
            "settings": {"secret": "s3"},
        },
        headers=AUTH,
    )
    assert m.status_code == 201, m.text
    assert m.json()["settings"] == {"secret": "***"}
    rule = client.post(
        "/rules",
        json={"contact_id": cid, "critical": {"media": ["webhook"]}, "entities": ["web1"]},
        headers=AUTH,
    )
    assert rule.status_code == 201, rule.text
    rid = rule.json()["id"]
    assert (
        client.patch(f"/rules/{rid}", json={"entities": []}, headers=AUTH).json()["entities"] == []
    )
    listing = client.get("/rules", headers=AUTH).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == rid
    assert client.delete(f"/contacts/{cid}", headers=AUTH).status_code == 204
    assert client.get(f"/rules/{rid}", headers=AUTH).status_code == 404
    assert client.get("/media", headers=AUTH).json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "text"),
    [
        pytest.param(
            "/contacts",
            {"name": "x", "timezone": "Mars/Olympus"},
            422,
            "timezone",
            "unknown timezone",
            id="bad timezone",
        ),
        pytest.param(
            "/contacts",
            {"name": "x", "nickname": "y"},
            400,
            "nickname",
            "nickname",
            id="unknown field",
        ),
        pytest.param("/contacts", {"timezone": "UTC"}, 400, "name", "name", id="missing name"),
    ],
)
def test_contact_validation(
    client: TestClient, path: str, body: dict[str, object], status: int, field: str, text: str
) -> None:  # type: ignore[type-arg]
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert text in r.json()["error"]


def test_medium_of_uninstalled_type_is_refused_with_the_installed_list(client: TestClient) -> None:  # type: ignore[type-arg]
    cid = client.post("/contacts", json={"name": "Bo"}, headers=AUTH).json()["id"]
    r = client.post(
        "/media", json={"contact_id": cid, "type": "pigeon", "address": "roof"}, headers=AUTH
    )
    assert r.status_code == 422
    assert r.json() == {
        "error": "medium type 'pigeon' is not installed (installed: email, webhook)",
        "field": "type",
    }


def test_rule_naming_a_medium_the_contact_lacks_is_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    cid = client.post("/contacts", json={"name": "Cy"}, headers=AUTH).json()["id"]
    r = client.post(
        "/rules", json={"contact_id": cid, "warning": {"media": ["email"]}}, headers=AUTH
    )
    assert r.status_code == 422
    assert r.json()["field"] == "warning.media"


def test_rule_with_bad_time_is_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    cid = client.post("/contacts", json={"name": "Di"}, headers=AUTH).json()["id"]
    r = client.post(
        "/rules",
        json={
            "contact_id": cid,
            "time_restrictions": [{"days": [1], "start": "25:00", "end": "26:00"}],
        },
        headers=AUTH,
    )
    assert r.status_code == 400
    assert "time_restrictions" in r.json()["field"]


def test_rule_tag_strategy_is_validated_and_kept(client: TestClient) -> None:  # type: ignore[type-arg]
    cid = client.post("/contacts", json={"name": "Ed"}, headers=AUTH).json()["id"]
    bad = client.post(
        "/rules", json={"contact_id": cid, "tags": ["buf"], "tag_strategy": "some"}, headers=AUTH
    )
    assert bad.status_code == 400 and "tag_strategy" in bad.text
    made = client.post(
        "/rules",
        json={"contact_id": cid, "tags": ["buf"], "tag_strategy": "none"},
        headers=AUTH,
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert client.get(f"/rules/{rid}", headers=AUTH).json()["tag_strategy"] == "none"
    patched = client.patch(f"/rules/{rid}", json={"tag_strategy": "any"}, headers=AUTH)
    assert patched.json()["tag_strategy"] == "any"
    default = client.post("/rules", json={"contact_id": cid, "tags": ["a"]}, headers=AUTH)
    assert default.json()["tag_strategy"] == "all"


def test_post_events_publishes_to_the_events_exchange(
    client: TestClient, settings: Settings
) -> None:  # type: ignore[type-arg]
    r = client.post(
        "/events",
        json=[
            {"entity": "a", "check": "b", "state": "critical"},
            {"entity": "a", "check": "c", "state": "ok"},
        ],
        headers=AUTH,
    )
    assert r.status_code == 202 and r.json() == {"accepted": 2}
    got = collect_events(settings, n=2, timeout=5)
    assert sorted(e.check for e in got) == ["b", "c"]


def test_post_events_refuses_bad_event_naming_the_field(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.post(
        "/events",
        json=[
            {"entity": "a", "check": "b", "state": "critical"},
            {"entity": "a", "check": "c", "state": "meh"},
        ],
        headers=AUTH,
    )
    assert r.status_code == 422
    assert r.json()["field"] == "[1]"
    assert "unknown value 'meh'" in r.json()["error"]


def test_oversized_body_is_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.post("/events", content=b"[" + b" " * (2 * 1024 * 1024) + b"]", headers=AUTH)
    assert r.status_code == 413
