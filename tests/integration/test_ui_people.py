"""Dashboard logins per user: passwords, roles on forms, own sessions, revocation, audit page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from services.api.passwords import hash_password
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.people import User
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_app
from tests.integration.test_ui_pages import CSRF, LOGIN_CSRF, seed_check
from tests.support import collect_events

pytestmark = pytest.mark.integration

TOKEN = "ui-people-admin-token"
PASSWORD = "correct horse battery"
Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ApiContext]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    c = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    people = PeopleStore(c.redis, c.keys)
    for role in ("admin", "responder", "viewer"):
        people.create_user(
            User(
                id=f"u-{role}",
                username=f"{role}1",
                role=role,
                password_hash=hash_password(PASSWORD),
            )
        )
    yield c
    c.sender.close()


@pytest.fixture
def app(ctx: ApiContext) -> Iterator[Any]:
    with api_app(ctx) as bound:
        yield bound


def browser(app: Any) -> Client:
    return TestClient(app=app)


def sign_in(client: Client, username: str, password: str = PASSWORD) -> int:
    nonce = LOGIN_CSRF.search(client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    form = {"username": username, "password": password, "login_csrf": nonce, "next": "/ui/"}
    return client.post("/ui/login", data=form, follow_redirects=False).status_code


def csrf(client: Client, page: str = "/ui/") -> str:
    return CSRF.search(client.get(page).text).group(1)  # type: ignore[union-attr]


def test_a_user_signs_in_with_a_password_and_acts_in_their_name(app: Any, ctx: ApiContext) -> None:
    with browser(app) as c:
        assert sign_in(c, "responder1", "wrong password!") == 401
        assert sign_in(c, "nobody", PASSWORD) == 401
        assert sign_in(c, "responder1") == 303
        seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", time.time() - 60)
        form = {"csrf": csrf(c), "entity": "db1", "check": "disk", "duration": "1h", "comment": ""}
        assert c.post("/ui/check/ack", data=form, follow_redirects=False).status_code == 303
    [event] = collect_events(ctx.settings, 1, timeout=10)
    assert event.acknowledged_by == "responder1"
    with browser(app) as admin:
        assert sign_in(admin, "admin1") == 303
        page = admin.get("/ui/audit", params={"actor": "responder1"})
        assert page.status_code == 200 and "ack_check" in page.text and ">login<" in page.text
        failed = admin.get("/ui/audit", params={"action": "login_failed"}).text
        assert "nobody" in failed and PASSWORD not in failed and "wrong password!" not in failed


def test_a_viewer_may_look_but_not_act(app: Any, ctx: ApiContext) -> None:
    seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", time.time() - 60)
    with browser(app) as c:
        assert sign_in(c, "viewer1") == 303
        assert c.get("/ui/checks").status_code == 200
        form = {"csrf": csrf(c), "entity": "db1", "check": "disk", "duration": "1h"}
        r = c.post("/ui/check/ack", data=form, follow_redirects=False)
        assert r.status_code == 403 and "viewer" in r.text
        assert c.get("/ui/audit").status_code == 403
        assert 'href="/ui/audit"' not in c.get("/ui/").text


def test_sessions_are_listed_ended_and_revoked_by_disabling(app: Any, ctx: ApiContext) -> None:
    with browser(app) as laptop, browser(app) as phone, browser(app) as other:
        assert sign_in(laptop, "responder1") == 303
        assert sign_in(phone, "responder1") == 303
        assert sign_in(other, "viewer1") == 303
        page = laptop.get("/ui/sessions").text
        assert page.count('name="ref"') == 3  # two sessions and "end all others"
        # Ending "others" from the laptop logs the phone out, not the laptop nor another user.
        ended = laptop.post(
            "/ui/sessions/end", data={"csrf": csrf(laptop), "ref": "others"}, follow_redirects=False
        )
        assert ended.status_code == 303
        assert phone.get("/ui/", follow_redirects=False).status_code == 303
        assert laptop.get("/ui/").status_code == 200 and other.get("/ui/").status_code == 200
        # A ref of another user's session is ignored: only your own are ended.
        [theirs] = [s.ref for s in _sessions(ctx, "u-viewer")]
        laptop.post("/ui/sessions/end", data={"csrf": csrf(laptop), "ref": theirs})
        assert other.get("/ui/").status_code == 200
        # Disabling the user ends their sessions at once.
        boot = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            laptop.patch("/users/u-responder", json={"disabled": True}, headers=boot).status_code
            == 200
        )
        assert laptop.get("/ui/", follow_redirects=False).status_code == 303
        assert sign_in(laptop, "responder1") == 401


def _sessions(ctx: ApiContext, uid: str) -> list[Any]:
    from services.api.ui.session import SessionStore

    return SessionStore(ctx.redis, ctx.keys).of_owner(uid)


def test_disabling_the_bootstrap_token_ends_its_dashboard_sessions(
    app: Any, ctx: ApiContext
) -> None:
    with browser(app) as c:
        nonce = LOGIN_CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
        r = c.post("/ui/login", data={"token": TOKEN, "login_csrf": nonce}, follow_redirects=False)
        assert r.status_code == 303 and c.get("/ui/").status_code == 200
        _, secret = PeopleStore(ctx.redis, ctx.keys).issue("u-admin", "t", None, time.time())
        admin = {"Authorization": f"Bearer {secret}"}
        assert c.put("/auth/bootstrap", json={"disabled": True}, headers=admin).status_code == 200
        assert c.get("/ui/", follow_redirects=False).status_code == 303
        nonce = LOGIN_CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
        r = c.post("/ui/login", data={"token": TOKEN, "login_csrf": nonce}, follow_redirects=False)
        assert r.status_code == 401


def test_a_user_makes_and_revokes_their_own_token_on_the_dashboard(
    app: Any, ctx: ApiContext
) -> None:
    other, _ = PeopleStore(ctx.redis, ctx.keys).issue("u-admin", "admins", None, time.time())
    with browser(app) as c:
        assert sign_in(c, "viewer1") == 303
        form = {"csrf": csrf(c, "/ui/tokens"), "name": "laptop", "expires": "30d"}
        page = c.post("/ui/tokens/create", data=form)
        secret = re.search(r'<code id="new-token">([^<]+)</code>', page.text).group(1)  # type: ignore[union-attr]
        assert (
            c.get("/me", headers={"Authorization": f"Bearer {secret}"}).json()["name"] == "viewer1"
        )
        listed = c.get("/ui/tokens").text
        assert "laptop" in listed and secret not in listed
        # Another user's token id is ignored; your own is revoked.
        c.post("/ui/tokens/revoke", data={"csrf": csrf(c, "/ui/tokens"), "id": other.id})
        assert PeopleStore(ctx.redis, ctx.keys).token(other.id).revoked_at is None  # type: ignore[union-attr]
        [mine] = PeopleStore(ctx.redis, ctx.keys).tokens_of("u-viewer")
        c.post("/ui/tokens/revoke", data={"csrf": csrf(c, "/ui/tokens"), "id": mine.id})
        r = c.get("/me", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401 and "revoked" in r.json()["error"]
