"""Request plumbing shared by the Argus routes: who is calling, bodies, errors, publishing.

Authentication: the app's guard accepts the admin token itself and asks
:func:`source_token_check` (put in the Argus router's ``opt``) about any
other token; a valid source token leaves the source in the connection state,
so handlers know whether the admin or which source is calling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection

from services.api.argus.core import Invalid, state_of_level
from services.api.argus.store import ArgusStore, IncidentRecord, SourceRecord
from services.api.auth import principal_of
from services.api.context import ApiContext, ctx_of
from services.api.errors import ApiError, split_field
from shared.amqp import OutMessage
from shared.consumer import AMQP_ERRORS
from shared.models import MAX_FUTURE_SKEW_S

log = logging.getLogger(__name__)

T = TypeVar("T")
STATE_KEY = "argus_source"
# An acknowledgement without expiration lasts as long as Event.duration allows.
FOREVER_S = 10 * 365 * 86400


def source_token_check(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> bool:
    """The guard's hook: is ``token`` a source system's token?  Remember which source."""
    ctx: ApiContext = connection.app.state.ctx
    rec = ArgusStore(ctx.redis, ctx.keys).source_by_token(token)
    if rec is None:
        return False
    connection.state[STATE_KEY] = rec
    return True


def argus_actor(request: Request[Any, Any, Any]) -> str:
    """Who an Argus event or tag is by: ``source:<pk>``, ``user:<pk>:<name>`` or ``admin``."""
    src = caller(request)
    if src is not None:
        return f"source:{src.pk}"
    who = principal_of(request)
    if who is not None and who.user_id:
        return f"user:{who.pk}:{who.name}"
    return "admin"


def caller(request: Request[Any, Any, Any]) -> SourceRecord | None:
    """The calling source system, or None for the admin token."""
    rec: SourceRecord | None = request.state.get(STATE_KEY)
    return rec


def store_of(request: Request[Any, Any, Any]) -> ArgusStore:
    ctx = ctx_of(request)
    return ArgusStore(ctx.redis, ctx.keys)


def decode(body: bytes, cls: type[T]) -> T:
    """Decode a JSON body into ``cls``; 400 naming the field otherwise."""
    try:
        return msgspec.json.decode(body or b"{}", type=cls)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        message, field = split_field(str(exc))
        raise ApiError(400, message.strip(), field or "body") from None


def invalid(exc: Invalid) -> ApiError:
    return ApiError(400, str(exc), exc.field)


def on_argus_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, Any]]:
    """Our ``{"error", "field"}`` plus DRF's ``{"<field>": ["<message>"]}`` for Argus clients."""
    body: dict[str, Any] = {"error": str(exc.detail), "field": exc.field}
    if exc.status_code == 400:
        body.setdefault(exc.field or "non_field_errors", [str(exc.detail)])
    else:
        body.setdefault("detail", str(exc.detail))
    return Response(body, status_code=exc.status_code)


def may_change(request: Request[Any, Any, Any], inc: IncidentRecord) -> SourceRecord | None:
    """403 unless the admin or the incident's own source is calling; returns the source."""
    src = caller(request)
    if src is not None and inc.source != str(src.pk):
        raise ApiError(403, "this incident belongs to another source system", "pk")
    return src


def load(request: Request[Any, Any, Any], pk: int) -> tuple[ArgusStore, Any]:
    store = store_of(request)
    try:
        return store, store.get(pk)
    except KeyError:
        raise ApiError(404, f"incident {pk} not found", "pk") from None


# --------------------------------------------------------------------------- notification path


def _event_time(t: float) -> float:
    # Ingest refuses events far in the future; a clock-skewed source must not lose its alert.
    return min(t, time.time() + MAX_FUTURE_SKEW_S / 2)


def service_event(inc: IncidentRecord, state: str, t: float, summary: str) -> dict[str, Any]:
    """The Flapjack event of an Argus incident's check (docs/argus.md)."""
    return {
        "entity": inc.entity,
        "check": inc.check,
        "state": state,
        "summary": summary or inc.description,
        "details": inc.details_url or None,
        "time": _event_time(t),
        "tags": list(inc.tags),
        "initial_failure_delay": 0,
        "incident_id": str(inc.id),
    }


def failing_event(inc: IncidentRecord, t: float, summary: str = "") -> dict[str, Any]:
    return service_event(inc, state_of_level(inc.level), t, summary)


def ack_event(
    inc: IncidentRecord,
    ack_pk: int,
    t: float,
    expiration: float | None,
    summary: str,
    by: str = "",
) -> dict[str, Any]:
    duration = FOREVER_S if expiration is None else max(1, int(expiration - t))
    return {
        "entity": inc.entity,
        "check": inc.check,
        "state": "acknowledgement",
        "summary": summary or "acknowledged",
        "time": _event_time(t),
        "duration": min(duration, FOREVER_S),
        "acknowledgement_id": f"argus:{inc.id}:{ack_pk}",
        "incident_id": str(inc.id),
        "acknowledged_by": by or None,
    }


def events_messages(
    request: Request[Any, Any, Any], events: Sequence[dict[str, Any]]
) -> list[OutMessage]:
    """The messages that send ``events`` (Flapjack-shaped, source ``argus``) into the pipeline."""
    body = msgspec.json.encode(list(events))
    return ctx_of(request).sender.messages([body], "argus")


def publish(request: Request[Any, Any, Any], events: list[dict[str, Any]]) -> None:
    """Send events into the pipeline as source ``argus``; 503 if the broker is away."""
    if not events:
        return
    try:
        ctx_of(request).sender.send_messages(events_messages(request, events))
    except AMQP_ERRORS as exc:
        log.warning("argus event not published", extra={"error": repr(exc)})
        raise ApiError(503, f"broker unavailable: {exc!r}") from None
