"""The delivery-order gate (shared/lanes.py): chains per lane, parking, stale heads."""

from __future__ import annotations

import itertools

from services.gateways.core import PARK_MAX_S, park_delay
from shared.lanes import Candidate, LaneView, lane_id, plan, seq_age_s

NOW = 1_800_000_000.0
FRESH = int(NOW * 1_000_000) - 1_000_000  # produced a second ago


def cand(
    index: int, lane: str, seq: int, rank: int | None, head: tuple[str, int] | None = None
) -> Candidate:
    view = LaneView(rank, head[0] if head else None, head[1] if head else None)
    return Candidate(index, lane, f"d{index}", seq, view)


def test_lane_id_separates_address_check_and_rollup() -> None:
    base = lane_id("webhook", "https://x/h", "web1", "http", rollup=False)
    assert base == lane_id("webhook", "https://x/h", "web1", "http", rollup=False)
    assert base != lane_id("webhook", "https://x/h2", "web1", "http", rollup=False)
    assert base != lane_id("slack", "https://x/h", "web1", "http", rollup=False)
    assert base != lane_id("webhook", "https://x/h", "web1", "disk", rollup=False)
    assert base != lane_id("webhook", "https://x/h", "web1", "http", rollup=True)
    # "web1:a" + "b" and "web1" + "a:b" are different checks, so different lanes.
    assert lane_id("webhook", "u", "web1:a", "b", False) != lane_id(
        "webhook", "u", "web1", "a:b", False
    )


def test_head_of_its_lane_goes_and_the_next_in_batch_follows_in_seq_order() -> None:
    gate = plan([cand(0, "L", FRESH + 2, rank=1), cand(1, "L", FRESH + 1, rank=0)], NOW, 600)
    assert gate.chains == [[1, 0]]
    assert gate.parked == []


def test_different_lanes_are_separate_chains() -> None:
    gate = plan([cand(0, "A", FRESH, rank=0), cand(1, "B", FRESH + 1, rank=0)], NOW, 600)
    assert sorted(gate.chains) == [[0], [1]]


def test_a_delivery_with_an_unfinished_one_ahead_outside_the_batch_is_parked() -> None:
    gate = plan([cand(0, "L", FRESH + 5, rank=1, head=("other", FRESH))], NOW, 600)
    assert gate.chains == []
    assert [i for i, _ in gate.parked] == [0]
    assert "1 earlier" in gate.parked[0][1]


def test_once_one_parks_everything_after_it_in_its_lane_parks_too() -> None:
    cands = [
        cand(0, "L", FRESH + 1, rank=0),
        cand(1, "L", FRESH + 3, rank=2, head=("d0", FRESH + 1)),  # gap: rank 1 is elsewhere
        cand(2, "L", FRESH + 4, rank=3, head=("d0", FRESH + 1)),
    ]
    gate = plan(cands, NOW, 600)
    assert gate.chains == [[0]]
    assert [i for i, _ in gate.parked] == [1, 2]


def test_unsequenced_deliveries_have_no_order_to_keep() -> None:
    gate = plan([cand(0, "L", 0, rank=None), cand(1, "L", 0, rank=None)], NOW, 600)
    assert sorted(gate.chains) == [[0], [1]]


def test_a_head_unfinished_for_longer_than_any_retry_is_presumed_lost() -> None:
    old = int((NOW - 700) * 1_000_000)
    gate = plan([cand(0, "L", FRESH, rank=1, head=("lost", old))], NOW, stale_after_s=600)
    assert gate.stale == [("L", "lost")]
    assert gate.chains == [[0]]
    assert seq_age_s(old, NOW) == 700


def test_a_slow_head_younger_than_the_limit_is_waited_for() -> None:
    old = int((NOW - 500) * 1_000_000)
    gate = plan([cand(0, "L", FRESH, rank=1, head=("slow", old))], NOW, stale_after_s=600)
    assert gate.stale == [] and gate.chains == []


def test_park_delay_starts_short_doubles_and_is_capped() -> None:
    delays = [park_delay(k) for k in range(8)]
    assert delays[0] < 0.2
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == PARK_MAX_S
    assert park_delay(0, at_least=7.5) == 7.5  # the wait of the one ahead is known
