"""Keys of on-call schedules, escalation policies and running escalations.

All under one hash tag (``{oncall}``), so the scheduler's scripts may touch
the due set and an escalation in one call on a Redis Cluster.
"""

from __future__ import annotations


class OnCallKeys:
    """The oncall part of :class:`shared.keys.Keys` (one namespace prefix, ``p``)."""

    __slots__ = ()
    p: str

    # -- on call (shared/oncall_store.py, shared/escalation_store.py)
    def schedules(self) -> str:
        """HASH schedule id -> JSON schedule with its overrides (ended ones pruned on write)."""
        return f"{self.p}oncall:{{oncall}}:schedules"

    def policies(self) -> str:
        """HASH policy id -> JSON escalation policy."""
        return f"{self.p}oncall:{{oncall}}:policies"

    def oncall_version(self) -> str:
        """STRING counter bumped by every schedule or policy write (caches reload on change)."""
        return f"{self.p}oncall:{{oncall}}:version"

    def escalation_due(self) -> str:
        """ZSET escalation id -> when its next step is due (epoch); claimed by the scheduler."""
        return f"{self.p}oncall:{{oncall}}:due"

    def escalation(self, eid: str) -> str:
        """HASH ``{record, step}`` of one running escalation; expires after the last step."""
        return f"{self.p}oncall:{{oncall}}:escalation:{eid}"

    def escalation_timeline(self, eid: str) -> str:
        """LIST of JSON timeline entries (who was on call, who was paged, why it stopped)."""
        return f"{self.p}oncall:{{oncall}}:escalation:{eid}:timeline"

    def check_escalations(self, cid: str) -> str:
        """ZSET escalation ids of a check by start time, capped (explain reads it)."""
        return f"{self.p}oncall:{{oncall}}:check:{cid}:escalations"

    def scheduler_lease(self) -> str:
        """STRING with a PX expiry: which scheduler process may claim due steps."""
        return f"{self.p}oncall:{{oncall}}:lease"
