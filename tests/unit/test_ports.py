"""Listening ports for test and benchmark children (benchmarks/ports.py): no two picks race."""

from __future__ import annotations

import itertools

from benchmarks import ports


def test_outside_xdist_the_whole_range_below_the_ephemeral_ports() -> None:
    low, high = ports.port_range({})
    assert low == ports.LOW
    assert high == min(ports.HIGH, ports.ephemeral_low() - 1)


def test_xdist_workers_pick_from_disjoint_slices() -> None:
    slices = [
        ports.port_range({"PYTEST_XDIST_WORKER": f"gw{i}", "PYTEST_XDIST_WORKER_COUNT": "3"})
        for i in range(3)
    ]
    whole = ports.port_range({})
    for (low, high), (next_low, _) in itertools.pairwise(slices):
        assert low <= high < next_low
    assert slices[0][0] == whole[0] and slices[-1][1] <= whole[1]
    assert all(high - low > 1000 for low, high in slices)


def test_a_lone_xdist_worker_or_an_odd_name_keeps_the_whole_range() -> None:
    whole = ports.port_range({})
    assert (
        ports.port_range({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "1"}) == whole
    )
    assert (
        ports.port_range({"PYTEST_XDIST_WORKER": "master", "PYTEST_XDIST_WORKER_COUNT": "2"})
        == whole
    )


def test_a_process_never_hands_out_a_port_twice_before_its_child_binds_it() -> None:
    # Nothing binds these, so each pick sees every earlier one still free: only the
    # memory of handed-out ports keeps them apart.
    picked = [ports.free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    low, high = ports.port_range()
    assert all(low <= p <= high for p in picked)
