"""Schedules, overrides and "who is on call" (docs/oncall.md); calendar feeds are in ``feed_routes.py``.

Validation lives in ``shared/oncall.py`` / ``shared/escalation.py`` and is
applied by ``shared/oncall_store.py``; a failure is a 422 naming the field.
``GET /schedules/{id}.ics?token=<secret>`` is readable without the admin
token (calendar apps cannot send one) but only with the schedule's own secret.
"""

from __future__ import annotations

import hmac
import secrets
import time
from types import SimpleNamespace
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.audit import note_change
from services.api.auth import app_guard
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.ical import render_calendar
from services.api.oncall_plumbing import (
    Name,
    cached_schedules,
    check_id_format,
    contacts_of,
    note_schedule_change,
    schedule_or_404,
    store_of,
    without_secret,
)
from shared.directory import new_id
from shared.oncall import Layer, Override, Schedule, Shift, on_call_source, timeline

MAX_WINDOW_S = 400 * 86400


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    timezone: str = "UTC"
    layers: Annotated[list[Layer], Meta(min_length=1, max_length=20)]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    contact_id: Name
    start: float
    end: float


class OnCall(msgspec.Struct, kw_only=True):
    schedule_id: str
    schedule: str
    at: float
    contact_id: str | None
    contact: str | None
    source: str  # override:<id>, layer:<n> or none
    until: float | None  # when this changes (within 400 days)


def on_call_at(s: Schedule, at: float, names: dict[str, Any]) -> OnCall:
    who, source = on_call_source(s, at)
    shifts = timeline(s, at, at + MAX_WINDOW_S)
    until = shifts[0].end if shifts and shifts[0].end < at + MAX_WINDOW_S else None
    contact = names.get(who) if who else None
    return OnCall(
        schedule_id=s.id,
        schedule=s.name,
        at=at,
        contact_id=who,
        contact=getattr(contact, "name", None),
        source=source,
        until=until,
    )


# ----------------------------------------------------------------------------- schedules


@post("/schedules", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_schedule(request: Request[Any, Any, Any], data: JSONBody[ScheduleIn]) -> Schedule:
    s = Schedule(
        id=new_id(),
        name=data.name,
        timezone=data.timezone,
        layers=tuple(data.layers),
        secret=secrets.token_urlsafe(24),
    )
    saved = store_of(request).put_schedule(s, contacts_of(request))
    note_schedule_change(request, s.id, None, saved)
    return saved


@get("/schedules", sync_to_thread=True)
def list_schedules(request: Request[Any, Any, Any]) -> list[Schedule]:
    return sorted(
        (without_secret(s) for s in store_of(request).schedules().values()), key=lambda s: s.name
    )


@get("/schedules/{sid:str}", opt={"auth": "signature"}, sync_to_thread=True)
def get_schedule(
    request: Request[Any, Any, Any], sid: FromPath[str], token: FromQuery[str | None] = None
) -> Response[Any]:
    """The schedule (any role from viewer up), or ``<id>.ics`` with the schedule's secret as
    ``?token=`` (or a token of any role from viewer up)."""
    ctx = ctx_of(request)
    if sid.endswith(".ics"):
        s = store_of(request).get_schedule(sid.removesuffix(".ics"))
        linked = (
            s is not None
            and bool(token)
            and hmac.compare_digest((token or "").encode(), s.secret.encode())
        )
        if not linked and request.headers.get("authorization"):
            # A viewer's (or better) token reads any calendar too (raises 401 when it is wrong).
            app_guard(request, _GUARDED)
        elif not linked:
            raise ApiError(404, "no such calendar (check the link's token)", "token")
        if s is None:
            raise ApiError(404, f"schedule {sid.removesuffix('.ics')!r} not found", "id")
        now = time.time()
        names = {c.id: c.name for c in ctx.directory.list_contacts()}
        body = render_calendar(s, timeline(s, now - 7 * 86400, now + 90 * 86400), names, now)
        return Response(body, media_type="text/calendar; charset=utf-8")
    app_guard(request, _GUARDED)
    return Response(schedule_or_404(request, sid))


# What the token guard checks when the path is not a calendar link: a read, from viewer up.
_GUARDED = SimpleNamespace(opt={"role": "viewer"}, http_methods=frozenset({"GET"}))


@put("/schedules/{sid:str}", sync_to_thread=True)
def replace_schedule(
    request: Request[Any, Any, Any], sid: FromPath[str], data: JSONBody[ScheduleIn]
) -> Schedule:
    """Replace name, zone and layers (overrides and the calendar secret stay), or create
    the schedule with this id (``tocsin import`` keeps ids, so rules still find it)."""
    check_id_format(sid)
    found = store_of(request).get_schedule(sid)
    old = found or Schedule(id=sid, name="", secret=secrets.token_urlsafe(24))
    s = msgspec.structs.replace(
        old, name=data.name, timezone=data.timezone, layers=tuple(data.layers)
    )
    saved = store_of(request).put_schedule(s, contacts_of(request))
    note_schedule_change(request, sid, found, saved)
    return saved


@delete("/schedules/{sid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_schedule(request: Request[Any, Any, Any], sid: FromPath[str]) -> None:
    before = store_of(request).get_schedule(sid)
    if not store_of(request).delete_schedule(sid):
        raise ApiError(404, f"schedule {sid!r} not found", "id")
    note_schedule_change(request, sid, before, None)


@post(
    "/schedules/{sid:str}/overrides",
    opt={"role": "responder"},
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
)
def create_override(
    request: Request[Any, Any, Any], sid: FromPath[str], data: JSONBody[OverrideIn]
) -> Override:
    if data.contact_id not in contacts_of(request):
        raise ApiError(422, f"contact {data.contact_id!r} does not exist", "contact_id")
    now = time.time()
    o = Override(
        id=new_id(), contact_id=data.contact_id, start=data.start, end=data.end, created=now
    )
    if store_of(request).add_override(sid, o, now) is None:
        raise ApiError(404, f"schedule {sid!r} not found", "id")
    note_change(request, target=f"schedule:{sid}:override:{o.id}", after=o)
    return o


@delete(
    "/schedules/{sid:str}/overrides/{oid:str}",
    opt={"role": "responder"},
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
)
def delete_override(
    request: Request[Any, Any, Any], sid: FromPath[str], oid: FromPath[str]
) -> None:
    sched = store_of(request).get_schedule(sid)
    before = next((o for o in sched.overrides if o.id == oid), None) if sched else None
    if not store_of(request).delete_override(sid, oid):
        raise ApiError(404, f"override {oid!r} of schedule {sid!r} not found", "id")
    note_change(request, target=f"schedule:{sid}:override:{oid}", before=before)


@get("/schedules/{sid:str}/oncall", sync_to_thread=True)
def schedule_oncall(
    request: Request[Any, Any, Any], sid: FromPath[str], at: FromQuery[float | None] = None
) -> OnCall:
    names = contacts_of(request)
    return on_call_at(schedule_or_404(request, sid), time.time() if at is None else at, names)


@get("/schedules/{sid:str}/timeline", sync_to_thread=True)
def schedule_timeline(
    request: Request[Any, Any, Any],
    sid: FromPath[str],
    start: FromQuery[float | None] = None,
    end: FromQuery[float | None] = None,
) -> list[Shift]:
    """Who is on call when, from ``start`` (default now) to ``end`` (default 14 days on)."""
    a = time.time() if start is None else start
    b = a + 14 * 86400 if end is None else end
    if not 0 < b - a <= MAX_WINDOW_S:
        raise ApiError(400, "end must be after start, at most 400 days", "end")
    return timeline(schedule_or_404(request, sid), a, b)


@get("/oncall", sync_to_thread=True)
def oncall_now(request: Request[Any, Any, Any], at: FromQuery[float | None] = None) -> list[OnCall]:
    """Who is on call in every schedule at ``at`` (default now)."""
    when = time.time() if at is None else at
    names = contacts_of(request)
    found = sorted(cached_schedules(request).values(), key=lambda s: s.name)
    return [on_call_at(s, when, names) for s in found]


oncall_router = Router(
    path="/",
    route_handlers=[
        create_schedule,
        list_schedules,
        get_schedule,
        replace_schedule,
        delete_schedule,
        create_override,
        delete_override,
        schedule_oncall,
        schedule_timeline,
        oncall_now,
    ],
    tags=["on call"],
    # Overrides (a responder swapping a shift) declare their own role.
    opt={"reads": "viewer", "writes": "admin"},
)
