"""Rotations from an iCalendar feed (pure: text in, shifts and a layer out).

Teams leaving another on-call tool usually have their rotation as a calendar:
one event per shift, or a recurring event per person (``RRULE``).  Each
occurrence in a window (``recurring-ical-events`` expands the rules) becomes a
shift of the contact it names: an ``ATTENDEE``/``ORGANIZER`` ``mailto:`` equal
to a contact's email, else a contact's name found in the ``SUMMARY`` (the
longest name wins, so "Ola" does not take "Ola Nordmann"'s shifts).  Events
naming nobody are reported, not guessed.

:func:`infer_layer` turns shifts that follow one another without gaps, all
of one length in whole hours, with members repeating in a fixed order, into a
:class:`~shared.oncall.Layer`; anything else can still be imported shift by
shift as overrides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from itertools import pairwise
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec

from shared.oncall import Layer

# The calendar libraries load when a feed is read (the API, the scheduler's feed sync),
# not when a worker that never reads one starts.
if TYPE_CHECKING:
    import icalendar


class FeedShift(msgspec.Struct, frozen=True):
    contact_id: str
    start: float
    end: float
    summary: str


class Feed(msgspec.Struct, frozen=True):
    shifts: tuple[FeedShift, ...]
    unmatched: tuple[str, ...]  # summaries of events that named no contact


class FeedError(ValueError):
    """The text is not an iCalendar feed Tocsin can read."""


class FeedUnreachable(FeedError):
    """The feed's URL could not be fetched (refused, timed out, not HTTP 200, too big)."""


def _instant(value: object, tz: ZoneInfo) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).timestamp()
    if isinstance(value, date):  # an all-day event: local midnight
        return datetime.combine(value, time(), tz).timestamp()
    raise FeedError(f"unreadable event time {value!r}")


def _who(event: icalendar.Event, contacts: Mapping[str, tuple[str, str | None]]) -> str | None:
    people = event.get("ATTENDEE") or []
    if not isinstance(people, list):
        people = [people]
    organizer = event.get("ORGANIZER")
    mails = {
        str(p).lower().removeprefix("mailto:")
        for p in [*people, *([organizer] if organizer else [])]
    }
    for cid, (_, email) in contacts.items():
        if email and email.lower() in mails:
            return cid
    summary = str(event.get("SUMMARY") or "").casefold()
    found = [
        (len(name), cid)
        for cid, (name, _) in contacts.items()
        if name and name.casefold() in summary
    ]
    return max(found)[1] if found else None


def read_feed(
    text: str,
    contacts: Mapping[str, tuple[str, str | None]],
    start: float,
    end: float,
    tz: ZoneInfo,
) -> Feed:
    """Shifts between ``start`` and ``end`` (``contacts``: id -> (name, email)); ``tz`` reads
    floating times.  Raises :class:`FeedError` for text that is not a calendar."""
    import icalendar
    import recurring_ical_events

    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise FeedError(f"not an iCalendar feed: {exc}") from None
    a = datetime.fromtimestamp(start, UTC)
    b = datetime.fromtimestamp(end, UTC)
    try:
        events = recurring_ical_events.of(cal).between(a, b)
    except Exception as exc:  # the library raises its own types for bad rules
        raise FeedError(f"cannot expand the feed's events: {exc}") from None
    shifts: list[FeedShift] = []
    unmatched: list[str] = []
    for ev in events:
        s0 = _instant(ev.get("DTSTART").dt, tz)
        s1 = _instant(ev.get("DTEND").dt, tz) if ev.get("DTEND") else s0
        summary = str(ev.get("SUMMARY") or "")
        who = _who(ev, contacts)
        if who is None:
            unmatched.append(summary or "(no summary)")
        elif s1 > s0:
            shifts.append(FeedShift(who, s0, s1, summary))
    shifts.sort(key=lambda s: (s.start, s.end))
    return Feed(tuple(shifts), tuple(dict.fromkeys(unmatched)))


def infer_layer(shifts: Sequence[FeedShift], tz: ZoneInfo) -> Layer | None:
    """The rotation the shifts follow, or None when they do not follow one."""
    if len(shifts) < 2:
        return None
    length = shifts[0].end - shifts[0].start
    for prev, cur in pairwise(shifts):
        if cur.start != prev.end:
            return None
    # Same local wall-clock length (a day is 23 h on a spring-forward day).
    local = [datetime.fromtimestamp(s.start, tz).replace(tzinfo=None) for s in shifts]
    local_end = datetime.fromtimestamp(shifts[-1].end, tz).replace(tzinfo=None)
    steps = [(b - a).total_seconds() for a, b in zip(local, [*local[1:], local_end], strict=True)]
    if len(set(steps)) != 1 or steps[0] % 3600 or not length:
        return None
    order = list(dict.fromkeys(s.contact_id for s in shifts))
    if any(s.contact_id != order[i % len(order)] for i, s in enumerate(shifts)):
        return None
    return Layer(
        members=tuple(order),
        shift_hours=int(steps[0] // 3600),
        handoff=local[0].isoformat(timespec="minutes"),
    )


def resynced_layer(old: Layer, feed: Feed, tz: ZoneInfo) -> Layer:
    """``old`` with the rotation ``feed`` follows now (its name, restrictions and feed URL
    kept); :class:`FeedError` when the feed's shifts no longer follow one rotation."""
    if not feed.shifts:
        raise FeedError("the feed has no shift naming a contact in the window")
    layer = infer_layer(feed.shifts, tz)
    if layer is None:
        raise FeedError(
            "the feed's shifts no longer follow one rotation (gaps, uneven lengths or no"
            " fixed order)"
        )
    return msgspec.structs.replace(
        old, members=layer.members, shift_hours=layer.shift_hours, handoff=layer.handoff
    )
