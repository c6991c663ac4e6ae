"""Users and personal tokens through the API: shown once, both schemes, expiry, revocation,
the break-glass switch, who an acknowledgement names, and what the audit log keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.auth import FAILED_AUTH_LIMIT
from services.api.context import ApiContext
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.integration.test_argus_api import TOKEN as ARGUS_ADMIN_TOKEN
from tests.integration.test_argus_api import make_incident, make_source, published

pytestmark = pytest.mark.integration

TOKEN = ARGUS_ADMIN_TOKEN  # make_source and make_incident use it
BOOT = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ApiContext]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    c = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    yield c
    c.sender.close()


@pytest.fixture
def client(ctx: ApiContext) -> Iterator[Client]:
    with api_client(ctx) as c:
        yield c


def user(client: Client, name: str, role: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/users", json={"username": name, "role": role, **extra}, headers=BOOT)
    assert r.status_code == 201, r.text
    return dict(r.json())


def token(client: Client, uid: str, headers: dict[str, str] = BOOT, **extra: Any) -> str:
    r = client.post(f"/users/{uid}/tokens", json={"name": "laptop", **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_token_is_shown_once_works_with_both_schemes_and_names_its_user(
    client: Client, ctx: ApiContext
) -> None:
    alice = user(client, "alice", "responder", email="alice@example.org")
    assert alice["role"] == "responder" and alice["has_password"] is False
    secret = token(client, alice["id"])
    for scheme in ("Bearer", "Token"):
        r = client.get("/me", headers={"Authorization": f"{scheme} {secret}"})
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == "user" and r.json()["user"]["username"] == "alice"
    listed = client.get(f"/users/{alice['id']}/tokens", headers=bearer(secret)).json()
    assert [t["name"] for t in listed] == ["laptop"]
    assert "token" not in listed[0] and listed[0]["last_used"] is not None
    # Redis holds the hash only.
    dump = repr(
        {
            k: ctx.redis.hgetall(k)
            for k in ctx.redis.keys(f"{ctx.settings.namespace}:users*")
            if ctx.redis.type(k) == "hash"
        }
    )
    assert secret not in dump


def test_revoked_expired_and_disabled_are_refused_with_the_reason(
    client: Client, ctx: ApiContext
) -> None:
    bob = user(client, "bob", "viewer")
    secret = token(client, bob["id"])
    tid = client.get(f"/users/{bob['id']}/tokens", headers=BOOT).json()[0]["id"]
    assert (
        client.delete(f"/users/{bob['id']}/tokens/{tid}", headers=bearer(secret)).status_code == 204
    )
    r = client.get("/me", headers=bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json()["error"]

    # An expiry in the past cannot be asked for through the API; the store can write one.
    _, old = PeopleStore(ctx.redis, ctx.keys).issue(
        bob["id"], "old", time.time() - 1, time.time() - 10
    )
    r = client.get("/me", headers=bearer(old))
    assert r.status_code == 401 and "expired" in r.json()["error"]
    r = client.post(
        f"/users/{bob['id']}/tokens",
        json={"name": "x", "expires_at": time.time() - 5},
        headers=BOOT,
    )
    assert r.status_code == 400 and r.json()["field"] == "expires_at"

    fresh = token(client, bob["id"], expires_at=time.time() + 3600)
    assert client.get("/me", headers=bearer(fresh)).status_code == 200
    assert (
        client.patch(f"/users/{bob['id']}", json={"disabled": True}, headers=BOOT).status_code
        == 200
    )
    r = client.get("/me", headers=bearer(fresh))
    assert r.status_code == 401 and "disabled" in r.json()["error"]


def test_one_user_cannot_act_as_another(client: Client) -> None:
    carol = user(client, "carol", "responder")
    dave = user(client, "dave", "viewer")
    carol_t = token(client, carol["id"])
    dave_t = token(client, dave["id"])
    dave_tid = client.get(f"/users/{dave['id']}/tokens", headers=BOOT).json()[0]["id"]
    assert (
        client.post(
            f"/users/{dave['id']}/tokens", json={"name": "x"}, headers=bearer(carol_t)
        ).status_code
        == 403
    )
    assert client.get(f"/users/{dave['id']}/tokens", headers=bearer(carol_t)).status_code == 403
    assert (
        client.delete(f"/users/{dave['id']}/tokens/{dave_tid}", headers=bearer(carol_t)).status_code
        == 403
    )
    # A token id of one user is not found under another's path, even for its own user.
    assert (
        client.delete(
            f"/users/{carol['id']}/tokens/{dave_tid}", headers=bearer(carol_t)
        ).status_code
        == 404
    )
    assert client.get("/me", headers=bearer(dave_t)).status_code == 200
    assert (
        client.patch(
            f"/users/{carol['id']}", json={"role": "admin"}, headers=bearer(carol_t)
        ).status_code
        == 403
    )


def test_the_bootstrap_token_can_be_disabled_only_with_another_way_in(client: Client) -> None:
    r = client.put("/auth/bootstrap", json={"disabled": True}, headers=BOOT)
    assert r.status_code == 409 and "no enabled admin user" in r.json()["error"]
    erin = user(client, "erin", "admin")
    erin_t = token(client, erin["id"])
    assert client.put("/auth/bootstrap", json={"disabled": True}, headers=BOOT).json() == {
        "disabled": True
    }
    r = client.get("/contacts", headers=BOOT)
    assert r.status_code == 401 and "disabled" in r.json()["error"]
    assert client.get("/contacts", headers=bearer(erin_t)).status_code == 200
    assert (
        client.put("/auth/bootstrap", json={"disabled": False}, headers=bearer(erin_t)).status_code
        == 200
    )
    assert client.get("/contacts", headers=BOOT).status_code == 200


def test_an_ack_names_its_user_in_the_event_and_the_audit_log(
    client: Client, settings: Settings
) -> None:
    _, source = make_source(client)
    inc = make_incident(client, source)
    published(settings, 1)  # the incident's failing event
    frank = user(client, "frank", "responder")
    secret = token(client, frank["id"])
    r = client.post(
        f"/api/v2/incidents/{inc['pk']}/acks/",
        json={"event": {"description": "on it"}},
        headers=bearer(secret),
    )
    assert r.status_code == 201, r.text
    [ack] = published(settings, 1)
    assert ack.state == "acknowledgement" and ack.acknowledged_by == "frank"
    audit = client.get("/audit", params={"actor": "frank"}, headers=BOOT).json()
    assert [i["action"] for i in audit["items"]] == ["post_ack"]
    assert audit["items"][0]["role"] == "responder" and audit["total"] == 1
    # The token's creation is on record without its secret.
    created = client.get("/audit", params={"action": "create_token"}, headers=BOOT).json()
    assert created["total"] == 1 and created["items"][0]["actor"] == "admin"
    assert secret not in repr(client.get("/audit", headers=BOOT).json())


def test_a_viewer_is_refused_writes_and_the_refusal_is_recorded(client: Client) -> None:
    gail = user(client, "gail", "viewer")
    secret = token(client, gail["id"])
    r = client.post("/contacts", json={"name": "x"}, headers=bearer(secret))
    assert r.status_code == 403 and "viewer" in r.json()["error"]
    denied = client.get("/audit", params={"actor": "gail"}, headers=BOOT).json()["items"]
    assert [d["action"] for d in denied] == ["denied:create_contact"]


def test_token_guesses_are_rate_limited_and_never_echoed(client: Client) -> None:
    guess = "tcn_" + "A" * 43
    for _ in range(FAILED_AUTH_LIMIT):
        r = client.get("/me", headers=bearer(guess))
        assert r.status_code == 401 and guess not in r.text
    assert client.get("/me", headers=bearer(guess)).status_code == 429
    assert guess not in client.get("/metrics").text


def test_usernames_are_unique_and_checked(client: Client) -> None:
    user(client, "hana", "viewer")
    assert (
        client.post("/users", json={"username": "HANA", "role": "viewer"}, headers=BOOT).status_code
        == 409
    )
    r = client.post("/users", json={"username": "admin", "role": "viewer"}, headers=BOOT)
    assert r.status_code == 400 and r.json()["field"] == "username"
    r = client.post("/users", json={"username": "ivan", "role": "root"}, headers=BOOT)
    assert r.status_code == 400


def test_a_responder_edits_only_their_own_contact_and_the_change_is_on_record(
    client: Client, ctx: ApiContext
) -> None:
    ctx.redis.hset(ctx.keys.media_installed(), mapping={"webhook": "1"})
    mine = client.post("/contacts", json={"name": "Jo"}, headers=BOOT).json()
    theirs = client.post("/contacts", json={"name": "Kim"}, headers=BOOT).json()
    jo = user(client, "jo", "responder", contact_id=mine["id"])
    auth = bearer(token(client, jo["id"]))
    r = client.patch(f"/contacts/{mine['id']}", json={"timezone": "Europe/Oslo"}, headers=auth)
    assert r.status_code == 200, r.text
    assert (
        client.patch(f"/contacts/{theirs['id']}", json={"name": "x"}, headers=auth).status_code
        == 403
    )
    secret_url = "https://hooks.example.org/T000/B000/very-secret-path"
    medium = {"contact_id": mine["id"], "type": "webhook", "address": secret_url}
    r = client.post("/media", json=medium, headers=auth)
    assert r.status_code == 201, r.text
    other = {**medium, "contact_id": theirs["id"]}
    assert client.post("/media", json=other, headers=auth).status_code == 403
    assert client.post("/contacts", json={"name": "new"}, headers=auth).status_code == 403

    [patched] = client.get("/audit", params={"action": "patch_contact"}, headers=BOOT).json()[
        "items"
    ]
    assert patched["actor"] == "jo" and patched["target"] == f"contact:{mine['id']}"
    assert patched["before"]["timezone"] == "UTC" and patched["after"]["timezone"] == "Europe/Oslo"
    [created] = client.get("/audit", params={"action": "create_medium"}, headers=BOOT).json()[
        "items"
    ]
    assert created["after"]["contact_id"] == mine["id"]
    assert "very-secret-path" not in repr(client.get("/audit", headers=BOOT).json())


def test_a_new_user_gets_argus_defaults_and_argus_user_endpoints_answer(client: Client) -> None:
    lena = user(client, "lena", "responder", email="lena@example.org")
    user(client, "max", "viewer")  # no email: a timeslot, no destination
    slots = client.get("/api/v2/notificationprofiles/timeslots/", headers=BOOT).json()
    always = [s for s in slots if s["name"] == "All the time"]
    assert len(always) == 2  # names are unique per user, as in Argus
    assert always[0]["time_recurrences"] == [
        {
            "days": [1, 2, 3, 4, 5, 6, 7],
            "start": "00:00:00",
            "end": "23:59:59.999999",
            "all_day": True,
        }
    ]
    dests = client.get("/api/v2/notificationprofiles/destinations/", headers=BOOT).json()
    assert [(d["media"], d["settings"]) for d in dests] == [
        ("email", {"email_address": "lena@example.org"})
    ]
    bad = client.post(
        "/users", json={"username": "x1", "role": "viewer", "email": "nope"}, headers=BOOT
    )
    assert bad.status_code == 400

    auth = {"Authorization": f"Token {token(client, lena['id'])}"}
    me = client.get("/api/v2/auth/user/", headers=auth).json()
    assert me == {
        "pk": lena["pk"],
        "username": "lena",
        "first_name": "",
        "last_name": "",
        "email": "lena@example.org",
        "admin_url": None,
    }
    assert lena["pk"] >= 1_000_000
    assert (
        client.get(f"/api/v2/auth/users/{lena['pk']}/", headers=auth).json()["username"] == "lena"
    )
    src, src_auth = make_source(client, "zabbix")
    assert client.get("/api/v2/auth/user/", headers=src_auth).json()["pk"] == src["pk"]
    assert (
        client.get(f"/api/v2/auth/users/{src['pk']}/", headers=auth).json()["username"] == "zabbix"
    )
    assert client.get("/api/v2/auth/users/0/", headers=auth).json()["username"] == "admin"
    assert client.get("/api/v2/auth/users/999/", headers=auth).status_code == 404


def test_no_token_or_password_reaches_the_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    password = "a long enough password 42"
    nia = user(client, "nia", "viewer", password=password)
    assert nia["has_password"] is True and "password" not in nia
    secret = token(client, nia["id"])
    client.get("/me", headers=bearer(secret))
    client.get("/me", headers=bearer(secret + "x"))  # a failed guess
    client.post("/contacts", json={"name": "x"}, headers=bearer(secret))  # a refusal
    client.patch(f"/users/{nia['id']}", json={"password": password + "!"}, headers=BOOT)
    logged = caplog.text + repr(client.get("/audit", headers=BOOT).json())
    assert secret not in logged and password not in logged
    assert password not in client.get(f"/users/{nia['id']}", headers=BOOT).text


def test_intake_leaves_no_audit_records(client: Client, ctx: ApiContext) -> None:
    event = {"entity": "web1", "check": "http", "state": "critical"}
    assert client.post("/events", json=event, headers=BOOT).status_code == 202
    _, source = make_source(client, "beats")
    assert client.post("/api/v2/incidents/sources/heartbeat/", headers=source).status_code == 204
    actions = [r["action"] for r in client.get("/audit", headers=BOOT).json()["items"]]
    assert actions == ["create_source"]


def test_an_argus_ack_shows_the_user_as_its_actor(client: Client, settings: Settings) -> None:
    _, source = make_source(client)
    inc = make_incident(client, source)
    omar = user(client, "omar", "responder")
    auth = {"Authorization": f"Token {token(client, omar['id'])}"}
    r = client.post(
        f"/api/v2/incidents/{inc['pk']}/acks/",
        json={"event": {"description": "mine"}},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert r.json()["event"]["actor"] == {"pk": omar["pk"], "username": "omar"}
    events = client.get(f"/api/v2/incidents/{inc['pk']}/events/", headers=auth).json()
    assert {"pk": omar["pk"], "username": "omar"} in [e["actor"] for e in events]


def test_times_must_be_finite(client: Client) -> None:
    assert client.get("/audit", params={"since": "nan"}, headers=BOOT).status_code == 400
    assert client.get("/audit", params={"since": "inf"}, headers=BOOT).status_code == 400
    pat = user(client, "pat", "viewer")
    r = client.post(
        f"/users/{pat['id']}/tokens",
        content=b'{"name":"a","expires_at":1e400}',
        headers={**BOOT, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
