"""Who would a problem of this check reach now?  The dashboard's routing preview (pure).

The check page shows it next to the check's state: the notifier's routing
(:func:`shared.routing.selection.select`) for a problem at the check's
current severity, with addresses redacted.  Intervals, rollups and the
processor's delays are left out on purpose (they depend on history the page
does not load); ``POST /simulate`` (:mod:`shared.explain.simulate`) answers
with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.checks import CheckDetail
from shared.delivery_log import redact_address
from shared.directory import DirectorySnapshot
from shared.keys import check_id
from shared.models import Notification
from shared.routing.selection import compile_index, select


@dataclass(frozen=True, slots=True)
class RoutingPreview:
    """Who a problem would reach (contact, medium type, redacted address) and who not, why."""

    severity: str
    targets: list[tuple[str, str, str]]  # contact name, medium type, redacted address
    suppressed: list[tuple[str, str]]  # contact name (or ""), reason


def who_would_be_notified(
    snap: DirectorySnapshot, check: CheckDetail, now: float
) -> RoutingPreview:
    """The notifier's routing for a problem of this check at ``now`` (blocks and rollup aside).

    A healthy check is asked about as ``critical``, the severity a test
    notification uses too.
    """
    severity = check.state if check.state in ("critical", "warning", "unknown") else "critical"
    n = Notification(
        id="dry-run",
        type="problem",
        check_id=check_id(check.entity, check.check),
        entity=check.entity,
        check=check.check,
        state=severity,
        severity=severity,  # type: ignore[arg-type]
        time=now,
        tags=check.tags,
    )
    sel = select(compile_index(snap), n)
    names = {cid: c.name for cid, c in snap.contacts.items()}
    targets = [
        (t.contact.name, t.medium.type, redact_address(t.medium.type, t.medium.address))
        for t in sel.targets
    ]
    suppressed = [(names.get(d.contact_id or "", ""), d.text) for d in sel.decisions]
    return RoutingPreview(severity, targets, suppressed)
