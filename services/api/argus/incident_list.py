"""``GET /api/v2/incidents/`` and ``/incidents/mine/``: cursor pages with the Argus filters.

Incidents of checks (source "tocsin") and of Argus source systems share one
list.  Pages are Argus's cursor pages (``next``/``previous`` links holding an
opaque position); ``?count=true`` answers the number of matches instead.
The filters themselves are parsed and applied in ``listing.py``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get

from services.api.argus import core, listing, plumbing
from services.api.argus.schemas import (
    IncidentPage,
    incident_out,
)
from services.api.argus.store import ArgusStore, IncidentRecord, SourceRecord
from services.api.errors import ApiError

MAX_PAGE = 1000


def _cursor(direction: str, inc: IncidentRecord) -> str:
    raw = f"{direction}:{inc.start_time!r}:{inc.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(value: str) -> tuple[str, tuple[float, int]]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        direction, start, pk = raw.split(":")
        if direction not in ("n", "p"):
            raise ValueError(direction)
        return direction, (float(start), int(pk))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid cursor", "cursor") from None


def _url(request: Request[Any, Any, Any], cursor: str) -> str:
    """The page link: the same path (trailing slash kept, as DRF's are) and query, new cursor.

    The router matches ``incidents/`` without its slash in ``request.url``; the
    path the client sent is in the ASGI ``raw_path``.
    """
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    base = str(request.url).split("?", 1)[0]
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.split(b"?", 1)[0].endswith(b"/") and not base.endswith("/"):
        base += "/"
    return f"{base}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class _Query:
    params: dict[str, str]
    predicates: list[tuple[str, object]]
    store: ArgusStore
    sources: dict[str, SourceRecord]
    # Known candidates (a lookup by source incident id), or None: walk an index.
    ids: list[str] | None
    now: float


def _query(request: Request[Any, Any, Any], only_source: SourceRecord | None) -> _Query:
    """The validated filters of ``incidents/`` and the candidate ids they apply to."""
    params = dict(request.query_params.items())
    now = time.time()
    if only_source is not None:
        params = {
            k: v
            for k, v in params.items()
            if not k.startswith("source__") and k != "source_incident_id"
        }
        params["source__id__in"] = str(only_source.pk)
        sid = request.query_params.get("source_incident_id")
        if sid is not None and sid != "":
            params["source_incident_id"] = sid
    try:
        predicates = core.make_filter(params, now)
    except core.Invalid as exc:
        raise plumbing.invalid(exc) from None
    store = plumbing.store_of(request)
    sources = store.sources_by_incident_source()
    sid = params.get("source_incident_id")
    ids: list[str] | None = None
    if only_source is not None and sid:
        # Glue services look their incidents up by id on every sync: use the index.
        found = store.incident_by_source_id(only_source.pk, sid)
        ids = [found] if found is not None else []
    return _Query(params, predicates, store, sources, ids, now)


def list_page(
    request: Request[Any, Any, Any], only_source: SourceRecord | None = None
) -> IncidentPage:
    """One page of incidents, newest start first, keyset cursors both ways."""
    q = _query(request, only_source)
    params, predicates, store, sources, ids, now = (
        q.params,
        q.predicates,
        q.store,
        q.sources,
        q.ids,
        q.now,
    )
    try:
        size = int(params.get("page_size") or 100)
    except ValueError:
        raise ApiError(400, "page_size must be an integer", "page_size") from None
    if not 1 <= size <= MAX_PAGE:
        raise ApiError(400, f"page_size must be between 1 and {MAX_PAGE}", "page_size")
    direction, key = _parse_cursor(params["cursor"]) if params.get("cursor") else ("n", None)
    # One more than the page tells whether there is a further page.
    chosen = list(
        islice(
            listing.walk(
                store,
                predicates,
                sources,
                now,
                newest_first=direction == "n",
                after=key,
                ids=ids,
                # The page, the row telling whether there is a next one, and the cursor's
                # own incident, which the walk skips.
                first_batch=size + 2,
            ),
            size + 1,
        )
    )
    if direction == "p":
        more_before = len(chosen) > size
        page = chosen[:size][::-1]
        more_after = True
    else:
        page = chosen[:size]
        more_after = len(chosen) > size
        more_before = key is not None
    return IncidentPage(
        next=_url(request, _cursor("n", page[-1])) if page and more_after else None,
        previous=_url(request, _cursor("p", page[0])) if page and more_before else None,
        results=[incident_out(inc, sources, now) for inc in page],
    )


@get("/incidents/", sync_to_thread=True)
def list_incidents(request: Request[Any, Any, Any]) -> IncidentPage | IncidentCount:
    """Every incident (checks' and sources'); Argus filters; same key OR, different keys AND.

    With ``count`` in the query (any value, as Argus): ``{"count", "params"}`` instead.
    """
    if "count" in request.query_params:
        return count_of(request)
    return list_page(request)


@get("/incidents/mine/", sync_to_thread=True)
def list_mine(request: Request[Any, Any, Any]) -> IncidentPage | IncidentCount:
    """The calling source's incidents (the admin token sees Tocsin's check incidents)."""
    src = plumbing.caller(request) or plumbing.store_of(request).tocsin_source()
    if "count" in request.query_params:
        return count_of(request, only_source=src)
    return list_page(request, only_source=src)


class IncidentCount(msgspec.Struct, kw_only=True):
    """Argus's answer to ``incidents/?count``: how many match, and the query it counted."""

    count: int
    params: dict[str, str]


def count_of(
    request: Request[Any, Any, Any], only_source: SourceRecord | None = None
) -> IncidentCount:
    """How many incidents the filters match (cursor and page size play no part)."""
    q = _query(request, only_source)
    total = sum(1 for _ in listing.walk(q.store, q.predicates, q.sources, q.now, ids=q.ids))
    return IncidentCount(count=total, params=dict(request.query_params.items()))
