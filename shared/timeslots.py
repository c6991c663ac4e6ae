"""Time restrictions (Argus timeslots): does a list of time recurrences contain an instant?

Pure functions, no clock: callers pass the instant (epoch seconds, the event's
time) and the contact's IANA timezone.  Evaluation happens on the *local wall
clock* of that timezone, so a "Mon-Fri 08:00-16:00 Europe/Oslo" restriction
means 08:00-16:00 as the clocks in Oslo show it, in winter (UTC+1) and summer
(UTC+2) alike, and on the DST change days themselves.

Semantics of one :class:`~shared.models.TimeRecurrence`:

- ``all_day``: the whole of each listed local day.
- ``start < end`` (``end`` may be ``24:00``): ``start <= t < end`` on each
  listed day (start inclusive, end exclusive).
- ``start > end``: the span crosses midnight and belongs to the day it
  *starts* on: ``22:00-06:00`` with ``days=[5]`` covers Friday 22:00 until
  Saturday 06:00 (not Friday 00:00-06:00).
- ``start == end`` is rejected by :func:`recurrence_error` (empty span; use
  ``all_day``).

DST: on a spring-forward day the skipped wall-clock hour simply never occurs
(a 02:00-03:00 span is empty that day in Europe/Oslo); on a fall-back day the
repeated hour occurs twice and is inside a span both times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.models import TimeRecurrence

DAY_NAMES: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; raises ``ValueError`` for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name such as Europe/Oslo)"
        ) from None


@lru_cache(maxsize=4096)
def parse_hhmm(value: str) -> int:
    """Minutes after midnight of ``HH:MM`` (``24:00`` = 1440); ``ValueError`` if malformed."""
    hh, sep, mm = value.partition(":")
    if not sep or len(hh) != 2 or len(mm) != 2 or not (hh + mm).isdigit():
        raise ValueError(f"time {value!r} is not HH:MM")
    hours, minutes = int(hh), int(mm)
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise ValueError(f"time {value!r} is out of range (00:00 .. 23:59, or 24:00 as an end)")
    return hours * 60 + minutes


def recurrence_error(rec: TimeRecurrence) -> str | None:
    """Why a recurrence is invalid (for API errors), or None when it is fine."""
    if not rec.days:
        return "days must list at least one day (1 = Monday .. 7)"
    if any(not 1 <= d <= 7 for d in rec.days):
        return "days must be between 1 (Monday) and 7 (Sunday)"
    try:
        start, end = parse_hhmm(rec.start), parse_hhmm(rec.end)
    except ValueError as exc:
        return str(exc)
    if start == MINUTES_PER_DAY:
        return "start may not be 24:00"
    if not rec.all_day and start == end:
        return "start equals end: an empty span (use all_day for the whole day)"
    return None


def local_clock(when: float, tz: ZoneInfo) -> tuple[int, float]:
    """ISO weekday (1 = Monday) and minutes after local midnight of ``when`` in ``tz``."""
    local = datetime.fromtimestamp(when, tz)
    minutes = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60.0
    return local.isoweekday(), minutes


def covers(rec: TimeRecurrence, weekday: int, minutes: float) -> bool:
    """Whether ``rec`` contains the local instant (``weekday``, ``minutes`` after midnight)."""
    if rec.all_day:
        return weekday in rec.days
    start, end = parse_hhmm(rec.start), parse_hhmm(rec.end)
    if start < end:
        return weekday in rec.days and start <= minutes < end
    # Crossing midnight: the evening part belongs to a listed day, the morning
    # part to the day after a listed day.
    yesterday = 7 if weekday == 1 else weekday - 1
    return (weekday in rec.days and minutes >= start) or (yesterday in rec.days and minutes < end)


def contains(recs: Sequence[TimeRecurrence], when: float, tz: ZoneInfo) -> bool:
    """Whether any recurrence contains ``when``; an empty list means "always"."""
    if not recs:
        return True
    weekday, minutes = local_clock(when, tz)
    return any(covers(rec, weekday, minutes) for rec in recs)


def describe_days(days: Sequence[int]) -> str:
    """``Mon-Fri``, ``Sat,Sun``, ``Mon-Wed,Fri``: compact day ranges."""
    ordered = sorted(set(days))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = DAY_NAMES[ordered[i] - 1], DAY_NAMES[ordered[j] - 1]
        parts.append(first if i == j else f"{first}-{last}" if j > i + 1 else f"{first},{last}")
        i = j + 1
    return ",".join(parts)


def describe(rec: TimeRecurrence) -> str:
    """A recurrence as people write it: ``Mon-Fri 08:00-16:00`` or ``Sat,Sun all day``."""
    span = "all day" if rec.all_day else f"{rec.start}-{rec.end}"
    return f"{describe_days(rec.days)} {span}"


def describe_instant(when: float, tz: ZoneInfo) -> str:
    """``Sat 10:03``: the local day and time a reason string names."""
    local = datetime.fromtimestamp(when, tz)
    return f"{DAY_NAMES[local.isoweekday() - 1]} {local:%H:%M}"
