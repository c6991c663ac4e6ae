"""``incidents/sources/``: source systems and their tokens; heartbeat; source types.

Creating a source needs the admin token and returns the source's API token
once (field ``token``); Redis keeps only its SHA-256 digest (the tokens are
32 random bytes, so a fast hash is enough).  The source "tocsin" stands for
the incidents Tocsin opens for failing checks.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.argus import plumbing
from services.api.argus.schemas import SourceCreated, SourceIn, SourceOut, SourceType, source_out
from services.api.argus.store import TOCSIN
from services.api.audit import note_change
from services.api.errors import ApiError


def _admin_only(request: Request[Any, Any, Any]) -> None:
    if plumbing.caller(request) is not None:
        raise ApiError(403, "only the admin token may manage source systems", "token")


@get("/incidents/sources/", sync_to_thread=True)
def list_sources(request: Request[Any, Any, Any]) -> list[SourceOut]:
    return [source_out(s) for s in plumbing.store_of(request).list_sources()]


@get("/incidents/sources/{pk:int}/", sync_to_thread=True)
def get_source(request: Request[Any, Any, Any], pk: FromPath[int]) -> SourceOut:
    found = plumbing.store_of(request).get_source(pk)
    if found is None:
        raise ApiError(404, f"source {pk} not found", "pk")
    return source_out(found)


@post("/incidents/sources/", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_source(request: Request[Any, Any, Any], body: RawBody) -> SourceCreated:
    """A new source system ``{name, type, base_url?}``; its token is in this response only."""
    _admin_only(request)
    data = plumbing.decode(body, SourceIn)
    stype = data.type.lower()
    if stype == TOCSIN:
        raise ApiError(400, "source type 'tocsin' is reserved for Tocsin's own incidents", "type")
    try:
        rec, token = plumbing.store_of(request).create_source(data.name, stype, data.base_url)
    except ValueError as exc:
        raise ApiError(400, str(exc), "name") from None
    out = source_out(rec)
    note_change(request, target=f"argus_source:{out.pk}", after=out)  # never the token
    return SourceCreated(
        pk=out.pk, name=out.name, type=out.type, user=out.user, base_url=out.base_url, token=token
    )


@get("/incidents/source-types/", sync_to_thread=True)
def list_source_types(request: Request[Any, Any, Any]) -> list[SourceType]:
    """The types in use (a type exists as soon as a source has it)."""
    names = sorted({s.type for s in plumbing.store_of(request).list_sources()})
    return [SourceType(n) for n in names]


@post(
    "/incidents/sources/heartbeat/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "source", "audit": False},  # a liveness signal every few seconds
)
def heartbeat(request: Request[Any, Any, Any]) -> None:
    """A source says it is alive (``last_seen``); 403 for a caller that is not a source."""
    src = plumbing.caller(request)
    if src is None:
        raise ApiError(403, "only source systems send heartbeats", "token")
    plumbing.store_of(request).touch_source(src, time.time())


@get("/incidents/sources/heartbeat/", sync_to_thread=True)
def heartbeat_probe(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """405 as in Argus: pyargus probes with GET to learn that heartbeats are supported."""
    return Response(
        {"error": "method not allowed", "detail": 'Method "GET" not allowed.'},
        status_code=405,
        headers={"Allow": "POST"},
    )


source_handlers = [
    list_sources,
    get_source,
    create_source,
    list_source_types,
    heartbeat,
    heartbeat_probe,
]
