"""Parsing of CLI arguments: durations, times, days, time restrictions, check names."""

from __future__ import annotations

import pytest

from services.cli.parsing import (
    describe_recurrence,
    pairs,
    parse_clock,
    parse_days,
    parse_duration,
    parse_recurrence,
    parse_time,
    split_check,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("4h", 14400),
        ("2d", 172800),
        ("1w", 604800),
        (" 3H ", 10800),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1.5h", "-1h", "4 hours"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", 1000.0),
        ("now+1h", 4600.0),
        ("1700000000", 1_700_000_000.0),
        ("2026-11-23T14:00:00+01:00", 1_795_438_800.0),
        ("2026-11-23T13:00:00Z", 1_795_438_800.0),
    ],
)
def test_times(text: str, expected: float) -> None:
    assert parse_time(text, now=1000.0) == expected


def test_bad_time() -> None:
    with pytest.raises(ValueError, match="bad time"):
        parse_time("next tuesday")


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("sat,sun", [6, 7]),
        ("fri-mon", [1, 5, 6, 7]),
        ("3", [3]),
    ],
)
def test_days(text: str, days: list[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["0", "8", "someday", "mon-xyz"])
def test_bad_days(text: str) -> None:
    with pytest.raises(ValueError, match="bad days"):
        parse_days(text)


def test_recurrences() -> None:
    assert parse_recurrence("mon-fri 08:00-16:00") == {
        "days": [1, 2, 3, 4, 5],
        "start": "08:00",
        "end": "16:00",
    }
    assert parse_recurrence("sat,sun all-day") == {"days": [6, 7], "all_day": True}
    with pytest.raises(ValueError):
        parse_recurrence("mon-fri 8-16")
    with pytest.raises(ValueError):
        parse_recurrence("always")


def test_check_names_split_on_the_first_colon() -> None:
    assert split_check("web1:http") == ("web1", "http")
    assert split_check("src:incident:42") == ("src", "incident:42")
    for bad in ("web1", ":http", "web1:"):
        with pytest.raises(ValueError):
            split_check(bad)


def test_pairs() -> None:
    assert pairs(["secret=s=3", "a="]) == {"secret": "s=3", "a": ""}
    with pytest.raises(ValueError):
        pairs(["novalue"])


@pytest.mark.parametrize(
    ("value", "days"),
    [
        pytest.param(["mon", "tue"], [1, 2], id="file: list of names"),
        pytest.param(["Monday", "fri"], [1, 5], id="file: full names"),
        pytest.param([1, 2, 3], [1, 2, 3], id="file: list of numbers"),
        pytest.param(["mon-fri"], [1, 2, 3, 4, 5], id="file: a range in a list"),
        pytest.param(7, [7], id="file: one number"),
    ],
)
def test_days_as_the_file_writes_them(value: object, days: list[int]) -> None:
    assert parse_days(value) == days  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "end", "clock"),
    [
        pytest.param("08:00", False, "08:00", id="HH:MM"),
        pytest.param("8:30", False, "08:30", id="H:MM"),
        pytest.param(1020, True, "17:00", id="YAML 1.1 read unquoted 17:00 as 1020"),
        pytest.param(0, False, "00:00", id="YAML read 0:00 as 0"),
        pytest.param("24:00", True, "24:00", id="end of day"),
    ],
)
def test_clock_times(value: object, end: bool, clock: str) -> None:
    assert parse_clock(value, "end" if end else "start", end=end) == clock  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["25:00", "12:60", "noon", "24:00", "8"])
def test_bad_clock_times_say_what_to_write_not_a_regex(value: str) -> None:
    with pytest.raises(ValueError, match=r"bad start .*use HH:MM from 00:00 to 23:59\)") as exc:
        parse_clock(value, "start")
    assert "^" not in str(exc.value) and "\\d" not in str(exc.value)


def test_the_file_and_the_option_give_the_same_recurrence() -> None:
    from_option = parse_recurrence("mon-fri 08:00-17:00")
    from_file = parse_recurrence(
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": 1020}
    )
    assert from_option == from_file == {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "17:00"}
    with pytest.raises(ValueError, match=r"unknown key.*from"):
        parse_recurrence({"days": [1], "from": "08:00"})
    with pytest.raises(ValueError, match="bad end '25:00'"):
        parse_recurrence("mon 08:00-25:00")


@pytest.mark.parametrize(
    ("rec", "text"),
    [
        ({"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "17:00"}, "Mon-Fri 08:00-17:00"),
        ({"days": [6, 7], "all_day": True}, "Sat-Sun all day"),
        ({"days": [1, 3, 4], "start": "22:00", "end": "06:00"}, "Mon,Wed-Thu 22:00-06:00"),
        (
            {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"},
            "every day 00:00-24:00",
        ),
    ],
)
def test_recurrences_for_people(rec: dict[str, object], text: str) -> None:
    assert describe_recurrence(rec) == text


def test_durations_from_a_file_may_be_numbers() -> None:
    assert parse_duration(600) == 600
    assert parse_duration("10m") == 600
