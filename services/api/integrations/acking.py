"""One acknowledgement from a page, whichever way it came in (link, Slack, PagerDuty, SMS).

The decision (:func:`decide`) is pure: may this contact acknowledge this
check now?  :func:`acknowledge` loads the check, asks, claims the
once-per-episode marker and publishes an ordinary ``acknowledgement`` event,
so the processor makes it an unscheduled maintenance, an ACK on the incident
and an ack notification to those who were paged, like any other.  The event
names the contact and the channel; the processor keeps both on the ack.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio.to_thread
import msgspec
from litestar import Request, Response

from services.api.auth import connection_client, refuse_locked
from services.api.context import ApiContext, ctx_of
from shared.check_store import CheckStore
from shared.checks import CheckDetail
from shared.consumer import AMQP_ERRORS
from shared.models import Contact

log = logging.getLogger("tocsin.api.acks")

Channel = Literal["link", "slack", "pagerduty", "sms"]
# The once-per-episode marker outlives any link (links last at most a few days).
ONCE_TTL_S = 14 * 86400
# Replay guard for inbound requests: longer than every provider's replay window.
SEEN_TTL_S = 86400


class AckOutcome(enum.StrEnum):
    """Every answer a way in can give; the metric ``tocsin_api_page_acks`` counts them."""

    ACKED = "acked"
    UNKNOWN_CHECK = "unknown_check"
    NOT_FAILING = "not_failing"  # the check is ok (or the episode ended): nothing to acknowledge
    EPISODE_ENDED = "episode_ended"  # failing again, but not the episode the page was about
    ALREADY_USED = "already_used"  # this contact already acknowledged this episode from a page
    ALREADY_ACKED = "already_acked"  # PagerDuty echoing an ack Tocsin already has
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    MALFORMED = "malformed"
    REPLAY = "replay"
    UNKNOWN_USER = "unknown_user"
    UNAVAILABLE = "unavailable"  # the broker is down: nothing acknowledged, try again
    IGNORED = "ignored"  # a request that asks for nothing (another event type, an Open button)
    COMMENTED = "commented"  # resolved in PagerDuty while failing: noted on the incident only


@dataclass(frozen=True, slots=True)
class AckRequest:
    """Who acknowledges what, and how sure the way in is about the episode."""

    entity: str
    check: str
    contact: Contact
    channel: Channel
    duration: int
    episode_id: str | None = None  # the page's episode: refused if the check moved on
    once: bool = True  # claim the once-per-episode marker (links, Slack, SMS)
    skip_if_acked: bool = False  # PagerDuty: an ack Tocsin already has is not news


def decide(detail: CheckDetail | None, req: AckRequest, now: float) -> AckOutcome | None:
    """Why ``req`` must not acknowledge, or None when it may."""
    if detail is None:
        return AckOutcome.UNKNOWN_CHECK
    if not detail.failing:
        return AckOutcome.NOT_FAILING
    if req.episode_id is not None and detail.incident_id != req.episode_id:
        return AckOutcome.EPISODE_ENDED
    ack = detail.acknowledgement
    if req.skip_if_acked and ack is not None and ack.covers(now):
        return AckOutcome.ALREADY_ACKED
    return None


def count(ctx: ApiContext, channel: Channel, outcome: AckOutcome) -> AckOutcome:
    ctx.page_acks.labels(channel, outcome.value).inc()
    log.info("page ack", extra={"channel": channel, "outcome": outcome.value})
    return outcome


def refuse_guessers(request: Request[Any, Any, Any]) -> None:
    """429 while this client is locked out by the API's failed-auth limiter.

    The ways in share the limiter of the bearer guard and the dashboard login
    (services/api/auth.py): a client forging signatures or links is slowed
    like one guessing tokens.
    """
    ctx = ctx_of(request)
    refuse_locked(ctx.failed_auth, connection_client(request), time.monotonic())


def count_forgery(
    request: Request[Any, Any, Any], channel: Channel, outcome: AckOutcome
) -> AckOutcome:
    """Count a bad signature or token, against the client in the failed-auth limiter too."""
    ctx = ctx_of(request)
    ctx.failed_auth.record(connection_client(request), time.monotonic())
    return count(ctx, channel, outcome)


def first_time(ctx: ApiContext, channel: Channel, raw: bytes | str) -> bool:
    """True the first time this exact request is seen (a replay guard, by content digest)."""
    data = raw.encode() if isinstance(raw, str) else raw
    digest = hashlib.sha256(data).hexdigest()
    return bool(ctx.redis.set(ctx.keys.ack_seen(channel, digest), "1", nx=True, ex=SEEN_TTL_S))


T = TypeVar("T")


async def admit(
    request: Request[Any, Any, Any],
    channel: Channel,
    check_signature: Callable[[ApiContext, bytes], str | None],
    decode: Callable[[bytes], T],
    malformed: str,
    replay_key: Callable[[T], str],
    replayed: Response[Any],
) -> tuple[ApiContext, T] | Response[Any]:
    """The gate of every signed way in (Slack, SMS, PagerDuty), in one order.

    1. a client locked out by the failed-auth limiter gets 429;
    2. ``check_signature`` says why the signature is wrong, or None: a forgery
       is counted against the client and answered 401 ``{"error": why}``;
    3. a body ``decode`` rejects is answered 400 ``{"error": malformed}``;
    4. a request whose ``replay_key`` was seen before (a replay inside the
       provider's window) is counted and answered ``replayed``.

    Returns the context and the decoded body, or the answer to send.  One
    function so that a new way in cannot forget a step or take them in
    another order.
    """
    refuse_guessers(request)
    ctx = ctx_of(request)
    body = await request.body()
    refused = check_signature(ctx, body)
    if refused:
        count_forgery(request, channel, AckOutcome.BAD_SIGNATURE)
        return Response({"error": refused}, status_code=401)
    try:
        parsed = decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError):
        count(ctx, channel, AckOutcome.MALFORMED)
        return Response({"error": malformed}, status_code=400)
    if not await anyio.to_thread.run_sync(first_time, ctx, channel, replay_key(parsed)):
        count(ctx, channel, AckOutcome.REPLAY)
        return replayed
    return ctx, parsed


@dataclass(frozen=True, slots=True)
class AckResult:
    outcome: AckOutcome
    detail: CheckDetail | None


def acknowledge(ctx: ApiContext, req: AckRequest) -> AckResult:
    """Acknowledge ``req`` if :func:`decide` allows it; counts the outcome either way."""
    now = time.time()
    detail = CheckStore(ctx.redis, ctx.keys).get(req.entity, req.check, now)
    refused = decide(detail, req, now)
    if refused is not None:
        return AckResult(count(ctx, req.channel, refused), detail)
    assert detail is not None  # decide() refuses an unknown check
    # A failing check without an incident (none recorded for it) is one episode per check.
    episode = detail.incident_id or f"check-{detail.id}"
    once_key = ctx.keys.ack_once(episode, req.contact.id)
    if req.once and not ctx.redis.set(once_key, req.channel, nx=True, ex=ONCE_TTL_S):
        return AckResult(count(ctx, req.channel, AckOutcome.ALREADY_USED), detail)
    event = {
        "entity": req.entity,
        "check": req.check,
        "state": "acknowledgement",
        "summary": f"acknowledged by {req.contact.name} via {req.channel}",
        "duration": req.duration,
        "time": now,
        "acknowledged_by": req.contact.name,
        "ack_contact_id": req.contact.id,
        "ack_channel": req.channel,
    }
    try:
        ctx.sender.send([msgspec.json.encode(event)])
    except AMQP_ERRORS:
        if req.once:
            ctx.redis.delete(once_key)  # nothing was acknowledged: the link still works
        return AckResult(count(ctx, req.channel, AckOutcome.UNAVAILABLE), detail)
    return AckResult(count(ctx, req.channel, AckOutcome.ACKED), detail)
