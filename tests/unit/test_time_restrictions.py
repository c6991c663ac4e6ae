"""Time recurrences evaluated on the contact's wall clock, including DST change days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.models import TimeRecurrence
from shared.timeslots import (
    contains,
    describe,
    describe_instant,
    local_clock,
    parse_hhmm,
    recurrence_error,
    zone,
)


def utc(stamp: str) -> float:
    """Epoch seconds of a UTC ``YYYY-MM-DD HH:MM`` (the event times tests use)."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


WEEKDAYS_8_16 = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00")
NIGHT_FRI = TimeRecurrence(days=(5,), start="22:00", end="06:00")
SUNDAY_2_3 = TimeRecurrence(days=(7,), start="02:00", end="03:00")
SUNDAY_1_4 = TimeRecurrence(days=(7,), start="01:00", end="04:00")
EVENING_TO_MIDNIGHT = TimeRecurrence(days=(1,), start="18:00", end="24:00")


@pytest.mark.parametrize(
    ("rec", "tz", "when", "expected"),
    [
        # Europe/Oslo in winter is UTC+1, in summer UTC+2.
        pytest.param(
            WEEKDAYS_8_16,
            "Europe/Oslo",
            "2026-01-12 06:59",
            False,
            id="oslo winter 07:59 before start",
        ),
        pytest.param(
            WEEKDAYS_8_16,
            "Europe/Oslo",
            "2026-01-12 07:00",
            True,
            id="oslo winter 08:00 start inclusive",
        ),
        pytest.param(
            WEEKDAYS_8_16, "Europe/Oslo", "2026-01-12 14:59", True, id="oslo winter 15:59 inside"
        ),
        pytest.param(
            WEEKDAYS_8_16,
            "Europe/Oslo",
            "2026-01-12 15:00",
            False,
            id="oslo winter 16:00 end exclusive",
        ),
        pytest.param(
            WEEKDAYS_8_16,
            "Europe/Oslo",
            "2026-07-13 06:00",
            True,
            id="oslo summer 08:00 is 06:00 UTC",
        ),
        pytest.param(
            WEEKDAYS_8_16, "Europe/Oslo", "2026-07-13 14:30", False, id="oslo summer 16:30 outside"
        ),
        pytest.param(
            WEEKDAYS_8_16, "Europe/Oslo", "2026-01-17 10:00", False, id="oslo saturday outside"
        ),
        pytest.param(
            WEEKDAYS_8_16,
            "Europe/Oslo",
            "2026-01-11 23:30",
            False,
            id="sunday UTC is monday 00:30 oslo",
        ),
        pytest.param(
            WEEKDAYS_8_16, "UTC", "2026-01-12 07:30", False, id="same instant in UTC is outside"
        ),
        # Crossing midnight belongs to the start day.
        pytest.param(NIGHT_FRI, "UTC", "2026-01-16 23:00", True, id="night fri 23:00 inside"),
        pytest.param(
            NIGHT_FRI, "UTC", "2026-01-17 05:59", True, id="night sat 05:59 still fri night"
        ),
        pytest.param(NIGHT_FRI, "UTC", "2026-01-17 06:00", False, id="night sat 06:00 ended"),
        pytest.param(
            NIGHT_FRI, "UTC", "2026-01-16 05:00", False, id="night fri 05:00 is thursday night"
        ),
        pytest.param(NIGHT_FRI, "UTC", "2026-01-17 23:00", False, id="night sat 23:00 not listed"),
        pytest.param(NIGHT_FRI, "UTC", "2026-01-11 23:00", False, id="night sunday not listed"),
        pytest.param(
            TimeRecurrence(days=(7,), start="22:00", end="06:00"),
            "UTC",
            "2026-01-12 03:00",
            True,
            id="sunday night wraps to monday",
        ),
        # Ends at midnight.
        pytest.param(
            EVENING_TO_MIDNIGHT, "UTC", "2026-01-12 23:59", True, id="24:00 end includes 23:59"
        ),
        pytest.param(
            EVENING_TO_MIDNIGHT,
            "UTC",
            "2026-01-13 00:00",
            False,
            id="24:00 end excludes next midnight",
        ),
        pytest.param(
            TimeRecurrence(days=(6, 7), all_day=True),
            "Europe/Oslo",
            "2026-01-16 23:30",
            True,
            id="all day sat starts at oslo midnight",
        ),
        pytest.param(
            TimeRecurrence(days=(6, 7), all_day=True),
            "Europe/Oslo",
            "2026-01-16 22:30",
            False,
            id="all day fri 23:30 oslo outside",
        ),
        # DST, Europe/Oslo: 2026-03-29 02:00 CET -> 03:00 CEST at 01:00 UTC.
        pytest.param(
            SUNDAY_2_3, "Europe/Oslo", "2026-03-29 00:59", False, id="oslo spring 01:59 before gap"
        ),
        pytest.param(
            SUNDAY_2_3,
            "Europe/Oslo",
            "2026-03-29 01:00",
            False,
            id="oslo spring skipped hour never occurs",
        ),
        pytest.param(
            SUNDAY_1_4, "Europe/Oslo", "2026-03-29 00:30", True, id="oslo spring 01:30 CET inside"
        ),
        pytest.param(
            SUNDAY_1_4, "Europe/Oslo", "2026-03-29 01:30", True, id="oslo spring 03:30 CEST inside"
        ),
        pytest.param(
            SUNDAY_1_4,
            "Europe/Oslo",
            "2026-03-29 02:00",
            False,
            id="oslo spring 04:00 CEST outside",
        ),
        pytest.param(
            TimeRecurrence(days=(7,), start="08:00", end="16:00"),
            "Europe/Oslo",
            "2026-03-29 06:00",
            True,
            id="oslo spring day 08:00 is 06:00 UTC",
        ),
        pytest.param(
            TimeRecurrence(days=(6,), start="08:00", end="16:00"),
            "Europe/Oslo",
            "2026-03-28 06:30",
            False,
            id="oslo day before 07:30 CET",
        ),
        # DST, Europe/Oslo: 2026-10-25 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:xx occurs twice.
        pytest.param(
            SUNDAY_2_3, "Europe/Oslo", "2026-10-25 00:30", True, id="oslo fall first 02:30 CEST"
        ),
        pytest.param(
            SUNDAY_2_3, "Europe/Oslo", "2026-10-25 01:30", True, id="oslo fall second 02:30 CET"
        ),
        pytest.param(
            SUNDAY_2_3, "Europe/Oslo", "2026-10-25 02:00", False, id="oslo fall 03:00 CET outside"
        ),
        pytest.param(
            TimeRecurrence(days=(7,), start="08:00", end="16:00"),
            "Europe/Oslo",
            "2026-10-25 07:00",
            True,
            id="oslo fall day 08:00 is 07:00 UTC",
        ),
        # DST, America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT at 07:00 UTC.
        pytest.param(
            SUNDAY_2_3, "America/New_York", "2026-03-08 07:00", False, id="nyc spring skipped hour"
        ),
        pytest.param(
            SUNDAY_1_4, "America/New_York", "2026-03-08 06:59", True, id="nyc spring 01:59 EST"
        ),
        pytest.param(
            SUNDAY_1_4, "America/New_York", "2026-03-08 07:59", True, id="nyc spring 03:59 EDT"
        ),
        pytest.param(
            SUNDAY_1_4, "America/New_York", "2026-03-08 08:00", False, id="nyc spring 04:00 EDT"
        ),
        # DST, America/New_York: 2026-11-01 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:xx twice.
        pytest.param(
            TimeRecurrence(days=(7,), start="01:00", end="02:00"),
            "America/New_York",
            "2026-11-01 05:30",
            True,
            id="nyc fall first 01:30 EDT",
        ),
        pytest.param(
            TimeRecurrence(days=(7,), start="01:00", end="02:00"),
            "America/New_York",
            "2026-11-01 06:30",
            True,
            id="nyc fall second 01:30 EST",
        ),
        pytest.param(
            TimeRecurrence(days=(7,), start="01:00", end="02:00"),
            "America/New_York",
            "2026-11-01 07:00",
            False,
            id="nyc fall 02:00 EST outside",
        ),
        pytest.param(
            TimeRecurrence(days=(6,), start="22:00", end="06:00"),
            "America/New_York",
            "2026-11-01 10:59",
            True,
            id="nyc overnight across fall back 05:59 EST",
        ),
        pytest.param(
            TimeRecurrence(days=(6,), start="22:00", end="06:00"),
            "America/New_York",
            "2026-11-01 11:00",
            False,
            id="nyc overnight across fall back 06:00 EST",
        ),
    ],
)
def test_recurrence_contains_instant(
    rec: TimeRecurrence, tz: str, when: str, expected: bool
) -> None:
    assert contains([rec], utc(when), zone(tz)) is expected


def test_empty_list_means_always() -> None:
    assert contains([], utc("2026-01-17 03:00"), zone("Europe/Oslo"))


def test_any_recurrence_of_several() -> None:
    recs = [WEEKDAYS_8_16, TimeRecurrence(days=(6,), start="10:00", end="12:00")]
    assert contains(recs, utc("2026-01-17 09:30"), zone("Europe/Oslo"))  # Sat 10:30 Oslo
    assert not contains(recs, utc("2026-01-17 11:30"), zone("Europe/Oslo"))  # Sat 12:30


def test_local_clock_of_oslo_summer() -> None:
    assert local_clock(utc("2026-07-13 06:03"), zone("Europe/Oslo")) == (1, 8 * 60 + 3)


@pytest.mark.parametrize(
    ("rec", "error"),
    [
        pytest.param(TimeRecurrence(days=()), "at least one day", id="no days"),
        pytest.param(TimeRecurrence(start="08:00", end="08:00"), "empty span", id="empty span"),
        pytest.param(
            TimeRecurrence(start="08:00", end="08:00", all_day=True),
            None,
            id="all day ignores span",
        ),
        pytest.param(TimeRecurrence(start="22:00", end="06:00"), None, id="overnight ok"),
        pytest.param(TimeRecurrence(start="00:00", end="24:00"), None, id="whole day ok"),
    ],
)
def test_recurrence_error(rec: TimeRecurrence, error: str | None) -> None:
    got = recurrence_error(rec)
    assert (got is None) if error is None else (got is not None and error in got)


@pytest.mark.parametrize("value", ["8:00", "24:01", "12:60", "ab:cd", "1200"])
def test_parse_hhmm_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError, match="time"):
        parse_hhmm(value)


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Base'"):
        zone("Mars/Base")


def test_descriptions_read_like_people_write_them() -> None:
    assert describe(WEEKDAYS_8_16) == "Mon-Fri 08:00-16:00"
    assert describe(TimeRecurrence(days=(6, 7), all_day=True)) == "Sat,Sun all day"
    assert (
        describe(TimeRecurrence(days=(1, 2, 3, 5), start="22:00", end="06:00"))
        == "Mon-Wed,Fri 22:00-06:00"
    )
    assert describe_instant(utc("2026-01-17 09:03"), zone("Europe/Oslo")) == "Sat 10:03"
