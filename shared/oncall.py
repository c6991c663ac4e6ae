"""On-call schedules: who is on call at an instant (pure, no clock, no I/O).

A :class:`Schedule` has an IANA timezone and layers; each :class:`Layer` is a
rotation: members in order, a shift length in hours (24 daily, 168 weekly,
anything else custom) and ``handoff``, the local wall-clock datetime at which
member 0's first shift starts.  Optional ``restrictions`` (time recurrences,
as rules have) limit a layer to parts of the week, e.g. Mon-Fri 08:00-17:00;
outside them the layer has nobody and earlier layers show through.

Precedence at an instant: the newest :class:`Override` covering it, then the
last layer that has someone, then earlier layers; else nobody.

Hand-offs happen at the same *local wall-clock* time across DST changes (as
PagerDuty's do): hand-off k is ``handoff + k * shift_hours`` computed on the
wall clock, then placed on the timeline.  Two DST cases need a rule:

- a wall-clock time that does not exist (02:30 on a spring-forward night in
  Europe/Oslo): the hand-off happens when the gap ends, at 03:00 local, so the
  outgoing shift is shorter by the skipped part;
- a wall-clock time that occurs twice (02:30 on a fall-back night): the
  first occurrence.

Shifts before ``handoff`` continue the rotation backwards, so a gapless layer
has exactly one member at every instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

from shared.models import TimeRecurrence
from shared.timeslots import contains, parse_hhmm, recurrence_error, zone

MAX_SHIFT_HOURS = 24 * 366
Member = Annotated[str, Meta(min_length=1, max_length=255)]


class Layer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rotation: ``members`` take ``shift_hours`` turns from ``handoff`` (local ISO)."""

    members: Annotated[tuple[Member, ...], Meta(min_length=1, max_length=500)]
    shift_hours: Annotated[int, Meta(ge=1, le=MAX_SHIFT_HOURS)] = 168
    handoff: Annotated[str, Meta(min_length=10, max_length=32)]
    restrictions: tuple[TimeRecurrence, ...] = ()
    name: Annotated[str, Meta(max_length=255)] = ""
    # The iCalendar feed this rotation was imported from: re-synced from it
    # (shared/feed_sync.py).  Left out of the JSON when unset.
    feed_url: Annotated[str, Meta(min_length=1, max_length=2048)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


class Override(msgspec.Struct, frozen=True, kw_only=True):
    """``contact_id`` covers ``start`` .. ``end`` (epoch seconds, end exclusive)."""

    id: str
    contact_id: str
    start: float
    end: float
    created: float = 0.0


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    timezone: str = "UTC"
    layers: tuple[Layer, ...] = ()
    overrides: tuple[Override, ...] = ()
    secret: str = ""  # the calendar link's token (``/schedules/{id}.ics?token=``)


class Shift(msgspec.Struct, frozen=True):
    """``contact_id`` is on call from ``start`` to ``end`` (None: nobody), and why."""

    start: float
    end: float
    contact_id: str | None
    source: str  # "override:<id>", "layer:<n>" or "none"


# --------------------------------------------------------------------------- validation


def schedule_error(s: Schedule) -> tuple[str, str] | None:
    """(message, field) for the first thing wrong with ``s``, else None."""
    if not s.name.strip():
        return "name must not be empty", "name"
    try:
        zone(s.timezone)
    except ValueError as exc:
        return str(exc), "timezone"
    if not s.layers:
        return "a schedule needs at least one layer", "layers"
    for i, layer in enumerate(s.layers):
        try:
            handoff_naive(layer)
        except ValueError:
            return (
                f"handoff {layer.handoff!r} is not an ISO local datetime (2026-12-07T09:00)",
                f"layers[{i}].handoff",
            )
        for j, rec in enumerate(layer.restrictions):
            err = recurrence_error(rec)
            if err:
                return err, f"layers[{i}].restrictions[{j}]"
    return None


def override_error(o: Override) -> tuple[str, str] | None:
    if o.end <= o.start:
        return "end must be after start", "end"
    if o.end - o.start > 366 * 86400:
        return "an override lasts at most a year", "end"
    return None


# --------------------------------------------------------------------------- wall clock


def handoff_naive(layer: Layer) -> datetime:
    """The layer's first hand-off as a naive local datetime (``ValueError`` if malformed)."""
    dt = datetime.fromisoformat(layer.handoff)
    if dt.tzinfo is not None:
        dt = dt.replace(tzinfo=None)
    return dt


def to_epoch(local: datetime, tz: ZoneInfo) -> float:
    """A naive wall-clock time in ``tz`` as epoch seconds (gap: its end; repeat: first)."""
    first = local.replace(tzinfo=tz, fold=0)
    stamp = first.timestamp()
    back = datetime.fromtimestamp(stamp, tz).replace(tzinfo=None)
    if back == local:
        return stamp
    # Skipped time: the clock jumps over it.  The jump lies between the
    # post-transition reading (earlier instant) and the pre-transition one.
    lo = int(local.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(stamp)
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return float(hi)


def handoff_at(layer: Layer, tz: ZoneInfo, k: int) -> float:
    """Epoch of hand-off ``k`` (k may be negative: the rotation runs backwards too)."""
    return _handoff_epoch(layer.handoff, layer.shift_hours, tz.key, k)


@lru_cache(maxsize=1 << 16)
def _handoff_epoch(handoff: str, shift_hours: int, tz_key: str, k: int) -> float:
    """Memoised: a hand-off's instant never changes, and "who is on call now" over a
    thousand schedules asks for the same few hand-offs again and again (docs/oncall.md)."""
    start = datetime.fromisoformat(handoff).replace(tzinfo=None)
    return to_epoch(start + timedelta(hours=shift_hours * k), zone(tz_key))


def shift_index(layer: Layer, tz: ZoneInfo, t: float) -> int:
    """The k with ``handoff_at(k) <= t < handoff_at(k + 1)``."""
    first = handoff_at(layer, tz, 0)
    k = int((t - first) // (layer.shift_hours * 3600))
    while handoff_at(layer, tz, k) > t:
        k -= 1
    while handoff_at(layer, tz, k + 1) <= t:
        k += 1
    return k


# --------------------------------------------------------------------------- who is on call


def layer_member(layer: Layer, tz: ZoneInfo, t: float) -> str | None:
    """The layer's member at ``t``; None outside its restrictions."""
    if layer.restrictions and not contains(layer.restrictions, t, tz):
        return None
    return layer.members[shift_index(layer, tz, t) % len(layer.members)]


def override_at(overrides: Iterable[Override], t: float) -> Override | None:
    """The newest override covering ``t`` (later ``created``, then later in the list)."""
    best: Override | None = None
    for o in overrides:
        if o.start <= t < o.end and (best is None or o.created >= best.created):
            best = o
    return best


def on_call_source(s: Schedule, t: float) -> tuple[str | None, str]:
    """Who is on call at ``t`` and why: ``override:<id>``, ``layer:<n>`` or ``none``."""
    o = override_at(s.overrides, t)
    if o is not None:
        return o.contact_id, f"override:{o.id}"
    tz = zone(s.timezone)
    for n in range(len(s.layers) - 1, -1, -1):
        member = layer_member(s.layers[n], tz, t)
        if member is not None:
            return member, f"layer:{n}"
    return None, "none"


def on_call(s: Schedule, t: float) -> str | None:
    """The contact id on call at ``t`` (None: nobody)."""
    return on_call_source(s, t)[0]


def members(s: Schedule) -> tuple[str, ...]:
    """Everybody in a layer of ``s``, in order of first appearance."""
    return tuple(dict.fromkeys(m for layer in s.layers for m in layer.members))


# --------------------------------------------------------------------------- timelines


def _restriction_edges(
    recs: Sequence[TimeRecurrence], tz: ZoneInfo, a: float, b: float
) -> set[float]:
    """Instants in [a, b) where a restriction may start or end, DST jumps included."""
    edges: set[float] = set()
    day = datetime.fromtimestamp(a, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(b, tz).date() + timedelta(days=1)
    minutes = {parse_hhmm(r.start) for r in recs} | {parse_hhmm(r.end) for r in recs} | {0}
    while day <= last:
        for m in minutes:
            edges.add(to_epoch(datetime.combine(day, time()) + timedelta(minutes=m), tz))
        edges |= _offset_changes(day, tz)
        day += timedelta(days=1)
    return {e for e in edges if a < e < b}


def _offset_changes(day: date, tz: ZoneInfo) -> set[float]:
    """The instant the UTC offset changes during local ``day``, if it does."""
    lo = int(to_epoch(datetime.combine(day, time()), tz))
    hi = lo + 26 * 3600
    off = datetime.fromtimestamp(lo, tz).utcoffset()
    if datetime.fromtimestamp(hi, tz).utcoffset() == off:
        return set()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == off:
            lo = mid
        else:
            hi = mid
    return {float(hi)}


def timeline(s: Schedule, a: float, b: float) -> list[Shift]:
    """Consecutive shifts covering [a, b): who is on call when, merged where unchanged."""
    if b <= a:
        return []
    tz = zone(s.timezone)
    edges: set[float] = {a}
    for o in s.overrides:
        edges |= {e for e in (o.start, o.end) if a < e < b}
    for layer in s.layers:
        k = shift_index(layer, tz, a) + 1
        while (h := handoff_at(layer, tz, k)) < b:
            edges.add(h)
            k += 1
        if layer.restrictions:
            edges |= _restriction_edges(layer.restrictions, tz, a, b)
    points = sorted(edges)
    out: list[Shift] = []
    for i, start in enumerate(points):
        end = points[i + 1] if i + 1 < len(points) else b
        who, source = on_call_source(s, start)
        if out and out[-1].contact_id == who and out[-1].source == source:
            out[-1] = Shift(out[-1].start, end, who, source)
        else:
            out.append(Shift(start, end, who, source))
    return out


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
