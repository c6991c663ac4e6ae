"""Calendar feeds: our own export reads back as the same rotation; recurring events expand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.api.ical import render_calendar
from shared.ical_feed import Feed, FeedError, infer_layer, read_feed, resynced_layer
from shared.models import TimeRecurrence
from shared.oncall import Layer, Schedule, timeline

OSLO = ZoneInfo("Europe/Oslo")
PEOPLE = {"k": ("Kari", "kari@example.org"), "o": ("Ola", None), "on": ("Ola Nordmann", None)}


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=OSLO).timestamp()


def test_an_exported_rotation_reads_back_as_the_same_layer_across_dst() -> None:
    layer = Layer(members=("k", "o"), shift_hours=24, handoff="2027-03-20T09:00")
    s = Schedule(id="s", name="ops", timezone="Europe/Oslo", layers=(layer,))
    a, b = at("2027-03-22T09:00"), at("2027-04-05T09:00")  # spring forward on the 28th
    names = {"k": "Kari", "o": "Ola"}
    ics = render_calendar(s, timeline(s, a, b), names, a).decode()
    feed = read_feed(ics, {"k": ("Kari", None), "o": ("Ola", None)}, a, b, OSLO)
    assert len(feed.shifts) == 14 and feed.unmatched == ()
    assert infer_layer(feed.shifts, OSLO) == Layer(
        members=("k", "o"), shift_hours=24, handoff="2027-03-22T09:00"
    )


RECURRING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:a@test
DTSTART;TZID=Europe/Oslo:20261207T090000
DTEND;TZID=Europe/Oslo:20261214T090000
RRULE:FREQ=WEEKLY;INTERVAL=2
SUMMARY:On call
ATTENDEE:mailto:KARI@example.org
END:VEVENT
BEGIN:VEVENT
UID:b@test
DTSTART;TZID=Europe/Oslo:20261214T090000
DTEND;TZID=Europe/Oslo:20261221T090000
RRULE:FREQ=WEEKLY;INTERVAL=2
SUMMARY:Ola Nordmann on call
END:VEVENT
BEGIN:VEVENT
UID:c@test
DTSTART;TZID=Europe/Oslo:20261224T180000
DTEND;TZID=Europe/Oslo:20261226T090000
SUMMARY:Christmas: nobody we know
END:VEVENT
END:VCALENDAR
"""


def test_recurring_events_expand_and_name_contacts_by_email_then_longest_name() -> None:
    feed = read_feed(RECURRING, PEOPLE, at("2026-12-07T09:00"), at("2027-01-04T09:00"), OSLO)
    assert [s.contact_id for s in feed.shifts] == ["k", "on", "k", "on"]
    assert feed.unmatched == ("Christmas: nobody we know",)
    assert infer_layer(feed.shifts, OSLO) == Layer(
        members=("k", "on"), shift_hours=168, handoff="2026-12-07T09:00"
    )


def test_gaps_or_uneven_turns_are_not_a_rotation() -> None:
    feed = read_feed(RECURRING, PEOPLE, at("2026-12-07T09:00"), at("2027-01-04T09:00"), OSLO)
    assert infer_layer(feed.shifts[:1] + feed.shifts[2:], OSLO) is None


def test_not_a_calendar_is_a_clear_error() -> None:
    with pytest.raises(FeedError, match="not an iCalendar feed"):
        read_feed("hello", PEOPLE, 0, 1, OSLO)


def test_a_resync_replaces_the_rotation_and_keeps_the_layers_own_settings() -> None:
    office = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="17:00")
    old = Layer(
        members=("x",),
        shift_hours=24,
        handoff="2026-01-01T09:00",
        restrictions=(office,),
        name="from the team calendar",
        feed_url="https://cal.example/team.ics",
    )
    feed = read_feed(RECURRING, PEOPLE, at("2026-12-07T09:00"), at("2027-01-04T09:00"), OSLO)
    new = resynced_layer(old, feed, OSLO)
    assert (new.members, new.shift_hours, new.handoff) == (("k", "on"), 168, "2026-12-07T09:00")
    assert (new.restrictions, new.name, new.feed_url) == (old.restrictions, old.name, old.feed_url)
    gap = Feed(feed.shifts[:1] + feed.shifts[2:], ())
    with pytest.raises(FeedError, match="no longer follow one rotation"):
        resynced_layer(old, gap, OSLO)
    with pytest.raises(FeedError, match="no shift naming a contact"):
        resynced_layer(old, Feed((), ("someone else",)), OSLO)
