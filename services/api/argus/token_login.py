"""Argus's token logins, answered with Tocsin users and their personal tokens (docs/users.md).

- ``token-auth/`` (Argus's DRF token): ``{username, password}`` -> ``{token}``, a
  personal token named ``argus token-auth`` that lasts ``TOCSIN_ARGUS_TOKEN_DAYS``
  (Argus's AUTH_TOKEN_EXPIRES_AFTER_DAYS, 14); a user has one such token, so a new
  one revokes the old, as Argus replaces it.  ``auth/refresh-token/`` replaces it
  for the caller.
- ``auth/token/login/`` (knox, argus-api-client's ``refresh_token``): the same
  credentials, or an empty body with a valid ``Authorization: Token``, ->
  ``{expiry, token}``, a new token named ``argus login`` lasting
  ``TOCSIN_ARGUS_LOGIN_HOURS`` (knox's 10 h); ``logout/`` revokes the calling
  token, ``logoutall`` every ``argus login`` token of the caller.

Only people log in: the bootstrap token and source systems' tokens are not
users' tokens (their answers say so).  Wrong passwords count in the same
per-client limiter as wrong tokens, an unknown username is checked against a
dummy hash (no timing oracle), and logins are audit records without the secret.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, post
from litestar.params import RawBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from services.api.argus.core import format_time
from services.api.argus.plumbing import source_token_check
from services.api.audit import note_action, note_change
from services.api.auth import app_guard, connection_client, principal_of, refuse_locked
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.passwords import DUMMY_HASH, password_matches
from services.api.people_store import PeopleStore
from shared.people import ApiToken, Principal, User

TOKEN_AUTH_NAME = "argus token-auth"
LOGIN_NAME = "argus login"
BAD_CREDENTIALS = "Unable to log in with provided credentials."
# What the token check on an empty knox login asks for: any person's token (a source
# system's is known, so it gets 403 and is not counted as a guess).
_ANY_PERSON = SimpleNamespace(
    opt={"role": "viewer", "token_check": source_token_check}, http_methods=frozenset({"POST"})
)
# Credentials are short; a bigger body is no login.
MAX_BODY = 4096


class Credentials(msgspec.Struct, kw_only=True):
    username: str
    password: str


def _people(request: Request[Any, Any, Any]) -> PeopleStore:
    ctx = ctx_of(request)
    return PeopleStore(ctx.redis, ctx.keys)


def _credentials(request: Request[Any, Any, Any], body: bytes) -> Credentials | None:
    """The posted ``username`` and ``password`` (JSON or a form, as DRF takes); None if empty."""
    if not body.strip():
        return None
    if len(body) > MAX_BODY:
        raise ApiError(400, "the body is too large for a login", "body")
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = parse_qs(body.decode(errors="replace"))
        data: Any = {k: v[0] for k, v in form.items()}
    else:
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise ApiError(400, "the body is not JSON", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be an object", "body")
    if data == {}:
        return None
    for field in ("username", "password"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise ApiError(400, "This field is required.", field)
    return Credentials(username=data["username"], password=data["password"])


def _check_password(request: Request[Any, Any, Any], given: Credentials) -> User | None:
    """The enabled user these credentials name, or None (the failure is counted and audited)."""
    failed, client = ctx_of(request).failed_auth, connection_client(request)
    user = _people(request).user_by_name(given.username)
    # Hash even for an unknown user, so timing does not tell which usernames exist.
    matches = password_matches(user.password_hash if user else DUMMY_HASH, given.password)
    if matches and user is not None and not user.disabled:
        return user
    failed.record(client, time.monotonic())
    note_action(request.scope, "login_failed", actor=given.username[:64])
    return None


def _live(tokens: list[ApiToken], name: str, now: float) -> list[ApiToken]:
    return [
        t
        for t in tokens
        if t.name == name and t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
    ]


def _issue(
    request: Request[Any, Any, Any], user: User, name: str, lasts_s: float
) -> tuple[str, float]:
    """A new personal token of ``user``, recorded as the request's login: (secret, expiry)."""
    now = time.time()
    tok, secret = _people(request).issue(user.id, name, now + lasts_s, now)
    action = "argus_token_auth" if name == TOKEN_AUTH_NAME else "argus_login"
    note_action(request.scope, action, target=f"token:{tok.id}", actor=user.username)
    return secret, now + lasts_s


def _replace_token_auth(request: Request[Any, Any, Any], user: User) -> str:
    """Revoke the user's ``token-auth`` token, if any, and issue the new one."""
    people, now = _people(request), time.time()
    for old in _live(people.tokens_of(user.id), TOKEN_AUTH_NAME, now):
        people.revoke(old, now)
    days = ctx_of(request).settings.argus_token_days
    return _issue(request, user, TOKEN_AUTH_NAME, days * 86400)[0]


@post(
    "/token-auth/",
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    opt={"auth": "public"},  # the credentials are in the body
)
def token_auth(request: Request[Any, Any, Any], body: RawBody) -> dict[str, str]:
    """``{username, password}`` -> ``{token}`` (Argus's ``token-auth/``); replaces the user's
    previous one."""
    refuse_locked(ctx_of(request).failed_auth, connection_client(request), time.monotonic())
    given = _credentials(request, body)
    if given is None:
        raise ApiError(400, "This field is required.", "username")
    user = _check_password(request, given)
    if user is None:
        raise ApiError(400, BAD_CREDENTIALS, "non_field_errors")
    return {"token": _replace_token_auth(request, user)}


def _person(request: Request[Any, Any, Any]) -> tuple[Principal, User]:
    """The person calling (400 for the bootstrap token: it is no user's)."""
    who = principal_of(request)
    user = _people(request).user(who.user_id) if who is not None and who.user_id else None
    if who is None or user is None:
        raise ApiError(
            400, "the bootstrap token is no user's token; log in as a user instead", "token"
        )
    return who, user


@post("/auth/refresh-token/", status_code=HTTP_200_OK, sync_to_thread=True, opt={"role": "viewer"})
def refresh_token(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A new ``token-auth`` token for the caller, revoking the old (400 if they have none)."""
    _, user = _person(request)
    if not _live(_people(request).tokens_of(user.id), TOKEN_AUTH_NAME, time.time()):
        raise ApiError(
            400,
            f"No token for the user '{user.username}' exists; get one from token-auth/ first.",
            "non_field_errors",
        )
    return {"token": _replace_token_auth(request, user)}


@post(
    "/auth/token/login/",
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    opt={"auth": "public"},  # credentials in the body, or a token the handler checks
)
def knox_login(request: Request[Any, Any, Any], body: RawBody) -> dict[str, str]:
    """Credentials, or an empty body with a person's valid token -> ``{expiry, token}``."""
    ctx = ctx_of(request)
    refuse_locked(ctx.failed_auth, connection_client(request), time.monotonic())
    given = _credentials(request, body)
    if given is not None:
        found = _check_password(request, given)
        if found is None:
            raise ApiError(401, "Invalid username/password.", "username")
        user = found
    else:
        if not request.headers.get("authorization"):
            raise ApiError(401, "Authentication credentials were not provided.", "token")
        # The app's own token check: 401 and a counted failure for a wrong token.
        app_guard(request, _ANY_PERSON)
        user = _person(request)[1]
    secret, expiry = _issue(request, user, LOGIN_NAME, ctx.settings.argus_login_hours * 3600)
    return {"expiry": format_time(expiry), "token": secret}


def _token_shown(tok: ApiToken) -> dict[str, Any]:
    return {
        "id": tok.id,
        "name": tok.name,
        "user_id": tok.user_id,
        "expires_at": tok.expires_at,
        "revoked_at": tok.revoked_at,
    }


@post(
    "/auth/token/logout/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "viewer"},
)
def knox_logout(request: Request[Any, Any, Any]) -> None:
    """Revoke the token of this request."""
    who, _ = _person(request)
    people = _people(request)
    tok = people.token(who.token_id)
    if tok is not None:
        done = people.revoke(tok, time.time())
        note_change(
            request, target=f"token:{tok.id}", before=_token_shown(tok), after=_token_shown(done)
        )


@post(
    "/auth/token/logoutall",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "viewer"},
)
def knox_logout_all(request: Request[Any, Any, Any]) -> None:
    """Revoke every ``argus login`` token of the caller (their other tokens stay)."""
    _, user = _person(request)
    people, now = _people(request), time.time()
    gone = _live(people.tokens_of(user.id), LOGIN_NAME, now)
    for tok in gone:
        people.revoke(tok, now)
    note_change(request, target=f"user:{user.id}", before=[_token_shown(t) for t in gone])


token_login_handlers = [token_auth, refresh_token, knox_login, knox_logout, knox_logout_all]
