"""Every route of the app, called with every role: 401, 403 or through, as this table says.

The routes are enumerated from the app itself, so a route added without an
entry here fails with a message naming it.  The table is written by hand and
independently of the declarations on the routes (services/api/access.py):
the test checks that the two agree, through the real guard.

Path parameters get values that name nothing, so a role the route admits
reaches the handler and gets a 404/400/422 there, or a 2xx on list routes;
what matters here is that it is neither 401 nor 403, and that every other
role gets 403 and no token 401.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.access import handler_need, http_handlers
from services.api.app import create_app
from services.api.argus.store import ArgusStore
from services.api.context import ApiContext
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.people import User
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration

TOKEN = "role-table-admin-token"
ROLES = ("bootstrap", "admin", "responder", "viewer", "source")

# Who gets through (the rest get 403; no token gets 401).
EVERYONE = frozenset({"bootstrap", "admin", "responder", "viewer", "source"})
READ = frozenset({"bootstrap", "admin", "responder", "viewer"})
ACT = frozenset({"bootstrap", "admin", "responder"})
ACT_OR_SOURCE = ACT | {"source"}
ADMIN = frozenset({"bootstrap", "admin"})
ADMIN_OR_SOURCE = ADMIN | {"source"}
SOURCE = frozenset({"source"})
# Routes on a user id: the value used names another user, which only admins may touch.
OTHERS = ADMIN
# Routes a responder may call for their own contact only: the test's responder has none.
OWN = ADMIN
PUBLIC, SIGNATURE, SESSION = "public", "signature", "session"
# Bodies where an empty one would stop a request before the handler's own check.
BODIES: dict[str, dict[str, Any]] = {
    "POST /users/{uid:str}/tokens": {"name": "t"},
    "POST /media": {"contact_id": "nothing", "type": "email", "address": "a@example.org"},
    "POST /rules": {"contact_id": "nothing"},
}
# Reads that answer something other than 2xx on purpose.
NOT_2XX = {
    # 405, as in Argus: pyargus probes with GET to learn that heartbeats are supported.
    "GET /api/v2/incidents/sources/heartbeat",
    # 400: a check's escalations need ?entity=&check= (the guard answers before that).
    "GET /escalations",
}

A = "/api/v2"
# Routes on the caller's own tokens (logout/ revokes the token it is called with).
SELF_TOKENS = ("auth/refresh-token", "auth/token/logout", "auth/token/logoutall")
NP = f"{A}/notificationprofiles"
CHECK = "/checks/{entity:str}/{check:str}"

TABLE: dict[str, frozenset[str] | str] = {
    "GET /health": PUBLIC,
    "GET /metrics": PUBLIC,
    "POST /events": ADMIN,
    # configuration
    **{f"GET /{kind}": READ for kind in ("contacts", "media", "rules")},
    "POST /contacts": ADMIN,
    # A responder edits only the contact linked to their user (here: none), its media and rules.
    **{f"POST /{kind}": OWN for kind in ("media", "rules")},
    **{
        f"GET /{k}/{{{i}:str}}": READ
        for k, i in (("contacts", "cid"), ("media", "mid"), ("rules", "rid"))
    },
    "DELETE /contacts/{cid:str}": ADMIN,
    **{
        f"{m} /{k}/{{{i}:str}}": OWN
        for k, i in (("contacts", "cid"), ("media", "mid"), ("rules", "rid"))
        for m in ("PATCH", "DELETE")
        if (k, m) != ("contacts", "DELETE")
    },
    "POST /config/validate": READ,
    "POST /media/{mid:str}/test": ACT,
    # checks
    "GET /checks": READ,
    f"GET {CHECK}": READ,
    f"PATCH {CHECK}": ADMIN,
    f"GET {CHECK}/states": READ,
    f"GET {CHECK}/maintenances": READ,
    f"POST {CHECK}/maintenances": ACT,
    f"DELETE {CHECK}/maintenances/{{mid:str}}": ACT,
    f"POST {CHECK}/acknowledgements": ACT,
    f"GET {CHECK}/explain": READ,
    "GET /maintenances": READ,
    "GET /deliveries": READ,
    "GET /notifications": READ,
    "POST /simulate": READ,
    # sources
    "POST /sources/alertmanager": SIGNATURE,
    "POST /sources/{name:str}/events": SIGNATURE,
    "POST /api/v2/alerts": ADMIN,
    "GET /sources": READ,
    "POST /sources": ADMIN,
    "GET /sources/{name:str}": READ,
    "DELETE /sources/{name:str}": ADMIN,
    # Argus incidents
    f"GET {A}/incidents/sources": EVERYONE,
    f"POST {A}/incidents/sources": ADMIN,
    f"GET {A}/incidents/sources/{{pk:int}}": EVERYONE,
    f"GET {A}/incidents/source-types": EVERYONE,
    f"GET {A}/incidents/sources/heartbeat": EVERYONE,
    f"POST {A}/incidents/sources/heartbeat": SOURCE,
    f"GET {A}/incidents": EVERYONE,
    f"POST {A}/incidents": ADMIN_OR_SOURCE,
    f"GET {A}/incidents/mine": EVERYONE,
    f"GET {A}/incidents/{{pk:int}}": EVERYONE,
    f"PUT {A}/incidents/{{pk:int}}": ADMIN_OR_SOURCE,
    f"PATCH {A}/incidents/{{pk:int}}": ADMIN_OR_SOURCE,
    f"PUT {A}/incidents/{{pk:int}}/ticket_url": ADMIN_OR_SOURCE,
    f"GET {A}/incidents/{{pk:int}}/events": EVERYONE,
    f"POST {A}/incidents/{{pk:int}}/events": ACT_OR_SOURCE,
    f"GET {A}/incidents/{{pk:int}}/events/{{event_pk:int}}": EVERYONE,
    f"GET {A}/incidents/{{pk:int}}/acks": EVERYONE,
    f"POST {A}/incidents/{{pk:int}}/acks": ACT_OR_SOURCE,
    f"GET {A}/incidents/{{pk:int}}/acks/{{ack_pk:int}}": EVERYONE,
    f"PUT {A}/incidents/{{pk:int}}/acks/{{ack_pk:int}}": ACT_OR_SOURCE,
    f"PATCH {A}/incidents/{{pk:int}}/acks/{{ack_pk:int}}": ACT_OR_SOURCE,
    f"GET {A}/incidents/{{pk:int}}/tags": EVERYONE,
    f"POST {A}/incidents/{{pk:int}}/tags": ACT_OR_SOURCE,
    f"GET {A}/incidents/{{pk:int}}/tags/{{tag:str}}": EVERYONE,
    f"DELETE {A}/incidents/{{pk:int}}/tags/{{tag:str}}": ACT_OR_SOURCE,
    f"POST {A}/incidents/acks/bulk": ACT_OR_SOURCE,
    f"POST {A}/incidents/events/bulk": ACT_OR_SOURCE,
    # Argus notification profiles and their parts: read by people; filters written by admins,
    # profiles, timeslots and destinations by responders too (their own: checked in the handler)
    **{f"GET {NP}{p}": READ for p in ("", "/timeslots", "/filters", "/media", "/destinations")},
    **{f"POST {NP}{p}": ACT for p in ("", "/timeslots", "/destinations")},
    f"POST {NP}/filters": ADMIN,
    **{f"GET {NP}{p}/{{pk:int}}": READ for p in ("", "/timeslots", "/filters", "/destinations")},
    **{
        f"{m} {NP}{p}/{{pk:int}}": ACT
        for p in ("", "/timeslots", "/destinations")
        for m in ("PUT", "DELETE")
    },
    **{f"{m} {NP}/filters/{{pk:int}}": ADMIN for m in ("PUT", "DELETE")},
    f"POST {NP}/timeslots/{{pk:int}}/rules": ADMIN,
    f"DELETE {NP}/timeslots/{{pk:int}}/rules/{{rule_id:str}}": ADMIN,
    f"POST {NP}/filterpreview": READ,
    f"GET {NP}/media/{{slug:str}}": READ,
    f"GET {NP}/media/{{slug:str}}/json_schema": READ,
    f"GET {NP}/destinations/{{pk:int}}/duplicate": READ,
    f"GET {NP}/{{pk:int}}/incidents": READ,
    # Argus planned maintenance
    f"GET {A}/plannedmaintenance": READ,
    f"POST {A}/plannedmaintenance": ACT,
    f"GET {A}/plannedmaintenance/{{pk:int}}": READ,
    f"PATCH {A}/plannedmaintenance/{{pk:int}}": ACT,
    f"DELETE {A}/plannedmaintenance/{{pk:int}}": ACT,
    f"GET {A}/auth/user": EVERYONE,
    f"GET {A}/auth/users/{{pk:int}}": EVERYONE,
    # each person's own phone numbers (another user's pk is a 404)
    f"GET {A}/auth/phone-number": READ,
    f"POST {A}/auth/phone-number": READ,
    **{f"{m} {A}/auth/phone-number/{{pk:int}}": READ for m in ("GET", "PUT", "PATCH", "DELETE")},
    # Argus token logins: credentials in the body (or a token the handler checks) ...
    f"POST {A}/token-auth": PUBLIC,
    f"POST {A}/auth/token/login": PUBLIC,
    # ... and each person's own tokens.
    **{f"POST {A}/{p}": READ for p in SELF_TOKENS},
    # users, tokens, audit
    # on call (docs/oncall.md): reads for viewers, overrides for responders, the rest admin;
    # the calendar link carries its own secret (a token is checked inside the handler)
    "GET /schedules": READ,
    "POST /schedules": ADMIN,
    "GET /schedules/{sid:str}": SIGNATURE,
    "PUT /schedules/{sid:str}": ADMIN,
    "DELETE /schedules/{sid:str}": ADMIN,
    "POST /schedules/{sid:str}/overrides": ACT,
    "DELETE /schedules/{sid:str}/overrides/{oid:str}": ACT,
    "POST /schedules/{sid:str}/import-ical": ADMIN,
    "POST /schedules/{sid:str}/sync": ADMIN,
    "GET /schedules/{sid:str}/oncall": READ,
    "GET /schedules/{sid:str}/timeline": READ,
    "GET /oncall": READ,
    "GET /escalation-policies": READ,
    "POST /escalation-policies": ADMIN,
    "GET /escalation-policies/{pid:str}": READ,
    "PUT /escalation-policies/{pid:str}": ADMIN,
    "DELETE /escalation-policies/{pid:str}": ADMIN,
    "GET /escalation-policies/{pid:str}/simulate": READ,
    "GET /escalations": READ,
    # acknowledging from the page (docs/acknowledge.md): signed links and signed webhooks
    "GET /integrations/ack/{token:str}": SIGNATURE,
    "POST /integrations/ack/{token:str}": SIGNATURE,
    "GET /a/{token:str}": SIGNATURE,
    "POST /a/{token:str}": SIGNATURE,
    "POST /integrations/slack/actions": SIGNATURE,
    "POST /integrations/pagerduty/webhook": SIGNATURE,
    "POST /integrations/sms/inbound": SIGNATURE,
    "GET /users": ADMIN,
    "POST /users": ADMIN,
    "GET /users/{uid:str}": OTHERS,
    "PATCH /users/{uid:str}": ADMIN,
    "DELETE /users/{uid:str}": ADMIN,
    "GET /me": EVERYONE,
    "GET /users/{uid:str}/tokens": OTHERS,
    "POST /users/{uid:str}/tokens": OTHERS,
    "DELETE /users/{uid:str}/tokens/{tid:str}": OTHERS,
    "GET /auth/bootstrap": ADMIN,
    "PUT /auth/bootstrap": ADMIN,
    "GET /audit": ADMIN,
    # the API's own description
    **{
        f"GET /schema{p}": READ
        for p in (
            "",
            "/openapi.json",
            "/openapi.yaml",
            "/openapi.yml",
            "/redoc",
            "/swagger",
            "/elements",
            "/rapidoc",
            "/oauth2-redirect.html",
            "/{path:str}",
        )
    },
}


def _ui_route(key: str) -> bool:
    return key.split(" ", 1)[1].startswith("/ui")


def _fill(path: str) -> str:
    """Path parameters that name nothing (another user's id for user routes)."""
    path = re.sub(r"\{[a-z_]+:int\}", "999999", path)
    path = re.sub(r"\{uid:str\}", "someone-else", path)
    path = re.sub(r"\{[a-z_]+:path\}", "nothing.css", path)
    return re.sub(r"\{[a-z_]+:str\}", "nothing", path)


@pytest.fixture(scope="module")
def routes() -> list[tuple[str, Any]]:
    from unittest.mock import MagicMock

    s = msgspec.structs.replace(Settings.from_env({}), api_token=TOKEN)
    app = create_app(ApiContext(settings=s, redis=MagicMock(), sender=MagicMock()))
    found = []
    for path, handler in http_handlers(app):
        for method in sorted(handler.http_methods):
            if method != "OPTIONS":
                found.append((f"{method} {path}", handler))
    return found


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient[Any], dict[str, dict[str, str]]]]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    headers = {"bootstrap": {"Authorization": f"Bearer {TOKEN}"}}
    people = PeopleStore(ctx.redis, ctx.keys)
    for role in ("admin", "responder", "viewer"):
        people.create_user(User(id=f"u-{role}", username=f"{role}-person", role=role))
        _, secret = people.issue(f"u-{role}", "table", None, 0.0)
        headers[role] = {"Authorization": f"Token {secret}"}
    _, source_token = ArgusStore(ctx.redis, ctx.keys).create_source("table", "nav", "")
    headers["source"] = {"Authorization": f"Token {source_token}"}
    with api_client(ctx) as client:
        yield client, headers
    ctx.sender.close()


def test_every_route_has_an_entry_and_the_entry_matches_its_declaration(
    routes: list[tuple[str, Any]],
) -> None:
    missing = [k for k, _ in routes if k not in TABLE and not _ui_route(k)]
    assert not missing, (
        "routes without an entry in ROLE TABLE (tests/integration/test_role_table.py); "
        "declare the route's role (docs/users.md) and add it: " + ", ".join(missing)
    )
    stale = set(TABLE) - {k for k, _ in routes}
    assert not stale, f"table entries for routes that no longer exist: {sorted(stale)}"
    for key, handler in routes:
        need = handler_need(handler)
        if _ui_route(key):
            assert need.auth == SESSION, f"{key}: dashboard routes authenticate by session"
            continue
        assert need.declared, f"{key} declares no role (it falls back to admin)"
        expected = TABLE[key]
        if isinstance(expected, str):
            assert need.auth == expected, f"{key}: declared {need.auth or need.roles}"


def test_every_route_with_every_role(
    routes: list[tuple[str, Any]],
    world: tuple[TestClient[Any], dict[str, dict[str, str]]],
) -> None:
    client, headers = world
    wrong: list[str] = []
    # Logging out spends the token it is called with: it comes last.
    for key, _handler in sorted(routes, key=lambda r: r[0].endswith("/logout")):
        expected = TABLE.get(key)
        if expected is None or isinstance(expected, str):
            continue  # checked above; signature and public routes have their own tests
        method, path = key.split(" ", 1)
        url = _fill(path)
        body: dict[str, Any] = {}
        if method in ("POST", "PUT", "PATCH"):
            body = {"json": BODIES.get(key, {})}
        status = client.request(method, url, **body).status_code
        if status != 401:
            wrong.append(f"{key} without a token: {status}, expected 401")
        for role in ROLES:
            status = client.request(method, url, headers=headers[role], **body).status_code
            through = status not in (401, 403)
            if role in expected and not through:
                wrong.append(f"{key} as {role}: {status}, expected to get through")
            if role not in expected and status != 403:
                wrong.append(f"{key} as {role}: {status}, expected 403")
            listing = method == "GET" and "{" not in path and key not in NOT_2XX
            if through and listing and not 200 <= status < 300:
                wrong.append(f"{key} as {role}: {status}, expected 2xx")
    assert not wrong, "\n".join(wrong)


def test_a_viewer_reaches_no_write_route(routes: list[tuple[str, Any]]) -> None:
    """Straight from the declarations: no route a viewer passes changes anything."""
    reads_by_post = {"POST /config/validate", "POST /simulate", f"POST {NP}/filterpreview"}
    for key, handler in routes:
        need = handler_need(handler)
        method = key.split(" ", 1)[0]
        if need.auth is None and "viewer" in need.roles and method not in ("GET", "HEAD"):
            # Self-service token routes check the user in the handler (see OTHERS above).
            own = "/tokens" in key or "/phone-number" in key or key.endswith(SELF_TOKENS)
            assert key in reads_by_post or own, f"{key} admits viewers"


def test_the_openapi_document_states_each_routes_roles(
    world: tuple[TestClient[Any], dict[str, dict[str, str]]],
) -> None:
    client, headers = world
    doc = client.get("/schema/openapi.json", headers=headers["viewer"]).json()
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    paths = doc["paths"]
    assert paths["/contacts"]["post"]["security"] == [{"token": ["admin"]}]
    assert paths["/contacts"]["get"]["security"] == [{"token": ["admin", "responder", "viewer"]}]
    ack = paths["/checks/{entity}/{check}/acknowledgements"]["post"]
    assert ack["security"] == [{"token": ["admin", "responder"]}]
    assert paths["/health"]["get"]["security"] == [{}]
    assert (
        "Authentication: the route's own secret"
        in paths["/sources/alertmanager"]["post"]["description"]
    )
