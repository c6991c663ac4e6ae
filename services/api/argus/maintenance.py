"""``/api/v2/plannedmaintenance/``: Argus planned maintenance tasks.

A task is a window ``[start_time, end_time)`` (``end_time`` null or
``"infinity"`` = open-ended) and stored filters.  While it is ongoing,
incidents fitting **any** of its filters notify nobody, for every event type:
the notifier checks it before rules and profiles (``routing.select``).  It
composes with per-check scheduled maintenance, which keeps silencing its
checks on its own.  As in Argus: a task that ended more than 12 hours ago
cannot be changed, and only tasks that have not started can be deleted (end
an ongoing one by setting its ``end_time``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET, Meta, UnsetType

from services.api.argus import core, plumbing, records
from services.api.audit import note_change
from services.api.errors import ApiError

FROZEN_AFTER_S = 12 * 3600


class TaskIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    start_time: str
    filters: Annotated[list[int], Meta(min_length=1, max_length=100)]
    end_time: str | None = None
    description: Annotated[str, Meta(max_length=65536)] = ""


class TaskPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    start_time: str | UnsetType = UNSET
    end_time: str | UnsetType | None = UNSET
    filters: Annotated[list[int], Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=65536)] | UnsetType = UNSET


def _time(value: str, field: str) -> float:
    try:
        return core.parse_time(value, field)
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None


def _end(value: str | None, start: float) -> float | None:
    if value is None or value.strip().lower() == core.INFINITY:
        return None
    end = _time(value, "end_time")
    if end <= start:
        raise ApiError(400, "end_time must be after start_time", "end_time")
    return end


def _out(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "pk": rec["pk"],
        "created_by": rec.get("created_by", "admin"),
        "start_time": core.format_time(rec["start"]),
        "end_time": core.INFINITY if rec.get("end") is None else core.format_time(rec["end"]),
        "description": rec.get("description", ""),
        "filters": rec["filters"],
    }


@get("/plannedmaintenance/", sync_to_thread=True)
def list_tasks(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Every task, newest start first."""
    recs = records.all_records(request, "maintenance").values()
    return [_out(r) for r in sorted(recs, key=lambda r: (r["start"], r["pk"]), reverse=True)]


@post(
    "/plannedmaintenance/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def create_task(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """``{start_time, end_time?, description, filters: [pk]}`` (admin token only)."""
    records.admin_only(request)
    data = plumbing.decode(body, TaskIn)
    start = _time(data.start_time, "start_time")
    end = _end(data.end_time, start)
    records.stored_filters(request, data.filters)
    rec = {
        "pk": records.next_pk(request, "maintenance"),
        "start": start,
        "end": end,
        "description": data.description,
        "filters": list(dict.fromkeys(data.filters)),
        "created_by": "admin",
    }
    out = _out(records.save(request, "maintenance", rec))
    note_change(request, target=f"maintenance:{rec['pk']}", after=out)
    return out


@get("/plannedmaintenance/{pk:int}/", sync_to_thread=True)
def get_task(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    return _out(records.load(request, "maintenance", pk))


@patch("/plannedmaintenance/{pk:int}/", sync_to_thread=True, opt={"role": "responder"})
def patch_task(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> dict[str, Any]:
    """Change times, filters or description; not for tasks that ended over 12 hours ago."""
    records.admin_only(request)
    rec = records.load(request, "maintenance", pk)
    before = _out(rec)
    data = plumbing.decode(body, TaskPatch)
    now = time.time()
    if rec.get("end") is not None and rec["end"] < now - FROZEN_AFTER_S:
        raise ApiError(
            400, "a task that ended more than 12 hours ago cannot be changed", "end_time"
        )
    start = (
        rec["start"]
        if isinstance(data.start_time, UnsetType)
        else _time(data.start_time, "start_time")
    )
    if isinstance(data.end_time, UnsetType):
        end = rec.get("end")
        if end is not None and end <= start:
            raise ApiError(400, "end_time must be after start_time", "end_time")
    else:
        end = _end(data.end_time, start)
    if not isinstance(data.filters, UnsetType):
        records.stored_filters(request, data.filters)
        rec["filters"] = list(dict.fromkeys(data.filters))
    if not isinstance(data.description, UnsetType):
        rec["description"] = data.description
    rec.update(start=start, end=end)
    out = _out(records.save(request, "maintenance", rec))
    note_change(request, target=f"maintenance:{pk}", before=before, after=out)
    return out


@delete(
    "/plannedmaintenance/{pk:int}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def delete_task(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    """Only tasks that have not started yet (end an ongoing one by PATCHing end_time)."""
    records.admin_only(request)
    rec = records.load(request, "maintenance", pk)
    if rec["start"] <= time.time():
        raise ApiError(400, "only future tasks can be deleted; set end_time to end this one", "pk")
    records.remove(request, "maintenance", pk)
    note_change(request, target=f"maintenance:{pk}", before=_out(rec))


maintenance_handlers = [list_tasks, create_task, get_task, patch_task, delete_task]
