"""Event sources over HTTP: Alertmanager webhooks, Prometheus pushes, declared JSON sources.

Each route checks the payload with the same pure decoder ingest uses (so the
caller learns at once which alerts were bad, by index and field), then
publishes the body unchanged on ``NS.events`` with the source's routing key;
ingest decodes it again, routes the good events and dead-letters the bad ones.
A body that is not the expected shape at all is refused (400) and not published.

Webhook senders often cannot set headers, so ``/sources/alertmanager`` and
``/sources/{name}/events`` also take ``?token=``; they are marked public for
the global guard and compare the token here, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.audit import note_change
from services.api.auth import connection_client, refuse_locked, token_from_header
from services.api.context import ApiContext, ctx_of
from services.api.errors import ApiError, split_field
from services.api.paging import page_of
from services.api.schemas import Page
from shared import intake
from shared.consumer import AMQP_ERRORS
from shared.formats import alertmanager, generic
from shared.formats.bodies import Decoded
from shared.keys import check_id

RESERVED_NAMES = frozenset({"alertmanager"})
_INDEX = re.compile(r"\[(\d+)\]|at item (\d+)")


class DeclaredSourceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /sources`` body: a name and the field mapping."""

    name: generic.SourceName
    mapping: generic.FieldMapping


class DeclaredSource(msgspec.Struct, kw_only=True):
    """A declared source as stored in Redis (``Keys.sources()``); the token only hashed."""

    name: str
    mapping: generic.FieldMapping
    token_sha256: str
    created: float


class DeclaredSourceOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    mapping: generic.FieldMapping
    created: float
    events_url: str
    token: str | None = None  # only in the response that creates the source


class Rejection(msgspec.Struct):
    index: int | None
    field: str | None
    error: str


class SourceResult(msgspec.Struct):
    """What happened to a payload: how many events it gave, and each rejected item."""

    accepted: int
    rejected: list[Rejection]


# ----------------------------------------------------------------------------- shared


def _presented_token(request: Request[Any, Any, Any]) -> str | None:
    return token_from_header(request.headers.get("authorization")) or request.query_params.get(
        "token"
    )


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unauthorized(presented: str | None) -> ApiError:
    return ApiError(401, "missing token" if presented is None else "invalid token", "token")


def _authorise(request: Request[Any, Any, Any], presented: str | None, ok: bool) -> None:
    """The global guard's failed-auth limit, for the routes that compare tokens themselves.

    Without it ``?token=`` on these public routes would be an unlimited
    oracle for the admin token and the sources' tokens.
    """
    failed = ctx_of(request).failed_auth
    client = connection_client(request)
    refuse_locked(failed, client, time.monotonic())
    if not ok:
        if presented is not None:
            failed.record(client, time.monotonic())
        raise _unauthorized(presented)


def _rejections(decoded: Decoded) -> list[Rejection]:
    out = []
    for _, reason in decoded.rejected:
        message, field = split_field(reason)
        match = _INDEX.search(reason)
        index = int(match.group(1) or match.group(2)) if match else None
        out.append(Rejection(index=index, field=field, error=message.strip()))
    return out


async def _publish(send: Awaitable[object]) -> None:
    """Wait for a send to be committed; a broker that is away is a 503."""
    try:
        await send
    except AMQP_ERRORS as exc:
        raise ApiError(503, f"broker unavailable: {exc!r}") from None


def _result(decoded: Decoded, ok_status: int) -> Response[SourceResult]:
    """``ok_status`` when something was accepted (or the payload was empty), else 422."""
    status = ok_status if decoded.accepted or not decoded.rejected else 422
    return Response(SourceResult(len(decoded.accepted), _rejections(decoded)), status_code=status)


def _refuse_if_malformed(decoded: Decoded) -> None:
    # A body-level failure (not JSON, wrong top-level shape, too big) has no items.
    if not decoded.accepted and len(decoded.rejected) == 1:
        reason = decoded.rejected[0][1]
        if reason.startswith(("body:", "payload:", "items:", "envelope:")):
            message, field = split_field(reason)
            raise ApiError(400, message.strip(), field or "body")


async def _alertmanager(request: Request[Any, Any, Any], want_list: bool) -> Response[SourceResult]:
    ctx = ctx_of(request)
    body = await request.body()
    message_id, now = uuid.uuid4().hex, time.time()
    # Decoded once: the answer and the published events come from the same decode.
    decoded = alertmanager.decode_body(
        body,
        intake.received_time(now),
        message_id,
        identity_labels=ctx.settings.identity_labels,
    )
    _refuse_if_malformed(decoded)
    if want_list and not body.lstrip().startswith(b"["):
        raise ApiError(400, "expected a JSON array of alerts (Alertmanager API v2)", "body")
    await _publish(ctx.sender.send_decoded_async(body, "alertmanager", decoded, message_id, now))
    return _result(decoded, 200)


# ----------------------------------------------------------------------------- Alertmanager


@post("/sources/alertmanager", opt={"auth": "signature"}, tags=["intake"], status_code=200)
async def alertmanager_webhook(request: Request[Any, Any, Any]) -> Response[SourceResult]:
    """Alertmanager's webhook receiver (payload version 4); admin token in header or ``?token=``.

    Public for the global guard because Alertmanager's ``url`` may carry the
    token in the query string; the token is compared here, in constant time.
    """
    ctx = ctx_of(request)
    presented = _presented_token(request)
    expected = ctx.settings.api_token or ""
    ok = presented is not None and bool(expected) and _same(presented, expected)
    _authorise(request, presented, ok)
    return await _alertmanager(request, want_list=False)


@post("/api/v2/alerts", tags=["intake"], status_code=200, opt={"audit": False})  # intake
async def prometheus_alerts(request: Request[Any, Any, Any]) -> Response[SourceResult]:
    """Alertmanager API v2 alert list, so Prometheus can push straight to Tocsin.

    Needs the admin token as a bearer token (Prometheus ``authorization:``).
    """
    return await _alertmanager(request, want_list=True)


# ----------------------------------------------------------------------------- declared sources


def _load(ctx: ApiContext, name: str) -> DeclaredSource:
    raw = ctx.redis.hget(ctx.keys.sources(), name)
    if raw is None:
        raise ApiError(404, f"source {name!r} not found", "name")
    return msgspec.json.decode(raw, type=DeclaredSource)


def _out(ctx: ApiContext, record: DeclaredSource, token: str | None = None) -> DeclaredSourceOut:
    return DeclaredSourceOut(
        name=record.name,
        mapping=record.mapping,
        created=record.created,
        events_url=f"/sources/{record.name}/events",
        token=token,
    )


@post("/sources", tags=["sources"], status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_source(request: Request[Any, Any, Any], body: RawBody) -> DeclaredSourceOut:
    """Declare a generic JSON source; the response carries its token, shown only once."""
    ctx = ctx_of(request)
    try:
        source = msgspec.json.decode(body, type=DeclaredSourceIn)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        message, field = split_field(str(exc))
        raise ApiError(422, message.strip(), field) from None
    if source.name in RESERVED_NAMES:
        raise ApiError(409, f"source name {source.name!r} is reserved", "name")
    token = secrets.token_urlsafe(32)
    record = DeclaredSource(
        name=source.name,
        mapping=source.mapping,
        token_sha256=_sha256(token),
        created=time.time(),
    )
    if not ctx.redis.hsetnx(ctx.keys.sources(), source.name, msgspec.json.encode(record)):
        raise ApiError(409, f"source {source.name!r} already exists", "name")
    note_change(request, target=f"source:{source.name}", after=_out(ctx, record))  # no token
    return _out(ctx, record, token)


@get("/sources", tags=["sources"], sync_to_thread=True)
def list_sources(
    request: Request[Any, Any, Any], limit: FromQuery[int] = 100, offset: FromQuery[int] = 0
) -> Page[DeclaredSourceOut]:
    ctx = ctx_of(request)
    records = ctx.redis.hgetall(ctx.keys.sources())
    items = [
        _out(ctx, msgspec.json.decode(raw, type=DeclaredSource))
        for _, raw in sorted(records.items())
    ]
    return page_of(items, limit, offset)


@get("/sources/{name:str}", tags=["sources"], sync_to_thread=True)
def get_source(request: Request[Any, Any, Any], name: FromPath[str]) -> DeclaredSourceOut:
    ctx = ctx_of(request)
    return _out(ctx, _load(ctx, name))


@delete(
    "/sources/{name:str}", tags=["sources"], status_code=HTTP_204_NO_CONTENT, sync_to_thread=True
)
def delete_source(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    ctx = ctx_of(request)
    before = _load_or_none(ctx, name)
    if not ctx.redis.hdel(ctx.keys.sources(), name):
        raise ApiError(404, f"source {name!r} not found", "name")
    ctx.check_quota.forget(f"declared:{name}")
    note_change(request, target=f"source:{name}", before=before and _out(ctx, before))


@post("/sources/{name:str}/events", opt={"auth": "signature"}, tags=["intake"], status_code=202)
async def source_events(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[SourceResult]:
    """A declared source's payload; its own token (or the admin token), header or ``?token=``.

    Published wrapped with the source's mapping (routing key ``generic``);
    items whose mapping fails are dead-lettered naming the pointer.
    """
    ctx = ctx_of(request)
    presented = _presented_token(request)
    record = await anyio.to_thread.run_sync(lambda: _load_or_none(ctx, name))
    admin = ctx.settings.api_token or ""
    authorised = presented is not None and (
        (record is not None and _same(_sha256(presented), record.token_sha256))
        or (bool(admin) and _same(presented, admin))
    )
    _authorise(request, presented, authorised)  # before 404: do not reveal which sources exist
    if record is None:
        raise ApiError(404, f"source {name!r} not found", "name")
    payload = await request.body()
    decoded = generic.map_payload(payload, record.mapping, time.time(), "check", f"generic:{name}")
    _refuse_if_malformed(decoded)
    ids = [check_id(e.entity, e.check) for e in decoded.accepted]
    await anyio.to_thread.run_sync(lambda: ctx.admit_checks("declared", name, ids))
    envelope = generic.envelope(name, record.mapping, payload)
    await _publish(ctx.sender.send_async([envelope], routing_key="generic"))
    return _result(decoded, 202)


def _load_or_none(ctx: ApiContext, name: str) -> DeclaredSource | None:
    try:
        return _load(ctx, name)
    except ApiError:
        return None


sources_router = Router(
    path="/",
    route_handlers=[
        alertmanager_webhook,
        prometheus_alerts,
        create_source,
        list_sources,
        get_source,
        delete_source,
        source_events,
    ],
    opt={"reads": "viewer", "writes": "admin"},  # services/api/access.py
)
