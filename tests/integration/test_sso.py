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

from services.api.app import create_app
from services.api.context import ApiContext
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis

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
    with TestClient(app=create_app(ctx)) as client:
        assert "Sign in with single sign-on" in client.get("/ui/login").text
        done = sign_in(client, "s-ada")
        assert done.status_code == 303 and done.headers["location"] == "/ui/checks"
        assert client.get("/ui/checks").status_code == 200
        ada = PeopleStore(ctx.redis, ctx.keys).user_by_name("ada")
        assert ada is not None and ada.role == "responder" and ada.email == "ada@example.org"
    with TestClient(app=create_app(ctx)) as client:
        assert sign_in(client, "s-bo").status_code == 303
        bo = PeopleStore(ctx.redis, ctx.keys).user_by_name("bo")
        assert bo is not None and bo.role == "viewer"
        # A viewer signed in by SSO is still a viewer on the forms.
        assert client.get("/ui/audit").status_code == 403


def test_sso_refuses_users_outside_the_groups_and_disabled_users(ctx: ApiContext) -> None:
    with TestClient(app=create_app(ctx)) as client:
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
    with TestClient(app=create_app(ctx)) as client:
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
