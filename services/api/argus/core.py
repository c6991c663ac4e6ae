"""Pure Argus rules: timestamps, tags, levels, event-type permissions and list filters.

No Redis, no clock: callers pass ``now``.  The HTTP layer (``incidents.py``,
``events.py``) reads records, asks these functions, and writes the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import msgspec

INFINITY = "infinity"
# The range shared.models.EpochSeconds accepts.
MAX_EPOCH = 1e11
SOURCE_TYPES: frozenset[str] = frozenset({"STA", "END", "RES", "CHI", "OTH"})
USER_TYPES: frozenset[str] = frozenset({"CLO", "REO", "ACK", "OTH"})
EVENT_DISPLAY: dict[str, str] = {
    "STA": "Incident start",
    "END": "Incident end",
    "RES": "Incident restart",
    "CHI": "Incident change",
    "CLO": "Close",
    "REO": "Reopen",
    "ACK": "Acknowledge",
    "OTH": "Other",
    "LES": "Stateless",
}
EDITABLE: tuple[str, ...] = (
    "tags",
    "details_url",
    "ticket_url",
    "level",
    "metadata",
    "description",
)
READ_ONLY: tuple[str, ...] = (
    "pk",
    "start_time",
    "end_time",
    "source",
    "source_incident_id",
    "stateful",
    "open",
    "acked",
)
_TAG_KEY = re.compile(r"^[a-z0-9_]+$")


class Invalid(ValueError):
    """A request that breaks an Argus rule: a message and the field it concerns."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class IncidentState(msgspec.Struct, frozen=True, kw_only=True):
    """What the event rules need to know about an incident."""

    stateful: bool
    end_time: float | None
    has_types: frozenset[str] = frozenset()

    def is_open(self, now: float) -> bool:
        return self.stateful and (self.end_time is None or self.end_time > now)


# --------------------------------------------------------------------------- time


def parse_time(value: str, field: str) -> float:
    """ISO-8601 or ``YYYY-MM-DD HH:MM:SS[.ffffff]``; naive means server-local, as in Argus."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()
        t = parsed.timestamp()
    except (ValueError, AttributeError, OverflowError):
        raise Invalid(f"{value!r} is not an ISO-8601 timestamp", field) from None
    if not 0 <= t <= MAX_EPOCH:
        raise Invalid(f"{value!r} is out of range (1970 .. 5138)", field)
    return t


def format_time(t: float) -> str:
    """ISO-8601 with an explicit UTC offset (what ``iso8601.parse_date`` reads)."""
    return datetime.fromtimestamp(t, UTC).isoformat()


def parse_end_time(value: str | None, start: float) -> tuple[bool, float | None]:
    """``(stateful, end)``: ``"infinity"`` -> open, ``None`` -> stateless, else a time >= start."""
    if value is None:
        return False, None
    if value.strip().lower() == INFINITY:
        return True, None
    end = parse_time(value, "end_time")
    if end < start:
        raise Invalid("end_time may not be before start_time", "end_time")
    return True, end


def format_end_time(stateful: bool, end: float | None) -> str | None:
    if not stateful:
        return None
    return INFINITY if end is None else format_time(end)


# --------------------------------------------------------------------------- tags and levels


def parse_tag(value: str, field: str = "tags") -> str:
    """Normalise ``key=value`` (split on the first ``=``, both stripped; key ``[a-z0-9_]+``)."""
    key, sep, val = value.partition("=")
    key, val = key.strip(), val.strip()
    if not sep or not val:
        raise Invalid(f"tag {value!r} must look like key=value", field)
    if not _TAG_KEY.match(key):
        raise Invalid(f"tag key {key!r} may only contain a-z, 0-9 and _", field)
    if len(key) + len(val) > 254:
        raise Invalid("tag is longer than 255 characters", field)
    return f"{key}={val}"


def state_of_level(level: int) -> str:
    """Levels 1-2 critical, 3 warning, 4-5 unknown (docs/argus.md)."""
    if level <= 2:
        return "critical"
    if level == 3:
        return "warning"
    return "unknown"


def check_level(level: int) -> int:
    if not 1 <= level <= 5:
        raise Invalid(f"level must be between 1 and 5, not {level}", "level")
    return level


# --------------------------------------------------------------------------- events


def event_effect(etype: str, by_source: bool, incident: IncidentState, now: float) -> str | None:
    """What posting ``etype`` does: ``"close"``, ``"reopen"`` or None (log only).

    Raises :class:`Invalid` for a type the caller may not post or one the
    incident's state forbids; a source system posting one of its own types
    against the wrong state is recorded without effect (Argus's leniency), so
    this returns ``"ignore"`` then.
    """
    etype = etype.upper()
    if etype not in EVENT_DISPLAY:
        raise Invalid(f"{etype!r} is not a valid event type", "type")
    if etype == "ACK":
        raise Invalid("acknowledgements are posted to incidents/<pk>/acks/", "type")
    if etype == "LES":
        raise Invalid("LES events are created with stateless incidents only", "type")
    allowed = SOURCE_TYPES if by_source else USER_TYPES
    if etype not in allowed:
        who = "a source system" if by_source else "an end user"
        raise Invalid(f"{who} may not post events of type {etype}", "type")
    if etype in ("CHI", "OTH"):
        return None
    if not incident.stateful:
        if etype == "STA":
            raise Invalid("a stateless incident cannot have an STA event", "type")
        raise Invalid("the state of a stateless incident cannot change", "type")
    if etype == "STA":
        raise Invalid("the incident already has an STA event", "type")
    is_open = incident.is_open(now)
    conflict = None
    if etype in ("END", "CLO") and not is_open:
        conflict = "the incident is already closed"
    elif etype in ("RES", "REO") and is_open:
        conflict = "the incident is already open"
    if conflict is not None:
        if by_source:
            return "ignore"
        raise Invalid(conflict, "type")
    return "close" if etype in ("END", "CLO") else "reopen"


# --------------------------------------------------------------------------- list filters


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """The fields list filters look at."""

    pk: int
    start_time: float
    end_time: float | None
    stateful: bool
    level: int
    source_pk: int
    source_name: str
    source_type: str
    source_incident_id: str
    tags: tuple[str, ...]
    acked: bool
    ack_until: float | None

    def is_open(self, now: float) -> bool:
        return self.stateful and (self.end_time is None or self.end_time > now)

    def is_acked(self, now: float) -> bool:
        return self.acked and (self.ack_until is None or self.ack_until > now)


def _bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise Invalid(f"{name} must be true or false", name)


def _ints(value: str, name: str) -> set[int]:
    try:
        return {int(v) for v in value.split(",") if v.strip()}
    except ValueError:
        raise Invalid(f"{name} must be a comma-separated list of integers", name) from None


def tag_groups(value: str) -> dict[str, set[str]]:
    """``k1=v1,k1=v2,k2=v`` -> {k1: {v1, v2}, k2: {v}} (same key OR, different keys AND)."""
    groups: dict[str, set[str]] = {}
    for raw in value.split(","):
        if not raw.strip():
            continue
        tag = parse_tag(raw, "tags")
        key = tag.partition("=")[0]
        groups.setdefault(key, set()).add(tag)
    return groups


def make_filter(params: Mapping[str, str], now: float) -> list[tuple[str, object]]:
    """Validate the query parameters of ``incidents/`` into (name, value) predicates.

    Empty values mean "no filtering", as in Argus; unknown parameters are ignored.
    """
    out: list[tuple[str, object]] = []
    for name in ("open", "acked", "stateful"):
        if params.get(name, "").strip():
            out.append((name, _bool(params[name], name)))
    if params.get("level__lte", "").strip():
        try:
            out.append(("level__lte", int(params["level__lte"])))
        except ValueError:
            raise Invalid("level__lte must be an integer", "level__lte") from None
    for name in ("source__id__in", "id__in"):
        if params.get(name, "").strip():
            out.append((name, _ints(params[name], name)))
    for name in ("source__name__in", "source__type__in"):
        if params.get(name, "").strip():
            out.append((name, {v.strip() for v in params[name].split(",") if v.strip()}))
    for name in ("start_time__gte", "start_time__lte", "end_time__gte", "end_time__lte"):
        if params.get(name, "").strip():
            out.append((name, parse_time(params[name], name)))
    if "source_incident_id" in params and params["source_incident_id"] != "":
        out.append(("source_incident_id", params["source_incident_id"]))
    if params.get("tags", "").strip():
        out.append(("tags", tag_groups(params["tags"])))
    return out


def matches(row: Row, predicates: Sequence[tuple[str, object]], now: float) -> bool:
    """Whether an incident passes every predicate of :func:`make_filter`."""
    return all(_match_one(row, name, want, now) for name, want in predicates)


def _match_one(row: Row, name: str, want: object, now: float) -> bool:
    if name == "open":
        return row.is_open(now) == want
    if name == "acked":
        return row.is_acked(now) == want
    if name == "stateful":
        return row.stateful == want
    if name == "level__lte":
        return isinstance(want, int) and row.level <= want
    if name == "source__id__in":
        return isinstance(want, set) and row.source_pk in want
    if name == "id__in":
        return isinstance(want, set) and row.pk in want
    if name == "source__name__in":
        return isinstance(want, set) and row.source_name in want
    if name == "source__type__in":
        return isinstance(want, set) and row.source_type in want
    if name == "start_time__gte":
        return isinstance(want, float) and row.start_time >= want
    if name == "start_time__lte":
        return isinstance(want, float) and row.start_time <= want
    if name in ("end_time__gte", "end_time__lte"):
        if not row.stateful or not isinstance(want, float):
            return False
        end = row.end_time if row.end_time is not None else float("inf")
        return end >= want if name == "end_time__gte" else end <= want
    if name == "source_incident_id":
        return row.source_incident_id == want
    if name == "tags" and isinstance(want, dict):
        have = set(row.tags)
        return all(have & values for values in want.values())
    return True


def tag_changes(old: Iterable[str], new: Iterable[str]) -> tuple[list[str], list[str]]:
    """Tags added and removed by a full replacement."""
    before, after = set(old), set(new)
    return sorted(after - before), sorted(before - after)
