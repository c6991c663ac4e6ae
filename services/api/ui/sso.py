"""Dashboard single sign-on with OpenID Connect: authorization code flow with PKCE.

``/ui/login/oidc`` sends the browser to the provider with a fresh ``state``,
``nonce`` and PKCE verifier, kept server-side in Redis for ten minutes (used
once: the callback takes them with GETDEL).  ``/ui/login/oidc/callback``
exchanges the code (client secret, verifier) for an ID token, checks its
signature against the provider's JWKS and its issuer, audience, expiry and
nonce, maps the groups claim to a role (``TOCSIN_OIDC_ROLES``) and starts a
session for the user, creating them on their first login.  The provider is
authoritative for the role: it is set again at every login.  A user disabled
here stays locked out.  See docs/users.md.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Redirect

from services.api.argus.destinations import add_user_email, sync_user_email
from services.api.argus.timeslots import add_default_timeslot
from services.api.audit import note_action
from services.api.auth import connection_client
from services.api.context import ctx_of
from services.api.people_store import AccountTaken, NameTaken, PeopleStore
from services.api.ui import session
from services.api.ui.plumbing import SECURITY_HEADERS, render, sessions
from shared.config import Settings
from shared.people import Principal, Role, User, role_for_groups, sso_username

FLOW_S = 600
HTTP_TIMEOUT_S = 10.0
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
DISCOVERY_TTL_S = 3600.0


class SsoFailed(Exception):
    """The login cannot complete; the message is shown on the login page (no secrets in it)."""


def _discover(issuer: str, now: float) -> dict[str, Any]:
    """The provider's metadata (``.well-known/openid-configuration``), cached for an hour."""
    cached = _discovery.get(issuer)
    if cached and now - cached[0] < DISCOVERY_TTL_S:
        return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        meta = httpx.get(url, timeout=HTTP_TIMEOUT_S).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoFailed(f"the sign-in provider is unreachable ({type(exc).__name__})") from None
    _discovery[issuer] = (now, meta)
    return dict(meta)


def _callback_url(request: Request[Any, Any, Any], settings: Settings) -> str:
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/ui/login/oidc/callback"


def _flow_key(request: Request[Any, Any, Any], state: str) -> str:
    return f"{ctx_of(request).keys.p}ui:oidc:{state}"


@get("/login/oidc", opt={"anonymous": True}, sync_to_thread=True, include_in_schema=False)
def sso_start(request: Request[Any, Any, Any], next: FromQuery[str] = "/ui/") -> Response[Any]:
    """Send the browser to the provider's authorization endpoint."""
    settings = ctx_of(request).settings
    if not settings.oidc_issuer:
        return Redirect("/ui/login", status_code=303)
    try:
        meta = _discover(settings.oidc_issuer, time.time())
    except SsoFailed as exc:
        return _login_error(request, str(exc))
    state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
    flow = {"nonce": nonce, "verifier": verifier, "next": _safe_next(next)}
    ctx_of(request).redis.set(_flow_key(request, state), msgspec.json.encode(flow), ex=FLOW_S)
    params = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": _callback_url(request, settings),
        "scope": settings.oidc_scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return Redirect(f"{meta['authorization_endpoint']}?{urlencode(params)}", status_code=303)


def _safe_next(nxt: str) -> str:
    ok = (nxt == "/ui" or nxt.startswith("/ui/")) and "//" not in nxt and "\\" not in nxt
    return nxt if ok else "/ui/"


def _id_claims(
    request: Request[Any, Any, Any], code: str, flow: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """Exchange ``code`` and return the verified ID token's claims and issuer."""
    settings = ctx_of(request).settings
    meta = _discover(settings.oidc_issuer, time.time())
    try:
        answer = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": _callback_url(request, settings),
                "code_verifier": flow["verifier"],
            },
            auth=(settings.oidc_client_id, settings.oidc_client_secret or ""),
            timeout=HTTP_TIMEOUT_S,
        )
        answer.raise_for_status()
        id_token = answer.json()["id_token"]
        keys = KeySet.import_key_set(
            httpx.get(meta["jwks_uri"], timeout=HTTP_TIMEOUT_S).raise_for_status().json()
        )
        token = jwt.decode(id_token, keys)
        issuer = str(meta.get("issuer", settings.oidc_issuer))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": settings.oidc_client_id},
            nonce={"essential": True, "value": flow["nonce"]},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(token.claims)
    except (httpx.HTTPError, KeyError, ValueError, JoseError) as exc:
        raise SsoFailed(f"the sign-in could not be verified ({type(exc).__name__})") from None
    return dict(token.claims), issuer


def _user_for(request: Request[Any, Any, Any], claims: dict[str, Any], issuer: str) -> User:
    """The user of these claims, with the role their groups give.

    A user is the provider's account (``issuer`` + ``sub``, which never changes),
    not a name: a later login with the same ``sub`` finds the same user although
    ``preferred_username`` or ``email`` changed.  The first login of an account
    takes the user of its username (created now, with Argus's defaults, or one an
    admin made before) unless that user is another account of this provider.
    """
    settings = ctx_of(request).settings
    role = role_for_groups(
        claims.get(settings.oidc_groups_claim), settings.oidc_roles, settings.oidc_default_role
    )
    if role is None:
        raise SsoFailed("your account is in no group that may use this dashboard")
    subject = str(claims["sub"])
    ctx = ctx_of(request)
    people = PeopleStore(ctx.redis, ctx.keys)
    email = str(claims["email"]) if isinstance(claims.get("email"), str) else ""
    user = people.user_by_sso(issuer, subject) or _first_login(request, people, claims, role)
    if user.sso_issuer == issuer and user.sso_subject != subject:
        raise SsoFailed(f"the user {user.username!r} is another account of this sign-in provider")
    if user.disabled:
        raise SsoFailed("this user is disabled")
    try:
        if (user.sso_issuer, user.sso_subject) != (issuer, subject):
            user = people.link_sso(user, issuer, subject)
    except AccountTaken:
        raise SsoFailed("sign-in raced with a change of users; try again") from None
    changed = msgspec.structs.replace(user, role=role, email=email or user.email)
    if changed != user:
        people.save_user(user, changed)
    if changed.email != user.email:
        sync_user_email(request, user.id, changed.email)
    return changed


def _first_login(
    request: Request[Any, Any, Any], people: PeopleStore, claims: dict[str, Any], role: Role
) -> User:
    """The user an account not linked yet becomes: its username's, or a new one."""
    username = sso_username(claims)
    if username is None:
        raise SsoFailed("the provider sent no usable username (preferred_username or email)")
    found = people.user_by_name(username)
    if found is not None:
        return found
    email = str(claims["email"]) if isinstance(claims.get("email"), str) else ""
    new = User(
        id=secrets.token_hex(6), username=username, role=role, email=email, created_at=time.time()
    )
    try:
        user = people.create_user(new)
    except NameTaken:
        raced = people.user_by_name(username)
        if raced is None:
            raise SsoFailed("sign-in raced with a change of users; try again") from None
        return raced
    # What Argus gives every new user (as ``POST /users`` does).
    add_default_timeslot(request, user.id)
    if user.email:
        add_user_email(request, user.id, user.email)
    return user


@get("/login/oidc/callback", opt={"anonymous": True}, sync_to_thread=True, include_in_schema=False)
def sso_callback(request: Request[Any, Any, Any]) -> Response[Any]:
    """The provider's redirect back: verify, find or create the user, start a session."""
    ctx = ctx_of(request)
    # ("state" is a reserved parameter name in Litestar, so both are read from the query.)
    state = str(request.query_params.get("state") or "")
    code = str(request.query_params.get("code") or "")
    failed, client = ctx.failed_auth, connection_client(request)
    if failed.locked(client, time.monotonic()):
        return _login_error(request, "too many failed attempts; try again later", 429)
    raw = ctx.redis.getdel(_flow_key(request, state)) if state else None
    if raw is None or not code:
        failed.record(client, time.monotonic())
        return _login_error(request, "the sign-in expired or was not started here; try again")
    flow = msgspec.json.decode(raw)
    try:
        claims, issuer = _id_claims(request, code, flow)
        user = _user_for(request, claims, issuer)
    except SsoFailed as exc:
        failed.record(client, time.monotonic())
        note_action(request.scope, "login_failed", actor="sso")
        return _login_error(request, str(exc))
    who = Principal(kind="user", role=user.role, name=user.username, user_id=user.id)
    note_action(request.scope, "login", target=f"user:{user.id}", actor=user.username)
    response = Redirect(flow.get("next") or "/ui/", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        session.COOKIE,
        sessions(request).start(ctx.settings.api_token or "", time.time(), who, client),
        path="/ui",
        httponly=True,
        samesite="lax",  # the provider's redirect is a cross-site navigation
        secure=request.url.scheme == "https",
        max_age=session.SESSION_S,
    )
    return response


def _login_error(request: Request[Any, Any, Any], message: str, status: int = 401) -> Response[Any]:
    nonce = session.new_login_nonce()
    page = render(
        request, "login.html", status=status, login_csrf=nonce, next="/ui/", error=message
    )
    page.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=3600,
    )
    return page


sso_handlers = [sso_start, sso_callback]
