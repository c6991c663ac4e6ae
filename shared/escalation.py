"""Escalation policies: which step fires when, whom it pages, and when it stops (pure).

A :class:`Policy` is ordered steps; each step pages its targets and then waits
``wait_s`` seconds before the next step.  After the last step the policy starts
again from step 1, ``repeat`` more times (``repeat: 0`` runs the steps once).
Steps are numbered globally from 0 across passes (:func:`step_at`).

A target is ``{"schedule": id}`` (who is on call then), ``{"schedule": id,
"all_members": true}`` (everyone in the schedule's layers) or ``{"contact":
id}``.  An escalation stops at the first step due after the check was
acknowledged, recovered, put in maintenance or disabled, or when its failure
episode is over (:func:`stop_reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec
from msgspec import Meta

from shared.oncall import Schedule, members, on_call_source

Id = Annotated[str, Meta(min_length=1, max_length=255)]


class Target(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schedule: Id | None = None
    contact: Id | None = None
    all_members: bool = False


class Step(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    targets: Annotated[tuple[Target, ...], Meta(min_length=1, max_length=50)]
    wait_s: Annotated[int, Meta(ge=0, le=7 * 86400)] = 300


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    steps: tuple[Step, ...] = ()
    repeat: Annotated[int, Meta(ge=0, le=20)] = 0


class Escalation(msgspec.Struct, frozen=True, kw_only=True):
    """One running escalation: a policy paging for one failure episode of a check."""

    id: str
    policy_id: str
    notification_id: str  # the problem that started it; pages are copies of it
    check_id: str
    episode_id: str
    started: float
    step: int = 0  # the next step to fire (global number)
    # An Argus source's incident (its pk) whose own state stops it; "" for a check's
    # episode.  Set when a notification profile matched an incident the Argus API wrote.
    incident_id: str = ""


class CheckAtStep(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`stop_reason` needs to know about the check when a step is due."""

    failing: bool
    episode_id: str | None
    acknowledged: bool = False
    in_maintenance: bool = False
    enabled: bool = True


class IncidentAtStep(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an Argus incident hash that say whether its escalation goes on."""

    end_time: float | None = None
    acked: bool = False
    ack_until: float | None = None


def incident_view(
    incident_id: str, inc: IncidentAtStep | None, check: CheckAtStep | None, now: float
) -> CheckAtStep | None:
    """What :func:`stop_reason` sees for an Argus source's incident at ``now``.

    The incident decides failing (open: no end, or an end still ahead) and
    acknowledged (an ack not yet expired); the check the API mirrors it to (if
    the processor has seen it yet) adds scheduled maintenance and disabling.
    None when the incident is gone.
    """
    if inc is None:
        return None
    return CheckAtStep(
        failing=inc.end_time is None or inc.end_time > now,
        episode_id=incident_id,
        acknowledged=inc.acked and (inc.ack_until is None or inc.ack_until > now),
        in_maintenance=check.in_maintenance if check is not None else False,
        enabled=check.enabled if check is not None else True,
    )


class Paged(msgspec.Struct, frozen=True):
    """One person a step reaches, and why (for explain)."""

    contact_id: str
    why: str


def policy_error(
    p: Policy, schedules: Mapping[str, Schedule], contacts: Mapping[str, object]
) -> tuple[str, str] | None:
    """(message, field) for the first thing wrong with ``p``, else None."""
    if not p.name.strip():
        return "name must not be empty", "name"
    if not p.steps:
        return "a policy needs at least one step", "steps"
    for i, step in enumerate(p.steps):
        for j, t in enumerate(step.targets):
            where = f"steps[{i}].targets[{j}]"
            if (t.schedule is None) == (t.contact is None):
                return "a target names exactly one of schedule or contact", where
            if t.schedule is not None and t.schedule not in schedules:
                return f"schedule {t.schedule!r} not found", where + ".schedule"
            if t.contact is not None and t.contact not in contacts:
                return f"contact {t.contact!r} not found", where + ".contact"
            if t.all_members and t.schedule is None:
                return "all_members needs a schedule", where + ".all_members"
    return None


def total_steps(p: Policy) -> int:
    return len(p.steps) * (p.repeat + 1)


def step_at(p: Policy, n: int) -> tuple[int, Step] | None:
    """(pass, step) of global step ``n``; None once the policy is exhausted."""
    if n < 0 or not p.steps or n >= total_steps(p):
        return None
    return n // len(p.steps), p.steps[n % len(p.steps)]


def next_due(p: Policy, n: int, fired_at: float) -> float | None:
    """When the step after ``n`` is due, given ``n`` fired at ``fired_at``; None: none left."""
    current = step_at(p, n)
    if current is None or step_at(p, n + 1) is None:
        return None
    return fired_at + current[1].wait_s


def stop_reason(esc: Escalation, check: CheckAtStep | None) -> str | None:
    """Why the escalation must not page any more, or None to go on."""
    if check is None:
        return f"incident {esc.incident_id} deleted" if esc.incident_id else "check deleted"
    if not check.failing:
        return "recovered"
    if esc.episode_id and check.episode_id is not None and check.episode_id != esc.episode_id:
        return "a new failure episode"
    if check.acknowledged:
        return "acknowledged"
    if check.in_maintenance:
        return "in maintenance"
    if not check.enabled:
        return "check disabled"
    return None


def pages(step: Step, schedules: Mapping[str, Schedule], t: float) -> tuple[list[Paged], list[str]]:
    """The people ``step`` reaches at ``t`` (each once, in target order) and notes on misses."""
    out: dict[str, Paged] = {}
    notes: list[str] = []
    for target in step.targets:
        if target.contact is not None:
            out.setdefault(target.contact, Paged(target.contact, "named in the step"))
            continue
        sid = target.schedule or ""
        sched = schedules.get(sid)
        if sched is None:
            notes.append(f"schedule {sid} no longer exists")
            continue
        if target.all_members:
            for m in members(sched):
                out.setdefault(m, Paged(m, f"member of schedule {sched.name}"))
            continue
        who, source = on_call_source(sched, t)
        if who is None:
            notes.append(f"nobody on call in schedule {sched.name}")
        else:
            out.setdefault(who, Paged(who, f"on call in schedule {sched.name} ({source})"))
    return list(out.values()), notes


class SimulatedStep(msgspec.Struct, frozen=True, kw_only=True):
    time: float
    step: int  # 1-based, counting repeats on
    paged: tuple[str, ...]
    why: tuple[str, ...]
    notes: tuple[str, ...] = ()


def simulate(
    policy: Policy, schedules: Mapping[str, Schedule], start: float, until: float
) -> list[SimulatedStep]:
    """Who the policy would page if a problem started at ``start`` and nobody acknowledged
    until ``until``: each step's time and people (the same functions the scheduler runs)."""
    out: list[SimulatedStep] = []
    n, t = 0, start
    while (current := step_at(policy, n)) is not None and t <= until:
        reached, notes = pages(current[1], schedules, t)
        out.append(
            SimulatedStep(
                time=t,
                step=n + 1,
                paged=tuple(p.contact_id for p in reached),
                why=tuple(p.why for p in reached),
                notes=tuple(notes),
            )
        )
        nxt = next_due(policy, n, t)
        if nxt is None:
            break
        n, t = n + 1, nxt
    return out
