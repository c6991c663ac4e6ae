"""Typed messages and records shared by every worker.

Wire types (``Event``) are tolerant: unknown fields are ignored and every new
field gets a default and goes last.  Internal messages (``CheckEvent``,
``Notification``, ``Delivery``) and configuration records (``Contact``,
``Medium``, ``Rule``) are frozen.  Encoders and decoders are built once, here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

# --------------------------------------------------------------------------- constants

SERVICE_STATES: tuple[str, ...] = ("ok", "warning", "critical", "unknown")
FAILING_STATES: frozenset[str] = frozenset({"warning", "critical", "unknown"})
ACTION_STATES: tuple[str, ...] = ("acknowledgement", "test_notifications")
SEVERITIES: tuple[str, ...] = ("critical", "warning", "unknown")
MEDIUM_TYPES: tuple[str, ...] = ("email", "webhook", "slack", "pagerduty", "sms")
NOTIFICATION_TYPES: tuple[str, ...] = ("problem", "recovery", "acknowledgement", "test")
DELIVERY_TYPES: tuple[str, ...] = (*NOTIFICATION_TYPES, "rollup", "rollup_recovery")

DEFAULT_INITIAL_FAILURE_DELAY = 30
DEFAULT_REPEAT_FAILURE_DELAY = 60
DEFAULT_INITIAL_RECOVERY_DELAY = 0
DEFAULT_ACK_DURATION = 14400
MAX_FUTURE_SKEW_S = 300.0

ServiceState = Literal["ok", "warning", "critical", "unknown"]
Severity = Literal["critical", "warning", "unknown"]
EventType = Literal["service", "action"]
# How a rule's ``tags`` match a check's: every one, at least one, or none present.
TagStrategy = Literal["all", "any", "none"]
TAG_STRATEGIES: tuple[str, ...] = ("all", "any", "none")
NotificationType = Literal["problem", "recovery", "acknowledgement", "test"]
DeliveryType = Literal[
    "problem", "recovery", "acknowledgement", "test", "rollup", "rollup_recovery"
]

# A name: 1..255 characters, no control characters (they break logs, keys and terminals).
Name = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Meta(max_length=65536)]
Tag = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
Seconds = Annotated[int, Meta(ge=0, le=10 * 365 * 86400)]
# Epoch seconds: 0 .. year 5138; rejects absurd values that would overflow date handling.
EpochSeconds = Annotated[float, Meta(ge=0, le=1e11)]


def severity_of(state: str) -> Severity:
    """The routing severity of a failing state (``ok`` has none; callers check first)."""
    if state == "critical":
        return "critical"
    if state == "warning":
        return "warning"
    return "unknown"


# --------------------------------------------------------------------------- wire: Event


class Event(msgspec.Struct, kw_only=True):
    """A Flapjack-compatible event as publishers send it (README, "Sending events").

    ``__post_init__`` normalises ``state`` (case-insensitive) and infers
    ``type`` from it; a mismatch raises ``ValueError`` which msgspec reports as a
    ``ValidationError`` naming the field.
    """

    entity: Name
    check: Name
    state: Annotated[str, Meta(min_length=1, max_length=64)]
    type: str | None = None
    summary: Text | None = None
    details: Text | None = None
    perfdata: Text | None = None
    time: EpochSeconds | None = None
    tags: Annotated[list[Tag], Meta(max_length=256)] = msgspec.field(default_factory=list)
    initial_failure_delay: Seconds | None = None
    repeat_failure_delay: Seconds | None = None
    initial_recovery_delay: Seconds | None = None
    duration: Seconds | None = None
    acknowledgement_id: Annotated[str, Meta(max_length=255)] | int | None = None
    # The Argus incident (pk) the API already opened for this event (routing key ``argus`` only).
    incident_id: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    # Who acknowledged (acknowledgement events; the API sets it when it knows the caller).
    acknowledged_by: Annotated[str, Meta(max_length=255)] | None = None
    # Acknowledgements from a page (docs/acknowledge.md): the contact who acknowledged and
    # the way in (link, slack, pagerduty, sms); the processor records both on the ack.
    ack_contact_id: Annotated[str, Meta(max_length=64)] | None = None
    ack_channel: Annotated[str, Meta(max_length=32)] | None = None

    def __post_init__(self) -> None:
        state = self.state.strip().lower()
        etype = self.type.strip().lower() if self.type is not None else None
        if state in SERVICE_STATES:
            kind = "service"
        elif state in ACTION_STATES:
            kind = "action"
        else:
            raise ValueError(
                f"state: unknown value {self.state!r} (expected one of "
                f"{', '.join(SERVICE_STATES + ACTION_STATES)})"
            )
        if etype is not None and etype != kind:
            if etype not in ("service", "action"):
                raise ValueError(f"type: unknown value {self.type!r} (expected service or action)")
            raise ValueError(f"state: {state!r} is not a state of type {etype!r}")
        self.state = state
        self.type = kind
        if isinstance(self.acknowledgement_id, int):
            self.acknowledgement_id = str(self.acknowledgement_id)


# --------------------------------------------------------------------------- internal messages


class CheckEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted event, normalised by ingest; the processor's input.

    ``time`` is always set (the event's own time, else when ingest received it);
    ``id`` is unique per event and stable across redeliveries of the same
    AMQP message when the publisher set a ``message_id``.
    """

    id: str
    entity: str
    check: str
    type: EventType
    state: str
    time: float
    received: float
    summary: str = ""
    details: str = ""
    perfdata: str = ""
    tags: tuple[str, ...] = ()
    initial_failure_delay: int | None = None
    repeat_failure_delay: int | None = None
    initial_recovery_delay: int | None = None
    duration: int | None = None
    acknowledgement_id: str | None = None
    source: str = "flapjack"
    # Set by the Argus API: it wrote the incident and its event log; the processor
    # only uses this pk as the episode id and writes no incident records for the event.
    incident_id: str | None = None
    acknowledged_by: str = ""  # acknowledgement events: who, when known
    ack_contact_id: str = ""  # acknowledgement events from a page: the contact
    ack_channel: str = ""  # ... and the way in (link, slack, pagerduty, sms)


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """What the processor decided to tell people (stored as the seed's notification hash).

    ``severity`` routes it through rules: the failing state for problems, the
    episode's worst state for recoveries and acknowledgements, ``critical`` for
    tests (as Flapjack does).  ``episode_id`` ties problem, acknowledgement and
    recovery of one failure episode (one incident) together.
    """

    id: str
    type: NotificationType
    check_id: str
    entity: str
    check: str
    state: str
    severity: Severity
    time: float
    previous_state: str | None = None
    summary: str = ""
    details: str = ""
    duration: float = 0.0
    state_id: str | None = None
    previous_state_id: str | None = None
    episode_id: str | None = None
    tags: tuple[str, ...] = ()
    event_id: str = ""
    acknowledgement_id: str | None = None
    ack_until: float | None = None
    # Argus notification profiles (docs/profiles.md). ``incident_event`` is the
    # incident event this notification stands for (STA END ACK CLO REO RES OTH CHI LES);
    # "" = none, so profiles ignore it.  The rest describe the incident *after* that event
    # (the acked state includes the ACK being created).  ``profiles_only``: written by the
    # Argus API for an event of a source's incident; rules already got the processor's own.
    incident_event: str = ""
    incident_source: str = ""  # the incident's ``source`` field: "tocsin" or a source pk
    incident_source_type: str = ""
    incident_level: int = 0
    incident_open: bool = False
    incident_acked: bool = False
    incident_stateful: bool = True
    in_maintenance: bool = False  # the check is in scheduled maintenance at ``time``
    profiles_only: bool = False
    acknowledged_by: str = ""  # acknowledgements: who acknowledged, when known
    # A page of an escalation step (docs/oncall.md): only these contacts, each by
    # their own rules and media; empty for every other notification.
    escalation_id: str = ""
    escalation_policy_id: str = ""
    escalation_step: int = 0
    escalation_contacts: tuple[str, ...] = ()
    # The check's notification before this one (the processor links them), so a
    # notifier that gets this one first expands that one first: with several
    # notifiers, a recovery must not overtake its problem (docs/scaling.md).
    previous_id: str = ""


class NotificationRef(msgspec.Struct, frozen=True):
    """Body of a message on ``NS.notifications`` (docs/architecture.md)."""

    id: str


# --------------------------------------------------------------------------- configuration records


class TimeRecurrence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Argus time recurrence: ``days`` (1 = Monday .. 7) from ``start`` to ``end`` local time.

    ``end`` may be ``24:00``; ``start > end`` means the span crosses midnight
    (22:00-06:00 covers the night after each listed day).  ``all_day`` ignores
    start and end.
    """

    days: tuple[Annotated[int, Meta(ge=1, le=7)], ...] = (1, 2, 3, 4, 5, 6, 7)
    start: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "00:00"
    end: Annotated[str, Meta(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")] = "24:00"
    all_day: bool = False


class SeverityRoute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which media types a rule selects for one severity, or a blackhole."""

    media: tuple[str, ...] = ()
    blackhole: bool = False
    # Page whoever the escalation policy reaches instead of (or besides) media; left out
    # of the JSON when unset, so routes read as they did before policies existed.
    escalation_policy_id: str | msgspec.UnsetType = msgspec.UNSET


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    email: str | None = None
    timezone: str = "UTC"
    tags: tuple[str, ...] = ()


class Medium(msgspec.Struct, frozen=True, kw_only=True):
    """One way to reach a contact: a type (``email``, ``webhook`` …) and an address."""

    id: str
    contact_id: str
    type: str
    address: str
    interval: int = 900
    rollup_threshold: int | None = None
    settings: dict[str, str] = msgspec.field(default_factory=dict)


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """A Flapjack notification rule with one route per severity (as the seed layout's note asks).

    ``tags`` match by ``tag_strategy`` (Flapjack's rule strategies): ``all`` of
    them present, ``any`` one present, or ``none`` present ("everything except
    checks tagged X", usually with a blackhole).  No tags match every check.
    """

    id: str
    contact_id: str
    entities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    time_restrictions: tuple[TimeRecurrence, ...] = ()
    critical: SeverityRoute = SeverityRoute()
    warning: SeverityRoute = SeverityRoute()
    unknown: SeverityRoute = SeverityRoute()
    # ``all`` is what rules meant before strategies existed, so stored rules keep their meaning.
    tag_strategy: TagStrategy = "all"

    def route(self, severity: str) -> SeverityRoute:
        if severity == "critical":
            return self.critical
        if severity == "warning":
            return self.warning
        return self.unknown


# --------------------------------------------------------------------------- notifier -> gateway


class ContactRef(msgspec.Struct, frozen=True):
    id: str
    name: str
    timezone: str = "UTC"  # the contact's IANA zone: email bodies show its local times


class MediumRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    address: str
    settings: dict[str, str] = msgspec.field(default_factory=dict)


class RollupItem(msgspec.Struct, frozen=True, kw_only=True):
    entity: str
    check: str
    state: str
    summary: str = ""
    duration: float = 0.0


class EscalationRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which policy and step (1-based, counting repeats on) paged: in webhook payloads."""

    policy_id: str
    step: int


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One message for one medium: everything a gateway needs, so it never reads Redis.

    ``id`` is ``<notification id>:<medium id>`` (or a rollup id): gateways
    record delivered ids so a redelivered message never pages twice.
    """

    id: str
    notification_id: str
    type: DeliveryType
    entity: str
    check: str
    state: str
    time: float
    contact: ContactRef
    medium: MediumRef
    previous_state: str | None = None
    summary: str = ""
    details: str = ""
    duration: float = 0.0
    tags: tuple[str, ...] = ()
    checks: tuple[RollupItem, ...] = ()
    acknowledged_by: str = ""  # acknowledgements: who acknowledged, when known
    # The failure episode (incident) this delivery belongs to: action links are bound to it.
    episode_id: str | None = None
    # Order of production (shared/lanes.py): strictly increasing, so per check and per
    # medium address too; gateways send a lane's deliveries in this order and receivers
    # may drop a payload whose seq is below one they already have.  0: produced before
    # sequencing existed (no order constraint).
    seq: int = 0
    escalation: EscalationRef | None = None  # set on the pages of an escalation step


# --------------------------------------------------------------------------- codecs

ENCODER = msgspec.json.Encoder()
EVENT_BODY_DECODER = msgspec.json.Decoder(Event | list[Event])
CHECK_EVENTS_DECODER = msgspec.json.Decoder(list[CheckEvent])
NOTIFICATION_REF_DECODER = msgspec.json.Decoder(NotificationRef)
DELIVERY_DECODER = msgspec.json.Decoder(Delivery)
# A message on NS.deliveries holds one delivery or, from the notifier, a JSON array of them.
DELIVERIES_DECODER = msgspec.json.Decoder(Delivery | list[Delivery])


def decode_deliveries(body: bytes) -> list[Delivery]:
    """The deliveries in a message on ``NS.deliveries`` (one, or an array)."""
    found = DELIVERIES_DECODER.decode(body)
    return found if isinstance(found, list) else [found]


_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str | None) -> str:
    """Strip control characters (but keep tabs and newlines) from free text."""
    if not value:
        return ""
    return _CTRL.sub("", value)
