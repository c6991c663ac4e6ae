"""On-call rotation maths: table tests and hypothesis properties (pure, no clock)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.models import TimeRecurrence
from shared.oncall import (
    Layer,
    Override,
    Schedule,
    handoff_at,
    on_call,
    on_call_source,
    schedule_error,
    timeline,
    to_epoch,
)

OSLO = ZoneInfo("Europe/Oslo")


def at(text: str, tz: ZoneInfo = OSLO) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def weekly(*people: str, handoff: str = "2026-12-07T09:00") -> Layer:
    return Layer(members=people, shift_hours=168, handoff=handoff)


def sched(
    *layers: Layer, overrides: tuple[Override, ...] = (), tz: str = "Europe/Oslo"
) -> Schedule:
    return Schedule(id="s", name="ops", timezone=tz, layers=layers, overrides=overrides)


@pytest.mark.parametrize(
    ("when", "who"),
    [
        pytest.param("2026-12-07T09:00", "kari", id="first shift starts at the hand-off"),
        pytest.param("2026-12-14T08:59", "kari", id="one minute before the next hand-off"),
        pytest.param("2026-12-14T09:00", "ola", id="hand-off to the second member"),
        pytest.param("2026-12-21T09:00", "kari", id="rotation wraps"),
        pytest.param("2026-12-07T08:59", "ola", id="before the first hand-off runs backwards"),
    ],
)
def test_weekly_rotation(when: str, who: str) -> None:
    assert on_call(sched(weekly("kari", "ola")), at(when)) == who


@pytest.mark.parametrize(
    ("when", "who", "source"),
    [
        pytest.param("2026-12-08T10:00", "day", "layer:1", id="restricted layer inside its hours"),
        pytest.param("2026-12-08T17:00", "base", "layer:0", id="end is exclusive: base shows"),
        pytest.param("2026-12-12T10:00", "base", "layer:0", id="weekend: base"),
        pytest.param("2026-12-24T20:00", "ola", "override:o1", id="override beats layers"),
    ],
)
def test_layers_and_overrides(when: str, who: str, source: str) -> None:
    hours = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="17:00")
    base = weekly("base")
    day = Layer(members=("day",), shift_hours=24, handoff="2026-12-01T00:00", restrictions=(hours,))
    o = Override(
        id="o1", contact_id="ola", start=at("2026-12-24T18:00"), end=at("2026-12-26T09:00")
    )
    assert on_call_source(sched(base, day, overrides=(o,)), at(when)) == (who, source)


def test_newest_override_wins() -> None:
    a = Override(id="a", contact_id="x", start=0, end=100, created=1)
    b = Override(id="b", contact_id="y", start=50, end=150, created=2)
    s = sched(weekly("base"), overrides=(b, a))
    assert [on_call(s, t) for t in (10, 60, 120, 150)] == ["x", "y", "y", "base"]


def test_spring_forward_handoff_in_the_gap_happens_when_the_gap_ends() -> None:
    # 2027-03-28: Oslo clocks jump from 02:00 to 03:00; 02:30 does not exist.
    layer = Layer(members=("a", "b"), shift_hours=24, handoff="2027-03-26T02:30")
    s = sched(layer)
    assert handoff_at(layer, OSLO, 2) == at("2027-03-28T03:00")
    assert on_call(s, at("2027-03-28T01:59")) == "b"
    assert on_call(s, at("2027-03-28T03:00")) == "a"
    assert handoff_at(layer, OSLO, 3) == at("2027-03-29T02:30")  # back to 02:30 the next day


def test_fall_back_handoff_takes_the_first_occurrence() -> None:
    # 2026-10-25: Oslo 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    layer = Layer(members=("a", "b"), shift_hours=24, handoff="2026-10-24T02:30")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=OSLO).timestamp()  # fold=0: CEST
    assert handoff_at(layer, OSLO, 1) == first
    assert on_call(sched(layer), first - 1) == "a"
    assert on_call(sched(layer), first + 3600) == "b"  # the second 02:30 is still b's


def test_daily_handoff_keeps_wall_clock_across_dst() -> None:
    layer = Layer(members=("a", "b"), shift_hours=24, handoff="2027-03-27T09:00")
    assert handoff_at(layer, OSLO, 1) - handoff_at(layer, OSLO, 0) == 23 * 3600
    assert datetime.fromtimestamp(handoff_at(layer, OSLO, 1), OSLO).hour == 9


def test_timeline_merges_and_names_sources() -> None:
    o = Override(id="o", contact_id="ola", start=at("2026-12-09T12:00"), end=at("2026-12-10T12:00"))
    s = sched(weekly("kari", "per"), overrides=(o,))
    shifts = timeline(s, at("2026-12-08T00:00"), at("2026-12-15T00:00"))
    assert [(sh.contact_id, sh.source) for sh in shifts] == [
        ("kari", "layer:0"),
        ("ola", "override:o"),
        ("kari", "layer:0"),
        ("per", "layer:0"),
    ]
    assert shifts[-1].start == at("2026-12-14T09:00")


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        pytest.param(sched(tz="Mars/Olympus"), "timezone", id="bad zone"),
        pytest.param(sched(), "layers", id="no layers"),
        pytest.param(sched(weekly("a", handoff="monday")), "layers[0].handoff", id="bad handoff"),
    ],
)
def test_schedule_errors(schedule: Schedule, field: str) -> None:
    err = schedule_error(schedule)
    assert err is not None and err[1] == field


# --------------------------------------------------------------------------- properties

ZONES = st.sampled_from(
    ["UTC", "Europe/Oslo", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
)
HANDOFFS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0).isoformat()
)
LAYERS = st.builds(
    Layer,
    members=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5).map(tuple),
    shift_hours=st.sampled_from([1, 5, 8, 12, 24, 36, 168]),
    handoff=HANDOFFS,
)
INSTANTS = st.floats(min_value=at("2025-01-01T00:00"), max_value=at("2028-01-01T00:00"))


@settings(max_examples=200, deadline=None)
@given(layer=LAYERS, tz=ZONES, t=INSTANTS)
@example(  # half a second before a hand-off (found by hypothesis, 2026-12-03)
    layer=Layer(members=("a", "b"), shift_hours=24, handoff="2026-12-01T00:00"),
    tz="UTC",
    t=at("2026-12-03T00:00", ZoneInfo("UTC")) - 0.5,
)
def test_single_gapless_layer_has_exactly_one_member_at_any_instant(
    layer: Layer, tz: str, t: float
) -> None:
    s = sched(layer, tz=tz)
    who = on_call(s, t)
    assert who is not None and who in layer.members
    # exactly one shift holds t: its hand-offs bracket t; a second one starts
    # only if a hand-off falls inside the next second
    shifts = timeline(s, t, t + 1)
    assert shifts[0].start == t and shifts[0].contact_id == who
    assert len(shifts) == 1 or (len(shifts) == 2 and t < shifts[1].start < t + 1)


@settings(max_examples=150, deadline=None)
@given(
    layers=st.lists(LAYERS, min_size=1, max_size=3),
    tz=ZONES,
    start=INSTANTS,
    length=st.floats(min_value=60, max_value=10 * 86400),
    earlier=st.lists(st.tuples(INSTANTS, st.floats(min_value=60, max_value=86400)), max_size=3),
)
def test_an_override_window_is_wholly_covered_by_its_member(
    layers: list[Layer], tz: str, start: float, length: float, earlier: list[tuple[float, float]]
) -> None:
    older = tuple(
        Override(id=f"e{i}", contact_id="other", start=s0, end=s0 + d, created=i)
        for i, (s0, d) in enumerate(earlier)
    )
    o = Override(id="o", contact_id="cover", start=start, end=start + length, created=100)
    s = sched(*layers, overrides=(o, *older), tz=tz)
    shifts = timeline(s, o.start, o.end)
    assert [(sh.contact_id, sh.start, sh.end) for sh in shifts] == [("cover", o.start, o.end)]
    assert on_call(s, o.start) == "cover"


@settings(max_examples=100, deadline=None)
@given(layer=LAYERS, tz=ZONES)
def test_handoffs_land_on_the_wall_clock_or_the_end_of_a_gap(layer: Layer, tz: str) -> None:
    zone = ZoneInfo(tz)
    for k in range(-3, 4):
        h = handoff_at(layer, zone, k)
        assert handoff_at(layer, zone, k + 1) > h  # strictly increasing
        local = datetime.fromtimestamp(h, zone).replace(tzinfo=None)
        wall = datetime.fromisoformat(layer.handoff) + timedelta(hours=layer.shift_hours * k)
        # the wall-clock time itself, or (it was skipped) the end of the gap just after it
        assert local == wall or timedelta(0) < local - wall <= timedelta(hours=1)
        assert h == to_epoch(wall, zone)


RESTRICTED = st.builds(
    Layer,
    members=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=4).map(tuple),
    shift_hours=st.sampled_from([8, 24, 168]),
    handoff=HANDOFFS,
    restrictions=st.lists(
        st.builds(
            TimeRecurrence,
            days=st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True).map(tuple),
            start=st.sampled_from(["00:00", "02:30", "08:00", "22:00"]),
            end=st.sampled_from(["03:00", "17:00", "24:00"]),
        ),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(
    layers=st.lists(RESTRICTED, min_size=1, max_size=3),
    tz=ZONES,
    start=INSTANTS,
    length=st.floats(min_value=3600, max_value=3 * 86400),
)
def test_the_timeline_agrees_with_on_call_inside_every_shift(
    layers: list[Layer], tz: str, start: float, length: float
) -> None:
    s = sched(*layers, tz=tz)
    shifts = timeline(s, start, start + length)
    assert shifts[0].start == start and shifts[-1].end == start + length
    for sh in shifts:
        # Only instants inside [start, end): a shift that starts a fraction of a
        # microsecond before a hand-off has no float between its ends, and
        # ``end - 0.001`` would fall before it (a real example, 2026-12-03).
        inside = {sh.start, (sh.start + sh.end) / 2, sh.end - 0.001}
        for t in sorted(t for t in inside if sh.start <= t < sh.end):
            assert on_call(s, t) == sh.contact_id, (sh, t)


def test_a_timeline_starting_just_before_a_hand_off_has_a_sub_microsecond_first_shift() -> None:
    """The float just below a hand-off starts a shift of its own, for the one going off."""
    layer = Layer(members=("a", "b"), shift_hours=24, handoff="2026-12-01T00:00")
    s = sched(layer, tz="UTC")
    handoff = at("2026-12-03T00:00", ZoneInfo("UTC"))
    start = math.nextafter(handoff, 0.0)
    first, second = timeline(s, start, handoff + 3600)
    assert (first.start, first.end, first.contact_id) == (start, handoff, "b")
    assert (second.start, second.contact_id) == (handoff, "a")
