"""shared/intake.py: what a source body becomes, the same whether ingest or the API routes it."""

from __future__ import annotations

import msgspec

from shared import intake
from shared.amqp import Names, OutMessage, partition_key, partition_of
from shared.broker import Message
from shared.formats.flapjack import decode_body
from shared.models import CheckEvent

NAMES = Names("t")
BODY = (
    b'[{"entity":"web1","check":"http","state":"critical"},'
    b'{"entity":"db1","check":"disk","state":"ok"},'
    b'{"entity":"x","state":"ok"}]'
)


def _events(messages: list[OutMessage]) -> list[tuple[str, CheckEvent]]:
    out = []
    for m in messages:
        if m.exchange == NAMES.checks:
            for e in msgspec.json.decode(m.body, type=list[CheckEvent]):
                out.append((m.routing_key, e))
    return out


def test_events_go_to_their_partition_and_the_bad_item_to_the_dead_letters() -> None:
    out = intake.direct_messages(
        NAMES,
        8,
        intake.SOURCE_DECODERS,
        body=BODY,
        routing_key="flapjack",
        message_id="m1",
        stage="intake",
        now=1_700_000_000.7,
    )
    events = _events(out)
    assert sorted(e.id for _, e in events) == ["m1:0", "m1:1"]
    for key, e in events:
        assert key == partition_key(partition_of(e.entity, e.check, 8))
        assert e.received == 1_700_000_000.0  # whole seconds, as ingest reads the AMQP stamp
    (dead,) = [m for m in out if m.exchange == NAMES.dead]
    assert dead.headers["x-tocsin-stage"] == "intake"
    assert dead.headers["x-tocsin-routing-key"] == "flapjack"
    assert b'"entity":"x"' in dead.body and "check" in dead.headers["x-tocsin-error"]


def test_an_unknown_format_is_dead_lettered_whole() -> None:
    out = intake.direct_messages(
        NAMES, 8, intake.SOURCE_DECODERS, body=b"{}", routing_key="nagios", message_id="m",
        stage="intake", now=1.0,
    )  # fmt: skip
    (dead,) = out
    assert dead.exchange == NAMES.dead and "unknown source format 'nagios'" in str(
        dead.headers["x-tocsin-error"]
    )


def test_ingest_and_the_api_route_a_body_to_the_same_events() -> None:
    now = 1_700_000_123.4
    direct = intake.direct_messages(
        NAMES, 4, intake.SOURCE_DECODERS, body=BODY, routing_key="flapjack", message_id="m2",
        stage="intake", now=now,
    )  # fmt: skip
    routed = intake.Routed()
    msg = Message(BODY, 1, "t.ingest", "flapjack", message_id="m2", timestamp=int(now))
    intake.decode_into(routed, msg, intake.SOURCE_DECODERS, now)
    via_ingest = intake.partition_messages(NAMES, 4, routed.events)
    assert _events(via_ingest) == _events(direct)
    decoded = decode_body(BODY, intake.received_time(now), "m2", "flapjack")
    once = intake.decoded_messages(
        NAMES, 4, decoded, body=BODY, routing_key="flapjack", message_id="m2", stage="intake",
        now=now,
    )  # fmt: skip
    assert [(m.exchange, m.routing_key, m.body) for m in once] == [
        (m.exchange, m.routing_key, m.body) for m in direct
    ]


def test_a_partition_gets_chunks_of_at_most_max_events() -> None:
    n = intake.MAX_EVENTS_PER_MESSAGE + 3
    events = [
        CheckEvent(id=str(i), entity="e", check="c", type="service", state="ok", time=1.0,
                   received=1.0)
        for i in range(n)
    ]  # fmt: skip
    sizes = [len(msgspec.json.decode(m.body)) for m in intake.partition_messages(NAMES, 8, events)]
    assert sizes == [intake.MAX_EVENTS_PER_MESSAGE, 3]
