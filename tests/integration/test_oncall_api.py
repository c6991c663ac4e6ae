"""On-call API in-process against real Redis: schedules, overrides, policies, calendar, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.media import validate_medium_settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OSLO = ZoneInfo("Europe/Oslo")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=OSLO).timestamp()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    r = connect_redis(s)
    ctx = ApiContext(
        settings=s, redis=r, sender=Sender(s), validate_medium_settings=validate_medium_settings
    )
    r.hset(ctx.keys.media_installed(), mapping={"webhook": "1"})
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def _contact(c: TestClient, name: str) -> str:  # type: ignore[type-arg]
    got = c.post("/contacts", json={"name": name}, headers=AUTH)
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def test_schedule_override_oncall_and_calendar(client: TestClient) -> None:  # type: ignore[type-arg]
    kari, ola, per = (_contact(client, n) for n in ("Kari", "Ola", "Per"))
    body = {
        "name": "ops",
        "timezone": "Europe/Oslo",
        "layers": [{"members": [kari, ola], "shift_hours": 168, "handoff": "2026-12-07T09:00"}],
    }
    created = client.post("/schedules", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    sched = created.json()
    sid, secret = sched["id"], sched["secret"]
    assert secret

    def who(when: float) -> dict[str, object]:
        got = client.get(f"/schedules/{sid}/oncall", params={"at": when}, headers=AUTH)
        assert got.status_code == 200, got.text
        return dict(got.json())

    assert who(at("2026-12-08T12:00"))["contact_id"] == kari
    assert who(at("2026-12-08T12:00"))["until"] == at("2026-12-14T09:00")
    assert who(at("2026-12-15T12:00"))["contact_id"] == ola

    o = client.post(
        f"/schedules/{sid}/overrides",
        json={"contact_id": per, "start": at("2026-12-24T18:00"), "end": at("2026-12-26T09:00")},
        headers=AUTH,
    )
    assert o.status_code == 201, o.text
    got = who(at("2026-12-25T12:00"))
    assert (got["contact_id"], got["contact"], got["source"]) == (
        per,
        "Per",
        f"override:{o.json()['id']}",
    )

    everyone = client.get("/oncall", params={"at": at("2026-12-25T12:00")}, headers=AUTH).json()
    assert [(x["schedule"], x["contact_id"]) for x in everyone] == [("ops", per)]

    ics = client.get(f"/schedules/{sid}.ics", params={"token": secret})
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text and "SUMMARY:Kari on call (ops)" in ics.text.replace(
        "\r\n ", ""
    )
    assert client.get(f"/schedules/{sid}.ics", params={"token": "wrong"}).status_code == 404
    assert client.get(f"/schedules/{sid}.ics", headers=AUTH).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    assert client.get(f"/schedules/{sid}.ics", headers=wrong).status_code == 401
    assert client.get(f"/schedules/{sid}").status_code == 401  # the JSON needs the admin token
    assert client.get("/schedules", headers=AUTH).json()[0]["secret"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            {"name": "x", "timezone": "Mars/Olympus", "layers": "L"}, "timezone", id="zone"
        ),
        pytest.param({"name": "x", "layers": []}, "layers", id="no layers"),
        pytest.param(
            {"name": "x", "layers": [{"members": ["M"], "handoff": "monday"}]},
            "layers[0].handoff",
            id="bad handoff",
        ),
        pytest.param(
            {"name": "x", "layers": [{"members": ["nobody"], "handoff": "2026-12-07T09:00"}]},
            "layers[0].members[0]",
            id="unknown member",
        ),
        pytest.param(
            {
                "name": "x",
                "layers": [{"members": ["M"], "handoff": "2026-12-07T09:00", "shift_hours": 0}],
            },
            "layers[0].shift_hours",
            id="zero shift",
        ),
    ],
)
def test_schedule_validation_names_the_field(
    client: TestClient,  # type: ignore[type-arg]
    body: dict[str, object],
    field: str,
) -> None:
    member = _contact(client, "M")
    layer = {"members": [member], "handoff": "2026-12-07T09:00"}
    text = msgspec.json.encode(body).decode().replace('"L"', msgspec.json.encode([layer]).decode())
    got = client.post(
        "/schedules",
        content=text.replace('"M"', f'"{member}"'),
        headers=AUTH | {"content-type": "application/json"},
    )
    assert got.status_code in (400, 422), got.text
    assert got.json()["field"] == field, got.text


def test_policy_crud_and_rule_route(client: TestClient) -> None:  # type: ignore[type-arg]
    lead = _contact(client, "Lead")
    sched = client.post(
        "/schedules",
        json={"name": "pri", "layers": [{"members": [lead], "handoff": "2026-12-07T09:00"}]},
        headers=AUTH,
    ).json()
    bad = client.post(
        "/escalation-policies",
        json={"name": "p", "steps": [{"targets": [{"schedule": "nope"}], "wait_s": 60}]},
        headers=AUTH,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "steps[0].targets[0].schedule"
    policy = client.post(
        "/escalation-policies",
        json={
            "name": "p",
            "repeat": 1,
            "steps": [
                {"targets": [{"schedule": sched["id"]}], "wait_s": 60},
                {"targets": [{"contact": lead}]},
            ],
        },
        headers=AUTH,
    )
    assert policy.status_code == 201, policy.text
    pid = policy.json()["id"]
    rule = client.post(
        "/rules",
        json={"contact_id": lead, "critical": {"escalation_policy_id": pid}},
        headers=AUTH,
    )
    assert rule.status_code == 201, rule.text
    missing = client.post(
        "/rules",
        json={"contact_id": lead, "critical": {"escalation_policy_id": "nope"}},
        headers=AUTH,
    )
    assert missing.status_code == 422 and missing.json()["field"] == "critical.escalation_policy_id"
    in_use = client.delete(f"/escalation-policies/{pid}", headers=AUTH)
    assert in_use.status_code == 422 and rule.json()["id"] in in_use.json()["error"]
    used_schedule = client.delete(f"/schedules/{sched['id']}", headers=AUTH)
    assert used_schedule.status_code == 422, used_schedule.text
    assert client.delete(f"/rules/{rule.json()['id']}", headers=AUTH).status_code == 204
    assert client.delete(f"/escalation-policies/{pid}", headers=AUTH).status_code == 204
    assert client.delete(f"/schedules/{sched['id']}", headers=AUTH).status_code == 204


def test_import_a_calendar_feed_as_a_layer_or_as_overrides(client: TestClient) -> None:  # type: ignore[type-arg]
    kari, ola = _contact(client, "Kari"), _contact(client, "Ola")
    body = {
        "name": "imported",
        "timezone": "Europe/Oslo",
        "layers": [{"members": [kari], "shift_hours": 168, "handoff": "2026-01-05T09:00"}],
    }
    sid = client.post("/schedules", json=body, headers=AUTH).json()["id"]
    ics = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            *(
                line
                for i, who in enumerate(["Kari", "Ola"])
                for line in (
                    "BEGIN:VEVENT",
                    f"UID:{i}@test",
                    f"DTSTART;TZID=Europe/Oslo:202612{7 + 7 * i:02d}T090000",
                    f"DTEND;TZID=Europe/Oslo:202612{14 + 7 * i:02d}T090000",
                    "RRULE:FREQ=WEEKLY;INTERVAL=2",
                    f"SUMMARY:{who} on call",
                    "END:VEVENT",
                )
            ),
            "END:VCALENDAR",
        ]
    )
    start = at("2026-12-07T09:00")
    got = client.post(
        f"/schedules/{sid}/import-ical", json={"ics": ics, "start": start, "days": 28}, headers=AUTH
    )
    assert got.status_code == 201, got.text
    assert got.json()["layer"]["members"] == [kari, ola]
    who = client.get(
        f"/schedules/{sid}/oncall", params={"at": at("2026-12-15T12:00")}, headers=AUTH
    ).json()
    assert (who["contact_id"], who["source"]) == (ola, "layer:1")
    shifts = client.post(
        f"/schedules/{sid}/import-ical",
        json={"ics": ics, "start": start, "days": 14, "mode": "overrides"},
        headers=AUTH,
    )
    assert shifts.status_code == 201 and shifts.json()["overrides"] == 2
    bad = client.post(f"/schedules/{sid}/import-ical", json={"ics": "nope"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "ics"
