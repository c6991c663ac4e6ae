"""Schedules, overrides, escalation policies and "who is on call" (docs/oncall.md).

Validation lives in ``shared/oncall.py`` / ``shared/escalation.py`` and is
applied by ``shared/oncall_store.py``; a failure is a 422 naming the field.
``GET /schedules/{id}.ics?token=<secret>`` is readable without the admin
token (calendar apps cannot send one) but only with the schedule's own secret.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from types import SimpleNamespace
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.auth import make_guard
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.ical import render_calendar
from services.scheduler.core import SimulatedStep, simulate
from shared.directory import new_id
from shared.escalation import Policy, Step
from shared.escalation_store import EscalationStore
from shared.keys import check_id
from shared.oncall import Layer, Override, Schedule, Shift, on_call_source, timeline
from shared.oncall_store import OncallStore

Name = Annotated[str, Meta(min_length=1, max_length=255)]
MAX_WINDOW_S = 400 * 86400
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    timezone: str = "UTC"
    layers: Annotated[list[Layer], Meta(min_length=1, max_length=20)]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    contact_id: Name
    start: float
    end: float


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    steps: Annotated[list[Step], Meta(min_length=1, max_length=20)]
    repeat: Annotated[int, Meta(ge=0, le=20)] = 0


class OnCall(msgspec.Struct, kw_only=True):
    schedule_id: str
    schedule: str
    at: float
    contact_id: str | None
    contact: str | None
    source: str  # override:<id>, layer:<n> or none
    until: float | None  # when this changes (within 400 days)


def store_of(request: Request[Any, Any, Any]) -> OncallStore:
    ctx = ctx_of(request)
    return OncallStore(ctx.redis, ctx.keys)


def _contacts(request: Request[Any, Any, Any]) -> dict[str, object]:
    return {c.id: c for c in ctx_of(request).directory.list_contacts()}


def _schedule(request: Request[Any, Any, Any], sid: str) -> Schedule:
    s = store_of(request).get_schedule(sid)
    if s is None:
        raise ApiError(404, f"schedule {sid!r} not found", "id")
    return s


def _hide(s: Schedule) -> Schedule:
    """A schedule as listed: the calendar secret only on its own ``GET``."""
    return msgspec.structs.replace(s, secret="")


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
    return store_of(request).put_schedule(s, _contacts(request))


@get("/schedules", sync_to_thread=True)
def list_schedules(request: Request[Any, Any, Any]) -> list[Schedule]:
    return sorted((_hide(s) for s in store_of(request).schedules().values()), key=lambda s: s.name)


@get("/schedules/{sid:str}", opt={"public": True}, sync_to_thread=True)
def get_schedule(
    request: Request[Any, Any, Any], sid: FromPath[str], token: FromQuery[str | None] = None
) -> Response[Any]:
    """The schedule (admin token), or ``<id>.ics`` with the schedule's secret as ``?token=``."""
    if sid.endswith(".ics"):
        s = store_of(request).get_schedule(sid.removesuffix(".ics"))
        if s is None or not token or not hmac.compare_digest(token.encode(), s.secret.encode()):
            raise ApiError(404, "no such calendar (check the link's token)", "token")
        now = time.time()
        names = {c.id: c.name for c in ctx_of(request).directory.list_contacts()}
        body = render_calendar(s, timeline(s, now - 7 * 86400, now + 90 * 86400), names, now)
        return Response(body, media_type="text/calendar; charset=utf-8")
    ctx = ctx_of(request)
    make_guard(ctx.settings.api_token or "", ctx.failed_auth)(request, _GUARDED)
    return Response(_schedule(request, sid))


_GUARDED = SimpleNamespace(opt={})  # what the admin-token guard sees for a normal route


@put("/schedules/{sid:str}", sync_to_thread=True)
def replace_schedule(
    request: Request[Any, Any, Any], sid: FromPath[str], data: JSONBody[ScheduleIn]
) -> Schedule:
    """Replace name, zone and layers (overrides and the calendar secret stay), or create
    the schedule with this id (``tocsin import`` keeps ids, so rules still find it)."""
    _check_id(sid)
    old = store_of(request).get_schedule(sid) or Schedule(
        id=sid, name="", secret=secrets.token_urlsafe(24)
    )
    s = msgspec.structs.replace(
        old, name=data.name, timezone=data.timezone, layers=tuple(data.layers)
    )
    return store_of(request).put_schedule(s, _contacts(request))


def _check_id(rid: str) -> None:
    if not ID_RE.fullmatch(rid):
        raise ApiError(400, "an id is 1-64 letters, digits, - or _", "id")


@delete("/schedules/{sid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_schedule(request: Request[Any, Any, Any], sid: FromPath[str]) -> None:
    if not store_of(request).delete_schedule(sid):
        raise ApiError(404, f"schedule {sid!r} not found", "id")


@post("/schedules/{sid:str}/overrides", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_override(
    request: Request[Any, Any, Any], sid: FromPath[str], data: JSONBody[OverrideIn]
) -> Override:
    if data.contact_id not in _contacts(request):
        raise ApiError(422, f"contact {data.contact_id!r} does not exist", "contact_id")
    now = time.time()
    o = Override(
        id=new_id(), contact_id=data.contact_id, start=data.start, end=data.end, created=now
    )
    if store_of(request).add_override(sid, o, now) is None:
        raise ApiError(404, f"schedule {sid!r} not found", "id")
    return o


@delete(
    "/schedules/{sid:str}/overrides/{oid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True
)
def delete_override(
    request: Request[Any, Any, Any], sid: FromPath[str], oid: FromPath[str]
) -> None:
    if not store_of(request).delete_override(sid, oid):
        raise ApiError(404, f"override {oid!r} of schedule {sid!r} not found", "id")


@get("/schedules/{sid:str}/oncall", sync_to_thread=True)
def schedule_oncall(
    request: Request[Any, Any, Any], sid: FromPath[str], at: FromQuery[float | None] = None
) -> OnCall:
    names = _contacts(request)
    return on_call_at(_schedule(request, sid), time.time() if at is None else at, names)


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
    return timeline(_schedule(request, sid), a, b)


@get("/oncall", sync_to_thread=True)
def oncall_now(request: Request[Any, Any, Any], at: FromQuery[float | None] = None) -> list[OnCall]:
    """Who is on call in every schedule at ``at`` (default now)."""
    when = time.time() if at is None else at
    names = _contacts(request)
    found = sorted(store_of(request).schedules().values(), key=lambda s: s.name)
    return [on_call_at(s, when, names) for s in found]


# ----------------------------------------------------------------------------- policies


@post("/escalation-policies", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_policy(request: Request[Any, Any, Any], data: JSONBody[PolicyIn]) -> Policy:
    p = Policy(id=new_id(), name=data.name, steps=tuple(data.steps), repeat=data.repeat)
    return store_of(request).put_policy(p, _contacts(request))


@get("/escalation-policies", sync_to_thread=True)
def list_policies(request: Request[Any, Any, Any]) -> list[Policy]:
    return sorted(store_of(request).policies().values(), key=lambda p: p.name)


def _policy(request: Request[Any, Any, Any], pid: str) -> Policy:
    p = store_of(request).get_policy(pid)
    if p is None:
        raise ApiError(404, f"escalation policy {pid!r} not found", "id")
    return p


@get("/escalation-policies/{pid:str}", sync_to_thread=True)
def get_policy(request: Request[Any, Any, Any], pid: FromPath[str]) -> Policy:
    return _policy(request, pid)


@put("/escalation-policies/{pid:str}", sync_to_thread=True)
def replace_policy(
    request: Request[Any, Any, Any], pid: FromPath[str], data: JSONBody[PolicyIn]
) -> Policy:
    _check_id(pid)
    p = Policy(id=pid, name=data.name, steps=tuple(data.steps), repeat=data.repeat)
    return store_of(request).put_policy(p, _contacts(request))


@get("/escalation-policies/{pid:str}/simulate", sync_to_thread=True)
def simulate_policy(
    request: Request[Any, Any, Any],
    pid: FromPath[str],
    at: FromQuery[float | None] = None,
    minutes: FromQuery[float] = 60,
) -> list[SimulatedStep]:
    """Who would be paged, when, if a problem started at ``at`` and nobody acknowledged for
    ``minutes``; changes nothing."""
    if not 0 <= minutes <= 7 * 1440:
        raise ApiError(400, "minutes must be between 0 and 10080", "minutes")
    start = time.time() if at is None else at
    policy = _policy(request, pid)
    return simulate(policy, store_of(request).schedules(), start, start + minutes * 60)


@delete("/escalation-policies/{pid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_policy(request: Request[Any, Any, Any], pid: FromPath[str]) -> None:
    used = [
        r.id
        for r in ctx_of(request).directory.list_rules()
        if any(
            r.route(sev).escalation_policy_id == pid for sev in ("critical", "warning", "unknown")
        )
    ]
    if used:
        raise ApiError(422, f"escalation policy is used by rules: {', '.join(used)}", "id")
    if not store_of(request).delete_policy(pid):
        raise ApiError(404, f"escalation policy {pid!r} not found", "id")


# ----------------------------------------------------------------------------- escalations


class EscalationOut(msgspec.Struct, kw_only=True):
    id: str
    policy_id: str
    check_id: str
    started: float
    next_step: int
    done: bool
    timeline: list[msgspec.Raw]


@get("/escalations", sync_to_thread=True)
def list_escalations(
    request: Request[Any, Any, Any], entity: FromQuery[str], check: FromQuery[str]
) -> list[EscalationOut]:
    """A check's escalations (newest last), each with its timeline: who was on call and paged."""
    ctx = ctx_of(request)
    store = EscalationStore(ctx.redis, ctx.keys)
    ids = store.of_check(check_id(entity, check))
    out = []
    for eid, x in store.load(ids).items():
        if x is None:
            continue
        out.append(
            EscalationOut(
                id=eid,
                policy_id=x.escalation.policy_id,
                check_id=x.escalation.check_id,
                started=x.escalation.started,
                next_step=x.step + 1,
                done=x.done,
                timeline=[msgspec.Raw(e.encode()) for e in store.timeline(eid)],
            )
        )
    return out


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
        create_policy,
        list_policies,
        get_policy,
        replace_policy,
        simulate_policy,
        delete_policy,
        list_escalations,
    ],
    tags=["on call"],
)
