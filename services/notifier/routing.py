"""Rule routing: which contacts and media a notification reaches (pure, configuration only).

:func:`compile_index` arranges a :class:`DirectorySnapshot` for lookups once
per config version (rules by entity, catch-all rules, media by contact and
type, zones); :func:`select` applies a rule's entities, tags and time
restrictions, unions the media types of matching rules for the severity, and
lets any matching blackhole silence the contact.  Every contact left out gets a
:class:`Decision` with a reason.

Argus notification profiles (``profiles.py``) are compiled into the same
index and evaluated by the same :func:`select` for notifications that stand
for an incident event; their destinations come back as ``direct`` targets
(one message per event, no intervals or episodes, as in Argus).  Planned
maintenance silences rules and profiles alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from services.notifier.profiles import (
    EMPTY,
    ProfileIndex,
    compile_profiles,
    evaluate,
    maintenance_of,
)
from shared.directory import DirectorySnapshot
from shared.models import Contact, Medium, Notification, Rule
from shared.timeslots import covers, describe, describe_instant, local_clock, zone

Reason = Literal[
    "blackhole", "interval", "rollup", "time_restriction", "no_contact", "no_media", "not_notified"
]

# --------------------------------------------------------------------------- configuration index


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class Index:
    """Configuration at one version, arranged for lookups without Redis."""

    version: int
    contacts: Mapping[str, Contact]
    zones: Mapping[str, ZoneInfo]
    media: Mapping[str, Medium]
    media_by_contact: Mapping[str, Mapping[str, tuple[Medium, ...]]]
    rules_by_entity: Mapping[str, tuple[CompiledRule, ...]]
    catch_all: tuple[CompiledRule, ...]
    profiles: ProfileIndex = EMPTY


def compile_index(snap: DirectorySnapshot) -> Index:
    """Build the lookup tables; rules of unknown contacts are dropped, bad zones read as UTC."""
    zones: dict[str, ZoneInfo] = {}
    for cid, contact in snap.contacts.items():
        try:
            zones[cid] = zone(contact.timezone)
        except ValueError:
            zones[cid] = zone("UTC")
    by_contact: dict[str, dict[str, list[Medium]]] = {}
    for medium in sorted(snap.media.values(), key=lambda m: m.id):
        if medium.contact_id in snap.contacts:
            by_contact.setdefault(medium.contact_id, {}).setdefault(medium.type, []).append(medium)
    by_entity: dict[str, list[CompiledRule]] = {}
    catch_all: list[CompiledRule] = []
    for rule in sorted(snap.rules.values(), key=lambda x: x.id):
        if rule.contact_id not in snap.contacts:
            continue
        compiled = CompiledRule(rule, frozenset(rule.tags))
        if not rule.entities:
            catch_all.append(compiled)
        for entity in set(rule.entities):
            by_entity.setdefault(entity, []).append(compiled)
    return Index(
        version=snap.version,
        contacts=dict(snap.contacts),
        zones=zones,
        media={m.id: m for ms in by_contact.values() for t in ms.values() for m in t},
        media_by_contact={c: {t: tuple(ms) for t, ms in d.items()} for c, d in by_contact.items()},
        rules_by_entity={e: tuple(rs) for e, rs in by_entity.items()},
        catch_all=tuple(catch_all),
        profiles=compile_profiles(snap.argus, snap.contacts),
    )


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True, slots=True)
class Decision:
    """One verdict with its reason: ``suppress`` decisions carry a metric ``code``."""

    verdict: Literal["deliver", "suppress"]
    code: str
    text: str
    contact_id: str | None = None
    medium_id: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    contact: Contact
    medium: Medium


@dataclass(frozen=True, slots=True)
class Selection:
    targets: tuple[Target, ...]
    decisions: tuple[Decision, ...]
    # Profile destinations: delivered once per event, outside intervals, rollup and episodes.
    direct: tuple[Target, ...] = ()


def suppress(code: Reason, text: str, cid: str | None = None, mid: str | None = None) -> Decision:
    return Decision("suppress", code, text, cid, mid)


def select(index: Index, n: Notification) -> Selection:
    """Rule targets and profile destinations for ``n`` (nothing during planned maintenance)."""
    window = maintenance_of(index.profiles, n)
    if window is not None:
        text = f"planned maintenance {window.pk} ({window.description or 'no description'})"
        return Selection((), (Decision("suppress", "maintenance", text),))
    rules = Selection((), ()) if n.profiles_only else select_rules(index, n)
    if not n.incident_event:
        return rules
    decisions = list(rules.decisions)
    if n.in_maintenance:
        decisions.append(Decision("suppress", "maintenance", "check in scheduled maintenance"))
        return Selection(rules.targets, tuple(decisions))
    match = evaluate(index.profiles, n)
    taken = {(t.medium.type, t.medium.address) for t in rules.targets}
    direct = []
    for contact, medium in match.targets:
        if (medium.type, medium.address) in taken:
            continue  # a rule already sends this event to the same address
        taken.add((medium.type, medium.address))
        direct.append(Target(contact, medium))
    for v in match.verdicts:
        if not v.matched:
            decisions.append(Decision("suppress", v.code, v.text, v.profile.owner.id))
    return Selection(rules.targets, tuple(decisions), tuple(direct))


def select_rules(index: Index, n: Notification) -> Selection:
    """Contacts whose rules match ``n`` and the media those rules route its severity to."""
    candidates = index.rules_by_entity.get(n.entity, ()) + index.catch_all
    tags = frozenset(n.tags)
    matched: dict[str, list[Rule]] = {}
    excluded: dict[str, str] = {}
    clocks: dict[str, tuple[int, float]] = {}  # one local-time conversion per zone
    any_rule = False
    for compiled in candidates:
        rule = compiled.rule
        if compiled.tags and not compiled.tags <= tags:
            continue
        any_rule = True
        cid = rule.contact_id
        if rule.time_restrictions:
            tz = index.zones[cid]
            clock = clocks.get(tz.key)
            if clock is None:
                clock = clocks[tz.key] = local_clock(n.time, tz)
            if not any(covers(rec, *clock) for rec in rule.time_restrictions):
                spans = ", ".join(describe(rec) for rec in rule.time_restrictions)
                excluded[cid] = (
                    f"time restriction {spans} {tz.key} excludes {describe_instant(n.time, tz)}"
                )
                continue
        matched.setdefault(cid, []).append(rule)
    decisions: list[Decision] = []
    if not any_rule:
        decisions.append(suppress("no_contact", f"no rule matches {n.entity}:{n.check}"))
    for cid, text in excluded.items():
        if cid not in matched:
            decisions.append(suppress("time_restriction", text, cid))
    targets: list[Target] = []
    for cid, rules in matched.items():
        routes = [(rule, rule.route(n.severity)) for rule in rules]
        hole = next((rule for rule, route in routes if route.blackhole), None)
        if hole is not None:
            decisions.append(
                suppress("blackhole", f"blackholed by rule {hole.id} for {n.severity}", cid)
            )
            continue
        types = {t for _, route in routes for t in route.media}
        by_type = index.media_by_contact.get(cid, {})
        media = [m for t in sorted(types) for m in by_type.get(t, ())]
        if not media:
            decisions.append(
                suppress("no_media", f"rules route {n.severity} to no medium of the contact", cid)
            )
            continue
        contact = index.contacts[cid]
        targets.extend(Target(contact, m) for m in media)
    return Selection(tuple(targets), tuple(decisions))
