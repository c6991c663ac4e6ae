"""Bearer-token authentication: every route needs the admin token unless marked public.

Tokens are compared in constant time.  ``/health`` and ``/metrics`` are public
so load balancers and Prometheus can reach them without a secret.  A router may
also accept other tokens by putting a ``token_check(connection, token) -> bool``
callable in its ``opt`` (the Argus API's source-system tokens); the admin token
is always accepted first.
"""

from __future__ import annotations

import hmac
import time
from collections import deque

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler


def token_from_header(value: str | None) -> str | None:
    """The token of ``Authorization: Bearer <t>`` (or Argus-style ``Token <t>``)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        return None
    return token.strip()


# Wrong tokens per client address before it is refused outright (429) for the window.
FAILED_AUTH_LIMIT = 30
FAILED_AUTH_WINDOW_S = 60.0


class FailedAuth:
    """Recent wrong-token attempts per client address (sliding window, process memory).

    Slows token guessing to ``limit`` tries per ``window_s`` per address; a
    locked-out client gets 429 with ``Retry-After`` even with a right token,
    until its failures age out of the window.
    """

    def __init__(
        self, limit: int = FAILED_AUTH_LIMIT, window_s: float = FAILED_AUTH_WINDOW_S
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self.failures.get(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def locked(self, client: str, now: float) -> bool:
        return len(self._recent(client, now)) >= self.limit

    def record(self, client: str, now: float) -> None:
        if len(self.failures) > 10_000:  # forget idle clients; memory stays bounded
            for key in [
                k for k, v in self.failures.items() if not v or v[-1] <= now - self.window_s
            ]:
                del self.failures[key]
        times = self._recent(client, now)
        times.append(now)
        self.failures[client] = times


def make_guard(admin_token: str, failed: FailedAuth | None = None):  # type: ignore[no-untyped-def]
    expected = admin_token.encode()
    failed = failed if failed is not None else FailedAuth()

    def require_token(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        if handler.opt.get("public"):
            return
        client = connection.client.host if connection.client else "unknown"
        if failed.locked(client, time.monotonic()):
            raise TooManyRequestsException(
                "too many failed authentication attempts; try again later",
                headers={"Retry-After": str(int(failed.window_s))},
            )
        token = token_from_header(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException(
                "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if hmac.compare_digest(token.encode(), expected):
            return
        check = handler.opt.get("token_check")
        if check is None or not check(connection, token):
            failed.record(client, time.monotonic())
            raise NotAuthorizedException("invalid token", headers={"WWW-Authenticate": "Bearer"})

    return require_token
