"""Dashboard pages about people: your own sessions (see and end them) and the audit log (admins).

A user sees only the sessions of their own login (the admin token's sessions
are listed together); ending one deletes it in Redis, so its cookie stops
working at once wherever it is.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery

from services.api.audit import AuditLog
from services.api.context import ctx_of
from services.api.ui.plumbing import (
    NONCE_STATE,
    SESSION_STATE,
    csrf_valid,
    render,
    see_other,
    sessions,
)
from services.api.ui.session import SessionRecord
from shared.audit import AuditQuery

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AUDIT_PAGE = 200


def _mine(request: Request[Any, Any, Any]) -> tuple[SessionRecord, list[SessionRecord]]:
    current: SessionRecord = request.state[SESSION_STATE]
    return current, sessions(request).of_owner(current.user_id or "bootstrap")


@get("/sessions", sync_to_thread=True)
def sessions_page(request: Request[Any, Any, Any], done: FromQuery[str] = "") -> Response[str]:
    """Your live sessions: when and from where they started, when they expire."""
    current, mine = _mine(request)
    notice = "Session ended." if done else None
    return render(
        request, "sessions.html", sessions=mine, current=current.ref, now=time.time(), notice=notice
    )


@post("/sessions/end", sync_to_thread=True, opt={"role": "viewer"})
def end_session(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """End one of your sessions (``ref``), or all but this one (``ref=others``)."""
    if not csrf_valid(request, data):
        return see_other("/ui/sessions")
    current, mine = _mine(request)
    ref = str(data.get("ref", ""))
    store = sessions(request)
    for rec in mine:  # only refs of your own sessions are ever ended
        if rec.ref == ref or (ref == "others" and rec.ref != current.ref):
            store.end(rec.ref)
    if ref == current.ref:
        store.revoke(request.state[NONCE_STATE])
        return see_other("/ui/login")
    return see_other("/ui/sessions?done=1")


@get("/audit", sync_to_thread=True, opt={"role": "admin"})
def audit_page(
    request: Request[Any, Any, Any], actor: FromQuery[str] = "", action: FromQuery[str] = ""
) -> Response[str]:
    """The newest audit records, filtered by actor and action (a prefix)."""
    ctx = ctx_of(request)
    query = AuditQuery(actor=actor.strip(), action=action.strip())
    items, total = AuditLog(ctx.redis, ctx.keys).query(query, AUDIT_PAGE)
    return render(request, "audit.html", items=items, total=total, actor=actor, action=action)


account_handlers = [sessions_page, end_session, audit_page]
