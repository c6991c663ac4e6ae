"""The audit log: a capped Redis stream, written by a middleware, read by ``GET /audit``.

The middleware records every write request that succeeded (and every one a
role refused) once the response is sent, so no handler can forget to; a
handler adds before/after with :func:`note_change`.  A POST that changes
nothing (a dry run, a validation) says so with ``opt={"audit": False}``.  Reads and the routes
that authenticate by signature or are public (intake) are not operator
actions and are not recorded.  See docs/users.md.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio.to_thread
import msgspec
import redis
from litestar import Request, get
from litestar.params import FromQuery
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.api.access import need_of
from services.api.auth import PRINCIPAL, client_key
from services.api.errors import ApiError
from shared.audit import AuditQuery, AuditRecord, matches
from shared.keys import Keys
from shared.people import Principal

log = logging.getLogger(__name__)

# Records kept (approximately: Redis trims whole macro nodes).
AUDIT_MAXLEN = 100_000
NOTE = "audit_note"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_LIMIT = 1000
_dec = msgspec.json.Decoder(AuditRecord)


class AuditLog:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.keys = keys

    def append(self, record: AuditRecord) -> None:
        self.redis.xadd(
            self.keys.audit(),
            {"r": msgspec.json.encode(record)},
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )

    def query(self, query: AuditQuery, limit: int) -> tuple[list[AuditRecord], int]:
        """Newest first: up to ``limit`` matching records, and how many match in all."""
        low = f"{int(query.since * 1000)}-0" if query.since else "-"
        items: list[AuditRecord] = []
        total = 0
        high = "+"
        while True:
            batch = self.redis.xrevrange(self.keys.audit(), max=high, min=low, count=1000)
            for _, fields in batch:
                rec = _dec.decode(fields["r"])
                if matches(rec, query):
                    total += 1
                    if len(items) < limit:
                        items.append(rec)
            if len(batch) < 1000:
                return items, total
            ms, _, seq = batch[-1][0].partition("-")
            high = f"{ms}-{int(seq) - 1}" if int(seq) else f"{int(ms) - 1}-18446744073709551615"


def note_change(
    request: Request[Any, Any, Any], *, target: str, before: Any = None, after: Any = None
) -> None:
    """Give the request's audit record its target and before/after (masked views only)."""
    request.state[NOTE] = {
        "target": target,
        "before": msgspec.to_builtins(before),
        "after": msgspec.to_builtins(after),
    }


def note_action(scope: Scope, action: str, target: str = "", actor: str = "") -> None:
    """Name a record's action (and actor) where the route alone does not: the dashboard's login."""
    scope.setdefault("state", {})[NOTE] = {"target": target, "action": action, "actor": actor}


def record_of(scope: Scope, status: int, now: float) -> AuditRecord | None:
    """The audit record of a finished request, or None when it is not one to keep."""
    handler = scope.get("route_handler")
    method = scope.get("method", "")
    if handler is None or method in READS or handler.opt.get("audit") is False:
        return None
    note: dict[str, Any] = scope.get("state", {}).get(NOTE) or {}
    need = need_of(handler.opt, frozenset(getattr(handler, "http_methods", ())))
    if need.auth in ("public", "signature") and not note:
        return None
    if status >= 400 and status != 403 and not note.get("action"):
        return None
    who: Principal | None = scope.get("state", {}).get(PRINCIPAL)
    params = scope.get("path_params") or {}
    client = scope.get("client")
    action = note.get("action") or handler.handler_name
    return AuditRecord(
        time=now,
        actor=note.get("actor") or (who.name if who else "dashboard"),
        actor_kind=who.kind if who else ("session" if need.auth == "session" else ""),
        role=who.role if who else "",
        action=action if status != 403 else f"denied:{action}",
        target=note.get("target") or ",".join(f"{k}={v}" for k, v in sorted(params.items())),
        method=str(method),
        route=scope.get("path_template") or "",
        status=status,
        client=client_key(client[0] if client else None),
        before=note.get("before"),
        after=note.get("after"),
    )


def audit_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: one audit record per finished write request (see :func:`record_of`)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            record = record_of(scope, status, time.time())
            if record is not None:
                ctx = scope["app"].state.ctx
                try:
                    await anyio.to_thread.run_sync(AuditLog(ctx.redis, ctx.keys).append, record)
                except redis.RedisError as exc:
                    log.error(
                        "audit record lost", extra={"action": record.action, "error": repr(exc)}
                    )

    return middleware


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditRecord]
    total: int
    limit: int


@get("/audit", sync_to_thread=True, tags=["audit"], opt={"role": "admin"})
def list_audit(
    request: Request[Any, Any, Any],
    actor: FromQuery[str] = "",
    action: FromQuery[str] = "",
    target: FromQuery[str] = "",
    since: FromQuery[float] = 0.0,
    limit: FromQuery[int] = 100,
) -> AuditPage:
    """Audit records, newest first; ``action`` matches a prefix, ``since`` is epoch seconds."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}", "limit")
    if not 0 <= since <= 1e11:  # also refuses NaN
        raise ApiError(400, "since must be epoch seconds", "since")
    ctx = request.app.state.ctx
    query = AuditQuery(actor=actor, action=action, target=target, since=since)
    items, total = AuditLog(ctx.redis, ctx.keys).query(query, limit)
    return AuditPage(items=items, total=total, limit=limit)
