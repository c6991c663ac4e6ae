"""Dashboard plumbing: templates, the session guard, CSRF, and the reads pages share.

Pages are rendered with one Jinja2 environment (autoescaping on) and sent
with a strict Content-Security-Policy: scripts and styles come only from
``/ui/static/``, so an injected string in a check summary cannot run.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import msgspec
import pika
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect

from services.api.auth import PRINCIPAL
from services.api.context import ctx_of
from services.api.people_store import PeopleStore
from services.api.ui import session
from services.api.ui.views import fmt_duration, time_tag
from shared.amqp import Names, connect
from shared.checks import Maintenance
from shared.consumer import AMQP_ERRORS
from shared.people import Principal, allowed_roles
from shared.records import from_hash

log = logging.getLogger(__name__)

# A dashboard form (POST, URL-encoded), as every form handler takes it.
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

HERE = Path(__file__).parent
STATIC = HERE / "static"
NONCE_STATE = "ui_session_nonce"
SESSION_STATE = "ui_session"
PARTIAL_HEADER = "x-tocsin-partial"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Templates get times as <time> elements (browser zone via ui.js, UTC on hover).
ENV.globals.update(fmt_time=time_tag, fmt_duration=fmt_duration)
ENV.filters["q"] = lambda v: quote(str(v), safe="")
ENV.filters["qs"] = lambda d: urlencode({k: v for k, v in d.items() if v not in ("", None)})


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, partials answer 401."""


class RoleRequired(Exception):
    """The session's role may not use this page or form: 403."""

    def __init__(self, roles: tuple[str, ...], who: Principal) -> None:
        super().__init__(
            f"this needs one of the roles {', '.join(roles)}; {who.name} is a {who.role}"
        )


def admin_token(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    token: str = request.app.state.ctx.settings.api_token
    return token


def sessions(connection: ASGIConnection[Any, Any, Any, Any]) -> session.SessionStore:
    ctx = connection.app.state.ctx
    return session.SessionStore(ctx.redis, ctx.keys)


def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Router guard: every UI route but the login form and static files needs a session."""
    if handler.opt.get("anonymous"):
        return
    cookie = connection.cookies.get(session.COOKIE)
    found = sessions(connection).live(admin_token(connection), cookie, time.time())
    if found is None:
        raise LoginRequired()
    nonce, record = found
    who = record.principal()
    ctx = connection.app.state.ctx
    if not who.user_id and PeopleStore(ctx.redis, ctx.keys).bootstrap_disabled():
        sessions(connection).end(record.ref)  # the admin token's session, now disabled
        raise LoginRequired()
    if who.user_id:
        # The user as they are now: disabled or deleted ends the session, a new role applies.
        user = PeopleStore(ctx.redis, ctx.keys).user(who.user_id)
        if user is None or user.disabled:
            sessions(connection).end(record.ref)
            raise LoginRequired()
        who = msgspec.structs.replace(who, role=user.role, name=user.username, pk=user.pk)
    connection.state[NONCE_STATE] = nonce
    connection.state[SESSION_STATE] = record
    connection.state[PRINCIPAL] = who
    reading = set(getattr(handler, "http_methods", ())) <= {"GET", "HEAD"}
    roles = allowed_roles(handler.opt.get("role") or ("viewer" if reading else "admin"), False)
    if who.role not in roles:
        raise RoleRequired(roles, who)


def on_role_required(request: Request[Any, Any, Any], exc: RoleRequired) -> Response[Any]:
    return render(request, "forbidden.html", status=403, message=str(exc))


def on_login_required(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    if request.headers.get(PARTIAL_HEADER) or request.method != "GET":
        return Response("login required", status_code=401, media_type="text/plain")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/ui/login?{urlencode({'next': target})}", status_code=303)


def csrf_of(request: Request[Any, Any, Any]) -> str:
    return session.csrf_token(admin_token(request), request.state[NONCE_STATE])


def csrf_valid(request: Request[Any, Any, Any], data: dict[str, Any]) -> bool:
    """The form's ``csrf`` field matches the session's token."""
    return session.csrf_ok(admin_token(request), request.state[NONCE_STATE], data.get("csrf"))


def render(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Response[str]:
    """A page (or partial) with the CSRF token, the active nav item and security headers."""
    nonce = request.state.get(NONCE_STATE)
    context.setdefault("csrf", session.csrf_token(admin_token(request), nonce) if nonce else "")
    context.setdefault("logged_in", nonce is not None)
    context.setdefault("me", request.state.get(PRINCIPAL))
    context.setdefault("sso", bool(ctx_of(request).settings.oidc_issuer))
    context.setdefault("path", request.url.path)
    html = ENV.get_template(template).render(**context)
    return Response(html, status_code=status, media_type="text/html", headers=SECURITY_HEADERS)


def see_other(url: str) -> Response[Any]:
    """Post/redirect/get after a successful action."""
    return Redirect(url, status_code=303, headers=SECURITY_HEADERS)


def check_url(entity: str, check: str, **extra: str) -> str:
    return "/ui/check?" + urlencode({"entity": entity, "check": check, **extra})


# --------------------------------------------------------------------------- shared reads


def active_maintenances(
    request: Request[Any, Any, Any], now: float
) -> tuple[dict[str, Maintenance], dict[str, Maintenance]]:
    """Check id → acknowledgement and → scheduled maintenance in effect at ``now`` (2 round trips)."""
    ctx = ctx_of(request)
    k = ctx.keys
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.smembers(k.unscheduled_maintenance_ids())
    pipe.smembers(k.scheduled_maintenance_ids())
    unsched, sched = pipe.execute()
    pipe = ctx.redis.pipeline(transaction=False)
    for mid in unsched:
        pipe.hgetall(k.unscheduled_maintenance(mid))
    for mid in sched:
        pipe.hgetall(k.scheduled_maintenance(mid))
    raw = pipe.execute()
    acked: dict[str, Maintenance] = {}
    maintained: dict[str, Maintenance] = {}
    for i, attrs in enumerate(raw):
        if not attrs:
            continue
        m = from_hash(Maintenance, attrs)
        if m.covers(now):
            (acked if i < len(unsched) else maintained)[m.check_id] = m
    return acked, maintained


_DEAD_CACHE: dict[str, tuple[float, int | None]] = {}
_DEAD_LOCK = threading.Lock()
DEAD_CACHE_S = 10.0


def dead_letters(request: Request[Any, Any, Any], now: float) -> int | None:
    """Messages waiting in the dead-letter queue (passive declare, cached 10 s); None if unknown."""
    settings = ctx_of(request).settings
    with _DEAD_LOCK:
        cached = _DEAD_CACHE.get(settings.namespace)
        if cached is not None and now - cached[0] < DEAD_CACHE_S:
            return cached[1]
    depth: int | None = None
    try:
        conn = connect(settings.amqp_url, name="tocsin-ui")
        try:
            ok = conn.channel().queue_declare(Names(settings.namespace).dead, passive=True)
            depth = int(ok.method.message_count)
        finally:
            conn.close()
    except (*AMQP_ERRORS, pika.exceptions.ChannelClosedByBroker) as exc:
        log.warning("dead-letter depth unavailable", extra={"error": repr(exc)})
    with _DEAD_LOCK:
        _DEAD_CACHE[settings.namespace] = (now, depth)
    return depth
