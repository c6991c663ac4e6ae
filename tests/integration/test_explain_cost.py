"""Smoke test of the decision-recording cost benchmark (``python -m benchmarks.explain_cost``).

The measurement itself (1,000 checks x 20 events, three paired rounds, about
a minute) is a benchmark, not a test: see docs/explain.md for its figures.
Here the same harness runs on a tiny workload, so a change that breaks it,
or that records decisions for the wrong checks, fails the suite.
"""

from __future__ import annotations

import pytest

from benchmarks.explain_cost import WORKLOADS, failing_checks, paired_cost
from shared.config import Settings

pytestmark = pytest.mark.integration

CHECKS = 50


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_benchmark_runs_and_records_only_failing_checks(
    settings: Settings, workload: str
) -> None:
    load, _limit = WORKLOADS[workload]
    cost = paired_cost(settings, load, CHECKS, rounds=1)
    assert (cost.recorded, cost.unrecorded) == (
        failing_checks(load, settings.partitions, CHECKS),
        0,
    )
    assert cost.events == CHECKS * 20
    assert cost.seconds_on > 0 and cost.seconds_off > 0 and cost.median_ratio > 0
