"""Dashboard security in-process: the login shares the failed-auth limiter; logout revokes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.auth import FAILED_AUTH_LIMIT
from services.api.context import ApiContext
from services.api.ui import session
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_app, api_client

pytestmark = pytest.mark.integration

TOKEN = "ui-security-admin-token"
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ApiContext]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    c = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    yield c
    c.sender.close()


@pytest.fixture
def anon(ctx: ApiContext) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with api_client(ctx) as c:
        yield c


def _login(client: TestClient, token: str) -> int:  # type: ignore[type-arg]
    nonce = LOGIN_CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = client.post("/ui/login", data={"token": token, "login_csrf": nonce}, follow_redirects=False)
    return r.status_code


def test_login_failures_lock_out_the_form_and_the_api(anon: TestClient) -> None:  # type: ignore[type-arg]
    codes = [_login(anon, f"guess-{i}") for i in range(FAILED_AUTH_LIMIT)]
    assert set(codes) == {401}
    nonce = LOGIN_CSRF.search(anon.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = anon.post("/ui/login", data={"token": TOKEN, "login_csrf": nonce}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "too many failed attempts" in r.text and "tocsin_session" not in r.headers.get(
        "set-cookie", ""
    )
    # The bearer API counts the same failures.
    assert anon.get("/media", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429


def test_api_failures_lock_out_the_login(anon: TestClient) -> None:  # type: ignore[type-arg]
    for _ in range(FAILED_AUTH_LIMIT):
        assert anon.get("/media", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert _login(anon, TOKEN) == 429


def test_logout_revokes_a_copied_session_cookie(ctx: ApiContext) -> None:
    """A stolen cookie used to stay valid for 12 h after logout; now the session is gone."""
    with api_app(ctx) as app, TestClient(app=app) as victim, TestClient(app=app) as thief:
        assert _login(victim, TOKEN) == 303
        stolen = victim.cookies[session.COOKIE]
        thief.cookies.set(session.COOKIE, stolen)
        assert thief.get("/ui/", follow_redirects=False).status_code == 200
        csrf = CSRF.search(victim.get("/ui/").text).group(1)  # type: ignore[union-attr]
        assert (
            victim.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code
            == 303
        )
        r = thief.get("/ui/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
        assert thief.get("/ui/checks", headers={"x-tocsin-partial": "1"}).status_code == 401


def test_sessions_expire_in_redis_with_the_cookie(anon: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    assert _login(anon, TOKEN) == 303
    [key] = ctx.redis.keys(ctx.keys.ui_session("*"))
    assert 0 < ctx.redis.ttl(key) <= session.SESSION_S
    assert anon.cookies[session.COOKIE].split(".")[1] not in str(key)  # nonce not stored
