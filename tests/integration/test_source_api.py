"""Source routes in-process against real Redis/RabbitMQ: auth, validation, what gets published."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.amqp import Names
from shared.config import Settings
from shared.models import CheckEvent
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import collect, collect_events

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "sources"
TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK = (DATA / "alertmanager_webhook_firing.json").read_bytes()
JSON = {"Content-Type": "application/json"}
CRON_MAPPING = json.loads((DATA / "cron_mapping.json").read_bytes())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def _published(settings: Settings, n: int, timeout: float = 10) -> list[CheckEvent]:
    """The events the API routed to the processor's partitions (it decodes bodies itself)."""
    return collect_events(settings, n, timeout)


def _alert(**labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, "startsAt": "2024-05-01T10:00:00Z"}


def _webhook(*alerts: dict[str, Any]) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "alerts": list(alerts)}).encode()


# ----------------------------------------------------------------------------- Alertmanager


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        pytest.param("/sources/alertmanager", AUTH, id="bearer header"),
        pytest.param(
            "/sources/alertmanager", {"Authorization": f"Token {TOKEN}"}, id="token header"
        ),
        pytest.param(f"/sources/alertmanager?token={TOKEN}", {}, id="query token"),
    ],
)
def test_webhook_events_go_straight_to_the_processor_queues(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    url: str,
    headers: dict[str, str],
) -> None:
    r = client.post(url, content=WEBHOOK, headers={**headers, **JSON})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "rejected": []}
    got = _published(settings, 2)
    assert sorted((e.source, e.check) for e in got) == [
        ("alertmanager", "DiskFilling"),
        ("alertmanager", "HighErrorRate"),
    ]


@pytest.mark.parametrize(
    ("url", "headers", "error"),
    [
        pytest.param("/sources/alertmanager", {}, "missing token", id="no token"),
        pytest.param(
            "/sources/alertmanager?token=nope", {}, "invalid token", id="wrong query token"
        ),
        pytest.param(
            "/sources/alertmanager",
            {"Authorization": "Bearer nope"},
            "invalid token",
            id="wrong bearer",
        ),
        pytest.param("/sources/alertmanager?token=", {}, "invalid token", id="empty query token"),
        pytest.param("/api/v2/alerts?token=" + TOKEN, {}, None, id="v2 needs the header"),
    ],
)
def test_wrong_or_missing_token_is_401(
    client: TestClient,  # type: ignore[type-arg]
    url: str,
    headers: dict[str, str],
    error: str | None,
) -> None:
    r = client.post(url, content=b"[]", headers={**headers, **JSON})
    assert r.status_code == 401
    if error:
        assert r.json() == {"error": error, "field": "token"}


def test_bad_alerts_are_reported_by_index_and_field_and_the_rest_pass(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    body = _webhook(
        _alert(alertname="A", instance="h"),
        _alert(instance="h"),
        {"status": "sleeping", "labels": {"alertname": "B"}},
    )
    r = client.post("/sources/alertmanager", content=body, headers={**AUTH, **JSON})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["accepted"] == 1
    assert [(x["index"], x["field"]) for x in got["rejected"]] == [
        (1, "alerts[1].labels"),
        (2, "alerts[2].status"),
    ]
    assert "alertname" in got["rejected"][0]["error"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param(b"{not json", 400, "body", id="not json"),
        pytest.param(b'{"version": "4"}', 400, "alerts", id="no alerts"),
        pytest.param(
            b'{"alerts": [{"labels": {"job": "x"}}]}', 422, "alerts[0].labels", id="all bad"
        ),
        pytest.param(
            b'{"alerts": [{"labels": {"alertname": 5}}]}',
            422,
            "alerts[0].labels[...]",
            id="wrong type",
        ),
    ],
)
def test_malformed_webhook(
    client: TestClient,  # type: ignore[type-arg]
    body: bytes,
    status: int,
    field: str,
) -> None:
    r = client.post("/sources/alertmanager", content=body, headers={**AUTH, **JSON})
    assert r.status_code == status, r.text
    got = r.json()
    assert (got.get("field") or got["rejected"][0]["field"]) == field


def test_refused_body_is_not_published(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    assert client.post("/sources/alertmanager", content=b"nope", headers=AUTH).status_code == 400
    good = _webhook(_alert(alertname="A"))
    assert client.post("/sources/alertmanager", content=good, headers=AUTH).status_code == 200
    # Same channel, so order holds: had the refused body been published, it would come first.
    got = collect(settings, [Names(settings.namespace).dead], n=1, timeout=1)
    assert got == []
    assert [e.check for e in _published(settings, 1)] == ["A"]


def test_huge_payload_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    alerts = [_alert(alertname="A", instance=f"h{i}", pad="x" * 200) for i in range(6000)]
    r = client.post("/sources/alertmanager", content=_webhook(*alerts), headers={**AUTH, **JSON})
    assert r.status_code == 413


def test_prometheus_push_takes_the_v2_list_with_bearer_token(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    body = (DATA / "prometheus_api_v2_alerts.json").read_bytes()
    r = client.post("/api/v2/alerts", content=body, headers={**AUTH, **JSON})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    got = _published(settings, 2)
    assert {e.source for e in got} == {"alertmanager"} and len({e.id for e in got}) == 2
    # A webhook object is not an API v2 list.
    r = client.post("/api/v2/alerts", content=WEBHOOK, headers={**AUTH, **JSON})
    assert r.status_code == 400 and r.json()["field"] == "body"


# ----------------------------------------------------------------------------- declared sources


def _declare(client: TestClient, name: str = "cron", mapping: dict[str, Any] | None = None) -> str:  # type: ignore[type-arg]
    r = client.post(
        "/sources", json={"name": name, "mapping": mapping or CRON_MAPPING}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def test_source_lifecycle_and_its_own_token(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    token = _declare(client)
    listed = client.get("/sources", headers=AUTH).json()["items"]
    assert [s["name"] for s in listed] == ["cron"] and "token" not in listed[0]
    assert listed[0]["mapping"]["states"] == {"0": "ok", "1": "warning", "2": "critical"}
    assert client.get("/sources/cron", headers=AUTH).json()["events_url"] == "/sources/cron/events"
    payload = (DATA / "cron_job.json").read_bytes()
    r = client.post(f"/sources/cron/events?token={token}", content=payload)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "rejected": []}
    (event,) = _published(settings, 1)
    assert (event.source, event.entity, event.check) == (
        "generic:cron",
        "backup-1",
        "nightly-backup",
    )
    # The source token is no admin token, and a wrong token learns nothing.
    assert client.get("/sources", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post("/sources/cron/events?token=wrong", content=payload).status_code == 401
    assert client.post("/sources/other/events?token=wrong", content=payload).status_code == 401
    assert client.post("/sources/other/events", content=payload, headers=AUTH).status_code == 404
    assert client.delete("/sources/cron", headers=AUTH).status_code == 204
    assert client.post(f"/sources/cron/events?token={token}", content=payload).status_code == 401
    assert client.get("/sources/cron", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param({"name": "Bad Name", "mapping": CRON_MAPPING}, 422, "name", id="bad name"),
        pytest.param(
            {"name": "x", "mapping": {"entity": "/e"}}, 422, "mapping", id="incomplete mapping"
        ),
        pytest.param(
            {"name": "x", "mapping": {**CRON_MAPPING, "states": {"0": "fine"}}},
            422,
            "mapping.states",
            id="bad state map",
        ),
        pytest.param(
            {"name": "x", "mapping": {**CRON_MAPPING, "time": 5}},
            422,
            "mapping.time",
            id="pointer wrong type",
        ),
        pytest.param({"name": "alertmanager", "mapping": CRON_MAPPING}, 409, "name", id="reserved"),
    ],
)
def test_bad_declarations(
    client: TestClient,  # type: ignore[type-arg]
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    r = client.post("/sources", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.json()["field"].startswith(field)


def test_duplicate_source_is_409(client: TestClient) -> None:  # type: ignore[type-arg]
    _declare(client)
    r = client.post("/sources", json={"name": "cron", "mapping": CRON_MAPPING}, headers=AUTH)
    assert r.status_code == 409


def test_huge_source_payload_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    token = _declare(client)
    big = json.dumps({"host": "h", "job": "j", "exit_code": 0, "pad": "x" * 1_100_000}).encode()
    assert client.post(f"/sources/cron/events?token={token}", content=big).status_code == 413


def test_mapping_errors_name_the_pointer(client: TestClient) -> None:  # type: ignore[type-arg]
    token = _declare(client)
    r = client.post(
        f"/sources/cron/events?token={token}", content=b'{"job": "j", "exit_code": "0"}'
    )
    assert r.status_code == 422
    (rej,) = r.json()["rejected"]
    assert rej["field"] == "entity" and "`/host` not found" in rej["error"]
    assert client.post(f"/sources/cron/events?token={token}", content=b"{").status_code == 400


# ----------------------------------------------------------------------------- into the pipeline


def test_sources_reach_the_processor_queues_and_bad_items_the_dead_letters(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    names = Names(settings.namespace)
    token = _declare(client)
    assert client.post("/sources/alertmanager", content=WEBHOOK, headers=AUTH).status_code == 200
    bad_cron = b'{"host": "h", "job": "j", "exit_code": 9}'
    assert client.post(f"/sources/cron/events?token={token}", content=bad_cron).status_code == 422
    good_cron = (DATA / "cron_job.json").read_bytes()
    assert client.post(f"/sources/cron/events?token={token}", content=good_cron).status_code == 202
    queues = [names.processor(k) for k in range(settings.partitions)] + [names.dead]
    got = collect(settings, queues, n=4, timeout=10)
    dead = [m for m in got if m["queue"] == names.dead]
    events = [
        e
        for m in got
        if m["queue"] != names.dead
        for e in msgspec.json.decode(m["body"], type=list[CheckEvent])
    ]
    assert sorted((e.source, e.entity, e.check, e.state) for e in events) == [
        ("alertmanager", "node-exporter", "DiskFilling", "warning"),
        ("alertmanager", "web-1.example.net:9100", "HighErrorRate", "critical"),
        ("generic:cron", "backup-1", "nightly-backup", "critical"),
    ]
    (d,) = dead
    assert "state: pointer `/exit_code` value '9'" in d["headers"]["x-tocsin-error"]
    assert d["headers"]["x-tocsin-routing-key"] == "generic"
    assert d["headers"]["x-tocsin-stage"] == "intake"
    # The API routed these itself, and counts them as ingest would.
    text = client.get("/metrics", headers=AUTH).text
    counted = {
        (m.group(2), m.group(1)): float(m.group(3))
        for m in re.finditer(
            r'^tocsin_ingest_events_total\{outcome="(\w+)",source="(\w+)"\} (\S+)$', text, re.M
        )
    }
    assert counted == {
        ("alertmanager", "accepted"): 2,
        ("generic", "accepted"): 1,
        ("generic", "rejected"): 1,
    }
