"""Dashboard page for on call: who is on call now, each schedule's next two weeks, overrides.

The timeline is an inline SVG (bars sized by attributes, so the page's
Content-Security-Policy needs no inline styles) with the same shifts listed
in a table for screen readers and for copying.  The override form posts to
``/ui/oncall/override`` with the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery

from services.api.context import ctx_of
from services.api.ui.actions import CSRF_ERROR, Form
from services.api.ui.plumbing import csrf_valid, render, see_other
from services.api.ui.views import InvalidForm, parse_maintenance
from shared.destinations import Allowlist
from shared.directory import ValidationFailed, new_id
from shared.feed_sync import contact_names, fetcher, sync_schedule
from shared.oncall import Override, on_call_source, timeline
from shared.oncall_store import OncallStore

WINDOW_S = 14 * 86400
WIDTH = 1000  # SVG user units for the two weeks


def _colour(contact_id: str | None) -> str:
    if contact_id is None:
        return "#ddd"
    h = int(hashlib.blake2b(contact_id.encode(), digest_size=2).hexdigest(), 16) % 360
    return f"hsl({h}, 55%, 55%)"


def oncall_context(request: Request[Any, Any, Any], now: float) -> dict[str, Any]:
    ctx = ctx_of(request)
    names = {c.id: c.name for c in ctx.directory.list_contacts()}
    rows = []
    for s in sorted(OncallStore(ctx.redis, ctx.keys).schedules().values(), key=lambda s: s.name):
        shifts = timeline(s, now, now + WINDOW_S)
        who, source = on_call_source(s, now)
        bars = [
            {
                "x": round((sh.start - now) / WINDOW_S * WIDTH, 2),
                "w": round((sh.end - sh.start) / WINDOW_S * WIDTH, 2),
                "fill": _colour(sh.contact_id),
                "label": names.get(sh.contact_id or "", sh.contact_id or "nobody"),
                "shift": sh,
            }
            for sh in shifts
        ]
        rows.append(
            {
                "schedule": s,
                "now": names.get(who or "", who or "nobody"),
                "source": source,
                "until": shifts[0].end if shifts else None,
                "bars": bars,
                "has_overrides": any(sh.source.startswith("override:") for sh in shifts),
                "feeds": [
                    (i, layer.feed_url)
                    for i, layer in enumerate(s.layers)
                    if isinstance(layer.feed_url, str)
                ],
            }
        )
    days = [{"x": round(d * WIDTH / 14, 2), "t": now + d * 86400} for d in range(15)]
    return {"rows": rows, "contacts": sorted(names.items(), key=lambda kv: kv[1]), "days": days}


@get("/oncall", sync_to_thread=True)
def oncall_page(request: Request[Any, Any, Any], done: FromQuery[str] = "") -> Response[str]:
    notice = {
        "override": "Override added.",
        "removed": "Override removed.",
        "synced": "Calendar feeds synced.",
    }.get(done)
    return render(
        request,
        "oncall.html",
        notice=notice,
        errors={},
        form={},
        **oncall_context(request, time.time()),
    )


@post("/oncall/override", sync_to_thread=True, opt={"role": "responder"})
def add_override(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Someone covers a schedule from a start (UTC, empty = now) for a duration."""
    now = time.time()
    values = {k: str(v) for k, v in data.items() if k != "csrf"}

    def fail(field: str, message: str) -> Response[str]:
        errors = {"override": {field: message}}
        ctx = oncall_context(request, now)
        return render(request, "oncall.html", status=400, errors=errors, form=values, **ctx)

    if not csrf_valid(request, data):
        return fail("form", CSRF_ERROR)
    ctx = ctx_of(request)
    sid, contact = values.get("schedule", ""), values.get("contact", "")
    if ctx.directory.get_contact(contact) is None:
        return fail("contact", "choose a contact")
    try:
        start, end = parse_maintenance(values.get("start", ""), "", now, values.get("duration", ""))
    except InvalidForm as exc:
        return fail(exc.field, str(exc))
    o = Override(id=new_id(), contact_id=contact, start=start, end=end, created=now)
    try:
        if OncallStore(ctx.redis, ctx.keys).add_override(sid, o, now) is None:
            return fail("schedule", "choose a schedule")
    except ValidationFailed as exc:
        return fail("form", str(exc))
    return see_other("/ui/oncall?done=override")


@post("/oncall/override/delete", sync_to_thread=True, opt={"role": "responder"})
def delete_override(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Remove an override (its schedule's layers show through again)."""
    values = {k: str(v) for k, v in data.items()}
    if not csrf_valid(request, data):
        errors = {"override": {"form": CSRF_ERROR}}
        page = oncall_context(request, time.time())
        return render(request, "oncall.html", status=400, errors=errors, form={}, **page)
    api = ctx_of(request)
    OncallStore(api.redis, api.keys).delete_override(
        values.get("schedule", ""), values.get("override", "")
    )
    return see_other("/ui/oncall?done=removed")


@post("/oncall/sync", sync_to_thread=True, opt={"role": "admin"})
def sync_schedule_feeds(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Re-sync a schedule's calendar-feed layers now (what the scheduler does hourly)."""
    values = {k: str(v) for k, v in data.items()}

    def fail(status: int, message: str) -> Response[str]:
        page = oncall_context(request, time.time())
        errors = {"sync": {"form": message}}
        return render(request, "oncall.html", status=status, errors=errors, form={}, **page)

    if not csrf_valid(request, data):
        return fail(400, CSRF_ERROR)
    api = ctx_of(request)
    store = OncallStore(api.redis, api.keys)
    fetch = fetcher(Allowlist.parse(api.settings.destination_allow))
    try:
        results = sync_schedule(
            store, contact_names(api.redis, store), values.get("schedule", ""), fetch, time.time()
        )
    except KeyError:
        return fail(400, "choose a schedule")
    except ValidationFailed as exc:
        return fail(400, str(exc))
    failed = [x for x in results if not x.ok]
    if failed:
        text = "; ".join(f"layer {x.layer}: {x.error}" for x in failed)
        return fail(502 if any(x.unreachable for x in failed) else 400, f"Not synced: {text}")
    return see_other("/ui/oncall?done=synced")


oncall_handlers = [oncall_page, add_override, delete_override, sync_schedule_feeds]
