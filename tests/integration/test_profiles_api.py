"""Notification profiles API and the profile path through the real notifier (Redis + RabbitMQ).

The API runs in-process; its profile notifications are read back from Redis
and from ``NS.notifications``, then a real notifier consumer turns them into
deliveries on the gateway queues.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from services.api.context import ApiContext
from services.notifier.worker import build_consumer
from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.media import validate_medium_settings
from shared.models import DELIVERY_DECODER, Notification
from shared.records import from_hash
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import collect_deliveries, declare, running

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
V2 = "/api/v2"

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_redis(settings)
    yield client
    client.close()


@pytest.fixture
def client(settings: Settings, r: redis.Redis) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(
        settings=s, redis=r, sender=Sender(s), validate_medium_settings=validate_medium_settings
    )
    keys = Keys(settings.namespace)
    for mtype in ("webhook", "email"):
        r.hset(keys.media_installed(), mtype, "1")
    declare(settings)
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def setup_profile(
    c: Client, blob: dict[str, Any], url: str = "http://hook.test/a"
) -> dict[str, Any]:
    slot = ok(
        c.post(
            f"{V2}/notificationprofiles/timeslots/",
            json={
                "name": f"always {url}",
                "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}],
            },
            headers=ADMIN,
        ),
        201,
    )
    flt = ok(
        c.post(
            f"{V2}/notificationprofiles/filters/", json={"name": url, "filter": blob}, headers=ADMIN
        ),
        201,
    )
    dest = ok(
        c.post(
            f"{V2}/notificationprofiles/destinations/",
            json={"media": "webhook", "label": url, "settings": {"url": url}},
            headers=ADMIN,
        ),
        201,
    )
    return ok(
        c.post(
            f"{V2}/notificationprofiles/",
            json={
                "name": url,
                "timeslot": slot["pk"],
                "filters": [flt["pk"]],
                "destinations": [dest["pk"]],
            },
            headers=ADMIN,
        ),
        201,
    )


def make_source(c: Client) -> tuple[dict[str, Any], dict[str, str]]:
    src = ok(
        c.post(f"{V2}/incidents/sources/", json={"name": "nav", "type": "nav"}, headers=ADMIN), 201
    )
    return src, {"Authorization": f"Token {src['token']}"}


# --------------------------------------------------------------------------- CRUD and validation


def test_media_list_installed_flags_and_settings_schema(client: Client) -> None:
    media = {
        m["slug"]: m for m in ok(client.get(f"{V2}/notificationprofiles/media/", headers=ADMIN))
    }
    assert media["webhook"]["installed"] and not media["sms"]["installed"]
    assert media["email"]["json_schema"]["required"] == ["email_address"]
    assert "secret" in media["webhook"]["json_schema"]["properties"]
    schema = ok(client.get(f"{V2}/notificationprofiles/media/sms/json_schema/", headers=ADMIN))
    assert schema["required"] == ["phone_number"]
    assert client.get(f"{V2}/notificationprofiles/media/fax/", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            {"media": "sms", "settings": {"phone_number": "+4712345678"}},
            "media",
            id="not-installed",
        ),
        pytest.param(
            {"media": "webhook", "settings": {"url": "ftp://x"}}, "settings.url", id="bad-url"
        ),
        pytest.param(
            {"media": "email", "settings": {"email_address": "nope"}},
            "settings.email_address",
            id="bad-email",
        ),
        pytest.param(
            {"media": "email", "settings": {}}, "settings.email_address", id="missing-address"
        ),
        pytest.param(
            {"media": "webhook", "settings": {"url": "http://x/", "colour": "red"}},
            "settings.colour",
            id="unknown-setting",
        ),
    ],
)
def test_destinations_are_validated_by_the_gateway(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = client.post(f"{V2}/notificationprofiles/destinations/", json=body, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == field


def test_destination_crud_and_duplicate(client: Client) -> None:
    body = {"media": "email", "settings": {"email_address": "ops@example.org"}}
    a = ok(client.post(f"{V2}/notificationprofiles/destinations/", json=body, headers=ADMIN), 201)
    # The same medium and settings again: 400, as Argus (docs/argus.md).
    twin = client.post(f"{V2}/notificationprofiles/destinations/", json=body, headers=ADMIN)
    assert twin.status_code == 400, twin.text
    other = {"media": "email", "settings": {"email_address": "dev@example.org"}}
    b = ok(client.post(f"{V2}/notificationprofiles/destinations/", json=other, headers=ADMIN), 201)
    assert a["suggested_label"] == "Email: ops@example.org"
    moved = {"media": "webhook", "settings": {"url": "http://x/"}}
    assert (
        client.put(
            f"{V2}/notificationprofiles/destinations/{a['pk']}/", json=moved, headers=ADMIN
        ).status_code
        == 400
    )
    ok(client.delete(f"{V2}/notificationprofiles/destinations/{b['pk']}/", headers=ADMIN), 204)
    assert (
        ok(
            client.get(
                f"{V2}/notificationprofiles/destinations/{a['pk']}/duplicate/", headers=ADMIN
            )
        )
        is False
    )


def test_destinations_mask_secrets_as_media_do(
    client: Client, r: redis.Redis, settings: Settings
) -> None:
    """Routing keys and webhook secrets never come back in clear, nor inside profiles."""
    r.hset(Keys(settings.namespace).media_installed(), "pagerduty", "1")
    key, secret = "R0123456789abcdef0123456789ABCDE", "hmac-secret-value"
    dests = f"{V2}/notificationprofiles/destinations/"
    pd = ok(
        client.post(
            dests, json={"media": "pagerduty", "settings": {"routing_key": key}}, headers=ADMIN
        ),
        201,
    )
    hook_body = {"media": "webhook", "settings": {"url": "http://hook.test/a", "secret": secret}}
    hook = ok(client.post(dests, json=hook_body, headers=ADMIN), 201)
    assert pd["settings"] == {"routing_key": "***BCDE"} and pd["suggested_label"].endswith(
        "***BCDE"
    )
    assert hook["settings"] == {"url": "http://hook.test/a", "secret": "***"}
    slot = ok(
        client.post(
            f"{V2}/notificationprofiles/timeslots/",
            json={
                "name": "always",
                "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}],
            },
            headers=ADMIN,
        ),
        201,
    )
    flt = ok(
        client.post(
            f"{V2}/notificationprofiles/filters/", json={"name": "all", "filter": {}}, headers=ADMIN
        ),
        201,
    )
    profile = {
        "timeslot": slot["pk"],
        "filters": [flt["pk"]],
        "destinations": [pd["pk"], hook["pk"]],
    }
    ok(client.post(f"{V2}/notificationprofiles/", json=profile, headers=ADMIN), 201)
    shown = [
        client.get(dests, headers=ADMIN).text,
        client.get(f"{dests}{pd['pk']}/", headers=ADMIN).text,
        client.get(f"{V2}/notificationprofiles/", headers=ADMIN).text,
    ]
    assert all(key not in t and secret not in t and "***" in t for t in shown), shown
    # Writing back what was read (a new label) keeps the stored secrets.
    back = {"media": "webhook", "label": "renamed", "settings": hook["settings"]}
    ok(client.put(f"{dests}{hook['pk']}/", json=back, headers=ADMIN))
    stored = msgspec.json.decode(
        r.hget(Keys(settings.namespace).argus_records("destination"), str(hook["pk"]))
    )
    assert stored["settings"]["secret"] == secret and stored["label"] == "renamed"


def test_filters_are_validated_and_normalised(client: Client) -> None:
    bad = client.post(
        f"{V2}/notificationprofiles/filters/",
        json={"name": "x", "filter": {"maxlevel": 9}},
        headers=ADMIN,
    )
    assert bad.status_code == 400 and bad.json()["field"] == "filter.maxlevel"
    good = ok(
        client.post(
            f"{V2}/notificationprofiles/filters/",
            json={"name": "x", "filter": {"tags": ["host = a"], "event_type": "sta", "junk": 1}},
            headers=ADMIN,
        ),
        201,
    )
    assert good["filter"] == {"tags": ["host=a"], "event_types": ["STA"]}


def test_profile_shapes_owner_and_references(
    client: Client, settings: Settings, r: redis.Redis
) -> None:
    keys = Keys(settings.namespace)
    before = int(r.get(keys.config_version()) or 0)
    prof = setup_profile(client, {"maxlevel": 2})
    assert int(r.get(keys.config_version()) or 0) > before  # notifiers reload
    assert prof["timeslot"]["name"].startswith("always") and prof["active"] is True
    assert prof["filters"][0]["filter"] == {"maxlevel": 2}
    assert prof["destinations"][0]["settings"] == {"url": "http://hook.test/a"}
    body = {"timeslot": prof["timeslot"]["pk"], "filters": [999], "destinations": []}
    resp = client.put(f"{V2}/notificationprofiles/{prof['pk']}/", json=body, headers=ADMIN)
    assert resp.status_code == 400 and resp.json()["field"] == "filters"
    body = {**body, "filters": [prof["filters"][0]["pk"]], "contact": "nobody"}
    assert (
        client.put(f"{V2}/notificationprofiles/{prof['pk']}/", json=body, headers=ADMIN).status_code
        == 400
    )
    # Records in use cannot go.
    assert (
        client.delete(
            f"{V2}/notificationprofiles/filters/{prof['filters'][0]['pk']}/", headers=ADMIN
        ).status_code
        == 400
    )
    assert (
        client.delete(
            f"{V2}/notificationprofiles/timeslots/{prof['timeslot']['pk']}/", headers=ADMIN
        ).status_code
        == 400
    )
    ok(client.delete(f"{V2}/notificationprofiles/{prof['pk']}/", headers=ADMIN), 204)
    assert client.get(f"{V2}/notificationprofiles/{prof['pk']}/", headers=ADMIN).status_code == 404


def test_source_tokens_cannot_manage_profiles(client: Client) -> None:
    _, auth = make_source(client)
    assert client.get(f"{V2}/notificationprofiles/", headers=auth).status_code == 403
    assert client.post(f"{V2}/plannedmaintenance/", json={}, headers=auth).status_code in (400, 403)


def test_timeslot_may_cross_midnight(client: Client) -> None:
    body = {"name": "night", "time_recurrences": [{"days": [1], "start": "22:00", "end": "06:00"}]}
    ok(client.post(f"{V2}/notificationprofiles/timeslots/", json=body, headers=ADMIN), 201)
    body = {"name": "empty", "time_recurrences": [{"days": [1], "start": "06:00", "end": "06:00"}]}
    assert (
        client.post(f"{V2}/notificationprofiles/timeslots/", json=body, headers=ADMIN).status_code
        == 400
    )


def test_filterpreview_and_profile_incidents(client: Client) -> None:
    _, auth = make_source(client)
    now = time.time()
    for sid, tags, level in (("a", ["host=a"], 2), ("b", ["host=a", "host=b"], 4)):
        body = {
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)),
            "source_incident_id": sid,
            "tags": [{"tag": t} for t in tags],
            "level": level,
        }
        ok(client.post(f"{V2}/incidents/", json=body, headers=auth), 201)
    preview = ok(
        client.post(
            f"{V2}/notificationprofiles/filterpreview/",
            json={"tags": ["host=a", "host=b"]},
            headers=ADMIN,
        )
    )
    assert [i["source_incident_id"] for i in preview] == ["b"]  # all tags, not same-key OR
    assert (
        ok(client.post(f"{V2}/notificationprofiles/filterpreview/", json={}, headers=ADMIN)) == []
    )
    listed = ok(client.get(f"{V2}/incidents/?tags=host=a,host=b", headers=ADMIN))["results"]
    assert sorted(i["source_incident_id"] for i in listed) == [
        "a",
        "b",
    ]  # the query keeps Argus's rule
    prof = setup_profile(client, {"maxlevel": 2})
    got = ok(client.get(f"{V2}/notificationprofiles/{prof['pk']}/incidents/", headers=ADMIN))
    assert [i["source_incident_id"] for i in got] == ["a"]


def test_planned_maintenance_rules(client: Client) -> None:
    flt = ok(
        client.post(
            f"{V2}/notificationprofiles/filters/",
            json={"name": "all", "filter": {"maxlevel": 5}},
            headers=ADMIN,
        ),
        201,
    )
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))  # noqa: E731
    ongoing = ok(
        client.post(
            f"{V2}/plannedmaintenance/",
            json={"start_time": iso(now - 60), "filters": [flt["pk"]], "description": "swap"},
            headers=ADMIN,
        ),
        201,
    )
    assert ongoing["end_time"] == "infinity" and ongoing["filters"] == [flt["pk"]]
    bad = client.post(
        f"{V2}/plannedmaintenance/",
        json={"start_time": iso(now), "end_time": iso(now - 10), "filters": [flt["pk"]]},
        headers=ADMIN,
    )
    assert bad.status_code == 400 and bad.json()["field"] == "end_time"
    assert (
        client.delete(f"{V2}/plannedmaintenance/{ongoing['pk']}/", headers=ADMIN).status_code == 400
    )
    ended = ok(
        client.patch(
            f"{V2}/plannedmaintenance/{ongoing['pk']}/", json={"end_time": iso(now)}, headers=ADMIN
        )
    )
    assert ended["end_time"] != "infinity"
    future = ok(
        client.post(
            f"{V2}/plannedmaintenance/",
            json={"start_time": iso(now + 3600), "filters": [flt["pk"]]},
            headers=ADMIN,
        ),
        201,
    )
    ok(client.delete(f"{V2}/plannedmaintenance/{future['pk']}/", headers=ADMIN), 204)
    assert [t["pk"] for t in ok(client.get(f"{V2}/plannedmaintenance/", headers=ADMIN))] == [
        ongoing["pk"]
    ]
    assert (
        client.delete(f"{V2}/notificationprofiles/filters/{flt['pk']}/", headers=ADMIN).status_code
        == 400
    )


# --------------------------------------------------------------------------- the notification path


def stored(r: redis.Redis, settings: Settings, nid: str) -> Notification:
    return from_hash(Notification, r.hgetall(Keys(settings.namespace).notification(nid)))


def test_api_events_reach_profiles_through_the_notifier(
    client: Client, settings: Settings, r: redis.Redis
) -> None:
    unacked = setup_profile(client, {"acked": False}, "http://hook.test/unacked")
    acked = setup_profile(client, {"acked": True}, "http://hook.test/acked")
    assert unacked["pk"] != acked["pk"]
    _, auth = make_source(client)
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    inc = ok(
        client.post(
            f"{V2}/incidents/",
            json={"start_time": start, "tags": [{"tag": "host=sw1"}], "level": 2},
            headers=auth,
        ),
        201,
    )
    pk = inc["pk"]
    sta = stored(r, settings, f"argus:{pk}:1")
    assert (sta.incident_event, sta.profiles_only, sta.incident_acked, sta.incident_open) == (
        "STA",
        True,
        False,
        True,
    )
    ok(client.post(f"{V2}/incidents/{pk}/acks/", json={"description": "mine"}, headers=ADMIN), 201)
    ack = stored(r, settings, f"argus:{pk}:2")
    assert (ack.incident_event, ack.type, ack.incident_acked) == ("ACK", "acknowledgement", True)
    ok(
        client.post(
            f"{V2}/incidents/{pk}/events/",
            json={"type": "OTH", "timestamp": start, "description": "note"},
            headers=auth,
        ),
        201,
    )
    names = Names(settings.namespace)
    with running(build_consumer(settings, CollectorRegistry(), r)):
        got = collect_deliveries(settings, [names.gateway("webhook")], n=3, timeout=15)
        extra = collect_deliveries(settings, [names.gateway("webhook")], n=1, timeout=1.5)
    ds = sorted((DELIVERY_DECODER.decode(m["body"]) for m in got), key=lambda d: d.notification_id)
    assert [(d.notification_id, d.medium.address) for d in ds] == [
        (f"argus:{pk}:1", "http://hook.test/unacked"),
        (f"argus:{pk}:2", "http://hook.test/acked"),
        (f"argus:{pk}:3", "http://hook.test/acked"),
    ]
    assert extra == []
    assert ds[1].type == "acknowledgement" and ds[0].summary.startswith("Incident start")


# --------------------------------------------------------------------------- escalation policy


def test_profile_escalation_policy_is_validated_shown_and_keeps_the_policy(client: Client) -> None:
    c = client
    lead = ok(c.post("/contacts", json={"name": "Lead"}, headers=ADMIN), 201)["id"]
    policy = ok(
        c.post(
            "/escalation-policies",
            json={"name": "p", "steps": [{"targets": [{"contact": lead}]}]},
            headers=ADMIN,
        ),
        201,
    )
    prof = setup_profile(c, {"sourceSystemIds": [1]})
    assert "escalation_policy" not in prof  # unset: the Argus shape is unchanged
    body = {
        "name": prof["name"],
        "timeslot": prof["timeslot"]["pk"],
        "filters": [f["pk"] for f in prof["filters"]],
        "destinations": [d["pk"] for d in prof["destinations"]],
    }
    url = f"{V2}/notificationprofiles/{prof['pk']}/"
    bad = c.put(url, json=body | {"escalation_policy": "nope"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["field"] == "escalation_policy", bad.text
    assert "escalation_policy" not in ok(c.get(url, headers=ADMIN))  # nothing was written
    got = ok(c.put(url, json=body | {"escalation_policy": policy["id"]}, headers=ADMIN))
    assert got["escalation_policy"] == policy["id"]
    assert ok(c.get(url, headers=ADMIN))["escalation_policy"] == policy["id"]
    in_use = c.delete(f"/escalation-policies/{policy['id']}", headers=ADMIN)
    assert in_use.status_code == 422 and "notification profiles" in in_use.json()["error"]
    assert "escalation_policy" not in ok(c.put(url, json=body, headers=ADMIN))
    assert c.delete(f"/escalation-policies/{policy['id']}", headers=ADMIN).status_code == 204
