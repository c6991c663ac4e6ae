"""Redis records of notification profiles, filters, destinations and planned maintenance.

Each kind is one hash ``pk -> JSON`` (``keys.argus_records(kind)``) with a
sequence for pks.  Every write bumps ``config::version`` in the same MULTI so
notifiers recompile their index (``shared/routing/profiles.py``) before
the next batch.  Also here: listing incidents with stored filters, shared by
``filterpreview/``, ``notificationprofiles/<pk>/incidents/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from litestar import Request

from services.api.argus import plumbing
from services.api.argus.schemas import IncidentOut, incident_out, row_of
from services.api.argus.store import IncidentRecord
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared import incident_index
from shared.argus import Facts, FilterBlob, FilterError, parse_filter

MAX_LISTED = 1000


def admin_only(request: Request[Any, Any, Any]) -> None:
    """Profiles belong to people: source-system tokens may not manage them."""
    if plumbing.caller(request) is not None:
        raise ApiError(403, "source systems cannot manage notification profiles", "token")


# Writes a responder may make on what they own (profiles, timeslots, destinations).
OWN_WRITES = {"role": "responder"}


def owner(request: Request[Any, Any, Any]) -> str:
    """Who a record the caller creates belongs to: their user id ("" for the bootstrap admin)."""
    admin_only(request)
    who = principal_of(request)
    return who.user_id if who is not None else ""


def check_owner(request: Request[Any, Any, Any], record_owner: str, what: str) -> None:
    """An admin may change anyone's record; anyone else only their own (403 otherwise).

    Records from before users existed have owner "": the admin's.
    """
    who = principal_of(request)
    if who is not None and who.role != "admin" and who.user_id != record_owner:
        raise ApiError(403, f"{what} belongs to another user; you may change only your own", "pk")


def sees(request: Request[Any, Any, Any], record_owner: str) -> bool:
    """Whether the caller reads a record of ``record_owner`` (profiles, timeslots, destinations).

    As in Argus, a person sees only their own; Tocsin's admins see everyone's, since
    they manage everyone's (docs/users.md).
    """
    who = principal_of(request)
    return who is None or who.role == "admin" or who.user_id == record_owner


def load_own(request: Request[Any, Any, Any], kind: str, pk: int) -> dict[str, Any]:
    """Record ``pk`` if the caller :func:`sees` it; 404 otherwise, as Argus answers."""
    rec = load(request, kind, pk)
    if not sees(request, rec.get("user", "")):
        raise ApiError(404, f"{kind} {pk} not found", "pk")
    return rec


def all_records(request: Request[Any, Any, Any], kind: str) -> dict[int, dict[str, Any]]:
    ctx = ctx_of(request)
    raw = ctx.redis.hgetall(ctx.keys.argus_records(kind))
    return {
        int(pk): msgspec.json.decode(v) for pk, v in sorted(raw.items(), key=lambda p: int(p[0]))
    }


def load(request: Request[Any, Any, Any], kind: str, pk: int) -> dict[str, Any]:
    ctx = ctx_of(request)
    raw = ctx.redis.hget(ctx.keys.argus_records(kind), str(pk))
    if raw is None:
        raise ApiError(404, f"{kind} {pk} not found", "pk")
    found: dict[str, Any] = msgspec.json.decode(raw)
    return found


def next_pk(request: Request[Any, Any, Any], kind: str) -> int:
    ctx = ctx_of(request)
    return int(ctx.redis.incr(ctx.keys.argus_record_seq(kind)))


def save(request: Request[Any, Any, Any], kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write one record and bump the config version (one MULTI)."""
    ctx = ctx_of(request)
    # Check incidents' source must have a pk before filters name it (sourceSystemIds).
    plumbing.store_of(request).tocsin_source()
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(ctx.keys.argus_records(kind), str(record["pk"]), msgspec.json.encode(record))
    pipe.incr(ctx.keys.config_version())
    pipe.execute()
    return record


def remove(request: Request[Any, Any, Any], kind: str, pk: int) -> None:
    ctx = ctx_of(request)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hdel(ctx.keys.argus_records(kind), str(pk))
    pipe.incr(ctx.keys.config_version())
    pipe.execute()


def refuse_if_used(request: Request[Any, Any, Any], field: str, pk: int, what: str) -> None:
    """400 when a profile or maintenance task still names record ``pk`` in ``field``."""
    for kind in ("profile", "maintenance"):
        for rec in all_records(request, kind).values():
            if pk in rec.get(field, ()):
                raise ApiError(400, f"{what} {pk} is used by {kind} {rec['pk']}", "pk")


def filter_blob(raw: Any, field: str = "filter") -> FilterBlob:
    try:
        return parse_filter(raw)
    except FilterError as exc:
        raise ApiError(400, str(exc), exc.field.replace("filter", field, 1)) from None


def stored_filters(request: Request[Any, Any, Any], pks: Sequence[int]) -> list[FilterBlob]:
    """The blobs of stored filters (400 naming ``filters`` for an unknown pk)."""
    known = all_records(request, "filter")
    out = []
    for pk in pks:
        if pk not in known:
            raise ApiError(400, f"filter {pk} does not exist", "filters")
        out.append(filter_blob(known[pk].get("filter", {})))
    return out


def list_matching(
    request: Request[Any, Any, Any], fits: Callable[[Facts], bool], wants_log: bool
) -> list[IncidentOut]:
    """Incidents (newest first, at most MAX_LISTED) whose facts satisfy ``fits``."""
    store = plumbing.store_of(request)
    sources = store.sources_by_incident_source()
    now = time.time()
    out: list[IncidentOut] = []
    # Newest first through the start-time index, a batch at a time: stops at MAX_LISTED.
    for batch in incident_index.newest_first(store.r, store.k.incident_ids()):
        chunk: list[IncidentRecord] = store.load_many([iid for iid, _ in batch])
        logs: list[list[str]] = [[] for _ in chunk]
        if wants_log:
            pipe = store.r.pipeline(transaction=False)
            for inc in chunk:
                pipe.lrange(store.k.incident_events(str(inc.id)), 0, -1)
            logs = [[msgspec.json.decode(e)["type"] for e in log] for log in pipe.execute()]
        for inc, types in zip(chunk, logs, strict=True):
            row = row_of(inc, sources)
            facts = Facts(
                source_pk=row.source_pk,
                source_type=row.source_type,
                tags=frozenset(inc.tags),
                level=inc.level,
                open=row.is_open(now),
                acked=row.is_acked(now),
                stateful=row.stateful,
                logged_types=frozenset(types),
            )
            if fits(facts):
                out.append(incident_out(inc, sources, now))
                if len(out) >= MAX_LISTED:
                    return out
    return out
