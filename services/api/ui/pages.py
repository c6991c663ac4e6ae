"""Dashboard pages (GET): overview, checks, one check, incidents, contacts, login.

Checks are addressed by query parameters (``/ui/check?entity=&check=``), so
names with slashes or spaces need no path escaping.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery

from services.api.context import ctx_of
from services.api.ui import session
from services.api.ui.plumbing import active_maintenances, dead_letters, render
from services.api.ui.views import (
    CheckFilter,
    contact_views,
    delivery_tally,
    filter_checks,
    overview,
    timeline,
)
from shared.check_store import CheckStore
from shared.delivery_log import read_delivery_log
from shared.explain.preview import who_would_be_notified
from shared.models import SERVICE_STATES, Notification
from shared.records import from_hash

ALL = 1_000_000
DELIVERY_SCAN = 5000
NOTICES = {
    "ack": "Acknowledgement sent; the check shows it as soon as the processor has taken it.",
    "maintenance": "Maintenance scheduled.",
    "ended": "Maintenance ended.",
    "enabled": "Check enabled.",
    "disabled": "Check disabled: its state is still recorded, nobody is notified.",
    "test": "Test notification sent to every medium whose rules match.",
    "incident": "Incident updated.",
}


def _store(request: Request[Any, Any, Any]) -> CheckStore:
    ctx = ctx_of(request)
    return CheckStore(ctx.redis, ctx.keys)


def overview_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    now = time.time()
    ctx = ctx_of(request)
    store = _store(request)
    checks = store.list(limit=ALL)
    acked, maintained = active_maintenances(request, now)
    entries = read_delivery_log(ctx.redis, ctx.keys, limit=DELIVERY_SCAN)
    return {
        "ov": overview(checks, acked, maintained),
        "open_incidents": store.list_incidents(open=True, limit=20),
        "open_incident_count": ctx.redis.scard(ctx.keys.incident_by_open(True)),
        "dead": dead_letters(request, now),
        "tally": delivery_tally(entries, now - 3600),
        "tally_truncated": len(entries) >= DELIVERY_SCAN and entries[-1].time >= now - 3600,
        "now": now,
    }


@get("/", sync_to_thread=True)
def overview_page(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "overview.html", **overview_context(request))


@get("/overview/panel", sync_to_thread=True)
def overview_panel(request: Request[Any, Any, Any]) -> Response[str]:
    """The overview's body alone, polled by ``ui.js`` every few seconds."""
    return render(request, "_overview_panel.html", **overview_context(request))


@get("/checks", sync_to_thread=True)
def checks_page(request: Request[Any, Any, Any]) -> Response[str]:
    f = CheckFilter.of(dict(request.query_params))
    now = time.time()
    everything = _store(request).list(limit=ALL)
    acked, maintained = active_maintenances(request, now)
    rows = filter_checks(everything, f)
    return render(
        request,
        "checks.html",
        f=f,
        rows=rows,
        total=len(everything),
        acked=acked,
        maintained=maintained,
        states=SERVICE_STATES,
        entities=sorted({c.entity for c in everything}),
        tags=sorted({t for c in everything for t in c.tags}),
        now=now,
    )


def check_context(
    request: Request[Any, Any, Any], entity: str, check: str
) -> dict[str, Any] | None:
    """Everything the check page shows; None for an unknown check."""
    now = time.time()
    ctx = ctx_of(request)
    store = _store(request)
    detail = store.get(entity, check, now=now)
    if detail is None:
        return None
    history = store.history(entity, check, limit=200)
    incidents = [
        (inc, store.get_incident(inc.id))
        for inc in store.list_incidents(limit=ALL)
        if inc.check_id == detail.id
    ][:20]
    ids = ctx.redis.lrange(ctx.keys.notification_log(), 0, -1)
    pipe = ctx.redis.pipeline(transaction=False)
    for nid in ids:
        pipe.hgetall(ctx.keys.notification(nid))
    notes = [from_hash(Notification, a) for a in pipe.execute() if a]
    snap = ctx.directory.snapshot()
    return {
        "c": detail,
        "history": history[:50],
        "segments": timeline(history, now),
        "maintenances": store.list_maintenances(entity, check),
        "acks": store.list_acknowledgements(entity, check),
        "incidents": incidents,
        "notifications": [n for n in notes if n.check_id == detail.id][:50],
        "deliveries": read_delivery_log(ctx.redis, ctx.keys, entity=entity, check=check, limit=50),
        "dry": who_would_be_notified(snap, detail, now),
        "contact_names": {cid: c.name for cid, c in snap.contacts.items()},
        "now": now,
        "errors": {},
        "values": {},
    }


@get("/check", sync_to_thread=True)
def check_page(
    request: Request[Any, Any, Any],
    entity: FromQuery[str] = "",
    check: FromQuery[str] = "",
    done: FromQuery[str] = "",
) -> Response[str]:
    context = check_context(request, entity, check)
    if context is None:
        return render(
            request, "missing.html", status=404, what=f"check {entity}:{check}", back="/ui/checks"
        )
    return render(request, "check.html", notice=NOTICES.get(done), **context)


@get("/incidents", sync_to_thread=True)
def incidents_page(
    request: Request[Any, Any, Any], status: FromQuery[str] = "open"
) -> Response[str]:
    status = status if status in ("open", "closed", "all") else "open"
    store = _store(request)
    wanted = None if status == "all" else status == "open"
    items = store.list_incidents(open=wanted, limit=500)
    return render(request, "incidents.html", items=items, which=status, now=time.time())


@get("/incidents/{pk:int}", sync_to_thread=True)
def incident_page(
    request: Request[Any, Any, Any], pk: FromPath[int], done: FromQuery[str] = ""
) -> Response[str]:
    found = _store(request).get_incident(pk)
    if found is None:
        return render(
            request, "missing.html", status=404, what=f"incident {pk}", back="/ui/incidents"
        )
    inc, events = found
    return render(
        request,
        "incident.html",
        inc=inc,
        events=events,
        notice=NOTICES.get(done),
        errors={},
        values={},
        now=time.time(),
    )


@get("/contacts", sync_to_thread=True)
def contacts_page(
    request: Request[Any, Any, Any], entity: FromQuery[str] = "", check: FromQuery[str] = ""
) -> Response[str]:
    ctx = ctx_of(request)
    snap = ctx.directory.snapshot()
    dry, missing = None, False
    if entity or check:
        detail = _store(request).get(entity, check)
        if detail is None:
            missing = True
        else:
            dry = who_would_be_notified(snap, detail, time.time())
    return render(
        request,
        "contacts.html",
        contacts=contact_views(snap),
        dry=dry,
        missing=missing,
        entity=entity,
        check=check,
    )


@get("/login", opt={"anonymous": True}, sync_to_thread=False)
def login_page(request: Request[Any, Any, Any], next: FromQuery[str] = "/ui/") -> Response[str]:
    """The login form; a double-submit cookie protects it from cross-site posts."""
    nonce = session.new_login_nonce()
    response = render(request, "login.html", login_csrf=nonce, next=next, error=None)
    response.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=3600,
    )
    return response


page_handlers = [
    overview_page,
    overview_panel,
    checks_page,
    check_page,
    incidents_page,
    incident_page,
    contacts_page,
    login_page,
]
