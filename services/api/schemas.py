"""Request and response bodies of the management API (all msgspec Structs).

Inputs forbid unknown fields, so a typo is a 400 naming the field instead of
a silently ignored setting.  PATCH bodies use ``UNSET`` for "leave as is".
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from shared.models import Medium, Name, SeverityRoute, TagStrategy, TimeRecurrence

T = TypeVar("T")

ShortText = Annotated[str, Meta(min_length=1, max_length=255)]
Address = Annotated[str, Meta(min_length=1, max_length=2048)]
Interval = Annotated[int, Meta(ge=0, le=31 * 86400)]
Threshold = Annotated[int, Meta(ge=1, le=1_000_000)]


class ErrorBody(msgspec.Struct):
    error: str
    field: str | None = None


class Page(msgspec.Struct, Generic[T]):
    """One page of a list: ``items``, the ``total`` count and where the page starts."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ContactIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ShortText
    email: ShortText | None = None
    timezone: ShortText = "UTC"
    tags: list[ShortText] = msgspec.field(default_factory=list)


class ContactPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ShortText | UnsetType = UNSET
    email: ShortText | UnsetType | None = UNSET
    timezone: ShortText | UnsetType = UNSET
    tags: list[ShortText] | UnsetType = UNSET


class MediumIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    contact_id: ShortText
    type: ShortText
    address: Address
    interval: Interval = 900
    rollup_threshold: Threshold | None = None
    settings: dict[str, str] = msgspec.field(default_factory=dict)


class MediumPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    address: Address | UnsetType = UNSET
    interval: Interval | UnsetType = UNSET
    rollup_threshold: Threshold | UnsetType | None = UNSET
    settings: dict[str, str] | UnsetType = UNSET


class RuleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    contact_id: ShortText
    entities: list[Name] = msgspec.field(default_factory=list)
    tags: list[ShortText] = msgspec.field(default_factory=list)
    time_restrictions: list[TimeRecurrence] = msgspec.field(default_factory=list)
    critical: SeverityRoute = SeverityRoute()
    warning: SeverityRoute = SeverityRoute()
    unknown: SeverityRoute = SeverityRoute()
    tag_strategy: TagStrategy = "all"  # all | any | none of ``tags`` present on the check


class RulePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    entities: list[Name] | UnsetType = UNSET
    tags: list[ShortText] | UnsetType = UNSET
    time_restrictions: list[TimeRecurrence] | UnsetType = UNSET
    critical: SeverityRoute | UnsetType = UNSET
    warning: SeverityRoute | UnsetType = UNSET
    unknown: SeverityRoute | UnsetType = UNSET
    tag_strategy: TagStrategy | UnsetType = UNSET


class MediumOut(Medium, frozen=True, kw_only=True):
    """A medium as created or changed, with what the gateway will think of its address."""

    warnings: tuple[str, ...] = ()


class Accepted(msgspec.Struct):
    accepted: int


class Health(msgspec.Struct):
    status: str
    redis: str
    amqp: str
