"""A requeue the broker refuses removes no dead letter and says so (CLI exit 1, not a traceback).

A quorum queue refuses messages while its leader's node is down
(docs/reliability.md, "Publishing while a queue has no leader").  A full
classic queue with ``reject-publish`` refuses the same way on one node, so
the letter's origin queue is one here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pika
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from shared.amqp import Names, connect, declare_topology
from shared.config import Settings
from shared.deadletters import RequeueRefused, dead_channel, fetch, requeue
from tests.conftest import settings_env

pytestmark = pytest.mark.integration


@pytest.fixture
def full_origin(settings: Settings) -> Iterator[str]:
    """A dead letter in ``NS.dead`` whose origin queue is full and refuses publishes."""
    names = Names(settings.namespace)
    origin = f"{settings.namespace}.full-origin"
    conn = connect(settings.amqp_url, name="tocsin-test")
    ch = conn.channel()
    declare_topology(ch, names, settings.partitions)
    ch.queue_declare(
        origin, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    ch.confirm_delivery()
    ch.basic_publish("", origin, b"{}")
    ch.basic_publish(
        "",
        names.dead,
        json.dumps({"entity": "web", "check": "http"}).encode(),
        properties=pika.BasicProperties(
            delivery_mode=2,
            message_id="refused-1",
            headers={
                "x-tocsin-queue": origin,
                "x-tocsin-stage": "ingest",
                "x-tocsin-error": "test",
                "x-tocsin-time": int(time.time()),
            },
        ),
    )
    try:
        yield origin
    finally:
        ch.queue_delete(origin)
        conn.close()


def _dead_depth(settings: Settings) -> int:
    conn = connect(settings.amqp_url, name="tocsin-test")
    try:
        ok = conn.channel().queue_declare(Names(settings.namespace).dead, passive=True)
        return int(ok.method.message_count)
    finally:
        conn.close()


def test_a_refused_copy_raises_and_the_letter_stays(settings: Settings, full_origin: str) -> None:
    with dead_channel(settings) as (channel, queue):
        letters = fetch(channel, queue, 10)
        assert [d.queue for d in letters] == [full_origin]
        with pytest.raises(RequeueRefused, match="no dead letter was removed"):
            requeue(channel, letters)
    assert _dead_depth(settings) == 1


def test_the_cli_says_the_broker_refused_and_exits_1(settings: Settings, full_origin: str) -> None:
    result = CliRunner().invoke(app, ["dead", "requeue", "--all"], env=settings_env(settings))
    assert result.exit_code == 1, result.output
    assert "refused the copy" in result.stderr and full_origin in result.stderr
    assert "Traceback" not in result.output
    assert _dead_depth(settings) == 1
