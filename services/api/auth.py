"""Token authentication and roles: who is calling, and may they call this route.

Each route declares the roles it admits (services/api/access.py); the guard
identifies the caller from ``Authorization: Bearer|Token <t>``: the bootstrap
``TOCSIN_API_TOKEN`` (admin, unless an admin disabled it), a user's personal
token, or, where a router puts a ``token_check(connection, token) -> bool`` in
its ``opt``, an Argus source system's token.  Routes declared ``auth``
(public health and metrics, webhooks with their own secrets, the dashboard)
are left to themselves.  Secrets are compared in constant time or looked up
by hash.

Wrong tokens are counted per client address by :class:`FailedAuth`, which the
dashboard's login form shares.  The address is the TCP peer's: uvicorn only
rewrites it from ``X-Forwarded-For`` when the operator names the proxies
(``TOCSIN_TRUSTED_PROXIES``, see :func:`proxy_options`), so a client cannot
choose the address its failures are counted against.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import OrderedDict, deque
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers.base import BaseRouteHandler

from services.api.access import need_of
from services.api.people_store import PeopleStore
from shared.config import Settings
from shared.people import BOOTSTRAP, Principal, should_touch, token_refusal


def token_from_header(value: str | None) -> str | None:
    """The token of ``Authorization: Bearer <t>`` (or Argus-style ``Token <t>``)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        return None
    return token.strip()


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options: off unless ``TOCSIN_TRUSTED_PROXIES`` names the proxies.

    uvicorn's own default trusts ``X-Forwarded-For`` from 127.0.0.1, which lets
    any local client (or a proxy that passes the header through) pick the
    address its failed logins are counted against.  With proxies named, uvicorn
    takes the right-most address that is not one of them.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def client_key(host: str | None) -> str:
    """The address failures are counted against: IPv4 as is, IPv6 by its /64.

    One IPv6 host usually holds a whole /64, so counting single addresses
    would let it guess without limit.
    """
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


# Wrong tokens per client address before it is refused outright (429) for the window.
FAILED_AUTH_LIMIT = 30
FAILED_AUTH_WINDOW_S = 60.0
# Addresses remembered at once; the least recently failing one is forgotten first.
FAILED_AUTH_MAX_CLIENTS = 10_000


class FailedAuth:
    """Recent wrong-token attempts per client address: a bounded LRU of sliding windows.

    Slows token guessing to ``limit`` tries per ``window_s`` per address; a
    locked-out address gets 429 with ``Retry-After`` even with a right token
    (else a guesser would learn the token from the one 200), until its
    failures age out.  Only the address that failed is locked: failures are
    never counted against another client.

    Entries are kept in order of their last failure, so expired ones are
    dropped from the front and a full table evicts the stalest: every call is
    O(1) amortised and memory stays under ``max_clients * limit`` timestamps.
    Process memory only; the API worker counts in Redis instead (services/api/auth_limit.py).
    """

    def __init__(
        self,
        limit: int = FAILED_AUTH_LIMIT,
        window_s: float = FAILED_AUTH_WINDOW_S,
        max_clients: int = FAILED_AUTH_MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self.failures:
            oldest = next(iter(self.failures.values()))
            if oldest and oldest[-1] > now - self.window_s:
                return
            self.failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self.failures.get(client)
        if times is None:
            return deque(maxlen=self.limit)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def locked(self, client: str, now: float) -> bool:
        self._expire(now)
        return len(self._recent(client, now)) >= self.limit

    def retry_after(self, client: str, now: float) -> int:
        """Seconds until ``client`` may try again (0 when it is not locked)."""
        times = self._recent(client, now)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window_s - now) + 1)

    def record(self, client: str, now: float) -> None:
        self._expire(now)
        times = self._recent(client, now)
        times.append(now)
        self.failures[client] = times
        self.failures.move_to_end(client)
        while len(self.failures) > self.max_clients:
            self.failures.popitem(last=False)


def refuse_locked(failed: FailedAuth, client: str, now: float) -> None:
    """Raise 429 with ``Retry-After`` while ``client`` is locked out."""
    if failed.locked(client, now):
        raise TooManyRequestsException(
            "too many failed authentication attempts; try again later",
            headers={"Retry-After": str(failed.retry_after(client, now))},
        )


def connection_client(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """The limiter's key for this connection's peer (see :func:`client_key`)."""
    return client_key(connection.client.host if connection.client else None)


PRINCIPAL = "principal"


def _unauthorised(message: str) -> NotAuthorizedException:
    return NotAuthorizedException(message, headers={"WWW-Authenticate": "Bearer"})


def identify(
    connection: ASGIConnection,  # type: ignore[type-arg]
    handler: BaseRouteHandler,
    token: str,
    expected: bytes,
    now: float,
) -> Principal | str | None:
    """Who ``token`` belongs to; a string saying why a known token is refused; None if unknown.

    The bootstrap token is compared in constant time; personal tokens are
    looked up by their SHA-256 (a guess learns nothing from timing but
    whether the hash exists); a router's ``token_check`` (Argus source
    tokens) is asked last.
    """
    ctx = connection.app.state.ctx
    people = PeopleStore(ctx.redis, ctx.keys)
    if hmac.compare_digest(token.encode(), expected):
        if people.bootstrap_disabled():
            return "the bootstrap token is disabled; use a personal token (see docs/users.md)"
        return BOOTSTRAP
    tok = people.token_by_secret(token)
    if tok is not None:
        user = people.user(tok.user_id)
        refusal = token_refusal(tok, user, now)
        if refusal is not None or user is None:
            return refusal
        if should_touch(tok, now):
            people.touch(tok, now)
        return Principal(
            kind="user",
            role=user.role,
            name=user.username,
            user_id=user.id,
            token_id=tok.id,
            pk=user.pk,
        )
    check = handler.opt.get("token_check")
    if check is not None and check(connection, token):
        source = connection.state.get("argus_source")
        return Principal(kind="source", role="source", name=f"source:{getattr(source, 'pk', '')}")
    return None


def principal_of(connection: ASGIConnection) -> Principal | None:  # type: ignore[type-arg]
    """The caller the guard identified (None on public, signature and session routes)."""
    found: Principal | None = connection.state.get(PRINCIPAL)
    return found


def actor_name(connection: ASGIConnection) -> str:  # type: ignore[type-arg]
    """The name records and notifications give the caller ("dashboard" on its session routes)."""
    who = principal_of(connection)
    return who.name if who is not None else "dashboard"


def check_caller(
    connection: ASGIConnection,  # type: ignore[type-arg]
    handler: BaseRouteHandler,
    admin_token: str,
    failed: FailedAuth,
) -> None:
    """Identify the caller, then check the route's declared roles; raise 401/403 if refused."""
    need = need_of(handler.opt, frozenset(getattr(handler, "http_methods", ())))
    if need.auth is not None:
        return
    client = connection_client(connection)
    refuse_locked(failed, client, time.monotonic())
    token = token_from_header(connection.headers.get("authorization"))
    if token is None:
        raise _unauthorised("missing bearer token")
    who = identify(connection, handler, token, admin_token.encode(), time.time())
    if who is None:
        failed.record(client, time.monotonic())
        raise _unauthorised("invalid token")
    if isinstance(who, str):
        raise _unauthorised(who)
    connection.state[PRINCIPAL] = who
    if who.role not in need.roles:
        raise PermissionDeniedException(
            f"this route needs one of the roles {', '.join(need.roles)}; "
            f"{who.name} has role {who.role}"
        )


def app_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """The app's guard: :func:`check_caller` with the bootstrap token and the wrong-token
    table of the app's context, read per request like every other part of the context
    (the app holds no copy of it)."""
    ctx = connection.app.state.ctx
    check_caller(connection, handler, ctx.settings.api_token or "", ctx.failed_auth)
