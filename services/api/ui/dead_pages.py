"""The dashboard's dead-letter page: list, show, requeue and purge ``NS.dead``.

The overview's "dead letters" tile links here.  Reading goes through
``shared.deadletters`` as ``tocsin dead`` does: letters are fetched unacked
and return to the queue when the page is rendered; a requeue acks only the
chosen letters, after their copies were committed; a purge asks for a
confirmation box first.  Bodies and headers are masked
(``shared.masking.mask_document``): gateway dead letters carry the medium.
"""

from __future__ import annotations

import json
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery

from services.api.context import ctx_of
from services.api.ui.plumbing import Form, csrf_valid, render, see_other
from shared.consumer import AMQP_ERRORS
from shared.deadletters import (
    DeadLetter,
    RequeueRefused,
    check_of,
    dead_channel,
    fetch,
    header_text,
    purge,
    requeue,
)
from shared.masking import mask_document

SHOWN = 200
NOTICES = {
    "requeued": "Requeued {n} dead letter(s) to the queues they came from.",
    "purged": "Purged {n} dead letter(s).",
}


def _row(d: DeadLetter, now: float) -> dict[str, Any]:
    return {
        "id": d.id,
        "check": check_of(d.body),
        "age": None if d.time is None else now - d.time,
        "time": d.time,
        "stage": d.stage,
        "queue": d.queue or "?",
        "reason": d.reason,
    }


def _detail(d: DeadLetter) -> dict[str, Any]:
    headers = {k: header_text(v) for k, v in mask_document(d.headers).items() if k != "x-death"}
    try:
        body = json.dumps(mask_document(json.loads(d.body)), indent=2, ensure_ascii=False)
    except ValueError:
        body = repr(d.body[:4000])
    return {**_row(d, time.time()), "routing_key": d.routing_key, "headers": headers, "body": body}


def _expired(request: Request[Any, Any, Any]) -> Response[Any]:
    """The page a form with a stale CSRF token gets (403, nothing done)."""
    return render(
        request, "dead.html", status=403, rows=[], error="this form has expired; reload the page"
    )


def _form_values(data: dict[str, Any], name: str) -> list[str]:
    v = data.get(name, [])
    return [str(x) for x in (v if isinstance(v, list) else [v]) if x]


@get("/dead", sync_to_thread=True)
def dead_page(
    request: Request[Any, Any, Any],
    id: FromQuery[str] = "",
    done: FromQuery[str] = "",
    n: FromQuery[int] = 0,
) -> Response[str]:
    ctx = ctx_of(request)
    now = time.time()
    error = None
    letters: list[DeadLetter] = []
    try:
        with dead_channel(ctx.settings) as (channel, queue):
            letters = fetch(channel, queue, SHOWN + 1)
    except AMQP_ERRORS as exc:
        error = f"the broker is unreachable ({type(exc).__name__}); try again"
    shown = next((d for d in letters if d.id == id), None) if id else None
    return render(
        request,
        "dead.html",
        status=404 if id and shown is None and error is None else 200,
        rows=[_row(d, now) for d in letters[:SHOWN]],
        more=len(letters) > SHOWN,
        shown=_detail(shown) if shown else None,
        wanted=id,
        error=error,
        notice=NOTICES[done].format(n=n) if done in NOTICES else None,
    )


@post("/dead/requeue", sync_to_thread=True)
def requeue_dead(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Requeue the letters named in the form (``id``, repeatable) or, with ``all``, every one."""
    if not csrf_valid(request, data):
        return _expired(request)
    ids = set(_form_values(data, "id"))
    everything = bool(_form_values(data, "all"))
    with dead_channel(ctx_of(request).settings) as (channel, queue):
        letters = fetch(channel, queue, 10_000)
        chosen = [d for d in letters if everything or d.id in ids]
        try:
            done, _skipped = requeue(channel, chosen)
        except RequeueRefused as exc:
            return render(request, "dead.html", status=503, rows=[], error=str(exc))
    return see_other(f"/ui/dead?done=requeued&n={done}")


@post("/dead/purge", sync_to_thread=True)
def purge_dead(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Delete every dead letter, once the confirmation box is ticked."""
    if not csrf_valid(request, data):
        return _expired(request)
    if not _form_values(data, "confirm"):
        return render(
            request, "dead.html", status=422, rows=[], error="tick the box to confirm the purge"
        )
    with dead_channel(ctx_of(request).settings) as (channel, queue):
        purged = purge(channel, queue)
    return see_other(f"/ui/dead?done=purged&n={purged}")


dead_handlers = [dead_page, requeue_dead, purge_dead]
