"""What a person owns in the Argus API: their phone numbers, and their notification
profiles, timeslots and destinations (a responder edits their own, an admin all)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.integration.test_argus_api import make_incident, make_source
from tests.integration.test_people_api import BOOT, TOKEN, bearer, token, user

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]
PHONES = "/api/v2/auth/phone-number/"


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    ctx.redis.hset(ctx.keys.media_installed(), "sms", "1")  # destinations need it installed
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def person(client: Client, name: str, role: str) -> tuple[dict[str, Any], dict[str, str]]:
    u = user(client, name, role)
    return u, bearer(token(client, u["id"]))


def test_phone_numbers_are_each_persons_own_and_checked(client: Client) -> None:
    alice, as_alice = person(client, "alice", "viewer")
    bob, as_bob = person(client, "bob", "responder")
    r = client.post(PHONES, json={"phone_number": "+47 900 00 000"}, headers=as_alice)
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine == {"pk": mine["pk"], "user": alice["pk"], "phone_number": "+4790000000"}
    bad = client.post(PHONES, json={"phone_number": "90000000"}, headers=as_alice)
    assert bad.status_code == 400 and "international format" in bad.text, bad.text
    dup = client.post(PHONES, json={"phone_number": "+4790000000"}, headers=as_alice)
    assert dup.status_code == 400, dup.text
    # Bob (and the admin) see none of Alice's numbers and cannot touch them.
    assert client.get(PHONES, headers=as_bob).json() == []
    assert client.get(PHONES, headers=BOOT).json() == []
    url = f"{PHONES}{mine['pk']}/"
    assert client.get(url, headers=as_bob).status_code == 404
    assert client.put(url, json={"phone_number": "+4711111111"}, headers=as_bob).status_code == 404
    assert client.delete(url, headers=as_bob).status_code == 404
    r = client.patch(url, json={"phone_number": "+4791111111"}, headers=as_alice)
    assert r.status_code == 200 and r.json()["phone_number"] == "+4791111111", r.text
    assert client.get(url, headers=as_alice).json()["phone_number"] == "+4791111111"
    bobs = client.post(PHONES, json={"phone_number": "+4790000000"}, headers=as_bob)
    assert bobs.status_code == 201 and bobs.json()["user"] == bob["pk"], bobs.text
    assert client.delete(url, headers=as_alice).status_code == 204
    assert client.get(PHONES, headers=as_alice).json() == []
    assert [p["phone_number"] for p in client.get(PHONES, headers=as_bob).json()] == ["+4790000000"]


NP = "/api/v2/notificationprofiles/"
ALWAYS = [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00:00", "end": "23:59:59"}]


def make(client: Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    r = client.post(f"{NP}{path}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["pk"])


def own_profile(client: Client, headers: dict[str, str], name: str, flt: int) -> dict[str, int]:
    """A timeslot, an SMS destination and a profile using them, made by ``headers``' user."""
    slot = make(client, "timeslots/", {"name": "work", "time_recurrences": ALWAYS}, headers)
    phone = "+4790000001" if name == "alice" else "+4790000002"
    dest = make(
        client, "destinations/", {"media": "sms", "settings": {"phone_number": phone}}, headers
    )
    body = {"name": "mine", "timeslot": slot, "filters": [flt], "destinations": [dest]}
    return {"timeslot": slot, "destination": dest, "profile": make(client, "", body, headers)}


def test_a_responder_edits_their_own_profiles_timeslots_and_destinations_only(
    client: Client,
) -> None:
    _, as_alice = person(client, "alice", "responder")
    _, as_bob = person(client, "bob", "responder")
    _, as_vera = person(client, "vera", "viewer")
    flt = make(client, "filters/", {"name": "all", "filter": {}}, BOOT)
    alices = own_profile(client, as_alice, "alice", flt)
    bobs = own_profile(client, as_bob, "bob", flt)  # same names: unique per user
    slot_body = {"name": "renamed", "time_recurrences": ALWAYS}
    prof_body = {"timeslot": bobs["timeslot"], "filters": [flt], "active": False}
    # Bob cannot change or delete any of Alice's.
    for what, body in (("timeslots/", slot_body), ("", prof_body)):
        key = "timeslot" if what else "profile"
        url = f"{NP}{what}{alices[key]}/"
        r = client.put(url, json=body, headers=as_bob)
        assert r.status_code == 403 and "another user" in r.text, r.text
        assert client.delete(url, headers=as_bob).status_code == 403
    dest_url = f"{NP}destinations/{alices['destination']}/"
    r = client.put(
        dest_url, json={"media": "sms", "settings": {"phone_number": "+4799999999"}}, headers=as_bob
    )
    assert r.status_code == 403, r.text
    assert client.delete(dest_url, headers=as_bob).status_code == 403
    # Nor point his profile at Alice's timeslot or destination.
    r = client.put(
        f"{NP}{bobs['profile']}/",
        json={"timeslot": alices["timeslot"], "filters": [flt], "destinations": []},
        headers=as_bob,
    )
    assert r.status_code == 400 and "not yours" in r.text, r.text
    r = client.put(
        f"{NP}{bobs['profile']}/",
        json={
            "timeslot": bobs["timeslot"],
            "filters": [flt],
            "destinations": [alices["destination"]],
        },
        headers=as_bob,
    )
    assert r.status_code == 400 and "not yours" in r.text, r.text
    # A viewer changes nothing; filters stay the admin's.
    assert client.post(f"{NP}timeslots/", json=slot_body, headers=as_vera).status_code == 403
    r = client.post(f"{NP}filters/", json={"name": "x", "filter": {}}, headers=as_alice)
    assert r.status_code == 403, r.text
    # Alice changes her own; the admin changes anyone's, and the owner stays Alice.
    r = client.put(f"{NP}timeslots/{alices['timeslot']}/", json=slot_body, headers=as_alice)
    assert r.status_code == 200 and r.json()["name"] == "renamed", r.text
    prof_url = f"{NP}{alices['profile']}/"
    body = {"timeslot": alices["timeslot"], "filters": [flt], "active": False}
    r = client.put(prof_url, json=body, headers=BOOT)
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    r = client.put(prof_url, json={**body, "active": True}, headers=as_alice)
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    assert client.delete(prof_url, headers=as_alice).status_code == 204
    assert client.delete(dest_url, headers=as_alice).status_code == 204
    assert client.delete(f"{NP}{bobs['profile']}/", headers=BOOT).status_code == 204
    assert client.get(f"{NP}{bobs['profile']}/", headers=BOOT).status_code == 404


def test_a_person_lists_and_reads_only_their_own_as_in_argus_and_an_admin_all(
    client: Client,
) -> None:
    _, as_alice = person(client, "alice", "responder")
    _, as_bob = person(client, "bob", "responder")
    _, as_vera = person(client, "vera", "viewer")
    flt = make(client, "filters/", {"name": "all", "filter": {}}, BOOT)
    alices = own_profile(client, as_alice, "alice", flt)
    bobs = own_profile(client, as_bob, "bob", flt)

    def pks(path: str, headers: dict[str, str]) -> set[int]:
        r = client.get(f"{NP}{path}", headers=headers)
        assert r.status_code == 200, r.text
        return {int(x["pk"]) for x in r.json()}

    for key, path in (
        ("profile", ""),
        ("timeslot", "timeslots/"),
        ("destination", "destinations/"),
    ):
        assert alices[key] in pks(path, as_alice) and bobs[key] not in pks(path, as_alice)
        assert bobs[key] in pks(path, as_bob) and alices[key] not in pks(path, as_bob)
        assert {alices[key], bobs[key]} <= pks(path, BOOT)
        # Another's record is not found, as Argus answers for what is not in your list.
        r = client.get(f"{NP}{path}{bobs[key]}/", headers=as_alice)
        assert r.status_code == 404, r.text
        assert client.get(f"{NP}{path}{bobs[key]}/", headers=as_bob).status_code == 200
        assert client.get(f"{NP}{path}{bobs[key]}/", headers=BOOT).status_code == 200
    assert pks("", as_vera) == set()
    # A viewer still has the "All the time" timeslot every new user gets, and only that.
    slots = client.get(f"{NP}timeslots/", headers=as_vera).json()
    assert [s["name"] for s in slots] == ["All the time"]
    assert client.get(f"{NP}{bobs['profile']}/incidents/", headers=as_alice).status_code == 404
    assert client.get(f"{NP}{alices['profile']}/incidents/", headers=as_alice).status_code == 200
    # argus-api-client's scheme sees the same.
    as_alice_token = {"Authorization": as_alice["Authorization"].replace("Bearer", "Token")}
    assert pks("", as_alice_token) == {alices["profile"]}


def test_a_person_removes_only_tags_they_added_and_a_source_names_no_source(
    client: Client,
) -> None:
    src, src_auth = make_source(client, "nav")
    inc = make_incident(client, src_auth, tags=[{"tag": "host=a"}])
    tags = f"/api/v2/incidents/{inc['pk']}/tags/"
    alice, as_alice = person(client, "alice", "responder")
    _, as_vera = person(client, "vera", "viewer")
    r = client.post(tags, json={"tag": "team=ops"}, headers=as_alice)
    assert r.status_code == 201, r.text
    assert r.json()["added_by"] == alice["pk"], r.text
    assert client.post(tags, json={"tag": "x=y"}, headers=as_vera).status_code == 403
    # As in Argus: only a superuser (an admin) removes a tag someone else added.
    r = client.delete(f"{tags}host=a/", headers=as_alice)
    assert r.status_code == 400 and "someone else" in r.text, r.text
    r = client.delete(f"{tags}team=ops/", headers=src_auth)
    assert r.status_code == 400 and "someone else" in r.text, r.text
    assert client.delete(f"{tags}team=ops/", headers=as_alice).status_code == 204
    assert client.delete(f"{tags}host=a/", headers=BOOT).status_code == 204
    assert client.get(tags, headers=BOOT).json() == []
    # A source system may not name a source, not even its own (pyargus never sends one).
    r = client.post(
        "/api/v2/incidents/",
        json={"start_time": "2026-12-01T10:00:00+00:00", "tags": [], "source": src["pk"]},
        headers=src_auth,
    )
    assert r.status_code == 400 and r.json()["source"], r.text


def test_a_users_managed_email_destination_follows_their_email(client: Client) -> None:
    dests = f"{NP}destinations/"

    def emails() -> dict[int, str]:
        found = client.get(dests, headers=BOOT).json()
        return {d["pk"]: d["settings"]["email_address"] for d in found if d["media"] == "email"}

    ann = user(client, "ann", "responder", email="ann@example.org")
    [(pk, address)] = emails().items()
    assert address == "ann@example.org"
    r = client.patch(f"/users/{ann['id']}", json={"email": "ann@new.example.org"}, headers=BOOT)
    assert r.status_code == 200, r.text
    assert emails() == {pk: "ann@new.example.org"}  # the same destination: profiles follow
    # A user without an email gets one when given one.
    ben = user(client, "ben", "viewer")
    client.patch(f"/users/{ben['id']}", json={"email": "ben@example.org"}, headers=BOOT)
    assert sorted(emails().values()) == ["ann@new.example.org", "ben@example.org"]
    # Another destination already has the address: Argus refuses duplicates, so it stays.
    client.patch(f"/users/{ben['id']}", json={"email": "ann@new.example.org"}, headers=BOOT)
    assert sorted(emails().values()) == ["ann@new.example.org", "ben@example.org"]
