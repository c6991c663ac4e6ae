"""Dashboard forms (POST): login/logout and the operator's actions.

Each action validates the form, then takes the same path as the JSON API so
the rules stay in one place: acknowledgements and maintenance go through the
check routes' handlers, incident acks/close/reopen/comments through the Argus
API's handlers (``post_ack``/``post_event``), test notifications are a
``test_notifications`` action event.  A refused form is shown again with the
error next to the field (422); a done one redirects (303) to its page.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath

from services.api.argus.events import post_ack, post_event
from services.api.audit import note_action, note_change
from services.api.auth import connection_client
from services.api.check_routes import AcknowledgementIn, MaintenanceIn, acknowledge, add_maintenance
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.passwords import DUMMY_HASH, password_matches
from services.api.people_store import PeopleStore
from services.api.ui import session
from services.api.ui.pages import NOTICES, check_context
from services.api.ui.plumbing import (
    NONCE_STATE,
    Form,
    check_url,
    csrf_valid,
    render,
    see_other,
    sessions,
)
from services.api.ui.views import InvalidForm, limited_text, parse_duration, parse_maintenance
from shared.check_store import CheckStore
from shared.consumer import AMQP_ERRORS
from shared.people import BOOTSTRAP, Principal

CSRF_ERROR = "this form has expired; reload the page and try again"


def _value(data: dict[str, Any], name: str) -> str:
    v = data.get(name, "")
    return str(v[0] if isinstance(v, list) else v)


def _check_form_error(
    request: Request[Any, Any, Any], data: dict[str, Any], form: str, field: str, message: str
) -> Response[Any]:
    """The check page again, with ``message`` next to ``form``'s ``field``."""
    entity, check = _value(data, "entity"), _value(data, "check")
    context = check_context(request, entity, check)
    if context is None:
        return render(
            request, "missing.html", status=404, what=f"check {entity}:{check}", back="/ui/checks"
        )
    context["errors"] = {form: {field: message}}
    context["values"] = {form: {k: _value(data, k) for k in data if k != "csrf"}}
    return render(request, "check.html", status=422, notice=None, **context)


def _api_message(exc: ApiError) -> tuple[str, str]:
    return str(exc.detail), exc.field or "form"


@post("/check/ack", sync_to_thread=True, opt={"role": "responder"})
def ack_check(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Acknowledge a failing check for a duration, with a comment."""
    if not csrf_valid(request, data):
        return _check_form_error(request, data, "ack", "form", CSRF_ERROR)
    entity, check = _value(data, "entity"), _value(data, "check")
    try:
        body = AcknowledgementIn(
            summary=limited_text(_value(data, "comment"), "comment"),
            duration=parse_duration(_value(data, "duration")),
        )
        acknowledge.fn(request, entity=entity, check=check, data=body)
    except InvalidForm as exc:
        return _check_form_error(request, data, "ack", exc.field, str(exc))
    except ApiError as exc:
        return _check_form_error(request, data, "ack", "form", _api_message(exc)[0])
    return see_other(check_url(entity, check, done="ack"))


@post("/check/maintenance", sync_to_thread=True, opt={"role": "responder"})
def schedule_maintenance(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    if not csrf_valid(request, data):
        return _check_form_error(request, data, "maint", "form", CSRF_ERROR)
    entity, check = _value(data, "entity"), _value(data, "check")
    try:
        start, end = parse_maintenance(
            _value(data, "start"), _value(data, "end"), time.time(), _value(data, "duration")
        )
        summary = limited_text(_value(data, "summary"), "summary")
        # Unscheduled: silence the check now, failing or not (ends at its recovery).
        kind: Literal["scheduled", "unscheduled"] = (
            "unscheduled" if _value(data, "type") == "unscheduled" else "scheduled"
        )
        add_maintenance.fn(
            request,
            entity=entity,
            check=check,
            # An empty start is "now": the API starts it at the whole second, as events are.
            data=MaintenanceIn(
                start_time=start if _value(data, "start").strip() else None,
                end_time=end,
                summary=summary,
                type=kind,
            ),
        )
    except InvalidForm as exc:
        return _check_form_error(request, data, "maint", exc.field, str(exc))
    except ApiError as exc:
        return _check_form_error(request, data, "maint", "form", _api_message(exc)[0])
    return see_other(check_url(entity, check, done="maintenance"))


@post("/check/maintenance/end", sync_to_thread=True, opt={"role": "responder"})
def end_maintenance(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """End a maintenance of either kind (or an acknowledgement) early: now, or drop a later one."""
    if not csrf_valid(request, data):
        return _check_form_error(request, data, "end", "form", CSRF_ERROR)
    entity, check = _value(data, "entity"), _value(data, "check")
    ctx = ctx_of(request)
    store, mid, now = CheckStore(ctx.redis, ctx.keys), _value(data, "id"), time.time()
    before = next(
        (m for m in store.maintenances(entity, check, now, past=True) if m.id == mid), None
    )
    if not store.end_maintenance(entity, check, mid, now):
        return _check_form_error(request, data, "end", "form", "that maintenance no longer exists")
    after = next(
        (m for m in store.maintenances(entity, check, now, past=True) if m.id == mid), None
    )
    note_change(
        request, target=f"check:{entity}:{check}:maintenance:{mid}", before=before, after=after
    )
    return see_other(check_url(entity, check, done="ended"))


@post("/check/enabled", sync_to_thread=True)
def set_enabled(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    if not csrf_valid(request, data):
        return _check_form_error(request, data, "enabled", "form", CSRF_ERROR)
    entity, check = _value(data, "entity"), _value(data, "check")
    wanted = _value(data, "enabled")
    if wanted not in ("true", "false"):
        return _check_form_error(request, data, "enabled", "form", "choose enable or disable")
    ctx = ctx_of(request)
    store = CheckStore(ctx.redis, ctx.keys)
    before = store.get(entity, check)
    if before is None or not store.set_enabled(entity, check, wanted == "true"):
        return _check_form_error(request, data, "enabled", "form", "no such check")
    note_change(
        request,
        target=f"check:{entity}:{check}",
        before={"enabled": before.enabled},
        after={"enabled": wanted == "true"},
    )
    return see_other(check_url(entity, check, done="enabled" if wanted == "true" else "disabled"))


@post("/check/test", sync_to_thread=True, opt={"role": "responder"})
def test_notification(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Publish a ``test_notifications`` action event for the check."""
    if not csrf_valid(request, data):
        return _check_form_error(request, data, "test", "form", CSRF_ERROR)
    entity, check = _value(data, "entity"), _value(data, "check")
    try:
        summary = limited_text(_value(data, "summary"), "summary") or "test notification"
    except InvalidForm as exc:
        return _check_form_error(request, data, "test", exc.field, str(exc))
    ctx = ctx_of(request)
    if CheckStore(ctx.redis, ctx.keys).get(entity, check) is None:
        return _check_form_error(request, data, "test", "form", "no such check")
    event = {"entity": entity, "check": check, "state": "test_notifications", "summary": summary}
    try:
        ctx.sender.send([msgspec.json.encode({**event, "time": time.time()})])
    except AMQP_ERRORS as exc:
        return _check_form_error(request, data, "test", "form", f"broker unavailable: {exc!r}")
    return see_other(check_url(entity, check, done="test"))


# --------------------------------------------------------------------------- incidents


def _incident_error(
    request: Request[Any, Any, Any],
    pk: int,
    data: dict[str, Any],
    form: str,
    field: str,
    message: str,
) -> Response[Any]:
    ctx = ctx_of(request)
    found = CheckStore(ctx.redis, ctx.keys).get_incident(pk)
    if found is None:
        return render(
            request, "missing.html", status=404, what=f"incident {pk}", back="/ui/incidents"
        )
    inc, events = found
    return render(
        request,
        "incident.html",
        status=422,
        inc=inc,
        events=events,
        notice=None,
        errors={form: {field: message}},
        values={form: {k: _value(data, k) for k in data if k != "csrf"}},
        now=time.time(),
    )


@post("/incidents/{pk:int}/ack", sync_to_thread=True, opt={"role": "responder"})
def ack_incident(request: Request[Any, Any, Any], pk: FromPath[int], data: Form) -> Response[Any]:
    """Argus acknowledgement: optional duration (none = until closed) and a comment."""
    if not csrf_valid(request, data):
        return _incident_error(request, pk, data, "ack", "form", CSRF_ERROR)
    body: dict[str, Any] = {}
    try:
        body["description"] = limited_text(_value(data, "comment"), "comment")
        if _value(data, "duration").strip():
            until = time.time() + parse_duration(_value(data, "duration"))
            body["expiration"] = datetime.fromtimestamp(until, UTC).isoformat()
        post_ack.fn(request, pk=pk, body=msgspec.json.encode(body))
    except InvalidForm as exc:
        return _incident_error(request, pk, data, "ack", exc.field, str(exc))
    except ApiError as exc:
        return _incident_error(request, pk, data, "ack", "form", _api_message(exc)[0])
    return see_other(f"/ui/incidents/{pk}?done=incident")


@post("/incidents/{pk:int}/event", sync_to_thread=True, opt={"role": "responder"})
def incident_event(request: Request[Any, Any, Any], pk: FromPath[int], data: Form) -> Response[Any]:
    """Close (CLO), reopen (REO) or comment on (OTH) an incident."""
    kind = _value(data, "type")
    form = "comment" if kind == "OTH" else "state"
    if not csrf_valid(request, data):
        return _incident_error(request, pk, data, form, "form", CSRF_ERROR)
    if kind not in ("CLO", "REO", "OTH"):
        return _incident_error(request, pk, data, form, "form", "unknown action")
    try:
        text = limited_text(_value(data, "description"), "description")
        if kind == "OTH" and not text:
            raise InvalidForm("write a comment first", "description")
        body = msgspec.json.encode({"type": kind, "description": text})
        post_event.fn(request, pk=pk, body=body)
    except InvalidForm as exc:
        return _incident_error(request, pk, data, form, exc.field, str(exc))
    except ApiError as exc:
        return _incident_error(request, pk, data, form, "form", _api_message(exc)[0])
    return see_other(f"/ui/incidents/{pk}?done=incident")


# --------------------------------------------------------------------------- login


def _who(request: Request[Any, Any, Any], data: dict[str, Any]) -> Principal | None:
    """Who the login form names: a user by username and password, or the admin token."""
    username = _value(data, "username").strip()
    if username:
        ctx = ctx_of(request)
        user = PeopleStore(ctx.redis, ctx.keys).user_by_name(username)
        # Hash even for an unknown user, so timing does not tell which usernames exist.
        stored = user.password_hash if user else DUMMY_HASH
        if password_matches(stored, _value(data, "password")) and user and not user.disabled:
            return Principal(kind="user", role=user.role, name=user.username, user_id=user.id)
        return None
    token = request.app.state.ctx.settings.api_token
    bootstrap_off = PeopleStore(ctx_of(request).redis, ctx_of(request).keys).bootstrap_disabled()
    if session.token_matches(token, _value(data, "token")) and not bootstrap_off:
        return BOOTSTRAP
    return None


@post("/login", opt={"anonymous": True}, sync_to_thread=True)
def login(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """A user's password, or the admin token, for a session cookie (neither is kept)."""
    token = request.app.state.ctx.settings.api_token
    nxt = _value(data, "next") or "/ui/"
    if not (nxt == "/ui" or nxt.startswith("/ui/")) or "//" in nxt or "\\" in nxt:
        nxt = "/ui/"
    given_nonce = _value(data, "login_csrf")
    cookie_nonce = request.cookies.get(session.LOGIN_COOKIE, "")
    # The same failure count as the bearer guard: the form is no second guessing oracle.
    failed = ctx_of(request).failed_auth
    client = connection_client(request)
    status, headers = 401, {}
    if failed.locked(client, time.monotonic()):
        status = 429
        headers = {"Retry-After": str(failed.retry_after(client, time.monotonic()))}
        error = "too many failed attempts; try again later"
    elif not given_nonce or not session.csrf_equal(given_nonce, cookie_nonce):
        error = "the login form expired; please try again"
    elif (who := _who(request, data)) is None:
        failed.record(client, time.monotonic())
        named = _value(data, "username").strip()
        error = "wrong username or password" if named else "that token is not valid"
        note_action(request.scope, "login_failed", actor=named[:64] or "token")
    else:
        note_action(
            request.scope,
            "login",
            target=f"user:{who.user_id}" if who.user_id else "",
            actor=who.name,
        )
        response = see_other(nxt)
        response.set_cookie(
            session.COOKIE,
            sessions(request).start(token, time.time(), who, client),
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=session.SESSION_S,
        )
        response.delete_cookie(session.LOGIN_COOKIE, path="/ui")
        return response
    nonce = session.new_login_nonce()
    page = render(request, "login.html", status=status, login_csrf=nonce, next=nxt, error=error)
    page.headers.update(headers)
    page.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=3600,
    )
    return page


@post("/logout", sync_to_thread=False, opt={"role": "viewer"})
def logout(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """End the session for good: revoked in Redis, not only forgotten by this browser."""
    response = see_other("/ui/login")
    if csrf_valid(request, data):
        sessions(request).revoke(request.state[NONCE_STATE])
        response.delete_cookie(session.COOKIE, path="/ui")
    return response


action_handlers = [
    ack_check,
    schedule_maintenance,
    end_maintenance,
    set_enabled,
    test_notification,
    ack_incident,
    incident_event,
    login,
    logout,
]

__all__ = ["NOTICES", "action_handlers"]
