"""The management API application (Litestar): config, event intake, health, metrics.

Built by :func:`create_app` from an :class:`ApiContext`, so tests can run it
in-process against a test namespace.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.status_codes import HTTP_202_ACCEPTED
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.api.access import SECURITY_COMPONENTS, declare
from services.api.argus.plumbing import source_token_check
from services.api.argus.router import argus_router
from services.api.audit import audit_middleware, list_audit
from services.api.auth import app_guard
from services.api.check_routes import check_router
from services.api.config_check import validate_config
from services.api.config_routes import config_router
from services.api.context import ApiContext, ctx_of
from services.api.errors import EXCEPTION_HANDLERS, ApiError, split_field
from services.api.escalation_routes import escalation_router
from services.api.explain_routes import explain_router
from services.api.feed_routes import feed_router
from services.api.integrations import integrations_router
from services.api.medium_test import test_medium
from services.api.oncall_routes import oncall_router
from services.api.people_routes import people_router
from services.api.request_metrics import request_metrics
from services.api.schemas import Accepted, Health
from services.api.source_routes import sources_router
from services.api.ui import ui_router
from shared.consumer import AMQP_ERRORS
from shared.formats.flapjack import decode_body

MAX_BODY_BYTES = 1024 * 1024


@get("/health", opt={"auth": "public"}, tags=["operations"], sync_to_thread=True)
def health(request: Request[Any, Any, Any]) -> Response[Health]:
    """Redis and RabbitMQ reachability; 503 when either is down."""
    ctx = ctx_of(request)
    try:
        redis_ok = bool(ctx.redis.ping())
    except Exception:
        redis_ok = False
    amqp_ok = ctx.sender.ping()
    ok = redis_ok and amqp_ok
    body = Health(
        status="ok" if ok else "unhealthy",
        redis="ok" if redis_ok else "unreachable",
        amqp="ok" if amqp_ok else "unreachable",
    )
    return Response(body, status_code=200 if ok else 503)


@get(
    "/metrics",
    opt={"auth": "public"},
    media_type=CONTENT_TYPE_LATEST,
    tags=["operations"],
    sync_to_thread=True,
)
def metrics(request: Request[Any, Any, Any]) -> bytes:
    return generate_latest(ctx_of(request).registry)


# Intake, not an operator action: no audit record per batch of events.
@post(
    "/events",
    status_code=HTTP_202_ACCEPTED,
    tags=["intake"],
    opt={"role": "admin", "audit": False},
)
async def post_events(request: Request[Any, Any, Any]) -> Accepted:
    """Accept one Flapjack event or a list; same validation as AMQP ingest.

    The whole request is refused (422, naming the field) if any event is bad, so
    a caller never has to guess which of its events were taken.
    """
    ctx = ctx_of(request)
    body = await request.body()
    decoded = decode_body(body, time.time())
    if decoded.rejected:
        message, field = split_field(decoded.rejected[0][1])
        raise ApiError(422, message, field)
    if not decoded.accepted:
        raise ApiError(422, "no events in body", "body")
    try:
        ctx.sender.send([body])
    except AMQP_ERRORS as exc:
        raise ApiError(503, f"broker unavailable: {exc!r}") from None
    ctx.events_accepted.inc(len(decoded.accepted))
    return Accepted(accepted=len(decoded.accepted))


def create_app(ctx: ApiContext) -> Litestar:
    """The ASGI app for one context (one namespace)."""
    if not ctx.settings.api_token:
        raise ValueError("the API needs TOCSIN_API_TOKEN (tocsin up generates one)")
    app = Litestar(
        route_handlers=[
            health,
            metrics,
            post_events,
            config_router,
            validate_config,
            test_medium,
            check_router,
            explain_router,
            sources_router,
            oncall_router,
            feed_router,
            escalation_router,
            argus_router,
            ui_router,
            integrations_router,
            people_router,
            list_audit,
        ],
        state=State({"ctx": ctx}),
        guards=[app_guard],
        # Source-system tokens are known everywhere, so a route they may not call says 403.
        opt={"token_check": source_token_check},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[request_metrics, audit_middleware],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Tocsin management API",
            version="0.1.0",
            components=SECURITY_COMPONENTS,
            # Anyone with a role may read the API's description.
            openapi_router=Router(path="/schema", route_handlers=[], opt={"reads": "viewer"}),
        ),
        debug=False,
        logging_config=None,
    )
    declare(app)
    return app
