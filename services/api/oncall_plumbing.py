"""HTTP plumbing of the on-call routes (schedules, feeds, escalation policies).

Used by ``oncall_routes.py``, ``feed_routes.py`` and ``escalation_routes.py``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request
from msgspec import Meta

from services.api.audit import note_change
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.oncall import Schedule
from shared.oncall_store import OncallStore, ScheduleCache

Name = Annotated[str, Meta(min_length=1, max_length=255)]
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def store_of(request: Request[Any, Any, Any]) -> OncallStore:
    """The on-call repository (schedules, overrides, escalation policies)."""
    ctx = ctx_of(request)
    return OncallStore(ctx.redis, ctx.keys)


def cached_schedules(request: Request[Any, Any, Any]) -> dict[str, Schedule]:
    """Every schedule, decoded once per ``oncall::version`` for the whole app."""
    state = request.app.state
    cache = state.get("oncall_schedules")
    if cache is None:
        cache = state["oncall_schedules"] = ScheduleCache()
    schedules: dict[str, Schedule] = cache.get(store_of(request))
    return schedules


def contacts_of(request: Request[Any, Any, Any]) -> dict[str, object]:
    """Every contact by id (to check the ids a schedule or a policy names)."""
    return {c.id: c for c in ctx_of(request).directory.list_contacts()}


def schedule_or_404(request: Request[Any, Any, Any], sid: str) -> Schedule:
    """The schedule, or a 404 naming it."""
    s = store_of(request).get_schedule(sid)
    if s is None:
        raise ApiError(404, f"schedule {sid!r} not found", "id")
    return s


def without_secret(s: Schedule) -> Schedule:
    """A schedule as listed: the calendar secret only on its own ``GET``."""
    return msgspec.structs.replace(s, secret="")


def note_schedule_change(
    request: Request[Any, Any, Any], sid: str, before: Schedule | None, after: Schedule | None
) -> None:
    """The audit record's before and after of schedule ``sid``, calendar secrets left out."""
    note_change(
        request,
        target=f"schedule:{sid}",
        before=before and without_secret(before),
        after=after and without_secret(after),
    )


def check_id_format(rid: str) -> None:
    """A 400 unless ``rid`` can be a schedule's or a policy's id (``PUT`` may create one)."""
    if not ID_RE.fullmatch(rid):
        raise ApiError(400, "an id is 1-64 letters, digits, - or _", "id")
