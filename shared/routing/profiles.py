"""Argus notification profiles compiled into the notifier's routing (pure, no I/O, no clock).

A profile is another way of writing rules (docs/profiles.md): an owner (a Tocsin
contact, for the timezone and the name on deliveries), a timeslot, stored
filters and destinations.  :func:`compile_profiles` turns the raw records of a
:class:`~shared.directory.DirectorySnapshot` into a :class:`ProfileIndex`
once per config version; :func:`evaluate` decides, for one notification that
stands for an incident event, which destinations get it.  The notifier's
``routing.select`` calls it next to the rules, and ``core.expand`` delivers
its destinations, so both models share one evaluation path and one delivery
path.  The filter language itself (``shared/argus.py``) also serves the API's
listings (``filterpreview/``, ``notificationprofiles/<pk>/incidents/``).

Semantics (docs/profiles.md):

- A filter with every key unset matches nothing; set keys are ANDed; list
  keys are ORed within the list; ``tags``: the incident must carry **all** of
  them (the one tag rule for stored filters, in notifications and listings).
- Several filters in a profile: the incident must fit all of them, the event
  type any of them.
- A timeslot fits if any recurrence does, evaluated on the event's time in the
  owner's timezone; start and end are inclusive (as in Argus) and
  ``start > end`` crosses midnight (the span belongs to the day it starts).
- Planned maintenance (window + filters, any filter) silences the incident
  for every event type, and so does the check's scheduled maintenance.
- Destinations are de-duplicated per event by (medium type, address, settings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from shared.argus import (
    ADDRESS_KEYS,
    Facts,
    FilterBlob,
    FilterError,
    event_fits,
    incident_fits,
    parse_filter,
)
from shared.models import Contact, Medium, Notification
from shared.timeslots import zone

# --------------------------------------------------------------------------- timeslots


@dataclass(frozen=True, slots=True)
class Span:
    """One Argus time recurrence in seconds after local midnight (both ends inclusive)."""

    days: frozenset[int]
    start: float
    end: float
    all_day: bool

    def covers(self, weekday: int, seconds: float) -> bool:
        if self.all_day:
            return weekday in self.days
        if self.start <= self.end:
            return weekday in self.days and self.start <= seconds <= self.end
        # Across midnight: the evening of a listed day and the morning after it.
        yesterday = 7 if weekday == 1 else weekday - 1
        return (weekday in self.days and seconds >= self.start) or (
            yesterday in self.days and seconds <= self.end
        )


def seconds_of(value: str) -> float:
    """``HH:MM[:SS[.ffffff]]`` -> seconds after midnight; ``ValueError`` if malformed."""
    parts = value.strip().split(":")
    if len(parts) not in (2, 3) or any(len(p) != 2 for p in parts[:2]):
        raise ValueError(f"{value!r} is not a time of day (HH:MM[:SS])")
    hh, mm = int(parts[0]), int(parts[1])
    ss = float(parts[2]) if len(parts) == 3 else 0.0
    if not (0 <= hh <= 23 and 0 <= mm <= 59 and 0 <= ss < 60):
        raise ValueError(f"{value!r} is not a time of day (HH:MM[:SS])")
    return hh * 3600 + mm * 60 + ss


def span_of(rec: Mapping[str, Any]) -> Span:
    """A stored recurrence ``{days, start, end, all_day}`` as a :class:`Span`."""
    days = frozenset(int(d) for d in rec.get("days", ()))
    if rec.get("all_day"):
        return Span(days, 0.0, 86400.0, True)
    return Span(days, seconds_of(str(rec["start"])), seconds_of(str(rec["end"])), False)


def in_timeslot(spans: Sequence[Span], when: float, tz: ZoneInfo) -> bool:
    """Whether any span contains ``when`` on the wall clock of ``tz``."""
    local = datetime.fromtimestamp(when, tz)
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return any(s.covers(local.isoweekday(), seconds) for s in spans)


# --------------------------------------------------------------------------- compiled config


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    pk: int
    name: str
    active: bool
    owner: Contact
    tz: ZoneInfo
    timeslot: str
    spans: tuple[Span, ...]
    filters: tuple[FilterBlob, ...]
    destinations: tuple[Medium, ...]
    escalation_policy: str = ""  # a problem this profile takes starts it (docs/oncall.md)


@dataclass(frozen=True, slots=True)
class CompiledMaintenance:
    pk: int
    start: float
    end: float | None
    description: str
    filters: tuple[FilterBlob, ...]

    def silences(self, x: Facts, when: float) -> bool:
        """During the window, for incidents fitting any of its filters (every event type)."""
        if when < self.start or (self.end is not None and when >= self.end):
            return False
        return any(incident_fits(f, x) for f in self.filters)


@dataclass(frozen=True, slots=True)
class ProfileIndex:
    profiles: tuple[CompiledProfile, ...]
    maintenance: tuple[CompiledMaintenance, ...]
    sources: Mapping[str, tuple[int, str]]  # incident ``source`` value -> (pk, type)


EMPTY = ProfileIndex((), (), {})


def destination_medium(pk: int, media: str, settings: Mapping[str, Any], owner: str) -> Medium:
    """A destination as the Medium a gateway delivers to (address out of its settings)."""
    key = ADDRESS_KEYS.get(media, "address")
    address = str(settings.get(key, ""))
    rest = {k: str(v) for k, v in settings.items() if k != key and v is not None}
    return Medium(id=f"dest-{pk}", contact_id=owner, type=media, address=address, settings=rest)


def _json(raw: Mapping[str, str]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for pk, value in raw.items():
        try:
            out[int(pk)] = msgspec.json.decode(value)
        except (ValueError, msgspec.DecodeError):
            continue  # a damaged record must not stop every notification
    return out


def _filters(pks: Iterable[Any], filters: Mapping[int, dict[str, Any]]) -> tuple[FilterBlob, ...]:
    out = []
    for pk in pks:
        rec = filters.get(int(pk))
        if rec is None:
            continue
        try:
            out.append(parse_filter(rec.get("filter", {})))
        except FilterError:
            continue
    return tuple(out)


def compile_profiles(
    argus: Mapping[str, Mapping[str, str]], contacts: Mapping[str, Contact]
) -> ProfileIndex:
    """Profiles, maintenance windows and sources from the snapshot's raw Argus records."""
    filters = _json(argus.get("filter", {}))
    slots = _json(argus.get("timeslot", {}))
    dests = _json(argus.get("destination", {}))
    sources: dict[str, tuple[int, str]] = {}
    for pk, src in _json(argus.get("source", {})).items():
        sources[str(pk)] = (pk, str(src.get("type", "")))
        sources[f"@{src.get('name')}"] = (pk, str(src.get("type", "")))  # the processor's name
        if src.get("type") == "tocsin" and src.get("name") == "tocsin":
            sources["tocsin"] = (pk, "tocsin")
    profiles = []
    for pk, rec in sorted(_json(argus.get("profile", {})).items()):
        cid = rec.get("contact")
        owner = contacts.get(cid) if isinstance(cid, str) else None
        if owner is None:
            owner = Contact(id=f"profile-{pk}", name=str(rec.get("name") or f"profile {pk}"))
        try:
            tz = zone(owner.timezone if cid else str(rec.get("timezone") or "UTC"))
        except ValueError:
            tz = zone("UTC")
        slot = slots.get(int(rec.get("timeslot") or 0), {})
        try:
            spans = tuple(span_of(r) for r in slot.get("time_recurrences", ()))
        except (ValueError, KeyError, TypeError):
            spans = ()
        media = []
        for dpk in rec.get("destinations", ()):
            d = dests.get(int(dpk))
            if d is not None:
                media.append(
                    destination_medium(
                        int(dpk), str(d.get("media")), d.get("settings") or {}, owner.id
                    )
                )
        profiles.append(
            CompiledProfile(
                pk=pk,
                name=str(rec.get("name") or ""),
                active=bool(rec.get("active", True)),
                owner=owner,
                tz=tz,
                timeslot=str(slot.get("name", "")),
                spans=spans,
                filters=_filters(rec.get("filters", ()), filters),
                destinations=tuple(media),
                escalation_policy=str(rec.get("escalation_policy") or ""),
            )
        )
    windows = []
    for pk, rec in sorted(_json(argus.get("maintenance", {})).items()):
        windows.append(
            CompiledMaintenance(
                pk=pk,
                start=float(rec.get("start", 0.0)),
                end=float(rec["end"]) if rec.get("end") is not None else None,
                description=str(rec.get("description", "")),
                filters=_filters(rec.get("filters", ()), filters),
            )
        )
    return ProfileIndex(tuple(profiles), tuple(windows), sources)


# --------------------------------------------------------------------------- evaluation


def facts_of(n: Notification, sources: Mapping[str, tuple[int, str]]) -> Facts:
    """The incident as the notification describes it after its event."""
    known = sources.get(n.incident_source)
    if known is not None:
        pk: int | None = known[0]
    else:
        pk = int(n.incident_source) if n.incident_source.isdigit() else None
    return Facts(
        source_pk=pk,
        source_type=n.incident_source_type or (known[1] if known else ""),
        tags=frozenset(t if "=" in t else f"tag={t}" for t in n.tags),
        level=n.incident_level or 5,
        open=n.incident_open,
        acked=n.incident_acked,
        stateful=n.incident_stateful,
    )


def maintenance_of(index: ProfileIndex, n: Notification) -> CompiledMaintenance | None:
    """The planned maintenance silencing ``n``'s incident at ``n.time``, if any."""
    if not n.incident_source or not index.maintenance:
        return None
    x = facts_of(n, index.sources)
    return next((m for m in index.maintenance if m.silences(x, n.time)), None)


@dataclass(frozen=True, slots=True)
class ProfileVerdict:
    """Why one profile did (``matched``) or did not take the event."""

    profile: CompiledProfile
    matched: bool
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class ProfileMatch:
    targets: tuple[tuple[Contact, Medium], ...]
    verdicts: tuple[ProfileVerdict, ...]
    # (policy id, profile pk): matching profiles that route the incident to an escalation policy.
    policies: tuple[tuple[str, int], ...] = ()


def profile_verdict(p: CompiledProfile, x: Facts, event_type: str, when: float) -> ProfileVerdict:
    """One profile against one incident event (docs/profiles.md, "When a profile is notified")."""
    if not p.active:
        return ProfileVerdict(p, False, "profile_inactive", f"profile {p.pk} is inactive")
    if not p.filters or not all(incident_fits(f, x) for f in p.filters):
        return ProfileVerdict(
            p, False, "profile_filter", f"incident does not fit profile {p.pk}'s filters"
        )
    if not any(event_fits(f, event_type) for f in p.filters):
        return ProfileVerdict(
            p, False, "profile_event_type", f"profile {p.pk} does not want {event_type}"
        )
    if not in_timeslot(p.spans, when, p.tz):
        local = datetime.fromtimestamp(when, p.tz).strftime("%a %H:%M:%S")
        return ProfileVerdict(
            p, False, "time_restriction", f"timeslot {p.timeslot!r} ({p.tz.key}) excludes {local}"
        )
    return ProfileVerdict(p, True, "deliver", f"profile {p.pk} ({p.name}) matches {event_type}")


def evaluate(index: ProfileIndex, n: Notification) -> ProfileMatch:
    """Destinations of every profile that takes ``n``'s incident event, each address once."""
    if not n.incident_event or not index.profiles:
        return ProfileMatch((), ())
    x = facts_of(n, index.sources)
    verdicts = tuple(profile_verdict(p, x, n.incident_event, n.time) for p in index.profiles)
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    targets: list[tuple[Contact, Medium]] = []
    policies: list[tuple[str, int]] = []
    for v in verdicts:
        if not v.matched:
            continue
        if v.profile.escalation_policy:
            policies.append((v.profile.escalation_policy, v.profile.pk))
        for m in v.profile.destinations:
            key = (m.type, m.address, tuple(sorted(m.settings.items())))
            if key not in seen:
                seen.add(key)
                targets.append((v.profile.owner, m))
    return ProfileMatch(tuple(targets), verdicts, tuple(policies))
