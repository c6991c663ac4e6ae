"""Checks, their history, maintenances and acknowledgements; delivery and notification logs.

Reads go through ``shared.check_store.CheckStore``; an acknowledgement is published
as an ``acknowledgement`` action event, so it takes the same path (and the same
rules) as one sent by a monitoring system.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.audit import note_change
from services.api.auth import actor_name
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.paging import page_of
from services.api.schemas import Accepted, Page
from shared.check_store import CheckStore
from shared.checks import CheckDetail, CheckStateEntry, MaintenanceEntry, Silence
from shared.consumer import AMQP_ERRORS
from shared.delivery_log import DeliveryLogEntry, read_delivery_log
from shared.models import DEFAULT_ACK_DURATION, SERVICE_STATES, Notification
from shared.records import from_hash

EpochSeconds = Annotated[float, Meta(ge=0, le=1e11)]
ALL = 1_000_000


class CheckPatch(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool


class MaintenanceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A window: ``scheduled`` (the default) or ``unscheduled`` (any check, from now by default)."""

    end_time: EpochSeconds
    start_time: EpochSeconds | None = None  # default: now
    summary: Annotated[str, Meta(max_length=1024)] = ""
    type: Literal["scheduled", "unscheduled"] = "scheduled"


class AcknowledgementIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    summary: Annotated[str, Meta(max_length=1024)] = ""
    duration: Annotated[int, Meta(ge=1, le=366 * 86400)] = DEFAULT_ACK_DURATION


def _store(request: Request[Any, Any, Any]) -> CheckStore:
    ctx = ctx_of(request)
    return CheckStore(ctx.redis, ctx.keys)


def _known(request: Request[Any, Any, Any], entity: str, check: str) -> CheckDetail:
    detail = _store(request).get(entity, check)
    if detail is None:
        raise ApiError(404, f"check {entity}:{check} not found (no event seen yet)", "check")
    return detail


@get("/checks", sync_to_thread=True)
def list_checks(
    request: Request[Any, Any, Any],
    state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
    entity: FromQuery[str | None] = None,
    tag: FromQuery[str | None] = None,
    failing: FromQuery[bool | None] = None,
    enabled: FromQuery[bool | None] = None,
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
) -> Page[CheckDetail]:
    if state_filter is not None and state_filter not in SERVICE_STATES:
        raise ApiError(400, f"state must be one of {', '.join(SERVICE_STATES)}", "state")
    checks = _store(request).list(
        state=state_filter, entity=entity, tag=tag, failing=failing, enabled=enabled, limit=ALL
    )
    return page_of(checks, limit, offset)


@get("/checks/{entity:str}/{check:str}", sync_to_thread=True)
def get_check(
    request: Request[Any, Any, Any], entity: FromPath[str], check: FromPath[str]
) -> CheckDetail:
    return _known(request, entity, check)


@patch("/checks/{entity:str}/{check:str}", sync_to_thread=True)
def patch_check(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    data: JSONBody[CheckPatch],
) -> CheckDetail:
    before = _store(request).get(entity, check)
    if not _store(request).set_enabled(entity, check, data.enabled):
        raise ApiError(404, f"check {entity}:{check} not found (no event seen yet)", "check")
    after = _known(request, entity, check)
    note_change(
        request,
        target=f"check:{entity}:{check}",
        before={"enabled": before.enabled} if before else None,
        after={"enabled": after.enabled},
    )
    return after


@get("/checks/{entity:str}/{check:str}/states", sync_to_thread=True)
def check_states(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    limit: FromQuery[int] = 100,
) -> Page[CheckStateEntry]:
    _known(request, entity, check)
    return page_of(_store(request).history(entity, check, limit=min(max(limit, 1), 1000)), limit, 0)


@post(
    "/checks/{entity:str}/{check:str}/maintenances",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def add_maintenance(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    data: JSONBody[MaintenanceIn],
) -> MaintenanceEntry:
    """Schedule a window, or put the check (failing or not) in unscheduled maintenance."""
    now = time.time()
    # "From now" starts at the whole second: event times are often whole seconds, and
    # an event of this very second must already be inside the window.
    start = float(int(now)) if data.start_time is None else data.start_time
    if data.end_time <= start:
        raise ApiError(422, "end_time must be after start_time", "end_time")
    if data.type == "unscheduled" and data.end_time <= now:
        raise ApiError(422, "end_time of unscheduled maintenance must be in the future", "end_time")
    _known(request, entity, check)  # a typo must not schedule a window nobody will ever use
    store = _store(request)
    add = (
        store.add_scheduled_maintenance
        if data.type == "scheduled"
        else store.add_unscheduled_maintenance
    )
    mid = add(entity, check, start, data.end_time, data.summary)
    entry = next(m for m in store.maintenances(entity, check, now, past=True) if m.id == mid)
    note_change(request, target=f"check:{entity}:{check}:maintenance:{mid}", after=entry)
    return entry


@get("/maintenances", sync_to_thread=True)
def list_silences(
    request: Request[Any, Any, Any],
    upcoming: FromQuery[bool] = False,
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
) -> Page[Silence]:
    """What is silenced now across all checks: maintenance windows and acknowledgements
    (``upcoming=true``: scheduled later windows too), soonest end first."""
    return page_of(_store(request).list_silences(time.time(), upcoming=upcoming), limit, offset)


@get("/checks/{entity:str}/{check:str}/maintenances", sync_to_thread=True)
def list_maintenances(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    past: FromQuery[bool] = False,
) -> Page[MaintenanceEntry]:
    """Scheduled and unscheduled windows (acknowledgements too), ended ones with ``past=true``."""
    items = _store(request).maintenances(entity, check, time.time(), past=past)
    return Page(items=items, total=len(items), limit=len(items), offset=0)


@delete(
    "/checks/{entity:str}/{check:str}/maintenances/{mid:str}",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def delete_maintenance(
    request: Request[Any, Any, Any], entity: FromPath[str], check: FromPath[str], mid: FromPath[str]
) -> None:
    """End a window early (either kind): a running one ends now and stays listed as past."""
    store, now = _store(request), time.time()
    before = next(
        (m for m in store.maintenances(entity, check, now, past=True) if m.id == mid), None
    )
    if not store.end_maintenance(entity, check, mid, now):
        raise ApiError(404, f"maintenance {mid!r} not found on {entity}:{check}", "id")
    after = next(
        (m for m in store.maintenances(entity, check, now, past=True) if m.id == mid), None
    )
    note_change(
        request, target=f"check:{entity}:{check}:maintenance:{mid}", before=before, after=after
    )


@post(
    "/checks/{entity:str}/{check:str}/acknowledgements",
    status_code=HTTP_202_ACCEPTED,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def acknowledge(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    data: JSONBody[AcknowledgementIn],
) -> Accepted:
    """Acknowledge a failing check: unscheduled maintenance for ``duration`` seconds."""
    detail = _known(request, entity, check)
    if not detail.failing:
        raise ApiError(
            409,
            f"check {entity}:{check} is {detail.state}; only a failing check can be acknowledged",
            "check",
        )
    event = {
        "entity": entity,
        "check": check,
        "state": "acknowledgement",
        "summary": data.summary,
        "duration": data.duration,
        "time": time.time(),
        "acknowledged_by": actor_name(request),
    }
    try:
        ctx_of(request).sender.send([msgspec.json.encode(event)])
    except AMQP_ERRORS as exc:
        raise ApiError(503, f"broker unavailable: {exc!r}") from None
    return Accepted(accepted=1)


@get("/deliveries", sync_to_thread=True)
def deliveries(
    request: Request[Any, Any, Any],
    entity: FromQuery[str | None] = None,
    check: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
) -> Page[DeliveryLogEntry]:
    """The delivery log, newest first: medium, address (redacted), type, outcome, attempts, time."""
    ctx = ctx_of(request)
    items = read_delivery_log(
        ctx.redis, ctx.keys, entity=entity, check=check, limit=min(max(limit, 1), 1000)
    )
    return page_of(items, limit, 0)


@get("/notifications", sync_to_thread=True)
def notifications(
    request: Request[Any, Any, Any],
    entity: FromQuery[str | None] = None,
    check: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
) -> Page[Notification]:
    """Notifications the processor created, newest first (kept for the notification TTL)."""
    ctx = ctx_of(request)
    limit = min(max(limit, 1), 1000)
    ids = ctx.redis.lrange(ctx.keys.notification_log(), 0, -1 if entity or check else limit - 1)
    pipe = ctx.redis.pipeline(transaction=False)
    for nid in ids:
        pipe.hgetall(ctx.keys.notification(nid))
    out: list[Notification] = []
    for attrs in pipe.execute():
        if not attrs:
            continue
        n = from_hash(Notification, attrs)
        if (entity and n.entity != entity) or (check and n.check != check):
            continue
        out.append(n)
        if len(out) >= limit:
            break
    return Page(items=out, total=len(out), limit=limit, offset=0)


check_router = Router(
    path="/",
    route_handlers=[
        list_checks,
        get_check,
        patch_check,
        check_states,
        add_maintenance,
        list_silences,
        list_maintenances,
        delete_maintenance,
        acknowledge,
        deliveries,
        notifications,
    ],
    tags=["checks"],
    opt={"reads": "viewer", "writes": "admin"},  # services/api/access.py
)
