"""What `tocsin check` and /metrics make of Redis's INFO memory."""

from __future__ import annotations

import pytest

from shared.redis_memory import assess


@pytest.mark.parametrize(
    ("info", "level", "problem"),
    [
        pytest.param(
            {"used_memory": 10, "maxmemory": 100, "maxmemory_policy": "noeviction"},
            "ok",
            None,
            id="well below the limit",
        ),
        pytest.param(
            {"used_memory": 80, "maxmemory": 100, "maxmemory_policy": "noeviction"},
            "warning",
            "80% of maxmemory",
            id="at the alert threshold",
        ),
        pytest.param(
            {"used_memory": 96, "maxmemory": 100, "maxmemory_policy": "noeviction"},
            "full",
            "writes are refused",
            id="nearly full",
        ),
        pytest.param(
            {"used_memory": 10, "maxmemory": 100, "maxmemory_policy": "allkeys-lru"},
            "warning",
            "evict",
            id="an evicting policy",
        ),
        pytest.param(
            {"used_memory": 10, "maxmemory": 0, "maxmemory_policy": "noeviction"},
            "warning",
            "no maxmemory",
            id="no limit",
        ),
    ],
)
def test_assess(info: dict[str, object], level: str, problem: str | None) -> None:
    status = assess(info)
    assert status.level == level
    if problem is None:
        assert status.problem is None
    else:
        assert status.problem is not None and problem in status.problem


def test_ratio() -> None:
    status = assess({"used_memory": 25, "maxmemory": 100})
    assert status.ratio == 0.25 and status.used_bytes == 25 and status.maxmemory_bytes == 100
    assert assess({"used_memory": 25, "maxmemory": 0}).ratio is None
