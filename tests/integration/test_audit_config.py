"""Before/after in the audit log for every kind of configuration, and never a secret in it.

Users, tokens, contacts, media and rules are covered in test_people_api.py; here:
declared sources, schedules and their overrides, escalation policies, Argus
notification profiles, timeslots, destinations, filters, planned maintenance,
phone numbers and Argus source systems.
"""

from __future__ import annotations

import json
import time
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
from tests.integration.test_people_api import BOOT, TOKEN, bearer, token, user
from tests.integration.test_ui_pages import seed_check

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]
NP = "/api/v2/notificationprofiles/"
ALWAYS = [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00:00", "end": "23:59:59"}]
MAPPING = {"entity": "/host", "check": "/job", "state": "/status"}


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    ctx.redis.hset(ctx.keys.media_installed(), mapping={"sms": "1", "webhook": "1"})
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def audit(client: Client, action: str) -> list[dict[str, Any]]:
    """The records of ``action`` (exactly: not a prefix's others), oldest first."""
    r = client.get("/audit", params={"action": action, "limit": 1000}, headers=BOOT)
    assert r.status_code == 200, r.text
    return [i for i in reversed(r.json()["items"]) if i["action"] == action]


def only(client: Client, action: str) -> dict[str, Any]:
    [rec] = audit(client, action)
    return rec


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def test_declared_sources_are_on_record_without_their_token(client: Client) -> None:
    created = ok(
        client.post("/sources", json={"name": "cron", "mapping": MAPPING}, headers=BOOT), 201
    )
    ok(client.delete("/sources/cron", headers=BOOT), 204)
    made, gone = only(client, "create_source"), only(client, "delete_source")
    assert made["target"] == gone["target"] == "source:cron"
    assert made.get("before") is None and made["after"]["mapping"] == created["mapping"]
    assert gone.get("after") is None and gone["before"]["name"] == "cron"
    assert created["token"] not in json.dumps(client.get("/audit", headers=BOOT).json())


def test_schedules_overrides_and_policies_carry_before_and_after(client: Client) -> None:
    kari = ok(client.post("/contacts", json={"name": "Kari"}, headers=BOOT), 201)["id"]
    layer = {"members": [kari], "handoff": "2026-12-07T09:00"}
    sched = ok(
        client.post("/schedules", json={"name": "ops", "layers": [layer]}, headers=BOOT), 201
    )
    sid = sched["id"]
    body = {"name": "ops-renamed", "timezone": "Europe/Oslo", "layers": [layer]}
    ok(client.put(f"/schedules/{sid}", json=body, headers=BOOT))
    replaced = only(client, "replace_schedule")
    assert replaced["target"] == f"schedule:{sid}"
    assert replaced["before"]["name"] == "ops" and replaced["after"]["name"] == "ops-renamed"
    assert replaced["before"]["timezone"] == "UTC"
    assert replaced["after"]["timezone"] == "Europe/Oslo"

    # A responder's override: who swapped which shift is on record.
    jo = user(client, "jo", "responder")
    as_jo = bearer(token(client, jo["id"]))
    o = {"contact_id": kari, "start": 1_900_000_000, "end": 1_900_003_600}
    override = ok(client.post(f"/schedules/{sid}/overrides", json=o, headers=as_jo), 201)
    ok(client.delete(f"/schedules/{sid}/overrides/{override['id']}", headers=as_jo), 204)
    made, gone = only(client, "create_override"), only(client, "delete_override")
    assert made["actor"] == gone["actor"] == "jo"
    assert made["target"] == gone["target"] == f"schedule:{sid}:override:{override['id']}"
    assert made["after"]["start"] == 1_900_000_000 and gone["before"]["contact_id"] == kari
    assert gone.get("after") is None

    policy = {"name": "p", "steps": [{"targets": [{"schedule": sid}], "wait_s": 60}]}
    pid = ok(client.post("/escalation-policies", json=policy, headers=BOOT), 201)["id"]
    ok(client.put(f"/escalation-policies/{pid}", json={**policy, "repeat": 2}, headers=BOOT))
    ok(client.delete(f"/escalation-policies/{pid}", headers=BOOT), 204)
    changed = only(client, "replace_policy")
    assert changed["target"] == f"escalation_policy:{pid}"
    assert changed["before"]["repeat"] == 0 and changed["after"]["repeat"] == 2
    assert only(client, "create_policy")["after"]["steps"][0]["wait_s"] == 60
    assert only(client, "delete_policy")["before"]["name"] == "p"

    ok(client.delete(f"/schedules/{sid}", headers=BOOT), 204)
    assert only(client, "delete_schedule")["before"]["name"] == "ops-renamed"
    # The calendar link's secret is in the creating answer only, never in the log.
    assert only(client, "create_schedule")["after"]["secret"] == ""
    assert sched["secret"] not in json.dumps(client.get("/audit", headers=BOOT).json())


def test_argus_profiles_timeslots_destinations_and_filters_carry_before_and_after(
    client: Client,
) -> None:
    alice = user(client, "alice", "responder")
    as_alice = bearer(token(client, alice["id"]))
    flt = ok(client.post(f"{NP}filters/", json={"name": "all", "filter": {}}, headers=BOOT), 201)
    ok(client.put(f"{NP}filters/{flt['pk']}/", json={"name": "every", "filter": {}}, headers=BOOT))
    renamed = only(client, "put_filter")
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("all", "every")

    slot = ok(
        client.post(
            f"{NP}timeslots/", json={"name": "work", "time_recurrences": ALWAYS}, headers=as_alice
        ),
        201,
    )
    url = f"{NP}timeslots/{slot['pk']}/"
    ok(client.put(url, json={"name": "always", "time_recurrences": ALWAYS}, headers=as_alice))
    put = only(client, "put_timeslot")
    assert put["actor"] == "alice" and put["target"] == f"timeslot:{slot['pk']}"
    assert (put["before"]["name"], put["after"]["name"]) == ("work", "always")

    secret = "https://hooks.example.org/services/T0/B0/very-secret-path"
    hook = {"media": "webhook", "settings": {"url": secret}}
    dest = ok(client.post(f"{NP}destinations/", json=hook, headers=as_alice), 201)
    other = {"media": "webhook", "settings": {"url": secret + "2"}}
    ok(client.put(f"{NP}destinations/{dest['pk']}/", json=other, headers=as_alice))
    made = only(client, "create_destination")
    assert made["after"]["user"] == alice["id"] and made["after"]["media"] == "webhook"
    assert only(client, "put_destination")["before"] is not None

    body = {"name": "mine", "timeslot": slot["pk"], "filters": [flt["pk"]], "active": True}
    prof = ok(client.post(NP, json={**body, "destinations": [dest["pk"]]}, headers=as_alice), 201)
    ok(client.put(f"{NP}{prof['pk']}/", json={**body, "active": False}, headers=BOOT))
    changed = only(client, "put_profile")
    assert changed["actor"] == "admin" and changed["target"] == f"profile:{prof['pk']}"
    assert changed["before"]["active"] is True and changed["after"]["active"] is False
    assert changed["before"]["destinations"] == [dest["pk"]]
    assert changed["after"]["destinations"] == []
    assert changed["after"]["user"] == alice["id"]  # the owner stays Alice

    ok(client.delete(f"{NP}{prof['pk']}/", headers=as_alice), 204)
    ok(client.delete(f"{NP}destinations/{dest['pk']}/", headers=as_alice), 204)
    ok(client.delete(url, headers=as_alice), 204)
    assert only(client, "delete_profile")["before"]["name"] == "mine"
    assert only(client, "delete_destination").get("after") is None
    assert only(client, "delete_timeslot")["before"]["name"] == "always"
    # Webhook URLs are shown without their path, as the dashboard shows them.
    assert "very-secret-path" not in json.dumps(client.get("/audit", headers=BOOT).json())


def test_planned_maintenance_phone_numbers_and_argus_sources_are_on_record(
    client: Client,
) -> None:
    flt = ok(client.post(f"{NP}filters/", json={"name": "all", "filter": {}}, headers=BOOT), 201)
    task = {
        "start_time": "2099-01-01T00:00:00+00:00",
        "end_time": "2099-01-02T00:00:00+00:00",
        "description": "disk swap",
        "filters": [flt["pk"]],
    }
    pk = ok(client.post("/api/v2/plannedmaintenance/", json=task, headers=BOOT), 201)["pk"]
    ok(
        client.patch(
            f"/api/v2/plannedmaintenance/{pk}/", json={"description": "psu swap"}, headers=BOOT
        )
    )
    ok(client.delete(f"/api/v2/plannedmaintenance/{pk}/", headers=BOOT), 204)
    patched = only(client, "patch_task")
    assert patched["target"] == f"maintenance:{pk}"
    assert patched["before"]["description"] == "disk swap"
    assert patched["after"]["description"] == "psu swap"
    assert only(client, "delete_task")["before"]["description"] == "psu swap"

    vera = user(client, "vera", "viewer")
    as_vera = bearer(token(client, vera["id"]))
    phones = "/api/v2/auth/phone-number/"
    num = ok(client.post(phones, json={"phone_number": "+4790000000"}, headers=as_vera), 201)
    ok(client.patch(f"{phones}{num['pk']}/", json={"phone_number": "+4791111111"}, headers=as_vera))
    changed = only(client, "patch_phone_number")
    assert changed["actor"] == "vera"
    assert changed["before"]["phone_number"] == "+4790000000"
    assert changed["after"]["phone_number"] == "+4791111111"

    src = ok(
        client.post(
            "/api/v2/incidents/sources/", json={"name": "nav", "type": "nav"}, headers=BOOT
        ),
        201,
    )
    made = only(client, "create_source")
    assert made["target"] == f"argus_source:{src['pk']}" and made["after"]["name"] == "nav"
    assert src["token"] not in json.dumps(client.get("/audit", headers=BOOT).json())


def test_a_checks_switch_and_maintenance_windows_carry_before_and_after(
    client: Client, settings: Settings
) -> None:
    r = connect_redis(settings)
    seed_check(r, Keys(settings.namespace), "web1", "http", "ok", time.time())
    ok(client.patch("/checks/web1/http", json={"enabled": False}, headers=BOOT))
    switched = only(client, "patch_check")
    assert switched["target"] == "check:web1:http"
    assert (switched["before"], switched["after"]) == ({"enabled": True}, {"enabled": False})
    window = {"type": "scheduled", "start_time": 4_000_000_000, "end_time": 4_000_003_600}
    made = ok(
        client.post(
            "/checks/web1/http/maintenances", json={**window, "summary": "swap"}, headers=BOOT
        ),
        201,
    )
    ok(client.delete(f"/checks/web1/http/maintenances/{made['id']}", headers=BOOT), 204)
    added, ended = only(client, "add_maintenance"), only(client, "delete_maintenance")
    assert added["target"] == ended["target"] == f"check:web1:http:maintenance:{made['id']}"
    assert added["after"]["summary"] == "swap" and ended["before"]["summary"] == "swap"
