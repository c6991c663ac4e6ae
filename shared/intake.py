"""Source bodies to normalised events on the processor's partition queues.

This is the step ingest performs on every message from ``NS.ingest``, and the
step the API performs itself for what arrives over HTTP (Alertmanager
webhooks, ``POST /events``, declared sources, Argus incidents): the API has
already decoded the body to validate it, so it publishes the resulting
events straight to ``NS.checks`` instead of sending the body on a detour
through ``NS.events`` and ingest.  That saves one durable broker hop and one
worker per page (docs/benchmarks.md), and both paths produce the same events
because both call :func:`route`.

Pure: no I/O; callers publish what it returns.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from shared.amqp import Names, OutMessage, partition_key, partition_of
from shared.broker import Message
from shared.formats import alertmanager, generic
from shared.formats.bodies import Decoded, rejected
from shared.formats.flapjack import decode_body as flapjack_body
from shared.handler import dead_letter
from shared.models import ENCODER, CheckEvent

# Events per message on NS.checks: large enough to amortise a publish, small
# enough that a processor batch (and its memory) stays bounded in a storm.
MAX_EVENTS_PER_MESSAGE = 500

Decoder = Callable[[bytes, float, str | None, str], Decoded]


class IngestMetrics:
    """``tocsin_ingest_events``: events per source format and outcome, wherever they enter.

    Ingest and the API (through :class:`~shared.sender.Sender`) both count
    here, so the series covers every way in.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "tocsin_ingest_events",
            "Events seen by ingest, per source format and outcome",
            ["source", "outcome"],
            registry=registry,
        )

    def count(self, source: str, decoded: Decoded | None) -> None:
        """Count one decoded body (None: its routing key had no decoder)."""
        if decoded is None:
            self.events.labels("unknown", "rejected").inc()
            return
        if decoded.accepted:
            self.events.labels(source, "accepted").inc(len(decoded.accepted))
        if decoded.rejected:
            self.events.labels(source, "rejected").inc(len(decoded.rejected))


# Routing keys on NS.events that ingest decodes; others are dead-lettered.
SOURCE_DECODERS: Mapping[str, Decoder] = {
    "flapjack": flapjack_body,
    "alertmanager": alertmanager.decode_body,
    "generic": generic.decode_body,
    # Argus incidents: the API publishes Flapjack-shaped events (services/api/argus/).
    "argus": flapjack_body,
}


def decoders(identity_labels: Sequence[str]) -> dict[str, Decoder]:
    """The decoders per routing key for a deployment (its Alertmanager identity labels)."""
    return {**SOURCE_DECODERS, "alertmanager": alertmanager.decoder(identity_labels)}


def partition_messages(
    names: Names, partitions: int, events: Sequence[CheckEvent]
) -> list[OutMessage]:
    """One JSON array per processor partition (chunked), in partition order."""
    by_partition: dict[int, list[CheckEvent]] = defaultdict(list)
    for event in events:
        by_partition[partition_of(event.entity, event.check, partitions)].append(event)
    out = []
    for k, group in sorted(by_partition.items()):
        for start in range(0, len(group), MAX_EVENTS_PER_MESSAGE):
            chunk = group[start : start + MAX_EVENTS_PER_MESSAGE]
            out.append(OutMessage(names.checks, partition_key(k), ENCODER.encode(chunk)))
    return out


@dataclass(slots=True)
class Routed:
    """What a body became: events to publish per partition, and the items refused."""

    events: list[CheckEvent] = field(default_factory=list)
    # (original message with the refused item as its body, reason)
    rejected: list[tuple[Message, str]] = field(default_factory=list)


def _unknown_format(source: str, decoders: Mapping[str, Decoder]) -> str:
    """The dead-letter reason for a routing key no decoder serves."""
    return f"routing key: unknown source format {source!r} (known: {', '.join(decoders)})"


def decode_into(
    routed: Routed,
    msg: Message,
    decoders: Mapping[str, Decoder],
    now: float,
) -> Decoded | None:
    """Decode one source message into ``routed``; None when its routing key has no decoder.

    The receive time is the publisher's AMQP timestamp when it is plausible
    (within a day of ``now``), so a backlog drained late keeps its times.
    """
    source = msg.routing_key or "flapjack"
    decode = decoders.get(source)
    if decode is None:
        routed.rejected.append((msg, _unknown_format(source, decoders)))
        return None
    ts = msg.timestamp
    received = float(ts) if ts and abs(now - float(ts)) < 86400 else now
    decoded = decode(msg.body, received, msg.message_id, source)
    routed.events.extend(decoded.accepted)
    for raw, reason in decoded.rejected:
        routed.rejected.append((dataclasses.replace(msg, body=raw), reason))
    return decoded


def received_time(now: float) -> float:
    """The receive time of a body published at ``now``: whole seconds, as ingest reads the AMQP timestamp."""
    return float(int(now))


def decoded_messages(
    names: Names,
    partitions: int,
    decoded: Decoded,
    *,
    body: bytes,
    routing_key: str,
    message_id: str,
    stage: str,
    now: float,
) -> list[OutMessage]:
    """What an already decoded body becomes: its events per partition, its refused items dead.

    For a caller that decoded the body itself (the API's intake routes
    decode once, to answer with what was accepted and to publish the same
    events).
    """
    msg = Message(
        body=body,
        delivery_tag=0,
        queue=names.events,
        routing_key=routing_key,
        message_id=message_id,
        timestamp=int(now),
    )
    out = partition_messages(names, partitions, decoded.accepted)
    out.extend(
        dead_letter(names, dataclasses.replace(msg, body=raw), stage, reason)
        for raw, reason in decoded.rejected
    )
    return out


def direct_messages(
    names: Names,
    partitions: int,
    decoders: Mapping[str, Decoder],
    *,
    body: bytes,
    routing_key: str,
    message_id: str,
    stage: str,
    now: float | None = None,
    metrics: IngestMetrics | None = None,
) -> list[OutMessage]:
    """Everything one source body becomes, for a publisher outside the consumer loop.

    The events go to their partitions; refused items (and a body whose
    routing key has no decoder) go to ``NS.dead`` with ``stage`` as the
    stage, exactly as ingest would have dead-lettered them, so one commit
    carries both and nothing is lost unseen.
    """
    t = time.time() if now is None else now
    decode = decoders.get(routing_key)
    if decode is None:
        decoded = rejected(body, _unknown_format(routing_key, decoders))
        if metrics is not None:
            metrics.count(routing_key, None)
    else:
        decoded = decode(body, received_time(t), message_id, routing_key)
        if metrics is not None:
            metrics.count(routing_key, decoded)
    return decoded_messages(
        names,
        partitions,
        decoded,
        body=body,
        routing_key=routing_key,
        message_id=message_id,
        stage=stage,
        now=t,
    )
