"""The one severity order every component ranks states by (README, "Who gets told").

Flapjack's priorities: critical (-3) > warning (-2) > unknown (-1), then ``ok``.
The processor routes recoveries with the episode's worst state, the notifier
names a rollup's worst check, Slack colours and PagerDuty grades by it and
the dashboard sorts by it; defining it once here keeps them from disagreeing.
"""

from __future__ import annotations

from collections.abc import Iterable

# Most severe first; ``ok`` last, anything else after it.
SEVERITY_ORDER: tuple[str, ...] = ("critical", "warning", "unknown", "ok")
_POSITION = {state: i for i, state in enumerate(SEVERITY_ORDER)}


def severity_key(state: str | None) -> int:
    """Sort key, most severe first: ``sorted(states, key=severity_key)``; unknown strings last."""
    return _POSITION.get(state or "", len(SEVERITY_ORDER))


def worse(a: str | None, b: str) -> str:
    """The more severe of two states (``a`` may be None: nothing seen yet); ties keep ``a``."""
    if a is None or severity_key(b) < severity_key(a):
        return b
    return a


def worst(states: Iterable[str], default: str = "ok") -> str:
    """The most severe of ``states`` (``default`` when there are none)."""
    return min(states, key=severity_key, default=default)
