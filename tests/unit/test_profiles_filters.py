"""Filter blobs, timeslot spans and the processor's incident facts for profiles (pure, docs/profiles.md)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.api.argus.core import Row, make_filter, matches
from shared.argus import (
    Facts,
    FilterError,
    incident_fits,
    is_empty,
    listing_fits,
    parse_filter,
)
from shared.routing.profiles import Span, in_timeslot, span_of
from tests.unit.processor_sim import ev, maint, run

OSLO = ZoneInfo("Europe/Oslo")


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "source_pk": 2,
        "source_type": "nav",
        "tags": frozenset({"host=a"}),
        "level": 3,
        "open": True,
        "acked": False,
        "stateful": True,
    }
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param({"tags": ["nokey"]}, "filter.tags", id="tag-without-equals"),
        pytest.param({"tags": ["Host=a"]}, "filter.tags", id="tag-key-uppercase"),
        pytest.param({"maxlevel": 6}, "filter.maxlevel", id="maxlevel-out-of-range"),
        pytest.param({"event_types": ["XYZ"]}, "filter.event_types", id="unknown-event-type"),
        pytest.param({"open": "yes"}, "filter.open", id="open-not-bool"),
        pytest.param([], "filter", id="not-an-object"),
    ],
)
def test_invalid_filters_name_the_key(raw: object, field: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(raw)
    assert caught.value.field == field


def test_parse_normalises_and_drops_unknown_keys() -> None:
    blob = parse_filter(
        {
            "tags": [" host = a ", "host=a"],
            "event_type": "ack",
            "whatever": 1,
            "hide_closed_acked": False,
        }
    )
    assert (
        blob.tags == ["host=a"] and blob.event_types == ["ACK"] and blob.hide_closed_acked is None
    )


@pytest.mark.parametrize(
    "raw",
    [{}, {"tags": []}, {"open": None}, {"hide_closed_acked": False}, {"sourceSystemIds": []}],
)
def test_filters_with_every_key_unset_match_nothing(raw: dict[str, object]) -> None:
    blob = parse_filter(raw)
    assert is_empty(blob) and not incident_fits(blob, facts())


def test_stored_filter_tags_need_all_of_them_in_listings_too() -> None:
    """The one tag rule for stored filters: the incident must carry every tag."""
    blob = parse_filter({"tags": ["host=a", "host=b"]})
    assert not listing_fits(blob, facts(tags=frozenset({"host=a"})))
    assert listing_fits(blob, facts(tags=frozenset({"host=a", "host=b", "x=y"})))


def test_incident_list_query_keeps_argus_same_key_or() -> None:
    """``incidents/?tags=`` is Argus's query parameter rule, unchanged: same key OR."""
    row = Row(
        pk=1,
        start_time=0.0,
        end_time=None,
        stateful=True,
        level=3,
        source_pk=2,
        source_name="nav",
        source_type="nav",
        source_incident_id="x",
        tags=("host=a",),
        acked=False,
        ack_until=None,
    )
    assert matches(row, make_filter({"tags": "host=a,host=b"}, 0.0), 0.0)
    assert not matches(row, make_filter({"tags": "host=a,site=x"}, 0.0), 0.0)


def test_listing_event_types_look_at_the_log() -> None:
    blob = parse_filter({"event_types": ["ACK"]})
    assert not listing_fits(blob, facts(logged_types=frozenset({"STA"})))
    assert listing_fits(blob, facts(logged_types=frozenset({"STA", "ACK"})))


def test_all_day_and_seconds_spans() -> None:
    assert span_of({"days": [1], "all_day": True, "start": "10:00"}) == Span(
        frozenset({1}), 0.0, 86400.0, True
    )
    assert span_of({"days": [2], "start": "22:00", "end": "23:59:59.999999"}).end == pytest.approx(
        86399.999999
    )


def test_night_span_across_the_dst_change_in_oslo() -> None:
    """Sat 2026-03-28 22:00 -> Sun 06:00 in Oslo spans the spring-forward hour."""
    night = (span_of({"days": [6], "start": "22:00", "end": "06:00"}),)
    inside = datetime(2026, 3, 29, 5, 30, tzinfo=OSLO).timestamp()
    outside = datetime(2026, 3, 29, 6, 30, tzinfo=OSLO).timestamp()
    assert in_timeslot(night, inside, OSLO) and not in_timeslot(night, outside, OSLO)


# --------------------------------------------------------------------------- processor facts


def test_check_incident_notifications_stand_for_their_incident_events() -> None:
    notes, _ = run(
        [
            ev(0, "critical", initial_failure_delay=0),
            ev(10, "critical", repeat_failure_delay=0),
            ev(20, "warning"),
            ev(30, "acknowledgement", duration=600),
            ev(40, "ok"),
        ]
    )
    got = [(n.type, n.incident_event, n.incident_open, n.incident_acked) for n in notes]
    assert got == [
        ("problem", "STA", True, False),
        ("problem", "", True, False),
        ("problem", "OTH", True, False),
        ("acknowledgement", "ACK", True, True),
        ("recovery", "END", False, True),  # closing keeps the incident acked, as in Argus
    ]
    assert {n.incident_source for n in notes} == {"tocsin"}
    assert notes[0].incident_level == 1 and notes[2].incident_level == 3


def test_check_incident_facts_tell_scheduled_maintenance() -> None:
    notes, _ = run(
        [ev(0, "critical", initial_failure_delay=0), ev(100, "ok")], scheduled=[maint(50, 200)]
    )
    assert [(n.incident_event, n.in_maintenance) for n in notes] == [("STA", False), ("END", True)]


def test_argus_source_events_leave_profiles_to_the_api() -> None:
    notes, _ = run([ev(0, "critical", initial_failure_delay=0, incident_id="9")])
    assert [(n.incident_event, n.incident_source) for n in notes] == [("", "@web1")]


def test_crossing_timeslot_becomes_a_crossing_rule_restriction() -> None:
    from services.api.argus.timeslots import RecurrenceIn, to_time_restrictions

    (night,) = to_time_restrictions([RecurrenceIn(days=[5], start="22:00", end="06:00:00")])
    assert (night.days, night.start, night.end) == ((5,), "22:00", "06:00")
    (day,) = to_time_restrictions([RecurrenceIn(days=[1], start="08:00", end="16:00:00")])
    assert (day.start, day.end) == ("08:00", "16:00")
