"""Pure view logic of the dashboard: form parsing, check filters, counts, timeline, dry run.

No Redis, no clock: the route handlers read state, pass ``now`` in and hand
the results to the templates, so everything here is tested in microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from markupsafe import Markup

from shared.checks import CheckDetail, CheckStateEntry, Maintenance
from shared.delivery_log import DeliveryLogEntry, redact_address
from shared.directory import DirectorySnapshot
from shared.models import SERVICE_STATES, Contact, Rule
from shared.severity import severity_key
from shared.timeslots import describe

MAX_DURATION_S = 366 * 86400
# How the contacts page introduces a rule's tags, by its tag strategy.
TAG_WORDS = {"all": "with tags", "any": "with any of the tags", "none": "unless tagged"}
SORT_KEYS = ("entity", "check", "state", "last_update")
# Matched against the stripped text.  Every run of blanks has one place to go
# (after a number, or after a unit letter), so a failing match gives up in
# linear time; the adjacent ``\s*`` of the old pattern backtracked
# exponentially (110 blanks and an ``x`` took 7 s and stalled the API).
_DURATION = re.compile(
    r"(?:(\d{1,9})\s*d\s*)?(?:(\d{1,9})\s*h\s*)?(?:(\d{1,9})\s*m\s*)?(?:(\d{1,9})\s*s?)?"
)
# Longer than any sensible duration ("365d 23h 59m 59s" is 16); refused unread.
MAX_DURATION_TEXT = 32


class InvalidForm(ValueError):
    """A form value that cannot be used; ``field`` names the input to show it next to."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- formatting


def fmt_time(t: float | None) -> str:
    """UTC timestamps everywhere on the dashboard (the contact pages name their own zone)."""
    if t is None:
        return "—"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def time_tag(t: float | None) -> Markup:
    """A time for templates: ``<time>`` in UTC, which ui.js rewrites to the browser's zone
    (keeping UTC in the tooltip); without JavaScript the UTC text stays."""
    if t is None:
        return Markup("—")
    utc = fmt_time(t)
    iso = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, utc, utc)


def fmt_duration(seconds: float) -> str:
    """``3d 4h``, ``5m 10s``: the two largest units, for "since" and "for" columns."""
    s = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size}{unit}")
            s %= size
    return " ".join(parts[:2])


# --------------------------------------------------------------------------- form parsing


def parse_duration(text: str, field_name: str = "duration") -> int:
    """``90``, ``30m``, ``2h``, ``1d 12h`` → seconds (1 s .. 366 days)."""
    text = (text or "")[: MAX_DURATION_TEXT + 1]
    m = _DURATION.fullmatch(text.strip()) if len(text) <= MAX_DURATION_TEXT else None
    if m is None or not any(m.groups()):
        raise InvalidForm("give a duration like 30m, 2h or 1d 12h", field_name)
    d, h, mi, s = (int(g or 0) for g in m.groups())
    total = d * 86400 + h * 3600 + mi * 60 + s
    if not 1 <= total <= MAX_DURATION_S:
        raise InvalidForm("the duration must be between 1 second and 366 days", field_name)
    return total


def parse_utc(text: str, field_name: str) -> float:
    """A ``datetime-local`` input value (``2026-11-23T18:30``), read as UTC."""
    try:
        parsed = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise InvalidForm("give a date and time (YYYY-MM-DD HH:MM, UTC)", field_name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_maintenance(start: str, end: str, now: float, duration: str = "") -> tuple[float, float]:
    """Start and end of a maintenance window; the end must be after the start and not past.

    The form asks for a duration (``2h``, as the ack form does) and an optional
    start (UTC; empty = now), so nobody has to work out an end time in UTC.
    An explicit ``end`` is still read (UTC) when no duration is given.
    """
    t0 = now if not (start or "").strip() else parse_utc(start, "start")
    if (duration or "").strip() or not (end or "").strip():
        field_name = "duration"
        t1 = t0 + parse_duration(duration, field_name)
    else:
        field_name = "end"
        t1 = parse_utc(end, field_name)
    if t1 <= t0:
        raise InvalidForm("the end must be after the start", field_name)
    if t1 <= now:
        raise InvalidForm("the window is already over", field_name)
    return t0, t1


def limited_text(text: str, field_name: str, limit: int = 1024) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise InvalidForm(f"at most {limit} characters", field_name)
    return text


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True, slots=True)
class CheckFilter:
    """The checks table's query: every given part must match."""

    q: str = ""
    state: str = ""
    entity: str = ""
    tag: str = ""
    sort: str = "state"
    desc: bool = False

    @classmethod
    def of(cls, params: Mapping[str, str]) -> CheckFilter:
        state = params.get("state", "")
        sort = params.get("sort", "state")
        return cls(
            q=params.get("q", "").strip()[:200],
            state=state if state in (*SERVICE_STATES, "failing", "") else "",
            entity=params.get("entity", "").strip()[:255],
            tag=params.get("tag", "").strip()[:255],
            sort=sort if sort in SORT_KEYS else "state",
            desc=params.get("dir") == "desc",
        )


def filter_checks(checks: Iterable[CheckDetail], f: CheckFilter) -> list[CheckDetail]:
    """Checks matching the filter, sorted by the chosen column (ties by entity, check)."""
    q = f.q.lower()
    out = []
    for c in checks:
        if f.state == "failing" and not c.failing:
            continue
        if f.state and f.state != "failing" and c.state != f.state:
            continue
        if f.entity and c.entity != f.entity:
            continue
        if f.tag and f.tag not in c.tags:
            continue
        if q and not any(q in s.lower() for s in (c.entity, c.check, c.summary, *c.tags)):
            continue
        out.append(c)
    out.sort(key=lambda c: (c.entity, c.check))
    if f.sort == "state":
        out.sort(key=lambda c: severity_key(c.state), reverse=f.desc)
    elif f.sort == "last_update":
        out.sort(key=lambda c: c.last_update or 0.0, reverse=not f.desc)
    elif f.sort in ("entity", "check"):
        out.sort(key=lambda c: getattr(c, f.sort), reverse=f.desc)
    return out


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview's numbers."""

    total: int
    by_state: dict[str, int]
    failing: int
    unacknowledged: list[CheckDetail]
    in_maintenance: list[CheckDetail]
    disabled: int


def overview(
    checks: Sequence[CheckDetail],
    acked: Mapping[str, Maintenance],
    maintained: Mapping[str, Maintenance],
) -> Overview:
    """Counts by state and the failing checks nobody has acknowledged or put in maintenance.

    ``acked`` and ``maintained`` map check ids to the acknowledgement and the
    scheduled maintenance in effect now.
    """
    by_state = {s: 0 for s in SERVICE_STATES}
    unacked = []
    for c in checks:
        by_state[c.state or "ok"] = by_state.get(c.state or "ok", 0) + 1
        if c.failing and c.enabled and c.id not in acked and c.id not in maintained:
            unacked.append(c)
    unacked.sort(key=lambda c: (severity_key(c.state), c.entity, c.check))
    return Overview(
        total=len(checks),
        by_state=by_state,
        failing=sum(1 for c in checks if c.failing),
        unacknowledged=unacked,
        in_maintenance=[c for c in checks if c.id in maintained],
        disabled=sum(1 for c in checks if not c.enabled),
    )


@dataclass(slots=True)
class MediumTally:
    medium_type: str
    delivered: int = 0
    retry: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def problems(self) -> int:
        return self.failed + self.dead


def delivery_tally(entries: Iterable[DeliveryLogEntry], since: float) -> list[MediumTally]:
    """Attempts per medium type since ``since`` (the log is newest first, so stop early)."""
    tallies: dict[str, MediumTally] = {}
    for e in entries:
        if e.time < since:
            break
        t = tallies.setdefault(e.medium_type, MediumTally(e.medium_type))
        setattr(t, e.outcome, getattr(t, e.outcome) + 1)
    return sorted(tallies.values(), key=lambda t: t.medium_type)


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    state: str
    label: str


def timeline(history: Sequence[CheckStateEntry], now: float, width: float = 600) -> list[Segment]:
    """Bars of the state history from the oldest shown record to ``now`` (input newest first).

    Each state record lasts until the next one began; a window of at least a
    minute keeps a single fresh record from filling the chart with nothing.
    """
    runs = sorted(history, key=lambda h: h.timestamp)
    if not runs:
        return []
    start = runs[0].timestamp
    end = max(now, runs[-1].last_update, start + 60)
    scale = width / (end - start)
    out = []
    for i, run in enumerate(runs):
        until = runs[i + 1].timestamp if i + 1 < len(runs) else end
        x = (run.timestamp - start) * scale
        w = max((until - run.timestamp) * scale, 1.0)
        label = (
            f"{run.state} from {fmt_time(run.timestamp)} for {fmt_duration(until - run.timestamp)}"
        )
        out.append(Segment(round(x, 2), round(min(w, width - x), 2), run.state, label))
    return out


# --------------------------------------------------------------------------- contacts, dry run


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: Rule
    spans: list[str]
    routes: list[tuple[str, str]]
    match: str = ""  # entities and tags in words: "any entity, unless tagged buf"
    tag_words: str = "with tags"  # before the rule's tags, by its tag strategy


@dataclass(frozen=True, slots=True)
class ContactView:
    contact: Contact
    media: list[tuple[str, str, int, int | None]]  # type, redacted address, interval, rollup
    rules: list[RuleView] = field(default_factory=list)


def contact_views(snap: DirectorySnapshot) -> list[ContactView]:
    """Contacts with their media and rules, time restrictions in words (the contact's zone)."""
    out = []
    for contact in sorted(snap.contacts.values(), key=lambda c: (c.name.lower(), c.id)):
        media = [
            (m.type, redact_address(m.type, m.address), m.interval, m.rollup_threshold)
            for m in sorted(snap.media.values(), key=lambda m: (m.type, m.id))
            if m.contact_id == contact.id
        ]
        rules = []
        for rule in sorted(snap.rules.values(), key=lambda r: r.id):
            if rule.contact_id != contact.id:
                continue
            spans = [f"{describe(r)} ({contact.timezone})" for r in rule.time_restrictions]
            routes = []
            for sev in ("critical", "warning", "unknown"):
                route = rule.route(sev)
                text = "blackhole" if route.blackhole else ", ".join(route.media) or "nothing"
                routes.append((sev, text))
            rules.append(
                RuleView(
                    rule,
                    spans or ["at any time"],
                    routes,
                    rule_text(rule),
                    TAG_WORDS.get(rule.tag_strategy, "with tags"),
                )
            )
        out.append(ContactView(contact, media, rules))
    return out


def rule_text(rule: Rule) -> str:
    """The rule's match condition for people (the contacts page): ``unless tagged buf``."""
    parts = [f"entities {', '.join(rule.entities)}" if rule.entities else "any entity"]
    if rule.tags:
        tags = ", ".join(rule.tags)
        if rule.tag_strategy == "none":
            parts.append(f"unless tagged {tags}")
        elif rule.tag_strategy == "any" and len(rule.tags) > 1:
            parts.append(f"tagged any of {tags}")
        else:
            parts.append(f"tagged {tags}" if len(rule.tags) == 1 else f"tagged all of {tags}")
    return ", ".join(parts)
