"""Upgrading queues an older Tocsin declared as classic: the workers' error, then ``tocsin queues migrate``.

Sets up a namespace the way the previous version left it (``NS.dead`` and two
webhook delay queues as classic queues holding messages), and checks that a
worker's declaration names the command, that the command refuses while a
consumer is attached, that it turns every such queue into a quorum queue
with the same messages (bodies, ids, headers, TTL) and bindings, that the
topology then declares cleanly, and that a run interrupted half-way is
finished by the next one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from shared.amqp import (
    MIGRATE_COMMAND,
    Names,
    QueueTypeMismatch,
    connect,
    dead_queue_args,
    declare_queue,
    declare_topology,
    gateway_retry_args,
)
from shared.config import Settings
from shared.queue_migration import formerly_classic, queue_state
from tests.conftest import settings_env

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(settings: Settings) -> Iterator[pika.BlockingConnection]:
    c = connect(settings.amqp_url, name="tocsin-test-migration")
    yield c
    channel = c.channel()
    for spec in formerly_classic(Names(settings.namespace)):
        channel.queue_delete(spec.holding)
    c.close()


def old_layout(conn: pika.BlockingConnection, names: Names) -> None:
    """What the previous version declared: classic dead and delay queues, with messages."""
    ch = conn.channel()
    ch.exchange_declare(names.dead, exchange_type="fanout", durable=True)
    ch.exchange_declare(names.deliveries, exchange_type="direct", durable=True)
    ch.queue_declare(names.dead, durable=True)
    ch.queue_bind(names.dead, names.dead)
    for level in (0, 1):
        ch.queue_declare(
            names.gateway_retry("webhook", level),
            durable=True,
            arguments={
                "x-queue-type": "classic",
                "x-dead-letter-exchange": names.deliveries,
                "x-dead-letter-routing-key": "webhook",
            },
        )
    for i in range(3):
        ch.basic_publish(
            names.dead,
            "",
            f"letter {i}".encode(),
            pika.BasicProperties(delivery_mode=2, message_id=f"d{i}", headers={"n": i}),
        )
    for i in range(2):
        ch.basic_publish(
            "",
            names.gateway_retry("webhook", 0),
            f"retry {i}".encode(),
            pika.BasicProperties(delivery_mode=2, message_id=f"r{i}", expiration="600000"),
        )
    ch.close()


def publish(conn: pika.BlockingConnection, exchange: str, body: bytes, mid: str) -> None:
    """Publish and wait for the broker's confirm (so a get right after sees it)."""
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(exchange, "", body, pika.BasicProperties(message_id=mid))
    ch.close()


def take_all(conn: pika.BlockingConnection, queue: str) -> list[tuple[str, bytes, object, object]]:
    ch = conn.channel()
    got = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        # Quorum queues count deliveries in a header of their own.
        headers = {k: v for k, v in (props.headers or {}).items() if k != "x-delivery-count"}
        got.append((props.message_id, body, headers or None, props.expiration))
    ch.close()
    return got


def run_migrate(settings: Settings) -> tuple[int, str]:
    """Exit code and stdout (stderr and any exception appended when it failed)."""
    result = CliRunner().invoke(
        app, ["queues", "migrate", "--json"], env=settings_env(settings) | {"COLUMNS": "200"}
    )
    if result.exit_code:
        return result.exit_code, f"{result.stdout}{result.stderr}{result.exception!r}"
    return 0, result.stdout


def test_classic_queues_are_refused_with_the_command_then_migrated_with_their_messages(
    settings: Settings, conn: pika.BlockingConnection
) -> None:
    names = Names(settings.namespace)
    old_layout(conn, names)

    # A worker of this version cannot declare its topology, and says what to run.
    with pytest.raises(QueueTypeMismatch, match=MIGRATE_COMMAND):
        declare_topology(conn.channel(), names, settings.partitions)
    with pytest.raises(QueueTypeMismatch, match=MIGRATE_COMMAND):
        declare_queue(
            conn.channel(),
            names.gateway_retry("webhook", 0),
            gateway_retry_args(names, "webhook"),
        )

    # An old worker still consuming: refused, nothing touched.
    consumer = connect(settings.amqp_url, name="tocsin-test-old-worker")
    try:
        ch = consumer.channel()
        ch.queue_declare(names.dead, passive=True)
        ch.basic_consume(names.dead, lambda *_: None)
        code, output = run_migrate(settings)
        assert code == 1, output
        assert "consumers" in output and names.dead in output, output
    finally:
        consumer.close()
    assert {s.name: queue_state(conn, s) for s in formerly_classic(names)}[names.dead] == "classic"

    code, output = run_migrate(settings)
    assert code == 0, output
    migrated = {m["queue"]: m["messages"] for m in json.loads(output)["migrated"]}
    assert migrated == {
        names.dead: 3,
        names.gateway_retry("webhook", 0): 2,
        names.gateway_retry("webhook", 1): 0,
    }

    # Every such queue is now what this version declares; the rest never existed.
    states = {s.name: queue_state(conn, s) for s in formerly_classic(names)}
    assert {q for q, st in states.items() if st == "current"} == set(migrated)
    assert {st for q, st in states.items() if q not in migrated} == {"absent"}
    declare_topology(conn.channel(), names, settings.partitions)
    for spec in formerly_classic(names):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
            conn.channel().queue_declare(spec.holding, passive=True)

    # The dead-letter exchange still routes to NS.dead, and the messages kept everything.
    publish(conn, names.dead, b"after", "d3")
    assert take_all(conn, names.dead) == [
        ("d0", b"letter 0", {"n": 0}, None),
        ("d1", b"letter 1", {"n": 1}, None),
        ("d2", b"letter 2", {"n": 2}, None),
        ("d3", b"after", None, None),
    ]
    assert take_all(conn, names.gateway_retry("webhook", 0)) == [
        ("r0", b"retry 0", None, "600000"),
        ("r1", b"retry 1", None, "600000"),
    ]

    # A second run has nothing to do.
    code, output = run_migrate(settings)
    assert code == 0 and json.loads(output)["migrated"] == [], output


def test_a_run_interrupted_after_the_redeclaration_is_finished_by_the_next(
    settings: Settings, conn: pika.BlockingConnection
) -> None:
    names = Names(settings.namespace)
    spec = formerly_classic(names)[0]
    assert spec.name == names.dead
    ch = conn.channel()
    ch.exchange_declare(names.dead, exchange_type="fanout", durable=True)
    # State after step 2 and the redeclaration: the messages wait in the holding queue.
    declare_queue(ch, spec.name, dead_queue_args())
    declare_queue(ch, spec.holding, dead_queue_args())
    ch.queue_bind(spec.holding, names.dead)
    for i in range(250):  # more than one chunk
        ch.basic_publish("", spec.holding, str(i).encode(), pika.BasicProperties(message_id=str(i)))

    code, output = run_migrate(settings)
    assert code == 0, output
    assert json.loads(output)["migrated"] == [{"queue": names.dead, "messages": 250}]
    assert [m[0] for m in take_all(conn, names.dead)] == [str(i) for i in range(250)]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
        conn.channel().queue_declare(spec.holding, passive=True)
    # The dead-letter exchange routes to NS.dead only.
    publish(conn, names.dead, b"x", "x")
    assert [m[0] for m in take_all(conn, names.dead)] == ["x"]
