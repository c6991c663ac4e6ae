"""``notificationprofiles/timeslots/``: Argus timeslots, mapped onto rule time restrictions.

A timeslot is a name and a list of time recurrences ``{days, start, end,
all_day}`` (Argus: days 1 = Monday .. 7, start and end local times, end
inclusive).  Unlike Argus, ``start > end`` is one span across midnight
(22:00-06:00 is the night after each listed day).  Notification profiles
(``profiles.py``) use timeslots directly; every change bumps ``config::version``.  Tocsin routes with rules, so a
timeslot is *applied* to rules: ``POST timeslots/<pk>/rules/ {"rule_id"}``
copies its recurrences into the rule's ``time_restrictions`` and remembers
the link, every later ``PUT`` of the timeslot rewrites the linked rules, and
``DELETE …/rules/<rule_id>/`` (or deleting the timeslot) drops the link but
leaves the rule's restrictions as they are.  The rule evaluates them in its
contact's timezone (Argus uses the server's).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus import plumbing, records
from services.api.audit import note_change
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.models import TimeRecurrence

Day = Annotated[int, Meta(ge=1, le=7)]
ALL_DAY = ("00:00:00", "23:59:59.999999")


class RecurrenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days: Annotated[list[Day], Meta(min_length=1, max_length=7)]
    start: str = ALL_DAY[0]
    end: str = ALL_DAY[1]
    all_day: bool = False


class TimeslotIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255)]
    time_recurrences: Annotated[list[RecurrenceIn], Meta(max_length=100)]


class Timeslot(msgspec.Struct, kw_only=True):
    pk: int
    name: str
    time_recurrences: list[RecurrenceIn]
    rules: list[str] = msgspec.field(default_factory=list)
    # The user it belongs to (Argus: per user); "" for the admin's, as before users existed.
    user: str = ""


class RuleLink(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rule_id: Annotated[str, Meta(min_length=1, max_length=255)]


_TIMESLOT = msgspec.json.Decoder(Timeslot)


def _seconds(value: str, field: str) -> float:
    """``HH:MM[:SS[.ffffff]]`` -> seconds after midnight."""
    parts = value.strip().split(":")
    try:
        if len(parts) not in (2, 3) or any(len(p) < 2 for p in parts[:2]):
            raise ValueError(value)
        hh, mm = int(parts[0]), int(parts[1])
        ss = float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError:
        raise ApiError(400, f"{value!r} is not a time of day (HH:MM[:SS])", field) from None
    if not (0 <= hh <= 23 and 0 <= mm <= 59 and 0 <= ss < 60):
        raise ApiError(400, f"{value!r} is not a time of day (HH:MM[:SS])", field)
    return hh * 3600 + mm * 60 + ss


def _normalised(data: TimeslotIn) -> list[RecurrenceIn]:
    out = []
    for i, rec in enumerate(data.time_recurrences):
        field = f"time_recurrences[{i}]"
        days = sorted(set(rec.days))
        if rec.all_day:
            out.append(RecurrenceIn(days=days, start=ALL_DAY[0], end=ALL_DAY[1], all_day=True))
            continue
        start, end = _seconds(rec.start, f"{field}.start"), _seconds(rec.end, f"{field}.end")
        if start == end:
            raise ApiError(400, "start equals end: an empty span (use all_day)", f"{field}.end")
        out.append(RecurrenceIn(days=days, start=rec.start, end=rec.end))
    return out


def to_time_restrictions(recs: list[RecurrenceIn]) -> tuple[TimeRecurrence, ...]:
    """Argus recurrences as rule restrictions: minutes, end exclusive (rounded up)."""
    out = []
    for rec in recs:
        if rec.all_day:
            out.append(TimeRecurrence(days=tuple(rec.days), all_day=True))
            continue
        start = int(_seconds(rec.start, "start") // 60)
        end_s = _seconds(rec.end, "end")
        end = min(24 * 60, -(-int(end_s + 0.999999) // 60))
        if end_s > start * 60:  # start > end crosses midnight and stays as it is
            end = max(end, start + 1)
        out.append(
            TimeRecurrence(
                days=tuple(rec.days),
                start=f"{start // 60:02d}:{start % 60:02d}",
                end="24:00" if end >= 24 * 60 else f"{end // 60:02d}:{end % 60:02d}",
            )
        )
    return tuple(out)


def _all(request: Request[Any, Any, Any]) -> list[Timeslot]:
    ctx = ctx_of(request)
    return sorted(
        (_TIMESLOT.decode(v) for v in ctx.redis.hgetall(ctx.keys.timeslots()).values()),
        key=lambda t: t.pk,
    )


def _load(request: Request[Any, Any, Any], pk: int) -> Timeslot:
    ctx = ctx_of(request)
    raw = ctx.redis.hget(ctx.keys.timeslots(), str(pk))
    if raw is None:
        raise ApiError(404, f"timeslot {pk} not found", "pk")
    return _TIMESLOT.decode(raw)


def _save(request: Request[Any, Any, Any], slot: Timeslot) -> Timeslot:
    ctx = ctx_of(request)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(ctx.keys.timeslots(), str(slot.pk), msgspec.json.encode(slot))
    pipe.incr(ctx.keys.config_version())  # profiles use timeslots: notifiers reload
    pipe.execute()
    return slot


def _admin(request: Request[Any, Any, Any]) -> None:
    if plumbing.caller(request) is not None:
        raise ApiError(403, "source systems cannot manage timeslots", "token")


def _unique_name(
    request: Request[Any, Any, Any], name: str, pk: int | None, user: str = ""
) -> None:
    """Names are unique per user, as in Argus."""
    if any(t.name == name and t.pk != pk and t.user == user for t in _all(request)):
        raise ApiError(400, f"a timeslot named {name!r} already exists", "name")


def add_default_timeslot(request: Request[Any, Any, Any], user_id: str) -> Timeslot:
    """A new user's "All the time" timeslot (every day, all day), as Argus gives every user."""
    ctx = ctx_of(request)
    pk = int(ctx.redis.incr(ctx.keys.timeslot_seq()))
    always = RecurrenceIn(
        days=[1, 2, 3, 4, 5, 6, 7], start=ALL_DAY[0], end=ALL_DAY[1], all_day=True
    )
    return _save(
        request, Timeslot(pk=pk, name="All the time", time_recurrences=[always], user=user_id)
    )


def _apply(request: Request[Any, Any, Any], slot: Timeslot) -> Timeslot:
    """Rewrite every linked rule's restrictions; forget links to deleted rules."""
    directory = ctx_of(request).directory
    restrictions = to_time_restrictions(slot.time_recurrences)
    kept = []
    for rid in slot.rules:
        rule = directory.get_rule(rid)
        if rule is None:
            continue
        directory.put_rule(msgspec.structs.replace(rule, time_restrictions=restrictions))
        kept.append(rid)
    return msgspec.structs.replace(slot, rules=kept)


@get("/notificationprofiles/timeslots/", sync_to_thread=True)
def list_timeslots(request: Request[Any, Any, Any]) -> list[Timeslot]:
    _admin(request)
    return [t for t in _all(request) if records.sees(request, t.user)]


@post(
    "/notificationprofiles/timeslots/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def create_timeslot(request: Request[Any, Any, Any], body: RawBody) -> Timeslot:
    """A timeslot of the caller's own (a responder's, or the admin's)."""
    user = records.owner(request)
    data = plumbing.decode(body, TimeslotIn)
    _unique_name(request, data.name, None, user)
    ctx = ctx_of(request)
    pk = int(ctx.redis.incr(ctx.keys.timeslot_seq()))
    slot = Timeslot(pk=pk, name=data.name, time_recurrences=_normalised(data), user=user)
    saved = _save(request, slot)
    note_change(request, target=f"timeslot:{pk}", after=saved)
    return saved


@get("/notificationprofiles/timeslots/{pk:int}/", sync_to_thread=True)
def get_timeslot(request: Request[Any, Any, Any], pk: FromPath[int]) -> Timeslot:
    _admin(request)
    slot = _load(request, pk)
    if not records.sees(request, slot.user):
        raise ApiError(404, f"timeslot {pk} not found", "pk")
    return slot


@put("/notificationprofiles/timeslots/{pk:int}/", sync_to_thread=True, opt=records.OWN_WRITES)
def put_timeslot(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> Timeslot:
    """Replace name and recurrences; linked rules get the new restrictions."""
    _admin(request)
    slot = _load(request, pk)
    records.check_owner(request, slot.user, f"timeslot {pk}")
    data = plumbing.decode(body, TimeslotIn)
    _unique_name(request, data.name, pk, slot.user)
    updated = msgspec.structs.replace(slot, name=data.name, time_recurrences=_normalised(data))
    saved = _save(request, _apply(request, updated))
    note_change(request, target=f"timeslot:{pk}", before=slot, after=saved)
    return saved


@delete(
    "/notificationprofiles/timeslots/{pk:int}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def delete_timeslot(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    _admin(request)
    before = _load(request, pk)
    records.check_owner(request, before.user, f"timeslot {pk}")
    ctx = ctx_of(request)
    profiles = [msgspec.json.decode(v) for v in ctx.redis.hvals(ctx.keys.argus_records("profile"))]
    if any(p.get("timeslot") == pk for p in profiles):
        raise ApiError(400, f"timeslot {pk} is used by a notification profile", "pk")
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hdel(ctx.keys.timeslots(), str(pk))
    pipe.incr(ctx.keys.config_version())
    pipe.execute()
    note_change(request, target=f"timeslot:{pk}", before=before)


@post(
    "/notificationprofiles/timeslots/{pk:int}/rules/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
)
def link_rule(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> Timeslot:
    """Use this timeslot as the rule's time restrictions (now and after every change)."""
    _admin(request)
    data = plumbing.decode(body, RuleLink)
    slot = _load(request, pk)
    if ctx_of(request).directory.get_rule(data.rule_id) is None:
        raise ApiError(400, f"rule {data.rule_id!r} does not exist", "rule_id")
    rules = slot.rules if data.rule_id in slot.rules else [*slot.rules, data.rule_id]
    saved = _save(request, _apply(request, msgspec.structs.replace(slot, rules=rules)))
    note_change(request, target=f"timeslot:{pk}", before=slot, after=saved)
    return saved


@delete(
    "/notificationprofiles/timeslots/{pk:int}/rules/{rule_id:str}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
)
def unlink_rule(request: Request[Any, Any, Any], pk: FromPath[int], rule_id: FromPath[str]) -> None:
    _admin(request)
    slot = _load(request, pk)
    if rule_id not in slot.rules:
        raise ApiError(404, f"rule {rule_id!r} does not use timeslot {pk}", "rule_id")
    saved = _save(
        request, msgspec.structs.replace(slot, rules=[r for r in slot.rules if r != rule_id])
    )
    note_change(request, target=f"timeslot:{pk}", before=slot, after=saved)


timeslot_handlers = [
    list_timeslots,
    create_timeslot,
    get_timeslot,
    put_timeslot,
    delete_timeslot,
    link_rule,
    unlink_rule,
]
