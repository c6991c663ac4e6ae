"""Argus's user endpoints: ``auth/user/`` (who am I) and ``auth/users/<pk>/``.

In Argus every caller is a user: people, and each source system (its user pk
is its own pk here).  The bootstrap admin token is user pk 0, ``admin``.
People's pks start at ``USER_PK_BASE`` so they never meet a source's.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromPath

from services.api.argus import plumbing
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.people_store import PeopleStore
from shared.people import User


class ArgusUser(msgspec.Struct, kw_only=True):
    pk: int
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    admin_url: str | None = None


ADMIN_USER = ArgusUser(pk=0, username="admin")


def _of_user(user: User) -> ArgusUser:
    return ArgusUser(pk=user.pk, username=user.username, email=user.email)


@get("/auth/user/", sync_to_thread=True, opt={"role": "viewer", "sources": True})
def current_user(request: Request[Any, Any, Any]) -> ArgusUser:
    """The calling user, in Argus's shape (argus-api-client's ``get_current_user``)."""
    src = plumbing.caller(request)
    if src is not None:
        return ArgusUser(pk=src.pk, username=src.name)
    who = principal_of(request)
    ctx = ctx_of(request)
    user = PeopleStore(ctx.redis, ctx.keys).user(who.user_id) if who and who.user_id else None
    return _of_user(user) if user else ADMIN_USER


@get("/auth/users/{pk:int}/", sync_to_thread=True, opt={"role": "viewer", "sources": True})
def user_by_pk(request: Request[Any, Any, Any], pk: FromPath[int]) -> ArgusUser:
    """A person, a source system's user, or the admin (pk 0)."""
    if pk == 0:
        return ADMIN_USER
    ctx = ctx_of(request)
    for user in PeopleStore(ctx.redis, ctx.keys).users():
        if user.pk == pk:
            return _of_user(user)
    src = plumbing.store_of(request).get_source(pk)
    if src is not None:
        return ArgusUser(pk=src.pk, username=src.name)
    raise ApiError(404, f"user {pk} not found", "pk")


user_handlers = [current_user, user_by_pk]
