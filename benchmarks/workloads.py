"""Generated workloads: which events, in which order, in which message bodies.

Pure: the caller passes the time stamp that goes into each event, so the
latency of a delivery can be measured from the event's own ``summary``
(``bench ts=<publish time>``) to the moment the webhook receiver gets it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

Workload = Literal["steady", "storm", "flapping"]
WORKLOADS: tuple[Workload, ...] = ("steady", "storm", "flapping")
DEFAULT_CHECKS: dict[Workload, int] = {"steady": 10_000, "storm": 10_000, "flapping": 1_000}
STAMP = "bench ts="

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run sends: an optional untimed warm-up round, then ``events`` timed events."""

    workload: Workload
    checks: int
    events: int

    @property
    def warmup_state(self) -> str | None:
        """Storm checks are ok before they turn critical; the others start cold."""
        return "ok" if self.workload == "storm" else None

    def state_of(self, n: int) -> str:
        """State of the ``n``-th timed event (round ``n // checks`` over the checks)."""
        if self.workload == "steady":
            return "ok"
        if self.workload == "storm":
            return "critical"
        return "critical" if (n // self.checks) % 2 == 0 else "ok"

    def check_of(self, n: int) -> tuple[str, str]:
        """(entity, check) of the ``n``-th event: 10 checks per entity, like hosts with services."""
        i = n % self.checks
        return f"bench-host-{i // 10:05d}", f"svc-{i % 10}"


def event(plan: Plan, n: int, now: float, state: str | None = None) -> dict[str, Any]:
    """The ``n``-th event as a Flapjack dict, stamped with ``now``."""
    entity, check = plan.check_of(n)
    return {
        "entity": entity,
        "check": check,
        "type": "service",
        "state": state or plan.state_of(n),
        "summary": f"{STAMP}{now:.6f}",
        "time": now,
        # Notify at once and on every change, so each notifying event is a delivery.
        "initial_failure_delay": 0,
        "repeat_failure_delay": 0,
        "initial_recovery_delay": 0,
    }


def bodies(
    plan: Plan, start: int, count: int, batch: int, now: float, state: str | None = None
) -> Iterator[bytes]:
    """Message bodies for events ``start .. start+count``: one event each, or JSON arrays."""
    end = start + count
    for first in range(start, end, batch):
        chunk = [event(plan, n, now, state) for n in range(first, min(first + batch, end))]
        yield _ENCODER.encode(chunk[0] if batch == 1 else chunk)


def stamp_of(summary: object) -> float | None:
    """The publish time carried in a delivery's summary, or None (rollups carry none)."""
    if isinstance(summary, str) and summary.startswith(STAMP):
        try:
            return float(summary[len(STAMP) :])
        except ValueError:
            return None
    return None


def percentiles(values: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles in the unit given (empty input: zeros, never NaN)."""
    if not values:
        return {f"p{p}": 0.0 for p in points}
    ordered = sorted(values)
    out = {}
    for p in points:
        rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
        out[f"p{p}"] = round(ordered[rank], 2)
    return out
