"""The management API application (Litestar): config, event intake, health, metrics.

Built by :func:`create_app` from an :class:`ApiContext`, so tests can run it
in-process against a test namespace.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.status_codes import HTTP_202_ACCEPTED
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.api.argus.router import argus_router
from services.api.auth import make_guard
from services.api.check_routes import check_router
from services.api.config_check import validate_config
from services.api.config_routes import config_router
from services.api.context import ApiContext, ctx_of
from services.api.errors import EXCEPTION_HANDLERS, ApiError, split_field
from services.api.explain_routes import explain_router
from services.api.medium_test import test_medium
from services.api.request_metrics import request_metrics
from services.api.schemas import Accepted, Health
from services.api.source_routes import sources_router
from services.api.ui import ui_router
from shared.consumer import AMQP_ERRORS
from shared.formats.flapjack import decode_body

MAX_BODY_BYTES = 1024 * 1024


@get("/health", opt={"public": True}, tags=["operations"], sync_to_thread=True)
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
    opt={"public": True},
    media_type=CONTENT_TYPE_LATEST,
    tags=["operations"],
    sync_to_thread=True,
)
def metrics(request: Request[Any, Any, Any]) -> bytes:
    return generate_latest(ctx_of(request).registry)


@post("/events", status_code=HTTP_202_ACCEPTED, tags=["intake"])
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
    return Litestar(
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
            argus_router,
            ui_router,
        ],
        state=State({"ctx": ctx}),
        guards=[make_guard(ctx.settings.api_token, ctx.failed_auth)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[request_metrics],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Tocsin management API", version="0.1.0", path="/schema"
        ),
        debug=False,
        logging_config=None,
    )
