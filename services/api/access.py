"""What each route requires, declared on the route and shown in the OpenAPI document.

A handler (or its router, for all its handlers) declares in its ``opt``:

- ``role``: the lowest role that may call it (``"viewer"``, ``"responder"``,
  ``"admin"``); ``sources=True`` also admits Argus source-system tokens
  (``role="source"`` admits only them: heartbeats); a router's
  ``sources="reads"`` admits them to its reads only;
- ``reads``, ``writes``: a router's roles for its GET (HEAD) handlers and
  for its other handlers that declare none;
- ``auth``: the route authenticates otherwise: ``"public"`` (no credential:
  health, metrics), ``"signature"`` (its own secret or signature: webhooks,
  signed links), ``"session"`` (the dashboard's login session).

A route that declares nothing needs ``admin``: a forgotten declaration fails
closed.  :func:`declare` writes each handler's requirement into its OpenAPI
``security`` entry (``{"token": [<roles allowed>]}``, roles as OpenAPI 3.1
allows for non-OAuth schemes) or, for ``auth`` routes, an empty one (no
token) and an ``Authentication:`` line in the description.  See docs/users.md.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Components, SecurityScheme

from shared.people import AUTH_KINDS, ROLES, Auth, Role, allowed_roles

SCHEME = "token"
SECURITY_COMPONENTS = Components(
    security_schemes={
        SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            description=(
                "A personal API token or the bootstrap TOCSIN_API_TOKEN, as "
                "`Authorization: Bearer <token>` or `Authorization: Token <token>`. "
                "The requirement lists the roles that may call the route."
            ),
        )
    }
)
READ_METHODS = frozenset({"GET", "HEAD"})
AUTH_NOTES: dict[str, str] = {
    "public": "none (public).",
    "signature": "the route's own secret or signature, not a personal token.",
    "session": "the dashboard's login session.",
}


class Need(msgspec.Struct, frozen=True):
    """A route's requirement: the roles it admits, or the other way it authenticates."""

    roles: tuple[Role, ...] = ()
    auth: Auth | None = None
    declared: bool = True


def need_of(opt: dict[str, Any], methods: frozenset[str]) -> Need:
    """The requirement a handler's merged ``opt`` declares (admin when it declares none)."""
    auth = opt.get("auth")
    if auth is not None:
        if auth not in AUTH_KINDS:
            raise ValueError(f"unknown auth kind {auth!r}; one of {', '.join(AUTH_KINDS)}")
        return Need(auth=auth)
    if opt.get("public"):
        # The older spelling of a route that checks its own secret (or none).
        return Need(auth="signature")
    reading = bool(methods) and methods <= READ_METHODS
    role = opt.get("role")
    if role is None and methods:
        role = opt.get("reads") if reading else opt.get("writes")
    if role is None:
        return Need(roles=("admin",), declared=False)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    sources = opt.get("sources")
    return Need(roles=allowed_roles(role, sources is True or (sources == "reads" and reading)))


def handler_need(handler: HTTPRouteHandler) -> Need:
    return need_of(handler.opt, frozenset(str(m) for m in handler.http_methods))


def http_handlers(app: Litestar) -> list[tuple[str, HTTPRouteHandler]]:
    """Every (path, HTTP handler) of the app, OPTIONS and the schema pages included."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler):
                found.append((route.path, handler))
    return found


def declare(app: Litestar) -> None:
    """Put every handler's requirement into its OpenAPI security entry (before the first /schema)."""
    for _, handler in http_handlers(app):
        need = handler_need(handler)
        if need.auth is not None:
            handler.security = [{}]
            doc = handler.description or handler.fn.__doc__ or ""
            handler.description = f"{doc.strip()}\n\nAuthentication: {AUTH_NOTES[need.auth]}"
        else:
            handler.security = [{SCHEME: list(need.roles)}]
