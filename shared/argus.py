"""Argus stored filters and destination settings: the format the API and the notifier share.

The API validates filters when they are saved and evaluates them for its
listings (``filterpreview/``, ``notificationprofiles/<pk>/incidents/``); the
notifier evaluates the same filters when it routes a notification
(``shared/routing/profiles.py``).  One definition keeps the two from
disagreeing about which incidents a filter selects.  Semantics:
docs/profiles.md.

- A filter with every key unset matches nothing; set keys are ANDed; list
  keys are ORed within the list; ``tags``: the incident must carry **all** of
  them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

EVENT_TYPES: tuple[str, ...] = ("STA", "END", "RES", "CHI", "CLO", "REO", "ACK", "OTH", "LES")
# Where each medium type keeps its address in an Argus destination's settings.
ADDRESS_KEYS: Mapping[str, str] = {
    "email": "email_address",
    "sms": "phone_number",
    "webhook": "url",
    "slack": "url",
    "pagerduty": "routing_key",
}
_TAG_KEY = re.compile(r"^[a-z0-9_]+$")
Level = Annotated[int, Meta(ge=1, le=5)]


class FilterError(ValueError):
    """An invalid filter blob; ``field`` names the key (``filter.tags``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- filters


class FilterBlob(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An Argus stored filter; None (or an empty list) means "not filtering on this key"."""

    sourceSystemIds: list[int] | None = None
    source_types: list[str] | None = None
    tags: list[str] | None = None
    open: bool | None = None
    acked: bool | None = None
    stateful: bool | None = None
    maxlevel: Level | None = None
    event_types: list[str] | None = None
    event_type: str | None = None  # Argus's legacy singular form
    hide_closed_acked: bool | None = None


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What filters look at: the incident after the event (and the types in its log)."""

    source_pk: int | None
    source_type: str
    tags: frozenset[str]
    level: int
    open: bool
    acked: bool
    stateful: bool
    logged_types: frozenset[str] = frozenset()


def parse_filter(raw: Any) -> FilterBlob:
    """Validate and normalise a filter blob (unknown keys are dropped, as Argus ignores them)."""
    if not isinstance(raw, dict):
        raise FilterError("filter must be a JSON object", "filter")
    try:
        blob = msgspec.convert(raw, FilterBlob)
    except msgspec.ValidationError as exc:
        text = str(exc)
        key = text.rsplit("`$.", 1)[1].rstrip("`").split("[")[0] if "`$." in text else ""
        raise FilterError(text, f"filter.{key}" if key else "filter") from None
    tags = []
    for tag in blob.tags or ():
        key, sep, value = tag.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or not _TAG_KEY.match(key):
            raise FilterError(f"tag {tag!r} must look like key=value (key a-z0-9_)", "filter.tags")
        tags.append(f"{key}={value}")
    blob.tags = sorted(set(tags)) or None
    types = [*(blob.event_types or ()), *([blob.event_type] if blob.event_type else [])]
    for etype in types:
        if etype.upper() not in EVENT_TYPES:
            raise FilterError(f"{etype!r} is not an event type", "filter.event_types")
    blob.event_types = sorted({t.upper() for t in types}) or None
    blob.event_type = None
    blob.sourceSystemIds = sorted(set(blob.sourceSystemIds or ())) or None
    blob.source_types = sorted({s.strip() for s in blob.source_types or () if s.strip()}) or None
    if blob.hide_closed_acked is False:
        blob.hide_closed_acked = None
    return blob


def is_empty(f: FilterBlob) -> bool:
    """Every key unset: Argus lets such a filter match nothing."""
    return not (
        f.sourceSystemIds
        or f.source_types
        or f.tags
        or f.open is not None
        or f.acked is not None
        or f.stateful is not None
        or f.maxlevel is not None
        or f.event_types
        or f.hide_closed_acked
    )


def incident_fits(f: FilterBlob, x: Facts) -> bool:
    """Whether the incident fits every set key of ``f`` (event types aside)."""
    if is_empty(f):
        return False
    if f.sourceSystemIds and x.source_pk not in f.sourceSystemIds:
        return False
    if f.source_types and x.source_type not in f.source_types:
        return False
    if f.tags and not set(f.tags) <= x.tags:
        return False
    if f.open is not None and x.open != f.open:
        return False
    if f.acked is not None and x.acked != f.acked:
        return False
    if f.stateful is not None and x.stateful != f.stateful:
        return False
    if f.maxlevel is not None and x.level > f.maxlevel:
        return False
    return not (f.hide_closed_acked and x.acked and not x.open)


def event_fits(f: FilterBlob, event_type: str) -> bool:
    """The triggering event's type is listed (no list: every type fits)."""
    return not f.event_types or event_type in f.event_types


def listing_fits(f: FilterBlob, x: Facts) -> bool:
    """For listings: ``event_types`` means the incident's log has one of those types."""
    return incident_fits(f, x) and (not f.event_types or bool(x.logged_types & set(f.event_types)))
