"""What a due escalation step does (pure): page whom, or stop and why, and what comes next.

:func:`fire` takes the escalation, its policy, the schedules, what the check
looks like now and the time, and returns a :class:`StepOutcome`: the page
notification (a copy of the problem that started the escalation, limited to
the people reached, see ``shared/routing/selection.py:select_paged``), when
the next step is due (None: finished) and the timeline entry explain shows.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from shared.escalation import CheckAtStep, Escalation, Policy, pages, step_at, stop_reason
from shared.escalation import next_due as due_after
from shared.escalation_store import page_id
from shared.models import Notification
from shared.oncall import Schedule, on_call_source


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an escalation's timeline (``tocsin explain``, ``GET /escalations``)."""

    time: float
    step: int  # 1-based, counting repeats on
    outcome: str  # "paged", "stopped", "finished"
    paged: tuple[str, ...] = ()
    why: tuple[str, ...] = ()  # per paged contact, the reason it was reached
    on_call: dict[str, str | None] = msgspec.field(default_factory=dict)  # schedule -> contact
    reason: str = ""  # stopped: why; paged: notes such as "nobody on call"


class StepOutcome(msgspec.Struct, frozen=True):
    page: Notification | None
    next_due: float | None
    entry: TimelineEntry


def fire(
    esc: Escalation,
    step: int,
    policy: Policy | None,
    schedules: Mapping[str, Schedule],
    origin: Notification | None,
    check: CheckAtStep | None,
    now: float,
) -> StepOutcome:
    """The outcome of global step ``step`` of ``esc`` at ``now``."""
    if policy is None:
        return _stop(step, now, f"policy {esc.policy_id} no longer exists")
    if origin is None:
        return _stop(step, now, "the problem notification expired")
    reason = stop_reason(esc, check)
    if reason is not None:
        return _stop(step, now, reason)
    current = step_at(policy, step)
    if current is None:
        return StepOutcome(None, None, TimelineEntry(time=now, step=step + 1, outcome="finished"))
    _, spec = current
    reached, notes = pages(spec, schedules, now)
    on_call = {
        sid: on_call_source(schedules[sid], now)[0]
        for sid in dict.fromkeys(t.schedule for t in spec.targets if t.schedule)
        if sid in schedules
    }
    entry = TimelineEntry(
        time=now,
        step=step + 1,
        outcome="paged" if reached else "nobody",
        paged=tuple(p.contact_id for p in reached),
        why=tuple(p.why for p in reached),
        on_call=on_call,
        reason="; ".join(notes),
    )
    page = None
    if reached:
        page = msgspec.structs.replace(
            origin,
            id=page_id(esc.id, step),
            time=now,
            escalation_id=esc.id,
            escalation_policy_id=policy.id,
            escalation_step=step + 1,
            escalation_contacts=entry.paged,
            # A page of an Argus source's incident is routed to people, not to profiles.
            profiles_only=False,
        )
    return StepOutcome(page, due_after(policy, step, now), entry)


def _stop(step: int, now: float, reason: str) -> StepOutcome:
    return StepOutcome(
        None, None, TimelineEntry(time=now, step=step + 1, outcome="stopped", reason=reason)
    )
