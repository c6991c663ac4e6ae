"""The dashboard in-process against real Redis/RabbitMQ: login, CSRF, pages, forms and errors."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.argus.store import ArgusStore, IncidentEventRecord, IncidentRecord
from services.api.audit import AuditLog
from services.api.context import ApiContext
from services.api.ui import session
from shared.amqp import Names
from shared.audit import AuditQuery
from shared.check_store import CheckStore
from shared.checks import CheckRecord, StateRecord
from shared.config import Settings
from shared.delivery_log import append_entries, entry_for
from shared.keys import Keys, check_id
from shared.models import (
    Contact,
    ContactRef,
    Delivery,
    Medium,
    MediumRef,
    Rule,
    SeverityRoute,
    TimeRecurrence,
)
from shared.records import to_hash
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import collect_events, publish

pytestmark = pytest.mark.integration

TOKEN = "ui-test-admin-token"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def seed_check(r, keys: Keys, entity: str, check: str, state: str, since: float, tags=()):  # type: ignore[no-untyped-def]
    """Write a check the way the processor does (enough for CheckStore's reads)."""
    cid = check_id(entity, check)
    rec = CheckRecord(
        entity_name=entity,
        name=check,
        state=state,
        summary=f"{check} is {state}",
        last_update=since + 30,
        state_since=since,
    )
    pipe = r.pipeline()
    pipe.hset(keys.check(cid), mapping=to_hash(rec))
    pipe.sadd(keys.check_ids(), cid)
    pipe.sadd(keys.check_by_state(state), cid)
    pipe.sadd(keys.check_by_entity_name(entity), cid)
    pipe.sadd(keys.check_by_enabled(True), cid)
    if tags:
        pipe.sadd(keys.check_tags(cid), *tags)
    for i, (s, t) in enumerate([("ok", since - 600), (state, since)]):
        sid = f"{cid}:{i}"
        pipe.hset(
            keys.check_state(sid), mapping=to_hash(StateRecord(state=s, timestamp=t, last_update=t))
        )
        pipe.zadd(keys.check_state_ids(cid), {sid: t})
    pipe.execute()
    return cid


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


def login(client: TestClient) -> str:  # type: ignore[type-arg]
    page = client.get("/ui/login")
    nonce = LOGIN_CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/ui/login",
        data={"token": TOKEN, "login_csrf": nonce, "next": "/ui/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/ui/checks").text)


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


@pytest.fixture
def client(anon: TestClient) -> TestClient:  # type: ignore[type-arg]
    login(anon)
    return anon


def test_pages_redirect_to_login_without_a_session(anon: TestClient) -> None:  # type: ignore[type-arg]
    r = anon.get("/ui/checks?state=critical", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/login?next=%2Fui%2Fchecks")
    assert anon.get("/ui/overview/panel", headers={"X-Tocsin-Partial": "1"}).status_code == 401
    # The bearer token is not a dashboard session, and the API still wants its token.
    assert (
        anon.get(
            "/ui/", headers={"Authorization": f"Bearer {TOKEN}"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert anon.get("/checks").status_code == 401
    assert anon.get("/ui/static/ui.css").status_code == 200


@pytest.mark.parametrize(
    ("token", "same_nonce", "message"),
    [
        pytest.param("wrong", True, "that token is not valid", id="wrong token"),
        pytest.param(TOKEN, False, "login form expired", id="cross-site post without the cookie"),
    ],
)
def test_login_refuses(anon: TestClient, token: str, same_nonce: bool, message: str) -> None:  # type: ignore[type-arg]
    nonce = LOGIN_CSRF.search(anon.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = anon.post(
        "/ui/login",
        data={"token": token, "login_csrf": nonce if same_nonce else "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert message in r.text
    assert session.COOKIE not in r.cookies


def test_session_cookie_flags_and_token_never_in_pages(anon: TestClient) -> None:  # type: ignore[type-arg]
    nonce = LOGIN_CSRF.search(anon.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = anon.post(
        "/ui/login",
        data={"token": TOKEN, "login_csrf": nonce, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/ui/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(session.COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "Path=/ui;" in cookie
    assert TOKEN not in cookie
    for path in ("/ui/", "/ui/checks", "/ui/incidents", "/ui/contacts"):
        page = anon.get(path)
        assert page.status_code == 200
        assert TOKEN not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_logout_ends_the_session(client: TestClient) -> None:  # type: ignore[type-arg]
    csrf = csrf_of(client.get("/ui/").text)
    assert client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_overview_counts_and_unacknowledged(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    now = time.time()
    seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", now - 300)
    seed_check(ctx.redis, ctx.keys, "web1", "http", "warning", now - 200)
    seed_check(ctx.redis, ctx.keys, "web1", "ping", "ok", now - 100)
    CheckStore(ctx.redis, ctx.keys).add_scheduled_maintenance(
        "web1", "http", now - 10, now + 3600, "deploy"
    )
    pipe = ctx.redis.pipeline()
    delivery = Delivery(
        id="d1", notification_id="n1", type="problem", entity="db1", check="disk", state="critical",
        summary="", time=now, contact=ContactRef(id="c1", name="Ann"),
        medium=MediumRef(id="m1", type="webhook", address="http://127.0.0.1/x"),
    )  # fmt: skip
    append_entries(pipe, ctx.keys, [
        entry_for(delivery, outcome="delivered", attempts=1, latency_ms=1, error="", now=now),
        entry_for(delivery, outcome="dead", attempts=5, latency_ms=1, error="boom", now=now),
    ])  # fmt: skip
    pipe.execute()
    assert ctx.sender.ping()  # declares the topology, dead-letter queue included
    publish(ctx.settings, b"bad", routing_key=Names(ctx.settings.namespace).dead, exchange="")
    panel = client.get("/ui/overview/panel", headers={"X-Tocsin-Partial": "1"}).text
    assert re.search(r'data-count="critical">1<', panel)
    assert re.search(r'data-count="warning">1<', panel)
    assert re.search(r'data-count="ok">1<', panel)
    assert re.search(r'data-count="unacknowledged">1<', panel)  # web1:http is in maintenance
    assert re.search(r'data-count="maintenance">1<', panel)
    assert re.search(r'data-count="dead-letters">1<', panel)
    assert 'class="row-bad"><th scope="row">webhook' in panel
    assert "web1:http" in panel


def test_checks_filter_and_search(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    now = time.time()
    seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", now, tags=("role=db",))
    seed_check(ctx.redis, ctx.keys, "web1", "http", "ok", now)
    assert "1 of 2 checks" in client.get("/ui/checks?state=critical").text
    assert "1 of 2 checks" in client.get("/ui/checks?tag=role%3Ddb").text
    assert "0 of 2 checks" in client.get("/ui/checks?q=nomatch").text
    assert "2 of 2 checks" in client.get("/ui/checks?sort=last_update&dir=desc").text


def test_acknowledge_form_validates_then_publishes(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", time.time())
    page = client.get("/ui/check?entity=db1&check=disk")
    assert page.status_code == 200 and "<svg" in page.text
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "entity": "db1", "check": "disk", "comment": "on it"}
    bad = client.post("/ui/check/ack", data={**form, "duration": "soon"})
    assert bad.status_code == 422
    assert 'id="ack-duration-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert 'value="soon"' in bad.text  # the operator's input is kept
    forged = client.post("/ui/check/ack", data={**form, "csrf": "x", "duration": "1h"})
    assert forged.status_code == 422 and "expired" in forged.text
    ok = client.post("/ui/check/ack", data={**form, "duration": "1h 30m"}, follow_redirects=False)
    assert ok.status_code == 303 and "done=ack" in ok.headers["location"]
    [event] = collect_events(ctx.settings, 1, timeout=10)
    assert event.state == "acknowledgement"
    assert (event.duration, event.summary) == (5400, "on it")


def test_test_notification_is_an_action_event(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    seed_check(ctx.redis, ctx.keys, "web1", "http", "ok", time.time())
    csrf = csrf_of(client.get("/ui/check?entity=web1&check=http").text)
    form = {"csrf": csrf, "entity": "web1", "check": "http", "summary": "hello"}
    assert client.post("/ui/check/test", data=form, follow_redirects=False).status_code == 303
    [event] = collect_events(ctx.settings, 1, timeout=10)
    assert (event.state, event.summary) == ("test_notifications", "hello")


def test_ack_of_a_healthy_check_is_refused_inline(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    seed_check(ctx.redis, ctx.keys, "web1", "http", "ok", time.time())
    csrf = csrf_of(client.get("/ui/check?entity=web1&check=http").text)
    r = client.post(
        "/ui/check/ack", data={"csrf": csrf, "entity": "web1", "check": "http", "duration": "1h"}
    )
    assert r.status_code == 422 and "only a failing check can be acknowledged" in r.text


def test_maintenance_enable_and_end(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    seed_check(ctx.redis, ctx.keys, "web1", "http", "ok", time.time())
    csrf = csrf_of(client.get("/ui/check?entity=web1&check=http").text)
    base = {"csrf": csrf, "entity": "web1", "check": "http"}
    r = client.post(
        "/ui/check/maintenance",
        data={**base, "start": "2020-01-02T10:00", "duration": "2h"},
    )
    assert r.status_code == 422 and 'id="maint-duration-error"' in r.text
    assert "the window is already over" in r.text
    r = client.post(
        "/ui/check/maintenance",
        data={**base, "start": "2030-01-02T10:00", "duration": "2h", "summary": "upgrade"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Maintenance scheduled." in page and "2030-01-02 12:00:00 UTC" in page
    mid = re.search(r'name="id" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    assert (
        client.post(
            "/ui/check/maintenance/end", data={**base, "id": mid}, follow_redirects=False
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/ui/check/enabled", data={**base, "enabled": "false"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert ctx.redis.hget(ctx.keys.check(check_id("web1", "http")), "enabled") == "false"
    assert 'id="enabled-state">disabled' in client.get("/ui/check?entity=web1&check=http").text
    # Both are on record with before and after.
    log = AuditLog(ctx.redis, ctx.keys)
    [enabled] = log.query(AuditQuery(action="set_enabled"), 10)[0]
    assert (enabled.before, enabled.after) == ({"enabled": True}, {"enabled": False})
    [ended] = log.query(AuditQuery(action="end_maintenance"), 10)[0]
    assert ended.target == f"check:web1:http:maintenance:{mid}"
    assert ended.before["summary"] == "upgrade" and ended.after is None  # a later one is dropped


def test_incident_ack_and_comment_use_the_argus_path(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    now = time.time()
    cid = seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", now)
    store = ArgusStore(ctx.redis, ctx.keys)
    pk = store.next_pk()
    inc = IncidentRecord(id=pk, start_time=now, level=1, source_incident_id=cid, description="disk full",
                         check_id=cid, entity="db1", check="disk")  # fmt: skip
    store.create(inc, IncidentEventRecord(type="STA", timestamp=now, description="disk full"))
    page = client.get(f"/ui/incidents/{pk}")
    csrf = csrf_of(page.text)
    empty = client.post(
        f"/ui/incidents/{pk}/event", data={"csrf": csrf, "type": "OTH", "description": ""}
    )
    assert empty.status_code == 422 and "write a comment first" in empty.text
    r = client.post(
        f"/ui/incidents/{pk}/event",
        data={"csrf": csrf, "type": "OTH", "description": "looking"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    closed = client.post(
        f"/ui/incidents/{pk}/event", data={"csrf": csrf, "type": "CLO", "description": ""}
    )
    assert closed.status_code == 422 and "closes and reopens with the check" in closed.text
    r = client.post(
        f"/ui/incidents/{pk}/ack",
        data={"csrf": csrf, "duration": "2h", "comment": "mine"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/ui/incidents/{pk}").text
    assert "open, acknowledged until" in page
    assert re.search(r"OTH</span> <time[^>]*>[^<]*</time> looking", page)
    assert re.search(r"ACK</span> <time[^>]*>[^<]*</time> mine", page)
    assert f"#{pk}" in client.get("/ui/incidents?status=open").text


def test_contacts_page_and_dry_run(client: TestClient, ctx: ApiContext) -> None:  # type: ignore[type-arg]
    seed_check(ctx.redis, ctx.keys, "db1", "disk", "critical", time.time(), tags=("role=db",))
    d = ctx.directory
    d.put_contact(Contact(id="c1", name="Ann Oncall", timezone="Europe/Oslo"))
    d.put_contact(Contact(id="c2", name="Bob Nights", timezone="UTC"))
    d.put_medium(
        Medium(
            id="m1", contact_id="c1", type="webhook", address="https://hooks.example/secret/path"
        )
    )
    d.put_medium(Medium(id="m2", contact_id="c2", type="email", address="bob@example.com"))
    d.put_rule(Rule(id="r1", contact_id="c1", critical=SeverityRoute(media=("webhook",))))
    d.put_rule(Rule(id="r2", contact_id="c2", critical=SeverityRoute(blackhole=True),
                    time_restrictions=(TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00"),)))  # fmt: skip
    page = client.get("/ui/contacts").text
    assert "Mon-Fri 08:00-16:00 (UTC)" in page
    assert "https://hooks.example/***" in page and "secret" not in page
    dry = client.get("/ui/contacts?entity=db1&check=disk").text
    assert re.search(r"<strong>Ann Oncall</strong> by webhook", dry)
    assert "Bob Nights:" in dry  # blackholed or outside hours, with the reason
    assert "No check nope:x" in client.get("/ui/contacts?entity=nope&check=x").text


def test_cookies_are_secure_over_https(ctx: ApiContext) -> None:
    with api_client(ctx, base_url="https://tocsin.example") as c:
        page = c.get("/ui/login")
        assert "secure" in page.headers["set-cookie"].lower()
        nonce = LOGIN_CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        r = c.post("/ui/login", data={"token": TOKEN, "login_csrf": nonce}, follow_redirects=False)
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(session.COOKIE))
        assert "secure" in cookie.lower()
