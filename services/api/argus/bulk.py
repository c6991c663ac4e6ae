"""``incidents/acks/bulk/`` and ``incidents/events/bulk/``: one change on many incidents.

As Argus's ``BulkAcknowledgementViewSet``/``BulkEventViewSet`` do: the body
names the incidents (``ids``) and one ``ack`` or ``event``; the answer has a
status per id, ``{"changes": {"<id>": {"ack"|"event": …|null, "status": 201|400,
"errors": …|null}}}``, and is 201 when at least one change was made, 400 when
none was.  Each id goes through the same code as the single endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.params import RawBody

from services.api.argus import plumbing
from services.api.argus.events import add_ack, add_event
from services.api.argus.schemas import AckIn, EventIn
from services.api.errors import ApiError

MAX_IDS = 1000


class BulkAckIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ids: list[int]
    ack: AckIn


class BulkEventIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ids: list[int]
    event: EventIn


def _bulk(ids: list[int], key: str, one: Callable[[int], object]) -> Response[dict[str, Any]]:
    if not ids:
        raise ApiError(400, "ids must name at least one incident", "ids")
    if len(ids) > MAX_IDS:
        raise ApiError(400, f"at most {MAX_IDS} ids at once", "ids")
    changes: dict[str, dict[str, Any]] = {}
    for pk in dict.fromkeys(ids):
        try:
            done = one(pk)
        except ApiError as exc:
            message = (
                f"Incident with id {pk} could not be found."
                if exc.status_code == 404
                else str(exc.detail)
            )
            errors = {exc.field or "ids": message}
            changes[str(pk)] = {key: None, "status": 400, "errors": errors}
        else:
            changes[str(pk)] = {key: msgspec.to_builtins(done), "status": 201, "errors": None}
    made = any(c["status"] == 201 for c in changes.values())
    return Response({"changes": changes}, status_code=201 if made else 400)


@post("/incidents/acks/bulk/", sync_to_thread=True)
def bulk_acks(request: Request[Any, Any, Any], body: RawBody) -> Response[dict[str, Any]]:
    """Acknowledge many incidents with one ``ack``."""
    data = plumbing.decode(body, BulkAckIn)
    return _bulk(data.ids, "ack", lambda pk: add_ack(request, pk, data.ack))


@post("/incidents/events/bulk/", sync_to_thread=True)
def bulk_events(request: Request[Any, Any, Any], body: RawBody) -> Response[dict[str, Any]]:
    """Post one ``event`` (END, CLO, REO, …) on many incidents."""
    data = plumbing.decode(body, BulkEventIn)
    return _bulk(data.ids, "event", lambda pk: add_event(request, pk, data.event))


bulk_handlers = [bulk_acks, bulk_events]
