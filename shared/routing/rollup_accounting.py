"""Which checks of a medium's rollup still count toward its threshold (pure).

A check joins a medium's rollup with its problem and leaves with its
recovery; in between it counts only while it still alerts there (failing,
enabled, in no maintenance, still routed to the medium).  :func:`counted`
is what :func:`shared.routing.expansion.expand` compares with the threshold,
with a reason for every entry it leaves out.

Judging an entry matches the contact's rules against its check, and a storm
puts thousands of checks in one rollup: judging every entry again for every
notification made a storm of 10,000 checks cost 50 million rule matches
(minutes).  A :class:`RollupTally` keeps each entry's verdict for one batch,
for as long as it holds: the index and the check records do not change
within a batch, and a verdict changes with time only at a maintenance
window's edge or, for a contact with time-restricted rules, at a minute's.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from shared.checks import CheckDetail
from shared.models import Medium, Notification, RollupItem, severity_of
from shared.routing.notifier_state import NotifierState
from shared.routing.selection import Index, routes_to

# Reasons a decision lists for the rollup entries it does not count; the count covers all.
REASONS_SHOWN = 10


@dataclass(slots=True)
class _MediumTally:
    """One medium's verdicts and the span of time ``[lo, hi)`` in which all of them hold."""

    lo: float = -math.inf
    hi: float = math.inf
    judged: bool = False  # every entry of the rollup has a verdict
    left: dict[str, str] = field(default_factory=dict)  # check id -> why it does not count
    counts: set[str] = field(default_factory=set)  # check ids that do


class RollupTally:
    """Rollup verdicts kept across the notifications of one batch.

    It is valid while ``index`` and ``state.checks`` stay the same objects
    (it starts over when either is another) and while every expansion of the
    batch goes through it: an entry joins a rollup only as the check of a
    notification being expanded, which is when the tally judges it.
    """

    __slots__ = ("_checks", "_index", "_media")

    def __init__(self) -> None:
        self._index: Index | None = None
        self._checks: Mapping[str, CheckDetail] | None = None
        self._media: dict[str, _MediumTally] = {}

    def medium(self, index: Index, state: NotifierState, m: Medium, now: float) -> _MediumTally:
        """The medium's tally, emptied when the configuration, the records or the time moved on."""
        if index is not self._index or state.checks is not self._checks:
            self._index, self._checks, self._media = index, state.checks, {}
        tally = self._media.get(m.id)
        if tally is None or not tally.lo <= now < tally.hi:
            tally = self._media[m.id] = _MediumTally()
        return tally


@dataclass(frozen=True, slots=True)
class Counted:
    """The entries of a rollup that count at one notification, and why the others do not.

    It reads the rollup and the tally as they are: ask for :meth:`items` before
    the notification's effects apply.
    """

    count: int
    left: list[str]  # sorted, at most REASONS_SHOWN and "N more": "web1:disk is disabled"
    base: Mapping[str, RollupItem]  # the rollup before this notification
    own_id: str
    own: RollupItem | None  # the notification's own entry (None: it leaves)
    excluded: Mapping[str, str]  # check id -> why it does not count
    checks: Mapping[str, CheckDetail]

    def items(self) -> dict[str, RollupItem]:
        """The counted entries, each with its check's current state (what a rollup message lists)."""
        out: dict[str, RollupItem] = {}
        for cid, item in self.base.items():
            if cid == self.own_id or cid in self.excluded:
                continue
            detail = self.checks.get(cid)
            if detail is None or item.state == detail.state:
                out[cid] = item
            else:
                out[cid] = msgspec.structs.replace(item, state=detail.state)
        if self.own is not None:
            out[self.own_id] = self.own
        return out


def counted(
    index: Index,
    state: NotifierState,
    n: Notification,
    m: Medium,
    own: RollupItem | None,
    tally: RollupTally,
) -> Counted:
    """The rollup entries that still alert on ``m`` at ``n.time`` (README, "Who gets told": rollup), and why
    each other one does not (``web1:disk in maintenance``).

    The entries are the medium's rollup with ``n``'s check put in as ``own``
    (a problem) or taken out (``own`` None: a recovery or acknowledgement).
    An entry counts while its check is failing, enabled, in no scheduled or
    unscheduled maintenance, and a rule of the contact still routes its current
    state to ``m``; the others stay in the set (they count again once that
    changes; recovery removes them).  ``n``'s own check counts as ``n`` says,
    and an entry whose check has no record counts as the entry says.
    """
    rollup = state.rollups.get(m.id)
    base: Mapping[str, RollupItem] = rollup.items if rollup is not None else {}
    t = tally.medium(index, state, m, n.time)
    if not t.judged:
        for cid in base:
            _judge(index, state, m, n.time, t, cid)
        t.judged = True
    if own is not None and n.check_id not in t.counts and n.check_id not in t.left:
        # It joins the rollup now; later notifications of the batch judge it by its record.
        _judge(index, state, m, n.time, t, n.check_id)
    size = len(base) + (own is not None) - (n.check_id in base)
    left = [why for cid, why in t.left.items() if cid != n.check_id and cid in base]
    return Counted(size - len(left), _shown(left), base, n.check_id, own, t.left, state.checks)


def _shown(reasons: list[str]) -> list[str]:
    """The first :data:`REASONS_SHOWN` reasons in order, and how many more there are.

    Every notification on the medium records its reasons (docs/explain.md): a storm
    with thousands of checks in maintenance would otherwise write thousands of
    reasons per notification.
    """
    if len(reasons) <= REASONS_SHOWN:
        return sorted(reasons)
    return [*heapq.nsmallest(REASONS_SHOWN, reasons), f"and {len(reasons) - REASONS_SHOWN} more"]


def _judge(
    index: Index, state: NotifierState, m: Medium, now: float, t: _MediumTally, cid: str
) -> None:
    detail = state.checks.get(cid)
    if detail is None:
        t.counts.add(cid)
        return
    why, lo, hi = judged(index, detail, m, now)
    t.lo, t.hi = max(t.lo, lo), min(t.hi, hi)
    if why is None:
        t.counts.add(cid)
    else:
        t.left[cid] = f"{detail.entity}:{detail.check} {why}"


def judged(
    index: Index, detail: CheckDetail, m: Medium, now: float
) -> tuple[str | None, float, float]:
    """Why the check no longer alerts on ``m`` (None: it does), and the span ``[lo, hi)``
    around ``now`` in which that verdict holds.

    It alerts while it is failing, enabled, in no maintenance and still routed to ``m``
    by a rule of the medium's contact.
    """
    if not detail.failing or detail.state is None:
        return "is ok", -math.inf, math.inf
    if not detail.enabled:
        return "is disabled", -math.inf, math.inf
    lo, hi = -math.inf, math.inf
    for window, why in (
        (detail.acknowledgement, "is in unscheduled maintenance"),
        (detail.scheduled_maintenance, "is in scheduled maintenance"),
    ):
        if window is None:
            continue
        if window.covers(now):
            return why, max(lo, window.start_time), min(hi, window.end_time)
        if now < window.start_time:
            hi = min(hi, window.start_time)
        else:
            lo = max(lo, window.end_time)
    probe = Notification(
        id="rollup-probe",
        type="problem",
        check_id=detail.id,
        entity=detail.entity,
        check=detail.check,
        state=detail.state,
        severity=severity_of(detail.state),
        time=now,
        tags=detail.tags,
    )
    verdict = None if routes_to(index, probe, m) else f"is no longer routed to {m.type}"
    if any(c.rule.time_restrictions for c in index.rules_by_contact.get(m.contact_id, ())):
        minute_lo, minute_hi = _local_minute(now, index, m.contact_id)
        lo, hi = max(lo, minute_lo), min(hi, minute_hi)
    return verdict, lo, hi


def _local_minute(now: float, index: Index, contact_id: str) -> tuple[float, float]:
    """The part of the contact's local minute around ``now`` in which a rule's time restriction
    (whole minutes, on the contact's clock) judges alike.

    ``datetime.fromtimestamp`` rounds to the microsecond, so the span's ends stay a
    microsecond inside the minute; ``now`` itself may lie that little before it.
    """
    local = datetime.fromtimestamp(now, index.zones[contact_id])
    start = local.replace(second=0, microsecond=0).timestamp()
    return min(now, start), max(math.nextafter(now, math.inf), start + 60 - 1e-6)
