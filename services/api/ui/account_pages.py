"""Dashboard pages about people: your sessions and API tokens, and the audit log (admins).

A user sees only the sessions of their own login (the admin token's sessions
are listed together); ending one deletes it in Redis, so its cookie stops
working at once wherever it is.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery

from services.api.audit import AuditLog, note_change
from services.api.context import ctx_of
from services.api.people_store import PeopleStore
from services.api.ui.plumbing import (
    NONCE_STATE,
    SESSION_STATE,
    Form,
    csrf_valid,
    render,
    see_other,
    sessions,
)
from services.api.ui.session import SessionRecord
from services.api.ui.views import InvalidForm, parse_duration
from shared.audit import AuditQuery
from shared.people import token_out

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


def _user_id(request: Request[Any, Any, Any]) -> str:
    current: SessionRecord = request.state[SESSION_STATE]
    return current.user_id


@get("/tokens", sync_to_thread=True)
def tokens_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Your personal API tokens (for the CLI, scripts, argus-api-client); never their secrets."""
    uid = _user_id(request)
    ctx = ctx_of(request)
    mine = PeopleStore(ctx.redis, ctx.keys).tokens_of(uid) if uid else []
    return render(request, "tokens.html", tokens=mine, is_user=bool(uid), secret=None, error=None)


@post("/tokens/create", sync_to_thread=True, opt={"role": "viewer"})
def create_token_form(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """A new token for yourself; its secret is on the answering page only."""
    uid = _user_id(request)
    if not csrf_valid(request, data) or not uid:
        return see_other("/ui/tokens")
    ctx = ctx_of(request)
    store = PeopleStore(ctx.redis, ctx.keys)
    name = str(data.get("name", "")).strip()[:64]
    error = None if name else "give the token a name"
    expires_at = None
    if not error and str(data.get("expires", "")).strip():
        try:
            expires_at = time.time() + parse_duration(str(data["expires"]), "expires")
        except InvalidForm as exc:
            error = str(exc)
    if error:
        mine = store.tokens_of(uid)
        return render(
            request, "tokens.html", status=422, tokens=mine, is_user=True, secret=None, error=error
        )
    tok, secret = store.issue(uid, name, expires_at, time.time())
    note_change(request, target=f"token:{tok.id}", after=token_out(tok))
    mine = store.tokens_of(uid)
    return render(request, "tokens.html", tokens=mine, is_user=True, secret=secret, error=None)


@post("/tokens/revoke", sync_to_thread=True, opt={"role": "viewer"})
def revoke_token_form(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Revoke one of your tokens (another user's token id is ignored)."""
    uid = _user_id(request)
    if csrf_valid(request, data) and uid:
        ctx = ctx_of(request)
        store = PeopleStore(ctx.redis, ctx.keys)
        tok = store.token(str(data.get("id", "")))
        if tok is not None and tok.user_id == uid and tok.revoked_at is None:
            done = store.revoke(tok, time.time())
            note_change(
                request, target=f"token:{tok.id}", before=token_out(tok), after=token_out(done)
            )
    return see_other("/ui/tokens")


@get("/audit", sync_to_thread=True, opt={"role": "admin"})
def audit_page(
    request: Request[Any, Any, Any], actor: FromQuery[str] = "", action: FromQuery[str] = ""
) -> Response[str]:
    """The newest audit records, filtered by actor and action (a prefix)."""
    ctx = ctx_of(request)
    query = AuditQuery(actor=actor.strip(), action=action.strip())
    items, total = AuditLog(ctx.redis, ctx.keys).query(query, AUDIT_PAGE)
    return render(request, "audit.html", items=items, total=total, actor=actor, action=action)


account_handlers = [
    sessions_page,
    end_session,
    tokens_page,
    create_token_form,
    revoke_token_form,
    audit_page,
]
