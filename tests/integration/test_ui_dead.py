"""The dashboard's dead-letter page: list, show (masked), requeue by id, purge with confirmation."""

from __future__ import annotations

import json
import time

import pika
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.amqp import Names, connect
from tests.integration.test_ui_pages import anon, client, csrf_of, ctx
from tests.support import collect

pytestmark = pytest.mark.integration
__all__ = ["anon", "client", "ctx"]


def _bury(
    ctx: ApiContext, message_id: str, body: dict[str, object], reason: str, queue: str = ""
) -> None:
    """A letter as a worker dead-letters it: from NS.ingest (or ``queue``), with its stage and reason."""
    names = Names(ctx.settings.namespace)
    assert ctx.sender.ping()  # declares the topology, dead-letter queue included
    conn = connect(ctx.settings.amqp_url, name="tocsin-test")
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(
            "",
            names.dead,
            json.dumps(body).encode(),
            properties=pika.BasicProperties(
                delivery_mode=2,
                message_id=message_id,
                headers={
                    "x-tocsin-queue": queue or names.ingest,
                    "x-tocsin-routing-key": "flapjack",
                    "x-tocsin-stage": "ingest",
                    "x-tocsin-error": reason,
                    "x-tocsin-time": int(time.time()) - 90,
                },
            ),
        )
    finally:
        conn.close()


def _depth(ctx: ApiContext) -> int:
    conn = connect(ctx.settings.amqp_url, name="tocsin-test")
    try:
        q = conn.channel().queue_declare(Names(ctx.settings.namespace).dead, passive=True)
        return int(q.method.message_count)
    finally:
        conn.close()


def test_dead_letters_are_listed_shown_requeued_and_purged(
    client: TestClient,  # type: ignore[type-arg]
    ctx: ApiContext,
) -> None:
    _bury(
        ctx,
        "dl-1",
        {"entity": "web1", "check": "http", "state": "bogus", "secret": "s3"},
        "state: bogus",
    )
    _bury(ctx, "dl-2", {"entity": "db1", "check": "disk", "state": "worse"}, "state: worse")

    overview = client.get("/ui/").text
    assert '<a href="/ui/dead"><span class="num" data-count="dead-letters">2<' in overview
    page = client.get("/ui/dead")
    assert page.status_code == 200
    assert "dl-1" in page.text and "web1:http" in page.text and "state: bogus" in page.text
    assert "1m 30s" in page.text or "1m 31s" in page.text  # the age column

    shown = client.get("/ui/dead?id=dl-1").text
    assert 'id="dead-shown"' in shown
    assert "&#34;secret&#34;: &#34;***&#34;" in shown  # masked, then HTML-escaped
    assert "s3" not in shown
    assert client.get("/ui/dead?id=nosuch").status_code == 404

    csrf = csrf_of(page.text)
    r = client.post("/ui/dead/requeue", data={"csrf": csrf, "id": "dl-1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/dead?done=requeued&n=1"
    assert "Requeued 1 dead letter(s)" in client.get(r.headers["location"]).text
    (back,) = collect(ctx.settings, [Names(ctx.settings.namespace).ingest], 1, timeout=10)
    assert back["message_id"] == "dl-1"
    assert _depth(ctx) == 1

    refused = client.post("/ui/dead/purge", data={"csrf": csrf})
    assert refused.status_code == 422 and "tick the box" in refused.text
    assert _depth(ctx) == 1
    forged = client.post("/ui/dead/purge", data={"csrf": "forged", "confirm": "1"})
    assert forged.status_code == 403 and _depth(ctx) == 1
    r = client.post("/ui/dead/purge", data={"csrf": csrf, "confirm": "1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/dead?done=purged&n=1"
    assert _depth(ctx) == 0
    assert "None. Nothing was refused" in client.get("/ui/dead").text


def test_a_requeue_the_broker_refuses_says_so_and_keeps_the_letter(
    client: TestClient,  # type: ignore[type-arg]
    ctx: ApiContext,
) -> None:
    """The origin queue refuses the copy (full, ``reject-publish``; a quorum queue without a
    leader refuses the same way): a 503 page naming it, and the letter still there."""
    origin = f"{ctx.settings.namespace}.full-origin"
    conn = connect(ctx.settings.amqp_url, name="tocsin-test")
    ch = conn.channel()
    ch.queue_declare(
        origin, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    ch.confirm_delivery()
    ch.basic_publish("", origin, b"{}")
    try:
        _bury(ctx, "dl-full", {"entity": "web1", "check": "http"}, "test", queue=origin)
        csrf = csrf_of(client.get("/ui/dead").text)
        r = client.post("/ui/dead/requeue", data={"csrf": csrf, "id": "dl-full"})
        assert r.status_code == 503
        assert "refused the copy" in r.text and "no dead letter was removed" in r.text
        assert _depth(ctx) == 1
    finally:
        ch.queue_delete(origin)
        conn.close()
