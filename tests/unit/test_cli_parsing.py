"""Parsing of CLI arguments: durations, times, days, time restrictions, check names."""

from __future__ import annotations

import pytest

from services.cli.client import parse_duration, parse_time, split_check
from services.cli.resources import pairs, parse_days, parse_recurrence


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
