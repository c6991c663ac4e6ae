"""Check state as the processor stores it: the records and their encodings (pure).

The processor writes these records (``services/processor/store.py``); the API
and the CLI read them through ``shared/check_store.py``.  Records follow the seed
layout: a check attrs hash (plus the processor's current-state fields), a tags
set, a ``state_ids`` ZSET of check_state records, maintenance ZSETs by start
and end, and Argus-style incidents with an event log.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

# Argus levels for our failing states (1 critical .. 5 lowest).
LEVELS: dict[str, int] = {"critical": 1, "warning": 3, "unknown": 4}


class CheckRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The check attrs hash: the seed's fields plus the state machine's memory.

    ``enabled`` is written by the processor only when it creates the check; the
    API owns it afterwards (so a slow batch never undoes a PATCH).
    """

    entity_name: str
    name: str
    state: str | None = None
    summary: str = ""
    details: str = ""
    last_update: float | None = None
    enabled: bool = True
    # When the current state began, and its history record's sequence number.
    state_since: float | None = None
    state_seq: int = 0
    max_seq: int = 0
    trimmed_seq: int = 0
    # Delays remembered from earlier events (None: use the defaults).
    initial_failure_delay: int | None = None
    repeat_failure_delay: int | None = None
    initial_recovery_delay: int | None = None
    # The current failure episode (= open incident), if any.
    episode_id: str | None = None
    episode_start: float | None = None
    worst_state: str | None = None
    notified: bool = False
    recovery_pending: bool = False
    problem_times: dict[str, float] = msgspec.field(default_factory=dict)
    last_notification_type: str | None = None
    last_notification_time: float | None = None
    last_notification_id: str | None = None
    notification_count: int = 0
    # The current history record's counters (so it is rewritten without a read).
    state_count: int = 0
    state_notified: bool = False
    state_last_notification_count: int = 0

    @property
    def failing(self) -> bool:
        return self.state is not None and self.state != "ok"


class StateRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One check_state record: a run of events with the same state."""

    state: str
    timestamp: float
    last_update: float
    summary: str = ""
    details: str = ""
    count: int = 1
    notified: bool = False
    last_notification_count: int = 0


class Maintenance(msgspec.Struct, frozen=True, kw_only=True):
    """A scheduled or unscheduled (acknowledgement) maintenance window of one check."""

    id: str
    check_id: str
    start_time: float
    end_time: float
    summary: str = ""
    notified: bool = False
    acknowledgement_id: str | None = None
    # Acknowledged from a page (docs/acknowledge.md): which contact, through which channel.
    contact_id: str = ""
    channel: str = ""

    def covers(self, t: float) -> bool:
        return self.start_time <= t < self.end_time


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """An Argus incident: one failure episode of one check."""

    id: int
    start_time: float
    level: int
    source_incident_id: str
    description: str
    check_id: str
    entity: str
    check: str
    end_time: float | None = None
    source: str = "tocsin"
    tags: tuple[str, ...] = ()
    acked: bool = False
    ack_until: float | None = None

    @property
    def open(self) -> bool:
        return self.end_time is None


class IncidentEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of an incident's event log: STA, OTH, ACK or END (Argus codes)."""

    type: str
    timestamp: float
    description: str = ""
    # ACK from a page (docs/acknowledge.md): the contact and the way in; empty otherwise.
    contact_id: str = ""
    channel: str = ""


class CheckDetail(msgspec.Struct, frozen=True, kw_only=True):
    """What the API shows for one check."""

    id: str
    entity: str
    check: str
    state: str | None
    summary: str
    details: str
    last_update: float | None
    enabled: bool
    failing: bool
    tags: tuple[str, ...]
    state_since: float | None = None
    acknowledgement: Maintenance | None = None
    scheduled_maintenance: Maintenance | None = None
    incident_id: str | None = None


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """A maintenance window or acknowledgement with the check it silences (``GET /maintenances``)."""

    kind: str  # "maintenance" (scheduled) or "acknowledgement" (unscheduled)
    id: str
    entity: str
    check: str
    start_time: float
    end_time: float
    summary: str = ""
    active: bool = True


class MaintenanceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One maintenance window of a check as ``GET /checks/{e}/{c}/maintenances`` lists it.

    ``type``: ``scheduled`` (planned ahead, silences problems inside it) or
    ``unscheduled`` (Flapjack's kind: an acknowledgement, or silence put on any
    check ahead of work; ends early at the check's recovery).
    """

    id: str
    check_id: str
    type: str
    start_time: float
    end_time: float
    summary: str = ""
    active: bool = False
    acknowledgement_id: str | None = None

    @classmethod
    def of(cls, m: Maintenance, scheduled: bool, now: float) -> MaintenanceEntry:
        return cls(
            id=m.id,
            check_id=m.check_id,
            type="scheduled" if scheduled else "unscheduled",
            start_time=m.start_time,
            end_time=m.end_time,
            summary=m.summary,
            active=m.covers(now),
            acknowledgement_id=m.acknowledgement_id,
        )


class CheckStateEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A history entry as the API lists it (newest first)."""

    id: str
    state: str
    timestamp: float
    last_update: float
    summary: str
    details: str
    count: int
    notified: bool


INCIDENT_EVENT_DECODER = msgspec.json.Decoder(IncidentEvent)
_ENCODER = msgspec.json.Encoder()


def encode_incident_event(ev: IncidentEvent) -> str:
    return _ENCODER.encode(ev).decode()


def incident_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Argus wants ``key=value`` tags; a bare tag becomes ``tag=<value>``."""
    return tuple(sorted(t if "=" in t else f"tag={t}" for t in tags))


__all__ = [
    "LEVELS",
    "CheckDetail",
    "CheckRecord",
    "CheckStateEntry",
    "Incident",
    "IncidentEvent",
    "Maintenance",
    "Silence",
    "StateRecord",
    "incident_tags",
]
