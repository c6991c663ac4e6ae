"""``POST /integrations/pagerduty/webhook``: PagerDuty V3 webhooks back into Tocsin.

``incident.acknowledged`` acknowledges the check (``incident_key`` is the
Events v2 ``dedup_key`` Tocsin sent, ``entity:check``); an ack Tocsin already
has is not repeated, so Tocsin's own ``acknowledge`` event echoing back ends
there.  ``incident.resolved`` while the check still fails adds a comment to
the incident and changes nothing else: only the check's own ``ok`` recovers
it.  Other event types are answered 200 and ignored.  The PagerDuty user is
the contact whose PagerDuty medium has ``pagerduty_user_id`` set to theirs.
An ack by a PagerDuty user linked to no contact is refused (403
``unknown_user``): the signature proves the account, not the person, and an
acknowledgement must name who made it.  Tocsin's own ack echoing back is
answered ``already_acked`` before that, whoever PagerDuty names.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, post

from services.api.argus.plumbing import load
from services.api.argus.store import IncidentEventRecord
from services.api.context import ApiContext
from services.api.errors import ApiError
from services.api.integrations import signatures
from services.api.integrations.acking import (
    AckOutcome,
    AckRequest,
    acknowledge,
    admit,
    count,
)
from services.api.integrations.contacts import by_medium_setting
from shared.check_store import CheckStore
from shared.checks import CheckDetail
from shared.models import DEFAULT_ACK_DURATION


class _Ref(msgspec.Struct):
    id: str = ""
    summary: str = ""


class _Incident(msgspec.Struct):
    id: str = ""
    incident_key: str | None = None
    dedup_key: str | None = None
    html_url: str = ""


class _Event(msgspec.Struct):
    id: str
    event_type: str
    data: _Incident
    agent: _Ref | None = None


class _Body(msgspec.Struct):
    event: _Event


_DECODER = msgspec.json.Decoder(_Body)


def check_of(store: CheckStore, key: str) -> CheckDetail | None:
    """The check a ``dedup_key`` names: ``entity:check``, trying each ``:`` (names may hold one)."""
    at = key.find(":")
    while at != -1:
        found = store.get(key[:at], key[at + 1 :])
        if found is not None:
            return found
        at = key.find(":", at + 1)
    return None


def _answer(outcome: AckOutcome, status: int = 200) -> Response[dict[str, str]]:
    return Response({"outcome": outcome.value}, status_code=status)


def _comment(request: Request[Any, Any, Any], detail: CheckDetail, text: str) -> None:
    """An OTH entry on the check's open incident (nothing else changes)."""
    if detail.incident_id is None:
        return
    try:
        store, (inc, _, _) = load(request, int(detail.incident_id))
    except (ApiError, ValueError):
        return
    now = time.time()
    record = IncidentEventRecord(
        type="OTH", timestamp=now, description=text, actor=None, received=now
    )
    store.update(inc, {}, [record])


def _handle(request: Request[Any, Any, Any], ctx: ApiContext, body: _Body) -> Response[Any]:
    ev = body.event
    if ev.event_type not in ("incident.acknowledged", "incident.resolved"):
        return _answer(count(ctx, "pagerduty", AckOutcome.IGNORED))
    key = ev.data.incident_key or ev.data.dedup_key or ""
    detail = check_of(CheckStore(ctx.redis, ctx.keys), key) if key else None
    if detail is None:
        return _answer(count(ctx, "pagerduty", AckOutcome.UNKNOWN_CHECK), 404)
    agent = ev.agent or _Ref()
    if ev.event_type == "incident.resolved":
        if not detail.failing:
            return _answer(count(ctx, "pagerduty", AckOutcome.IGNORED))
        who = agent.summary or "someone"
        _comment(
            request,
            detail,
            f"resolved in PagerDuty by {who} while the check still fails "
            f"({detail.state}); Tocsin keeps the incident open until the check is ok",
        )
        return _answer(count(ctx, "pagerduty", AckOutcome.COMMENTED))
    contact = by_medium_setting(ctx.directory, "pagerduty_user_id", agent.id)
    if contact is None:
        ack = detail.acknowledgement
        if ack is not None and ack.covers(time.time()):
            return _answer(count(ctx, "pagerduty", AckOutcome.ALREADY_ACKED))
        return _answer(count(ctx, "pagerduty", AckOutcome.UNKNOWN_USER), 403)
    req = AckRequest(
        entity=detail.entity,
        check=detail.check,
        contact=contact,
        channel="pagerduty",
        duration=DEFAULT_ACK_DURATION,
        once=False,
        skip_if_acked=True,
    )
    result = acknowledge(ctx, req)
    status = 503 if result.outcome is AckOutcome.UNAVAILABLE else 200
    return _answer(result.outcome, status)


@post("/integrations/pagerduty/webhook", opt={"auth": "signature"}, status_code=200)
async def pagerduty_webhook(request: Request[Any, Any, Any]) -> Response[Any]:
    """Verify ``X-PagerDuty-Signature`` (any of its ``v1=`` values), then act on the event."""
    admitted = await admit(
        request,
        "pagerduty",
        lambda ctx, body: signatures.pagerduty(
            ctx.settings.pagerduty_webhook_secret,
            request.headers.get("x-pagerduty-signature"),
            body,
        ),
        _DECODER.decode,
        "not a PagerDuty V3 webhook",
        # PagerDuty retries a webhook with a new signature: the event id identifies it.
        lambda parsed: parsed.event.id,
        _answer(AckOutcome.REPLAY),
    )
    if isinstance(admitted, Response):
        return admitted
    ctx, parsed = admitted
    return await anyio.to_thread.run_sync(_handle, request, ctx, parsed)
