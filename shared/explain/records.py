"""Decision records: why a page went out or did not, per check (docs/explain.md).

The processor and the notifier already return a reason with every verdict
(``shared/processing/filters.py``, ``shared/routing/selection.py`` and
``shared/routing/expansion.py``); ``packing.py`` packs those verdicts into
these compact msgspec records, so an explanation is, by construction, what
the pipeline decided:

- :class:`EventRecord` — one per event: the filter that decided, its outcome
  and reason (with the numbers), the reasons of the filters that passed before
  it, and the notification it produced, if any.
- :class:`NotificationRecord` — one per notification: per contact and medium,
  ``deliver`` or ``suppress`` with the reason code and text.
- :class:`EscalationRecord` — one per escalation step (the scheduler).

Gateway outcomes are not duplicated here: the timeline joins the delivery log
(``shared/delivery_log.py``) by check.
"""

from __future__ import annotations

import msgspec


class Route(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One contact/medium verdict of the notifier: ``deliver`` or ``suppress`` (``code`` = reason)."""

    verdict: str
    code: str
    text: str
    contact_id: str | None = None
    contact: str | None = None
    medium_id: str | None = None
    medium_type: str | None = None


class EventRecord(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag="event", tag_field="kind"
):
    """The processor's decision on one event: which filter decided, how, and why."""

    time: float
    event_id: str
    type: str
    state: str
    filter: str
    outcome: str
    reason: str
    summary: str = ""
    passed: tuple[str, ...] = ()  # reasons of the filters that let the event through first
    notification_id: str | None = None
    notification_type: str | None = None


class NotificationRecord(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag="notification",
    tag_field="kind",
):
    """The notifier's decisions on one notification, per contact and medium."""

    time: float
    notification_id: str
    type: str
    state: str
    severity: str
    routes: tuple[Route, ...] = ()
    deliveries: int = 0


class EscalationRecord(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag="escalation",
    tag_field="kind",
):
    """One step of an escalation (docs/oncall.md): who was on call, who was paged, or why
    it stopped.  The pages' own routing verdicts follow as notification records."""

    time: float
    escalation_id: str
    policy_id: str
    step: int
    outcome: str  # paged, nobody, stopped, finished
    paged: tuple[str, ...] = ()  # contact names (ids when unknown)
    why: tuple[str, ...] = ()
    on_call: dict[str, str | None] = msgspec.field(default_factory=dict)
    reason: str = ""


Record = EventRecord | NotificationRecord | EscalationRecord

ENCODER = msgspec.json.Encoder()
