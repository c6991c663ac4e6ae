"""The notification filter chain: one small pure function per rule (README, "How Tocsin decides to notify").

Each filter looks at a :class:`Ctx` and returns ``(outcome, reason)``:
``pass`` lets the next filter decide, ``block`` stops with no notification,
``notify`` stops with a notification.  A chain that runs out notifies.  The
filter's name is the ``filter`` label of ``tocsin_processor_decisions_total``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from shared.checks import CheckRecord, Maintenance
from shared.models import (
    DEFAULT_INITIAL_FAILURE_DELAY,
    DEFAULT_INITIAL_RECOVERY_DELAY,
    DEFAULT_REPEAT_FAILURE_DELAY,
    CheckEvent,
)
from shared.processing.effects import FilterVerdict

Kind = Literal["problem", "recovery", "acknowledgement", "test"]
FilterResult = tuple[str, str]


class Ctx(msgspec.Struct, frozen=True, kw_only=True):
    """The check before and after the event, the event, and the check's maintenances."""

    before: CheckRecord
    after: CheckRecord
    event: CheckEvent
    kind: Kind
    scheduled: tuple[Maintenance, ...] = ()
    unscheduled: tuple[Maintenance, ...] = ()


def initial_failure_delay_of(rec: CheckRecord) -> int:
    d = rec.initial_failure_delay
    return DEFAULT_INITIAL_FAILURE_DELAY if d is None else d


def repeat_failure_delay_of(rec: CheckRecord) -> int:
    d = rec.repeat_failure_delay
    return DEFAULT_REPEAT_FAILURE_DELAY if d is None else d


def initial_recovery_delay_of(rec: CheckRecord) -> int:
    d = rec.initial_recovery_delay
    return DEFAULT_INITIAL_RECOVERY_DELAY if d is None else d


def number(x: float) -> str:
    """A number for a reason text: exact to the millisecond, no float noise (epochs stay whole)."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


_s = number


# --------------------------------------------------------------------------- filters


def ok(ctx: Ctx) -> FilterResult:
    """Recovery only after a notified problem of the episode."""
    if ctx.after.recovery_pending:
        return "pass", "ok: the episode's problem was notified, recovery due"
    if ctx.before.state is None:
        return "block", "ok: first sight of the check, nothing to recover"
    if ctx.before.state == "ok":
        return "block", "ok: already ok, no recovery pending"
    return "block", f"ok: no problem was notified for the {ctx.before.state} episode"


def disabled(ctx: Ctx) -> FilterResult:
    """Disabled checks record state and notify nobody."""
    if not ctx.before.enabled:
        return "block", "disabled: check is disabled"
    return "pass", "disabled: check is enabled"


def scheduled_maintenance(ctx: Ctx) -> FilterResult:
    """No problems for event times inside a scheduled maintenance."""
    t = ctx.event.time
    for m in ctx.scheduled:
        if m.covers(t):
            return (
                "block",
                f"scheduled_maintenance: {m.id} from {_s(m.start_time)} to {_s(m.end_time)}",
            )
    return "pass", "scheduled_maintenance: none at event time"


def unscheduled_maintenance(ctx: Ctx) -> FilterResult:
    """No problems while the check is acknowledged."""
    t = ctx.event.time
    for m in ctx.unscheduled:
        if m.covers(t):
            return "block", f"unscheduled_maintenance: acknowledged until {_s(m.end_time)}"
    return "pass", "unscheduled_maintenance: not acknowledged"


def initial_failure_delay(ctx: Ctx) -> FilterResult:
    """The episode must last ``initial_failure_delay`` before the first problem."""
    start = ctx.after.episode_start
    delay = initial_failure_delay_of(ctx.after)
    elapsed = ctx.event.time - (start if start is not None else ctx.event.time)
    if elapsed < delay:
        return "block", f"initial_failure_delay: failing for {_s(elapsed)} s of {delay}"
    return "pass", f"initial_failure_delay: failing for {_s(elapsed)} s >= {delay}"


def last_problem_state(rec: CheckRecord) -> str | None:
    """The state of the episode's most recent problem notification."""
    if not rec.problem_times:
        return None
    return max(rec.problem_times.items(), key=lambda kv: kv[1])[0]


def state_change(ctx: Ctx) -> FilterResult:
    """First problem of the episode, or a change between failing states: notify at once.

    Flapping back to a state notified less than ``repeat_failure_delay`` ago
    is still held back, so no state is ever notified more often than that.
    """
    state = ctx.event.state
    last = last_problem_state(ctx.after)
    if last is None:
        return "notify", "state_change: first problem of the episode"
    if state == last:
        return "pass", f"state_change: still {state}"
    prev = ctx.after.problem_times.get(state)
    repeat = repeat_failure_delay_of(ctx.after)
    if prev is not None and ctx.event.time - prev < repeat:
        return "block", (
            f"state_change: {last} -> {state}, but {state} was notified "
            f"{_s(ctx.event.time - prev)} s ago (repeat {repeat})"
        )
    return "notify", f"state_change: {last} -> {state}"


def repeat_failure_delay(ctx: Ctx) -> FilterResult:
    """An unchanged failing state is notified again after ``repeat_failure_delay``."""
    state = ctx.event.state
    prev = ctx.after.problem_times.get(state, ctx.event.time)
    repeat = repeat_failure_delay_of(ctx.after)
    since = ctx.event.time - prev
    if since < repeat:
        return "block", f"repeat_failure_delay: {state} notified {_s(since)} s ago, repeat {repeat}"
    return "notify", f"repeat_failure_delay: {state} notified {_s(since)} s ago >= {repeat}"


def initial_recovery_delay(ctx: Ctx) -> FilterResult:
    """Ok must last ``initial_recovery_delay`` before the recovery goes out."""
    since = ctx.after.state_since if ctx.after.state_since is not None else ctx.event.time
    elapsed = ctx.event.time - since
    delay = initial_recovery_delay_of(ctx.after)
    if elapsed < delay:
        return "block", f"initial_recovery_delay: ok for {_s(elapsed)} s of {delay}"
    return "pass", f"initial_recovery_delay: ok for {_s(elapsed)} s >= {delay}"


def acknowledgement(ctx: Ctx) -> FilterResult:
    """Only a failing check can be acknowledged."""
    if ctx.before.state is None:
        return "block", "acknowledgement: rejected, the check has never reported a state"
    if not ctx.before.failing:
        return "block", f"acknowledgement: rejected, the check is {ctx.before.state}"
    return "pass", f"acknowledgement: {ctx.before.state} check acknowledged"


def test_notifications(ctx: Ctx) -> FilterResult:
    """Test notifications bypass delays and maintenance."""
    return "notify", "test_notifications: always notified"


Filter = Callable[[Ctx], FilterResult]


def _chain(*filters: Filter) -> tuple[tuple[str, Filter], ...]:
    return tuple((f.__name__, f) for f in filters)


CHAINS: dict[str, tuple[tuple[str, Filter], ...]] = {
    "problem": _chain(
        disabled,
        scheduled_maintenance,
        unscheduled_maintenance,
        initial_failure_delay,
        state_change,
        repeat_failure_delay,
    ),
    "recovery": _chain(ok, disabled, initial_recovery_delay),
    "acknowledgement": _chain(acknowledgement, disabled),
    "test": _chain(disabled, test_notifications),
}


def run_chain(kind: Kind, ctx: Ctx) -> list[FilterVerdict]:
    """Every verdict of ``kind``'s chain up to the first that is not ``pass``."""
    decisions: list[FilterVerdict] = []
    for name, check in CHAINS[kind]:
        outcome, reason = check(ctx)
        decisions.append(FilterVerdict(name, outcome, reason))
        if outcome != "pass":
            break
    return decisions
