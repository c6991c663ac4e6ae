"""Users, their personal tokens, ``/me`` and the break-glass switch (docs/users.md).

Admins manage users; every user manages their own tokens (an admin anyone's).
A token's secret is in the one answer that creates it and nowhere else: Redis
holds its SHA-256, lists and the audit log show its id and name only.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET, Meta, UnsetType

from services.api.argus.destinations import add_user_email, sync_user_email
from services.api.argus.timeslots import add_default_timeslot
from services.api.audit import note_change
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.passwords import hash_password
from services.api.people_store import NameTaken, PeopleStore
from services.api.ui.session import SessionStore
from shared.people import (
    Principal,
    TokenOut,
    User,
    bootstrap_problem,
    expiry_problem,
    token_out,
    username_problem,
)

# Epoch seconds up to the year 5138: finite, so NaN and infinity are refused.
Epoch = Annotated[float, Meta(ge=0, le=1e11)]
Password = Annotated[str, Meta(min_length=12, max_length=1024)]
PersonRole = Literal["admin", "responder", "viewer"]
Email = Annotated[str, Meta(max_length=255, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class UserIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: str
    role: PersonRole
    email: Email = ""
    contact_id: str = ""
    password: Password | None = None


class UserPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: str | UnsetType = UNSET
    role: PersonRole | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    contact_id: str | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET
    password: Password | UnsetType = UNSET


class UserOut(msgspec.Struct, kw_only=True):
    id: str
    pk: int
    username: str
    role: str
    email: str
    contact_id: str
    disabled: bool
    created_at: float
    has_password: bool
    # The single sign-on account (issuer and its ``sub``) this user is, "" until one signs in.
    sso_issuer: str = ""
    sso_subject: str = ""


class TokenIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    expires_at: Epoch | None = None


class MeOut(msgspec.Struct, kw_only=True):
    kind: str
    role: str
    name: str
    user: UserOut | None = None


class BootstrapIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    disabled: bool


class BootstrapOut(msgspec.Struct, kw_only=True):
    disabled: bool


def user_out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        pk=u.pk,
        username=u.username,
        role=u.role,
        email=u.email,
        contact_id=u.contact_id,
        disabled=u.disabled,
        created_at=u.created_at,
        has_password=bool(u.password_hash),
        sso_issuer=u.sso_issuer,
        sso_subject=u.sso_subject,
    )


def people(request: Request[Any, Any, Any]) -> PeopleStore:
    ctx = ctx_of(request)
    return PeopleStore(ctx.redis, ctx.keys)


def caller(request: Request[Any, Any, Any]) -> Principal:
    who = principal_of(request)
    if who is None:  # the guard always sets it on role routes
        raise ApiError(401, "not authenticated")
    return who


def _user_or_404(store: PeopleStore, uid: str) -> User:
    user = store.user(uid)
    if user is None:
        raise ApiError(404, f"user {uid} not found", "id")
    return user


def _self_or_admin(request: Request[Any, Any, Any], uid: str) -> User:
    """The user ``uid``, when the caller is that user or an admin (else 403, before any 404)."""
    who = caller(request)
    if who.role != "admin" and who.user_id != uid:
        raise ApiError(403, "only an admin may manage another user's tokens", "id")
    return _user_or_404(people(request), uid)


def _end_sessions(request: Request[Any, Any, Any], uid: str) -> None:
    """End the user's dashboard sessions now (the session guard would refuse them anyway)."""
    ctx = ctx_of(request)
    SessionStore(ctx.redis, ctx.keys).end_all(uid)


def _check_username(username: str) -> None:
    problem = username_problem(username)
    if problem:
        raise ApiError(400, problem, "username")


def _check_contact(request: Request[Any, Any, Any], contact_id: str) -> None:
    if contact_id and ctx_of(request).directory.get_contact(contact_id) is None:
        raise ApiError(400, f"contact {contact_id} not found", "contact_id")


@post("/users", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_user(request: Request[Any, Any, Any], data: JSONBody[UserIn]) -> UserOut:
    _check_username(data.username)
    _check_contact(request, data.contact_id)
    user = User(
        id=secrets.token_hex(6),
        username=data.username,
        role=data.role,
        email=data.email,
        contact_id=data.contact_id,
        created_at=time.time(),
        password_hash=hash_password(data.password) if data.password else "",
    )
    try:
        user = people(request).create_user(user)
    except NameTaken:
        raise ApiError(409, f"username {data.username!r} is taken", "username") from None
    # What Argus gives every new user: an "All the time" timeslot and an email destination.
    add_default_timeslot(request, user.id)
    if user.email:
        add_user_email(request, user.id, user.email)
    note_change(request, target=f"user:{user.id}", before=None, after=user_out(user))
    return user_out(user)


@get("/users", sync_to_thread=True)
def list_users(request: Request[Any, Any, Any]) -> list[UserOut]:
    return [user_out(u) for u in people(request).users()]


@get("/users/{uid:str}", sync_to_thread=True, opt={"role": "viewer"})
def get_user(request: Request[Any, Any, Any], uid: FromPath[str]) -> UserOut:
    """A user; people other than admins may read only themselves."""
    who = caller(request)
    if who.role != "admin" and who.user_id != uid:
        raise ApiError(403, "only an admin may read other users", "id")
    return user_out(_user_or_404(people(request), uid))


@patch("/users/{uid:str}", sync_to_thread=True)
def patch_user(
    request: Request[Any, Any, Any], uid: FromPath[str], data: JSONBody[UserPatch]
) -> UserOut:
    """Change a user; disabling one refuses their tokens at once."""
    store = people(request)
    before = _user_or_404(store, uid)
    changes: dict[str, Any] = {
        f: getattr(data, f)
        for f in ("username", "role", "email", "contact_id", "disabled")
        if getattr(data, f) is not UNSET
    }
    if "username" in changes:
        _check_username(changes["username"])
    if "contact_id" in changes:
        _check_contact(request, changes["contact_id"])
    if not isinstance(data.password, UnsetType):
        changes["password_hash"] = hash_password(data.password)
    after = msgspec.structs.replace(before, **changes)
    try:
        store.save_user(before, after)
    except NameTaken:
        raise ApiError(409, f"username {after.username!r} is taken", "username") from None
    if after.disabled and not before.disabled:
        _end_sessions(request, uid)
    if after.email != before.email:
        sync_user_email(request, uid, after.email)
    note_change(request, target=f"user:{uid}", before=user_out(before), after=user_out(after))
    return user_out(after)


@delete("/users/{uid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_user(request: Request[Any, Any, Any], uid: FromPath[str]) -> None:
    store = people(request)
    user = _user_or_404(store, uid)
    if caller(request).user_id == uid:
        raise ApiError(409, "an admin cannot delete their own user", "id")
    store.delete_user(user, time.time())
    _end_sessions(request, uid)
    note_change(request, target=f"user:{uid}", before=user_out(user), after=None)


@get("/me", sync_to_thread=True, opt={"role": "viewer", "sources": True})
def me(request: Request[Any, Any, Any]) -> MeOut:
    """Who the token belongs to: a user, the break-glass token, or a source system."""
    who = caller(request)
    user = people(request).user(who.user_id) if who.user_id else None
    return MeOut(kind=who.kind, role=who.role, name=who.name, user=user_out(user) if user else None)


@post(
    "/users/{uid:str}/tokens",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "viewer"},
)
def create_token(
    request: Request[Any, Any, Any], uid: FromPath[str], data: JSONBody[TokenIn]
) -> TokenOut:
    """A new personal token; its secret is in this answer only."""
    user = _self_or_admin(request, uid)
    now = time.time()
    problem = expiry_problem(data.expires_at, now)
    if problem:
        raise ApiError(400, problem, "expires_at")
    tok, secret = people(request).issue(user.id, data.name, data.expires_at, now)
    note_change(request, target=f"token:{tok.id}", before=None, after=token_out(tok))
    return token_out(tok, secret)


@get("/users/{uid:str}/tokens", sync_to_thread=True, opt={"role": "viewer"})
def list_tokens(request: Request[Any, Any, Any], uid: FromPath[str]) -> list[TokenOut]:
    user = _self_or_admin(request, uid)
    return [token_out(t) for t in people(request).tokens_of(user.id)]


@delete(
    "/users/{uid:str}/tokens/{tid:str}",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "viewer"},
)
def revoke_token(request: Request[Any, Any, Any], uid: FromPath[str], tid: FromPath[str]) -> None:
    """Revoke at once; the record stays so a later use is told it was revoked."""
    user = _self_or_admin(request, uid)
    store = people(request)
    tok = store.token(tid)
    if tok is None or tok.user_id != user.id:
        raise ApiError(404, f"token {tid} not found", "tid")
    if tok.revoked_at is None:
        done = store.revoke(tok, time.time())
        note_change(request, target=f"token:{tid}", before=token_out(tok), after=token_out(done))


@get("/auth/bootstrap", sync_to_thread=True)
def get_bootstrap(request: Request[Any, Any, Any]) -> BootstrapOut:
    return BootstrapOut(disabled=people(request).bootstrap_disabled())


@put("/auth/bootstrap", sync_to_thread=True)
def put_bootstrap(request: Request[Any, Any, Any], data: JSONBody[BootstrapIn]) -> BootstrapOut:
    """Disable or re-enable the break-glass ``TOCSIN_API_TOKEN``.

    Disabling is refused unless an enabled admin user holds a usable token,
    so nobody is locked out of the API.
    """
    store = people(request)
    before = store.bootstrap_disabled()
    if data.disabled:
        admins = [u for u in store.users() if u.role == "admin"]
        problem = bootstrap_problem(admins, [store.tokens_of(u.id) for u in admins], time.time())
        if problem:
            raise ApiError(409, problem, "disabled")
    store.set_bootstrap_disabled(data.disabled)
    if data.disabled:
        _end_sessions(request, "bootstrap")  # dashboard sessions opened with the token
    note_change(
        request,
        target="bootstrap-token",
        before=BootstrapOut(disabled=before),
        after=BootstrapOut(disabled=data.disabled),
    )
    return BootstrapOut(disabled=data.disabled)


people_router = Router(
    path="/",
    route_handlers=[
        create_user,
        list_users,
        get_user,
        patch_user,
        delete_user,
        me,
        create_token,
        list_tokens,
        revoke_token,
        get_bootstrap,
        put_bootstrap,
    ],
    tags=["users"],
    opt={"writes": "admin", "reads": "admin"},  # services/api/access.py
)
