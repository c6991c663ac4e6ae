"""``POST /media/{id}/test``: send one test message to one medium, now.

A new medium should be tried before the night it matters.  The API hands the
medium's gateway one ``test`` delivery (as the notifier would, on
``NS.deliveries``) for the pseudo-check ``tocsin:medium-test``; the outcome
shows up in the delivery log under its ``delivery_id``, which
``tocsin media test`` polls and prints.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED

from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.amqp import Names
from shared.consumer import AMQP_ERRORS
from shared.models import ENCODER, ContactRef, Delivery, MediumRef

TEST_ENTITY = "tocsin"
TEST_CHECK = "medium-test"


class MediumTestSent(msgspec.Struct):
    delivery_id: str
    entity: str
    check: str


@post("/media/{mid:str}/test", status_code=HTTP_202_ACCEPTED, sync_to_thread=True)
def test_medium(request: Request[Any, Any, Any], mid: FromPath[str]) -> MediumTestSent:
    """Queue one test message for the medium; its outcome appears in ``GET /deliveries``."""
    ctx = ctx_of(request)
    medium = ctx.directory.get_medium(mid)
    if medium is None:
        raise ApiError(404, f"medium {mid!r} not found", "id")
    contact = ctx.directory.get_contact(medium.contact_id)
    nid = f"test-{uuid.uuid4().hex[:16]}"
    delivery = Delivery(
        id=f"{nid}:{medium.id}",
        notification_id=nid,
        type="test",
        entity=TEST_ENTITY,
        check=TEST_CHECK,
        state="ok",
        time=time.time(),
        contact=ContactRef(
            id=medium.contact_id,
            name=contact.name if contact else "?",
            timezone=contact.timezone if contact else "UTC",
        ),
        medium=MediumRef(
            id=medium.id, type=medium.type, address=medium.address, settings=medium.settings
        ),
        summary="Test message from Tocsin (tocsin media test): this medium works.",
    )
    try:
        ctx.sender.send(
            [ENCODER.encode(delivery)],
            routing_key=medium.type,
            exchange=Names(ctx.settings.namespace).deliveries,
            message_ids=[delivery.id],
        )
    except AMQP_ERRORS as exc:
        raise ApiError(503, f"broker unavailable: {exc!r}") from None
    return MediumTestSent(delivery_id=delivery.id, entity=TEST_ENTITY, check=TEST_CHECK)
