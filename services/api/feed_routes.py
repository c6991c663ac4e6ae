"""Calendar feeds of a schedule: import one (as a layer or as overrides), re-sync imported layers.

docs/oncall.md.  Reading a feed is ``shared/ical_feed.py``, fetching and
re-syncing ``shared/feed_sync.py``; a feed URL goes through the same
destination guard as webhooks (``TOCSIN_DESTINATION_ALLOW``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from msgspec import Meta

from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.oncall_plumbing import note_schedule_change, schedule_or_404, store_of
from shared.destinations import Allowlist, check_http_url
from shared.directory import new_id
from shared.feed_sync import LayerSync, contact_names, fetcher, http_url, sync_schedule
from shared.ical_feed import FeedError, FeedUnreachable, infer_layer, read_feed
from shared.oncall import Layer, Override
from shared.timeslots import zone


class FeedIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Exactly one: the feed's text, or its URL (fetched here; a layer remembers it
    # and is re-synced from it, shared/feed_sync.py).
    ics: Annotated[str, Meta(min_length=1, max_length=900_000)] | None = None
    url: Annotated[str, Meta(min_length=1, max_length=2048)] | None = None
    mode: Literal["layer", "overrides"] = "layer"
    start: float | None = None  # default: now
    days: Annotated[int, Meta(ge=1, le=400)] = 90


class FeedImported(msgspec.Struct, kw_only=True):
    mode: str
    layer: Layer | None
    overrides: int
    unmatched: list[str]


@post("/schedules/{sid:str}/import-ical", status_code=HTTP_201_CREATED, sync_to_thread=True)
def import_feed(
    request: Request[Any, Any, Any], sid: FromPath[str], data: JSONBody[FeedIn]
) -> FeedImported:
    """A calendar feed's shifts as a new top layer (when they follow a rotation) or as
    overrides, one per shift; events naming no contact are listed, not imported."""
    sched = schedule_or_404(request, sid)
    ctx = ctx_of(request)
    if (data.ics is None) == (data.url is None):
        raise ApiError(422, "give exactly one of ics (the feed's text) or url", "ics")
    if data.url is not None:
        check = check_http_url(http_url(data.url))
        if check:
            raise ApiError(422, f"url {check}", "url")
        try:
            text = fetcher(Allowlist.parse(ctx.settings.destination_allow))(data.url)
        except FeedUnreachable as exc:
            raise ApiError(502, str(exc), "url") from None
    else:
        text = data.ics or ""
    contacts = ctx.directory.list_contacts()
    start = time.time() if data.start is None else data.start
    tz = zone(sched.timezone)
    try:
        feed = read_feed(
            text,
            {c.id: (c.name, c.email) for c in contacts},
            start,
            start + data.days * 86400,
            tz,
        )
    except FeedError as exc:
        raise ApiError(422, str(exc), "url" if data.url is not None else "ics") from None
    store = store_of(request)
    if data.mode == "layer":
        layer = infer_layer(feed.shifts, tz)
        if layer is None:
            raise ApiError(
                422,
                "the feed's shifts do not follow one rotation (gaps, uneven lengths or no fixed"
                " order); import them with mode=overrides",
                "mode",
            )
        named = msgspec.structs.replace(layer, name="imported from a calendar")
        if data.url is not None:
            named = msgspec.structs.replace(named, feed_url=data.url)
        saved = store.put_schedule(msgspec.structs.replace(sched, layers=(*sched.layers, named)))
        note_schedule_change(request, sid, sched, saved)
        return FeedImported(mode="layer", layer=named, overrides=0, unmatched=list(feed.unmatched))
    now = time.time()
    for shift in feed.shifts:
        o = Override(
            id=new_id(), contact_id=shift.contact_id, start=shift.start, end=shift.end, created=now
        )
        store.add_override(sid, o, now)
    after = store.get_schedule(sid)
    note_schedule_change(request, sid, sched, after)
    return FeedImported(
        mode="overrides", layer=None, overrides=len(feed.shifts), unmatched=list(feed.unmatched)
    )


class FeedSynced(msgspec.Struct, kw_only=True):
    schedule_id: str
    layers: list[LayerSync]


@post("/schedules/{sid:str}/sync", status_code=200, sync_to_thread=True)
def sync_feeds(
    request: Request[Any, Any, Any], sid: FromPath[str], days: FromQuery[int] = 90
) -> FeedSynced:
    """Re-fetch every layer imported from a feed URL and replace its rotation.

    Layers whose feed fails keep their rotation; the call then fails too, naming
    the feed: 502 when it could not be fetched, 422 when it no longer reads as
    a rotation (the other layers were still synced).
    """
    sched = schedule_or_404(request, sid)
    if not 1 <= days <= 400:
        raise ApiError(422, "days must be between 1 and 400", "days")
    ctx = ctx_of(request)
    store = store_of(request)
    if not any(isinstance(layer.feed_url, str) for layer in sched.layers):
        raise ApiError(
            422,
            "the schedule has no layer imported from a feed URL (import-ical with url)",
            "layers",
        )
    fetch = fetcher(Allowlist.parse(ctx.settings.destination_allow))
    try:
        results = sync_schedule(
            store, contact_names(ctx.redis, store), sid, fetch, time.time(), days
        )
    except KeyError:
        raise ApiError(404, f"schedule {sid!r} not found", "id") from None
    after = store.get_schedule(sid)
    note_schedule_change(request, sid, sched, after)
    failed = [x for x in results if not x.ok]
    if failed:
        status = 502 if any(x.unreachable for x in failed) else 422
        text = "; ".join(f"layer {x.layer}: {x.error}" for x in failed)
        raise ApiError(status, text, f"layers[{failed[0].layer}].feed_url")
    return FeedSynced(schedule_id=sid, layers=results)


feed_router = Router(
    path="/",
    route_handlers=[import_feed, sync_feeds],
    tags=["on call"],
    opt={"reads": "viewer", "writes": "admin"},
)
