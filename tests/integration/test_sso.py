"""Dashboard single sign-on against a real local OpenID Connect provider (oidc-provider-mock).

The provider runs in a thread; its authorization form is posted the way a
browser would, so the whole code flow runs: PKCE, state, nonce, the code
exchange with the client secret, the ID token's signature and claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar.testing import TestClient
from oidc_provider_mock import User as MockUser
from oidc_provider_mock import run_server_in_thread

from services.api.context import ApiContext
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration

TOKEN = "sso-admin-token"
PEOPLE = [
    MockUser(
        sub="s-ada",
        claims={
            "preferred_username": "ada",
            "email": "ada@example.org",
            "groups": ["ops", "staff"],
        },
    ),
    MockUser(sub="s-bo", claims={"preferred_username": "bo", "groups": ["staff"]}),
    MockUser(sub="s-cy", claims={"preferred_username": "cy", "groups": ["visitors"]}),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=PEOPLE, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def ctx(settings: Settings, provider: str) -> Iterator[ApiContext]:
    s = msgspec.structs.replace(
        settings,
        api_token=TOKEN,
        oidc_issuer=provider,
        oidc_client_id="tocsin",
        oidc_client_secret="sso-client-secret",
        oidc_roles=("ops=responder", "staff=viewer"),
    )
    c = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    yield c
    c.sender.close()


def sign_in(client: TestClient[Any], sub: str) -> httpx.Response:
    """The browser's trip: to the provider, its form posted as ``sub``, back to the callback."""
    start = client.get("/ui/login/oidc", params={"next": "/ui/checks"}, follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    back = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert back.status_code in (302, 303), back.text
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/ui/login/oidc/callback"
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_sso_creates_the_user_with_the_role_of_their_groups(ctx: ApiContext) -> None:
    with api_client(ctx) as client:
        assert "Sign in with single sign-on" in client.get("/ui/login").text
        done = sign_in(client, "s-ada")
        assert done.status_code == 303 and done.headers["location"] == "/ui/checks"
        assert client.get("/ui/checks").status_code == 200
        ada = PeopleStore(ctx.redis, ctx.keys).user_by_name("ada")
        assert ada is not None and ada.role == "responder" and ada.email == "ada@example.org"
    with api_client(ctx) as client:
        assert sign_in(client, "s-bo").status_code == 303
        bo = PeopleStore(ctx.redis, ctx.keys).user_by_name("bo")
        assert bo is not None and bo.role == "viewer"
        # A viewer signed in by SSO is still a viewer on the forms.
        assert client.get("/ui/audit").status_code == 403


def test_sso_refuses_users_outside_the_groups_and_disabled_users(ctx: ApiContext) -> None:
    with api_client(ctx) as client:
        r = sign_in(client, "s-cy")
        assert r.status_code == 401 and "no group" in r.text
        assert client.get("/ui/", follow_redirects=False).status_code == 303
        assert sign_in(client, "s-bo").status_code == 303
        people = PeopleStore(ctx.redis, ctx.keys)
        bo = people.user_by_name("bo")
        assert bo is not None
        people.save_user(bo, msgspec.structs.replace(bo, disabled=True))
        assert client.get("/ui/", follow_redirects=False).status_code == 303
        again = sign_in(client, "s-bo")
        assert again.status_code == 401 and "disabled" in again.text


def test_a_callback_needs_the_state_this_server_issued(ctx: ApiContext) -> None:
    with api_client(ctx) as client:
        start = client.get("/ui/login/oidc", follow_redirects=False)
        back = httpx.post(start.headers["location"], data={"sub": "s-ada"}, follow_redirects=False)
        callback = urlsplit(back.headers["location"])
        forged = callback.query.replace("state=", "state=x")
        assert client.get(f"{callback.path}?{forged}").status_code == 401
        # Used once: replaying the real callback after it succeeded fails too.
        assert (
            client.get(f"{callback.path}?{callback.query}", follow_redirects=False).status_code
            == 303
        )
        assert client.get(f"{callback.path}?{callback.query}").status_code == 401


def set_claims(provider: str, sub: str, claims: dict[str, Any]) -> None:
    """Change what the provider says about ``sub`` (oidc-provider-mock's ``PUT /users/<sub>``)."""
    httpx.put(f"{provider}/users/{sub}", json=claims).raise_for_status()


def test_the_user_is_the_providers_sub_not_the_name_or_email(
    ctx: ApiContext, provider: str
) -> None:
    people = PeopleStore(ctx.redis, ctx.keys)
    set_claims(
        provider,
        "s-dee",
        {"preferred_username": "dee", "email": "dee@example.org", "groups": ["ops"]},
    )
    with api_client(ctx) as client:
        assert sign_in(client, "s-dee").status_code == 303
    dee = people.user_by_name("dee")
    assert dee is not None and (dee.sso_issuer, dee.sso_subject) == (provider, "s-dee")
    assert dee.created_at > 0
    # A new SSO user gets Argus's defaults too: "All the time" and an email destination.
    boot = {"Authorization": f"Bearer {TOKEN}"}
    with api_client(ctx) as client:
        slots = client.get("/api/v2/notificationprofiles/timeslots/", headers=boot).json()
        assert [s["name"] for s in slots if s["user"] == dee.id] == ["All the time"]
        dests = client.get("/api/v2/notificationprofiles/destinations/", headers=boot).json()
        assert {"email_address": "dee@example.org"} in [d["settings"] for d in dests]
        shown = client.get(f"/users/{dee.id}", headers=boot).json()
        assert (shown["sso_issuer"], shown["sso_subject"]) == (provider, "s-dee")

    # The provider renames Dee and changes her email: the same user signs in.
    set_claims(
        provider,
        "s-dee",
        {"preferred_username": "dee.new", "email": "dee@new.example.org", "groups": ["ops"]},
    )
    with api_client(ctx) as client:
        assert sign_in(client, "s-dee").status_code == 303
    again = people.user(dee.id)
    assert again is not None and again.username == "dee" and again.email == "dee@new.example.org"
    with api_client(ctx) as client:
        dests = client.get("/api/v2/notificationprofiles/destinations/", headers=boot).json()
        assert [d["settings"] for d in dests] == [{"email_address": "dee@new.example.org"}]
    assert people.user_by_name("dee.new") is None
    assert len(people.users()) == 1

    # Another account of this provider now calling itself "dee" is not Dee.
    set_claims(provider, "s-impostor", {"preferred_username": "dee", "groups": ["ops"]})
    with api_client(ctx) as client:
        r = sign_in(client, "s-impostor")
        assert r.status_code == 401 and "another account" in r.text, r.text
    assert len(people.users()) == 1


def test_a_user_an_admin_made_is_linked_at_their_first_sign_in(
    ctx: ApiContext, provider: str
) -> None:
    boot = {"Authorization": f"Bearer {TOKEN}"}
    with api_client(ctx) as client:
        made = client.post("/users", json={"username": "ada", "role": "viewer"}, headers=boot)
        assert made.status_code == 201, made.text
        assert made.json()["sso_subject"] == ""
        assert sign_in(client, "s-ada").status_code == 303
        linked = client.get(f"/users/{made.json()['id']}", headers=boot).json()
        assert linked["sso_subject"] == "s-ada" and linked["role"] == "responder"
        # Deleting the user frees the account: its next sign-in makes a new user.
        assert client.delete(f"/users/{linked['id']}", headers=boot).status_code == 204
    people = PeopleStore(ctx.redis, ctx.keys)
    assert people.user_by_sso(provider, "s-ada") is None
    with api_client(ctx) as client:
        assert sign_in(client, "s-ada").status_code == 303
    ada = people.user_by_sso(provider, "s-ada")
    assert ada is not None and ada.id != linked["id"] and ada.username == "ada"
