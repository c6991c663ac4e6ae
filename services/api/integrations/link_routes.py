"""``GET|POST /integrations/ack/{token}`` (and ``/a/{token}``, the SMS form): "Acknowledge" links.

GET only shows what the link would do (mail scanners fetch links; they must
not acknowledge anything); the form on that page POSTs to the same URL, which
acknowledges as the contact the link was sent to.  The token is the only
credential (shared/action_links.py), so these routes are public.  Every
refusal is a small page that says why, with a 4xx status, and a metric.
"""

from __future__ import annotations

import html
import time
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery

from services.api.context import ctx_of
from services.api.integrations.acking import (
    AckOutcome,
    AckRequest,
    acknowledge,
    count,
    count_forgery,
    refuse_guessers,
)
from shared.action_links import (
    DEFAULT_DURATION,
    DURATIONS,
    SHORT_PATH,
    LinkClaims,
    ShortClaims,
    action_secret,
    verify,
    verify_short,
)
from shared.action_links import open_url as check_page_url
from shared.check_store import CheckStore
from shared.models import Contact

# Status and sentence for each outcome a link can meet.
ANSWERS: dict[AckOutcome, tuple[int, str]] = {
    AckOutcome.ACKED: (200, "Acknowledged."),
    AckOutcome.MALFORMED: (400, "This link is damaged; copy the whole link from the message."),
    AckOutcome.BAD_SIGNATURE: (403, "This link is not valid (it was changed, or the key rotated)."),
    AckOutcome.EXPIRED: (410, "This link has expired."),
    AckOutcome.UNKNOWN_CHECK: (404, "The check of this link no longer exists."),
    AckOutcome.UNKNOWN_USER: (404, "The contact this link was sent to no longer exists."),
    AckOutcome.NOT_FAILING: (409, "The check is OK now: there is nothing to acknowledge."),
    AckOutcome.EPISODE_ENDED: (410, "The problem this link was about has ended."),
    AckOutcome.ALREADY_USED: (409, "You already acknowledged this problem."),
    AckOutcome.UNAVAILABLE: (503, "Tocsin cannot take the acknowledgement right now; try again."),
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} · Tocsin</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def _page(status: int, title: str, body: str) -> Response[str]:
    return Response(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        media_type=MediaType.HTML,
        headers={
            "Cache-Control": "no-store",
            # The token is in the URL: keep it out of Referer headers and caches.
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'"
            ),
            "X-Frame-Options": "DENY",
        },
    )


def _refused(outcome: AckOutcome) -> Response[str]:
    status, sentence = ANSWERS.get(outcome, (400, "This link cannot be used."))
    return _page(status, "Not acknowledged", f"<p>{html.escape(sentence)}</p>")


def _refusal(request: Request[Any, Any, Any], why: str) -> AckOutcome:
    """Count a refused token; a forged or damaged one also counts as a failed authentication."""
    if why == "expired":
        return count(ctx_of(request), "link", AckOutcome.EXPIRED)
    return count_forgery(request, "link", AckOutcome(why))


def _claims(request: Request[Any, Any, Any], token: str, short: bool) -> LinkClaims | AckOutcome:
    """The claims of a genuine link; a short (SMS) one names its check through the episode."""
    ctx = ctx_of(request)
    secret = action_secret(ctx.settings)
    if not short:
        found = verify(secret, token, time.time())
        return found if isinstance(found, LinkClaims) else _refusal(request, found)
    brief = verify_short(secret, token, time.time())
    if not isinstance(brief, ShortClaims):
        return _refusal(request, brief)
    incident = CheckStore(ctx.redis, ctx.keys).get_incident(brief.ep)
    if incident is None:
        return count(ctx, "link", AckOutcome.UNKNOWN_CHECK)
    inc = incident[0]
    return LinkClaims(e=inc.entity, c=inc.check, ep=brief.ep, ct=brief.ct, x=brief.x)


def _contact(request: Request[Any, Any, Any], claims: LinkClaims) -> Contact | None:
    return ctx_of(request).directory.get_contact(claims.ct)


@get("/integrations/ack/{token:str}", opt={"auth": "signature"}, sync_to_thread=True)
def confirm_page(
    request: Request[Any, Any, Any],
    token: FromPath[str],
    duration: FromQuery[str] = DEFAULT_DURATION,
) -> Response[str]:
    """The confirmation page: changes nothing, offers the POST (1 h or 4 h)."""
    refuse_guessers(request)
    return _confirm_page(request, token, duration, short=False)


@get(SHORT_PATH + "{token:str}", opt={"auth": "signature"}, sync_to_thread=True)
def short_confirm_page(
    request: Request[Any, Any, Any],
    token: FromPath[str],
    duration: FromQuery[str] = DEFAULT_DURATION,
) -> Response[str]:
    """The confirmation page of an SMS link (same page, shorter token)."""
    refuse_guessers(request)
    return _confirm_page(request, token, duration, short=True)


def _confirm_page(
    request: Request[Any, Any, Any], token: str, duration: str, short: bool
) -> Response[str]:
    claims = _claims(request, token, short)
    if isinstance(claims, AckOutcome):
        return _refused(claims)
    name = html.escape(f"{claims.e}:{claims.c}")
    chosen = duration if duration in DURATIONS else DEFAULT_DURATION
    buttons = "".join(
        f'<button type="submit" name="duration" value="{d}"'
        f"{' autofocus' if d == chosen else ''}>Acknowledge for {d}</button>"
        for d in DURATIONS
    )
    public = ctx_of(request).settings.public_url
    open_link = (
        f'<p><a href="{html.escape(check_page_url(public, claims.e, claims.c))}">'
        "Open in Tocsin</a></p>"
        if public
        else ""
    )
    body = (
        f"<p>Acknowledge the problem on <strong>{name}</strong>? "
        "Notifications about it stop until it recovers or the time runs out.</p>"
        f'<form method="post" action="">{buttons}</form>{open_link}'
    )
    return _page(200, "Acknowledge?", body)


@post("/integrations/ack/{token:str}", opt={"auth": "signature"}, status_code=200)
async def confirm(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """Acknowledge as the link's contact: ``duration`` from the form or the query, default 4 h."""
    return await _post(request, token, short=False)


@post(SHORT_PATH + "{token:str}", opt={"auth": "signature"}, status_code=200)
async def short_confirm(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """Acknowledge through an SMS link, with the same rules as a full one."""
    return await _post(request, token, short=True)


async def _post(request: Request[Any, Any, Any], token: str, short: bool) -> Response[str]:
    refuse_guessers(request)
    form = await request.form()
    chosen = str(form.get("duration") or request.query_params.get("duration") or DEFAULT_DURATION)
    if chosen not in DURATIONS:
        return _page(400, "Not acknowledged", "<p>Unknown duration; use 1h or 4h.</p>")
    return await anyio.to_thread.run_sync(_confirm, request, token, chosen, short)


def _confirm(
    request: Request[Any, Any, Any], token: str, chosen: str, short: bool
) -> Response[str]:
    claims = _claims(request, token, short)
    if isinstance(claims, AckOutcome):
        return _refused(claims)
    ctx = ctx_of(request)
    contact = _contact(request, claims)
    if contact is None:
        return _refused(count(ctx, "link", AckOutcome.UNKNOWN_USER))
    req = AckRequest(
        entity=claims.e,
        check=claims.c,
        contact=contact,
        channel="link",
        duration=DURATIONS[chosen],
        episode_id=claims.ep,
    )
    result = acknowledge(ctx, req)
    if result.outcome is not AckOutcome.ACKED:
        return _refused(result.outcome)
    name = html.escape(f"{claims.e}:{claims.c}")
    return _page(
        200,
        "Acknowledged",
        f"<p>Acknowledged <strong>{name}</strong> for {chosen} as "
        f"{html.escape(contact.name)}. Those who were paged are told.</p>",
    )
