"""Bearer-token authentication: every route needs the admin token unless marked public.

Tokens are compared in constant time.  ``/health`` and ``/metrics`` are public
so load balancers and Prometheus can reach them without a secret.  A router may
also accept other tokens by putting a ``token_check(connection, token) -> bool``
callable in its ``opt`` (the Argus API's source-system tokens); the admin token
is always accepted first.
"""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler


def token_from_header(value: str | None) -> str | None:
    """The token of ``Authorization: Bearer <t>`` (or Argus-style ``Token <t>``)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        return None
    return token.strip()


def make_guard(admin_token: str):  # type: ignore[no-untyped-def]
    expected = admin_token.encode()

    def require_token(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        if handler.opt.get("public"):
            return
        token = token_from_header(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException(
                "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if hmac.compare_digest(token.encode(), expected):
            return
        check = handler.opt.get("token_check")
        if check is None or not check(connection, token):
            raise NotAuthorizedException("invalid token", headers={"WWW-Authenticate": "Bearer"})

    return require_token
