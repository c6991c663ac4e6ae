"""Contacts, media and notification rules in Redis (seed layout), and their validation.

The API writes through :class:`Directory`; the notifier reads a whole
:class:`DirectorySnapshot` at once (a few pipelined round trips) and reloads it
only when ``config::version`` changes, so expanding a notification costs no
Redis reads for configuration.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import redis

from shared.keys import Keys
from shared.models import SEVERITIES, Contact, Medium, Rule
from shared.records import T, from_hash, to_hash
from shared.timeslots import recurrence_error


class ValidationFailed(ValueError):
    """A record breaks a rule; ``field`` names the offending field for API errors."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DirectorySnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Every contact, medium and rule at one config version."""

    version: int
    contacts: dict[str, Contact]
    media: dict[str, Medium]
    rules: dict[str, Rule]
    # Argus notification-profile records (JSON by pk) per kind: ARGUS_KINDS, plus
    # "timeslot" and "source"; shared/routing/profiles.py compiles them.
    argus: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)


# Argus profile record kinds the notifier compiles (keys.argus_records(kind)).
ARGUS_KINDS: tuple[str, ...] = ("profile", "filter", "destination", "maintenance")


def new_id() -> str:
    """An opaque record id."""
    return secrets.token_hex(8)


# ---------------------------------------------------------------------- validation


def validate_timezone(tz: str, field: str = "timezone") -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"unknown timezone {tz!r} (use an IANA name such as Europe/Oslo)", field
        ) from None


def validate_medium(medium: Medium, installed: Iterable[str] | None) -> None:
    """Check a medium's type against the installed gateways (None = skip that check)."""
    if installed is not None:
        known = sorted(set(installed))
        if medium.type not in known:
            raise ValidationFailed(
                f"medium type {medium.type!r} is not installed (installed: {', '.join(known) or 'none'})",
                "type",
            )
    if not medium.address.strip():
        raise ValidationFailed("address must not be empty", "address")
    if medium.interval < 0:
        raise ValidationFailed("interval must be >= 0 seconds", "interval")
    if medium.rollup_threshold is not None and medium.rollup_threshold < 1:
        raise ValidationFailed(
            "rollup_threshold must be >= 1 (or null to disable rollup)", "rollup_threshold"
        )


def validate_rule(rule: Rule, contact_media_types: Iterable[str]) -> None:
    """A rule may only name media types its contact has, and time spans must make sense."""
    have = set(contact_media_types)
    for severity in SEVERITIES:
        for mtype in rule.route(severity).media:
            if mtype not in have:
                raise ValidationFailed(
                    f"{severity}.media names {mtype!r} but the contact has no medium of that type "
                    f"(has: {', '.join(sorted(have)) or 'none'})",
                    f"{severity}.media",
                )
    for i, rec in enumerate(rule.time_restrictions):
        problem = recurrence_error(rec)
        if problem is not None:
            raise ValidationFailed(problem, f"time_restrictions[{i}]")


# ---------------------------------------------------------------------- repository


class Directory:
    """CRUD of contacts, media and rules; every write bumps ``config::version``."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.k = keys

    def version(self) -> int:
        return int(self.r.get(self.k.config_version()) or 0)

    # -- contacts
    def put_contact(self, contact: Contact) -> Contact:
        validate_timezone(contact.timezone)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k.contact(contact.id))
        pipe.hset(self.k.contact(contact.id), mapping=to_hash(contact))
        pipe.sadd(self.k.contact_ids(), contact.id)
        pipe.incr(self.k.config_version())
        pipe.execute()
        return contact

    def get_contact(self, cid: str) -> Contact | None:
        data = self.r.hgetall(self.k.contact(cid))
        return from_hash(Contact, data) if data else None

    def delete_contact(self, cid: str) -> bool:
        """Delete a contact with its media and rules."""
        medium_ids = self.r.smembers(self.k.contact_medium_ids(cid))
        rule_ids = self.r.smembers(self.k.contact_rule_ids(cid))
        pipe = self.r.pipeline(transaction=True)
        for mid in medium_ids:
            self._delete_medium(pipe, mid)
        for rid in rule_ids:
            pipe.delete(self.k.rule(rid))
            pipe.srem(self.k.rule_ids(), rid)
        pipe.delete(
            self.k.contact(cid),
            self.k.contact_medium_ids(cid),
            self.k.contact_rule_ids(cid),
            self.k.contact_block_ids(cid),
        )
        pipe.srem(self.k.contact_ids(), cid)
        pipe.incr(self.k.config_version())
        removed = pipe.execute()
        return bool(removed[-2])

    # -- media
    def put_medium(self, medium: Medium) -> Medium:
        old = self.get_medium(medium.id)
        pipe = self.r.pipeline(transaction=True)
        if old is not None:
            pipe.srem(self.k.medium_by_type(old.type), medium.id)
        pipe.delete(self.k.medium(medium.id))
        pipe.hset(self.k.medium(medium.id), mapping=to_hash(medium))
        pipe.sadd(self.k.medium_ids(), medium.id)
        pipe.sadd(self.k.medium_by_type(medium.type), medium.id)
        pipe.sadd(self.k.contact_medium_ids(medium.contact_id), medium.id)
        pipe.incr(self.k.config_version())
        pipe.execute()
        return medium

    def get_medium(self, mid: str) -> Medium | None:
        data = self.r.hgetall(self.k.medium(mid))
        return from_hash(Medium, data) if data else None

    def delete_medium(self, mid: str) -> bool:
        pipe = self.r.pipeline(transaction=True)
        existed = self._delete_medium(pipe, mid)
        pipe.incr(self.k.config_version())
        pipe.execute()
        return existed

    def _delete_medium(self, pipe: redis.client.Pipeline, mid: str) -> bool:
        medium = self.get_medium(mid)
        if medium is None:
            return False
        pipe.delete(self.k.medium(mid))
        pipe.srem(self.k.medium_ids(), mid)
        pipe.srem(self.k.medium_by_type(medium.type), mid)
        pipe.srem(self.k.contact_medium_ids(medium.contact_id), mid)
        return True

    def contact_media(self, cid: str) -> list[Medium]:
        ids = sorted(self.r.smembers(self.k.contact_medium_ids(cid)))
        return [m for m in self._load_many(Medium, [self.k.medium(i) for i in ids]) if m]

    # -- rules
    def put_rule(self, rule: Rule) -> Rule:
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k.rule(rule.id))
        pipe.hset(self.k.rule(rule.id), mapping=to_hash(rule))
        pipe.sadd(self.k.rule_ids(), rule.id)
        pipe.sadd(self.k.contact_rule_ids(rule.contact_id), rule.id)
        pipe.incr(self.k.config_version())
        pipe.execute()
        return rule

    def get_rule(self, rid: str) -> Rule | None:
        data = self.r.hgetall(self.k.rule(rid))
        return from_hash(Rule, data) if data else None

    def delete_rule(self, rid: str) -> bool:
        rule = self.get_rule(rid)
        if rule is None:
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k.rule(rid))
        pipe.srem(self.k.rule_ids(), rid)
        pipe.srem(self.k.contact_rule_ids(rule.contact_id), rid)
        pipe.incr(self.k.config_version())
        pipe.execute()
        return True

    # -- bulk reads
    def list_contacts(self) -> list[Contact]:
        ids = sorted(self.r.smembers(self.k.contact_ids()))
        return [c for c in self._load_many(Contact, [self.k.contact(i) for i in ids]) if c]

    def list_media(self) -> list[Medium]:
        ids = sorted(self.r.smembers(self.k.medium_ids()))
        return [m for m in self._load_many(Medium, [self.k.medium(i) for i in ids]) if m]

    def list_rules(self) -> list[Rule]:
        ids = sorted(self.r.smembers(self.k.rule_ids()))
        return [x for x in self._load_many(Rule, [self.k.rule(i) for i in ids]) if x]

    def snapshot(self) -> DirectorySnapshot:
        """Everything at once, in four round trips whatever the size."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self.k.config_version())
        pipe.smembers(self.k.contact_ids())
        pipe.smembers(self.k.medium_ids())
        pipe.smembers(self.k.rule_ids())
        for kind in ARGUS_KINDS:
            pipe.hgetall(self.k.argus_records(kind))
        pipe.hgetall(self.k.timeslots())
        pipe.hgetall(self.k.argus_sources())
        version, cids, mids, rids, *raw = pipe.execute()
        argus = dict(zip((*ARGUS_KINDS, "timeslot", "source"), raw, strict=True))
        contacts = self._load_many(Contact, [self.k.contact(i) for i in sorted(cids)])
        media = self._load_many(Medium, [self.k.medium(i) for i in sorted(mids)])
        rules = self._load_many(Rule, [self.k.rule(i) for i in sorted(rids)])
        return DirectorySnapshot(
            version=int(version or 0),
            contacts={c.id: c for c in contacts if c},
            media={m.id: m for m in media if m},
            rules={x.id: x for x in rules if x},
            argus=argus,
        )

    def _load_many(self, cls: type[T], keys: list[str]) -> list[T | None]:
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [from_hash(cls, d) if d else None for d in pipe.execute()]
