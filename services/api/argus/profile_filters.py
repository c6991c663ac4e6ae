"""``/api/v2/notificationprofiles/filters/`` and ``filterpreview``: the filters profiles use.

Argus's shape: ``{pk, name, filter}``, the filter in Argus's language
(``shared/argus.py``); a filter belongs to the user who made it (docs/users.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus import plumbing, records
from services.api.argus.schemas import IncidentOut
from services.api.audit import note_change
from shared.argus import listing_fits


class FilterIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255)]
    filter: dict[str, Any]


def filter_out(rec: dict[str, Any]) -> dict[str, Any]:
    return {"pk": rec["pk"], "name": rec["name"], "filter": rec.get("filter", {})}


@get("/notificationprofiles/filters/", sync_to_thread=True)
def list_filters(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    return [filter_out(r) for r in records.all_records(request, "filter").values()]


def _write_filter(request: Request[Any, Any, Any], body: bytes, pk: int | None) -> dict[str, Any]:
    records.admin_only(request)
    data = plumbing.decode(body, FilterIn)
    blob = records.filter_blob(data.filter)
    before = None
    if pk is None:
        pk = records.next_pk(request, "filter")
    else:
        before = filter_out(records.load(request, "filter", pk))
    rec = {"pk": pk, "name": data.name, "filter": msgspec.to_builtins(blob)}
    after = filter_out(records.save(request, "filter", rec))
    note_change(request, target=f"filter:{pk}", before=before, after=after)
    return after


@post("/notificationprofiles/filters/", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_filter(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """Store a validated filter blob (unknown keys dropped, tags normalised)."""
    return _write_filter(request, body, None)


@get("/notificationprofiles/filters/{pk:int}/", sync_to_thread=True)
def get_filter(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    records.admin_only(request)
    return filter_out(records.load(request, "filter", pk))


@put("/notificationprofiles/filters/{pk:int}/", sync_to_thread=True)
def put_filter(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> dict[str, Any]:
    return _write_filter(request, body, pk)


@delete(
    "/notificationprofiles/filters/{pk:int}/", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True
)
def delete_filter(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    records.admin_only(request)
    before = filter_out(records.load(request, "filter", pk))
    records.refuse_if_used(request, "filters", pk, "filter")
    records.remove(request, "filter", pk)
    note_change(request, target=f"filter:{pk}", before=before)


@post(
    "/notificationprofiles/filterpreview/",
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    opt={"role": "viewer", "audit": False},
)
def filter_preview(request: Request[Any, Any, Any], body: RawBody) -> list[IncidentOut]:
    """Incidents a filter blob matches now (tags: all of them; event_types: in the log)."""
    records.admin_only(request)
    blob = records.filter_blob(plumbing.decode(body, dict[str, Any]))
    return records.list_matching(request, lambda x: listing_fits(blob, x), bool(blob.event_types))


filter_handlers = [
    list_filters,
    create_filter,
    get_filter,
    put_filter,
    delete_filter,
    filter_preview,
]
