"""Which checks of a medium's rollup still count toward its threshold (pure).

A check joins a medium's rollup with its problem and leaves with its
recovery; in between it counts only while it still alerts there (failing,
enabled, in no maintenance, still routed to the medium).  :func:`counted`
is what :func:`shared.routing.expansion.expand` compares with the threshold,
with a reason for every entry it leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from shared.checks import CheckDetail
from shared.models import Medium, Notification, RollupItem, severity_of
from shared.routing.notifier_state import NotifierState
from shared.routing.selection import Index, routes_to


def counted(
    index: Index,
    state: NotifierState,
    n: Notification,
    m: Medium,
    items: Mapping[str, RollupItem],
) -> tuple[dict[str, RollupItem], list[str]]:
    """The rollup entries that still alert on ``m`` at ``n.time`` (README, "Who gets told": rollup), and why
    each other one does not (``web1:disk in maintenance``).

    An entry counts while its check is failing, enabled, in no scheduled or
    unscheduled maintenance, and a rule of the contact still routes its current
    state to ``m``; the others stay in the set (they count again once that
    changes; recovery removes them).  ``n``'s own check counts as ``n`` says.
    """
    out: dict[str, RollupItem] = {}
    left: list[str] = []
    for cid, item in items.items():
        detail = state.checks.get(cid)
        if cid == n.check_id or detail is None:
            out[cid] = item
            continue
        why = not_alerting(index, detail, m, n.time)
        if why is not None:
            left.append(f"{detail.entity}:{detail.check} {why}")
        else:
            same = item.state == detail.state
            out[cid] = item if same else msgspec.structs.replace(item, state=detail.state)
    return out, sorted(left)


def not_alerting(index: Index, detail: CheckDetail, m: Medium, now: float) -> str | None:
    """Why the check no longer alerts on ``m`` (None: it does): failing, enabled, in no
    maintenance and still routed to ``m`` by a rule of the medium's contact."""
    if not detail.failing or detail.state is None:
        return "is ok"
    if not detail.enabled:
        return "is disabled"
    if detail.acknowledgement is not None and detail.acknowledgement.covers(now):
        return "is in unscheduled maintenance"
    if detail.scheduled_maintenance is not None and detail.scheduled_maintenance.covers(now):
        return "is in scheduled maintenance"
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
    return None if routes_to(index, probe, m) else f"is no longer routed to {m.type}"
