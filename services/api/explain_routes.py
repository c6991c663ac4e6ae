"""Why was I paged, and why wasn't I? ``GET /checks/{entity}/{check}/explain`` and ``POST /simulate``.

The explain timeline merges the check's decision records (processor and
notifier verdicts, ``shared/explain/reading.py``) with the gateways' delivery
log for the check, oldest first.  ``POST /simulate`` is the dry run of
``shared/explain/`` (``simulate.py``, read through ``dry_run.py``): the same
cores, on the current state, with nothing written.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from services.api.context import ctx_of
from services.api.errors import ApiError, split_field
from shared.delivery_log import DeliveryLogEntry, read_delivery_log
from shared.explain.dry_run import dry_run
from shared.explain.reading import read_records
from shared.explain.records import EventRecord, NotificationRecord
from shared.explain.simulate import DryRun, event_of
from shared.keys import Keys, check_id
from shared.models import ENCODER

DEFAULT_SINCE = "24h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DeliveryRecord(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag="delivery", tag_field="kind"
):
    """One gateway attempt from the delivery log, with a sentence saying how it went."""

    time: float
    notification_id: str
    delivery_id: str
    type: str
    contact_id: str = ""
    medium_id: str
    medium_type: str
    address: str
    outcome: str
    attempts: int
    latency_ms: float
    error: str = ""
    status: int | None = None
    text: str


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """A check's decisions and deliveries since ``since``, oldest first."""

    entity: str
    check: str
    check_id: str
    since: float
    now: float
    items: list[EventRecord | NotificationRecord | DeliveryRecord]


class SimulateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event: dict[str, Any]
    time: float | None = None


def parse_since(text: str, now: float) -> float:
    """``1h``, ``90m``, ``2d``, ``all`` or epoch seconds -> the earliest time to show."""
    text = text.strip().lower()
    if text in ("all", "0"):
        return 0.0
    unit = _UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    try:
        value = float(number)
    except ValueError:
        raise ApiError(
            400, f"since: bad value {text!r} (use e.g. 1h, 30m, 2d, all)", "since"
        ) from None
    if unit:
        return now - value * unit
    return value if value > 1e8 else now - value  # a plain number: epoch, or seconds back


def delivery_text(e: DeliveryLogEntry) -> str:
    """How one attempt went, in words (from the log entry's own fields)."""
    tries = f"{e.attempts} attempt{'s' if e.attempts != 1 else ''}"
    if e.outcome == "delivered":
        return f"delivered in {e.latency_ms:.0f} ms after {tries}"
    why = f": {e.error}" if e.error else ""
    if e.outcome == "retry":
        return f"attempt {e.attempts} failed, will retry{why}"
    if e.outcome == "failed":
        return f"refused after {tries}, dead-lettered{why}"
    return f"gave up after {tries}, dead-lettered{why}"


def timeline(r: Any, keys: Keys, entity: str, check: str, since: float, now: float) -> Timeline:
    """The check's decision records and delivery attempts since ``since`` (two reads)."""
    cid = check_id(entity, check)
    items: list[EventRecord | NotificationRecord | DeliveryRecord] = list(
        read_records(r, keys, cid, since)
    )
    for e in read_delivery_log(r, keys, entity=entity, check=check, limit=1000):
        if e.time < since:
            continue
        items.append(
            DeliveryRecord(
                time=e.time,
                notification_id=e.notification_id,
                delivery_id=e.delivery_id,
                type=e.type,
                contact_id=e.contact_id,
                medium_id=e.medium_id,
                medium_type=e.medium_type,
                address=e.address,
                outcome=e.outcome,
                attempts=e.attempts,
                latency_ms=e.latency_ms,
                error=e.error,
                status=e.status,
                text=delivery_text(e),
            )
        )
    # Stable: records keep their pipeline order among equal times, deliveries come after.
    items.sort(key=lambda i: i.time)
    return Timeline(entity=entity, check=check, check_id=cid, since=since, now=now, items=items)


@get("/checks/{entity:str}/{check:str}/explain", sync_to_thread=True)
def explain(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    check: FromPath[str],
    since: FromQuery[str] = DEFAULT_SINCE,
) -> Timeline:
    """Events, filter decisions, notifications, routing verdicts and deliveries of one check."""
    ctx = ctx_of(request)
    now = time.time()
    found = timeline(ctx.redis, ctx.keys, entity, check, parse_since(since, now), now)
    if not found.items and not ctx.redis.exists(ctx.keys.check(check_id(entity, check))):
        raise ApiError(404, f"no such check {entity}:{check} (no event seen for it)", "check")
    return found


@post("/simulate", status_code=200, sync_to_thread=True, opt={"role": "viewer", "audit": False})
def simulate(request: Request[Any, Any, Any], data: JSONBody[SimulateIn]) -> DryRun:
    """Dry run: what the pipeline would decide for ``event`` at ``time`` (default now); writes nothing."""
    ctx = ctx_of(request)
    try:
        event = event_of(ENCODER.encode(data.event), at=data.time)
    except ValueError as exc:
        message, field = split_field(str(exc))
        raise ApiError(422, message, f"event.{field}" if field else "event") from None
    return dry_run(ctx.redis, ctx.keys, event, ctx.settings.history_max_age_s)


explain_router = Router(
    path="/", route_handlers=[explain, simulate], tags=["explain"], opt={"reads": "viewer"}
)
