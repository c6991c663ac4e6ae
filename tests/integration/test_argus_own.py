"""What a person owns in the Argus API: their phone numbers, and their notification
profiles, timeslots and destinations (a responder edits their own, an admin all)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.app import create_app
from services.api.context import ApiContext
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.integration.test_people_api import BOOT, TOKEN, bearer, token, user

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]
PHONES = "/api/v2/auth/phone-number/"


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    with TestClient(app=create_app(ctx)) as c:
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
