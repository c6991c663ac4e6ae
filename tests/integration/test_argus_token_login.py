"""Argus's token logins against Tocsin users: ``token-auth/``, ``auth/refresh-token/`` and
knox's ``auth/token/login/``, ``logout/``, ``logoutall`` (docs/users.md)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime

import msgspec
import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient

from services.api import passwords
from services.api.auth import FAILED_AUTH_LIMIT
from services.api.context import ApiContext
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.integration.test_argus_api import make_source
from tests.integration.test_people_api import BOOT, TOKEN, user

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]
A = "/api/v2"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its lowest cost for these tests' users (the default in passwords.py stays).

    These tests check logins, not the hash's cost: at the default cost each
    verification took 0.3 s of CPU, and the guessing limit alone takes 30 of them.
    """
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ApiContext]:
    s = msgspec.structs.replace(settings, api_token=TOKEN, argus_token_days=2.0)
    c = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    yield c
    c.sender.close()


@pytest.fixture
def client(ctx: ApiContext) -> Iterator[Client]:
    with api_client(ctx) as c:
        yield c


def as_token(secret: str) -> dict[str, str]:
    return {"Authorization": f"Token {secret}"}


def me(client: Client, secret: str) -> int:
    return client.get(f"{A}/auth/user/", headers=as_token(secret)).status_code


def test_token_auth_gives_an_expiring_token_and_replaces_the_last(
    client: Client, ctx: ApiContext
) -> None:
    ada = user(client, "ada", "responder", password=PASSWORD)
    before = time.time()
    r = client.post(f"{A}/token-auth/", json={"username": "ada", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["token"]
    first = r.json()["token"]
    assert me(client, first) == 200
    assert client.get(f"{A}/auth/user/", headers=as_token(first)).json()["username"] == "ada"
    [tok] = PeopleStore(ctx.redis, ctx.keys).tokens_of(ada["id"])
    assert tok.name == "argus token-auth" and tok.expires_at is not None
    assert (
        before + 2 * 86400 <= tok.expires_at <= time.time() + 2 * 86400
    )  # TOCSIN_ARGUS_TOKEN_DAYS
    # A form post works too (DRF takes both); the new token replaces the old, as in Argus.
    r = client.post(f"{A}/token-auth/", data={"username": "ada", "password": PASSWORD})
    assert r.status_code == 200, r.text
    second = r.json()["token"]
    assert me(client, second) == 200
    r = client.get(f"{A}/auth/user/", headers=as_token(first))
    assert r.status_code == 401 and "revoked" in r.text, r.text
    # refresh-token/ replaces it again, for the caller.
    r = client.post(f"{A}/auth/refresh-token/", headers=as_token(second))
    assert r.status_code == 200, r.text
    third = r.json()["token"]
    assert me(client, third) == 200 and me(client, second) == 401
    records = client.get("/audit", params={"action": "argus_token_auth"}, headers=BOOT).json()
    assert [i["actor"] for i in records["items"]] == ["ada"] * 3


def test_wrong_credentials_answer_as_drf_and_are_counted_and_audited(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    user(client, "bo", "viewer", password=PASSWORD)
    cy = user(client, "cy", "viewer", password=PASSWORD)
    caplog.set_level(logging.DEBUG)
    for body in (
        {"username": "bo", "password": "wrong password!"},
        {"username": "nobody", "password": PASSWORD},
    ):
        r = client.post(f"{A}/token-auth/", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["non_field_errors"] == ["Unable to log in with provided credentials."]
    r = client.post(f"{A}/token-auth/", json={"username": "bo"})
    assert r.status_code == 400 and r.json()["password"] == ["This field is required."]
    failed = client.get("/audit", params={"action": "login_failed"}, headers=BOOT).json()
    assert sorted(i["actor"] for i in failed["items"]) == ["bo", "nobody"]
    assert "wrong password!" not in caplog.text
    assert "wrong password!" not in json.dumps(client.get("/audit", headers=BOOT).json())
    # A disabled user cannot log in, even with the right password.
    r = client.patch(f"/users/{cy['id']}", json={"disabled": True}, headers=BOOT)
    assert r.status_code == 200, r.text
    r = client.post(f"{A}/token-auth/", json={"username": "cy", "password": PASSWORD})
    assert r.status_code == 400, r.text
    # Guessing is limited per client, like wrong tokens: then even the right password waits.
    for _ in range(FAILED_AUTH_LIMIT):
        client.post(f"{A}/auth/token/login/", json={"username": "bo", "password": "guess"})
    r = client.post(f"{A}/token-auth/", json={"username": "bo", "password": PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers, r.text


def test_knox_login_with_credentials_or_a_token_and_logouts(client: Client) -> None:
    user(client, "di", "responder", password=PASSWORD)
    r = client.post(f"{A}/auth/token/login/", json={"username": "di", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"expiry", "token"}
    expiry = datetime.fromisoformat(body["expiry"]).timestamp()
    assert abs(expiry - (time.time() + 10 * 3600)) < 60  # knox's 10 hours
    first = body["token"]
    # An empty body with a valid token: another token (argus-api-client's refresh_token).
    r = client.post(f"{A}/auth/token/login/", headers=as_token(first))
    assert r.status_code == 200, r.text
    second = r.json()["token"]
    assert second != first and me(client, first) == 200 and me(client, second) == 200
    # Logging out revokes only the token it is called with.
    assert client.post(f"{A}/auth/token/logout/", headers=as_token(first)).status_code == 204
    assert me(client, first) == 401 and me(client, second) == 200
    # logoutall revokes every knox login, not the user's other tokens.
    cli = client.post(f"{A}/token-auth/", json={"username": "di", "password": PASSWORD})
    other = cli.json()["token"]
    third = client.post(f"{A}/auth/token/login/", headers=as_token(other)).json()["token"]
    assert client.post(f"{A}/auth/token/logoutall", headers=as_token(other)).status_code == 204
    assert me(client, second) == 401 and me(client, third) == 401 and me(client, other) == 200


def test_knox_login_refusals(client: Client, ctx: ApiContext) -> None:
    user(client, "eve", "viewer", password=PASSWORD)
    r = client.post(f"{A}/auth/token/login/", json={"username": "eve", "password": "nope"})
    assert r.status_code == 401, r.text
    assert client.post(f"{A}/auth/token/login/").status_code == 401
    r = client.post(f"{A}/auth/token/login/", headers=as_token("not-a-token"))
    assert r.status_code == 401, r.text
    # The bootstrap token is no user's; a source system's is not a person's.
    r = client.post(f"{A}/auth/token/login/", headers=BOOT)
    assert r.status_code == 400 and "bootstrap" in r.text, r.text
    _, source = make_source(client, "zabbix")
    assert client.post(f"{A}/auth/token/login/", headers=source).status_code == 403
    assert client.post(f"{A}/auth/refresh-token/", headers=source).status_code == 403
    # refresh-token/ needs a token-auth token to replace, as in Argus.
    eve = client.post(f"{A}/auth/token/login/", json={"username": "eve", "password": PASSWORD})
    r = client.post(f"{A}/auth/refresh-token/", headers=as_token(eve.json()["token"]))
    assert r.status_code == 400 and "No token for the user 'eve'" in r.text, r.text
