"""Rule routing: which contacts and media a notification reaches (pure, configuration only).

:func:`compile_index` arranges a :class:`DirectorySnapshot` for lookups once
per config version (rules by entity, catch-all rules, media by contact and
type, zones); :func:`select` applies a rule's entities, tags and time
restrictions, unions the media types of matching rules for the severity, and
lets any matching blackhole silence the contact.  Every contact left out gets a
:class:`RouteVerdict` with a reason.

Argus notification profiles (``profiles.py``) are compiled into the same
index and evaluated by the same :func:`select` for notifications that stand
for an incident event; their destinations come back as ``direct`` targets
(one message per event, no intervals or episodes, as in Argus).  Planned
maintenance silences rules and profiles alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from shared.directory import DirectorySnapshot
from shared.models import Contact, Medium, Notification
from shared.routing.profiles import (
    EMPTY,
    ProfileIndex,
    compile_profiles,
    evaluate,
    maintenance_of,
)
from shared.routing.rules import CompiledRule, RuleMatch, reason, verdict
from shared.timeslots import local_clock, zone

Reason = Literal[
    "blackhole",
    "interval",
    "rollup",
    "time_restriction",
    "entity",
    "tags",
    "no_contact",
    "no_media",
    "not_notified",
    "superseded",
]

# The contact-level reason code when a rule's exclusion is the real reason.
_EXCLUDED: Mapping[RuleMatch, Reason] = {
    "entity": "entity",
    "tags": "tags",
    "time_restriction": "time_restriction",
    "matched": "no_media",
}

# --------------------------------------------------------------------------- configuration index


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
    # Every rule of a contact, by id: a considered contact's reason speaks about all of them.
    rules_by_contact: Mapping[str, tuple[CompiledRule, ...]] = field(default_factory=dict)


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
    rules_by_contact: dict[str, list[CompiledRule]] = {}
    for rule in sorted(snap.rules.values(), key=lambda x: x.id):
        if rule.contact_id not in snap.contacts:
            continue
        compiled = CompiledRule.of(rule)
        rules_by_contact.setdefault(rule.contact_id, []).append(compiled)
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
        rules_by_contact={c: tuple(rs) for c, rs in rules_by_contact.items()},
    )


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True, slots=True)
class RouteVerdict:
    """One verdict with its reason: ``suppress`` decisions carry a metric ``code``."""

    verdict: Literal["deliver", "suppress"]
    code: str
    text: str
    contact_id: str | None = None
    medium_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediumTarget:
    contact: Contact
    medium: Medium
    rules: tuple[str, ...] = ()  # the matching rules that route the severity to this medium type


@dataclass(frozen=True, slots=True)
class Selection:
    targets: tuple[MediumTarget, ...]
    decisions: tuple[RouteVerdict, ...]
    # Profile destinations: delivered once per event, outside intervals, rollup and episodes.
    direct: tuple[MediumTarget, ...] = ()
    # (policy id, source): matching rules ("r1") and profiles ("profile 3") that route the
    # problem to an escalation policy.
    policies: tuple[tuple[str, str], ...] = ()


def suppress(
    code: Reason, text: str, cid: str | None = None, mid: str | None = None
) -> RouteVerdict:
    return RouteVerdict("suppress", code, text, cid, mid)


def select(index: Index, n: Notification) -> Selection:
    """Rule targets and profile destinations for ``n`` (nothing during planned maintenance)."""
    window = maintenance_of(index.profiles, n)
    if window is not None:
        text = f"planned maintenance {window.pk} ({window.description or 'no description'})"
        return Selection((), (RouteVerdict("suppress", "maintenance", text),))
    if n.escalation_contacts:
        return select_paged(index, n)
    rules = Selection((), ()) if n.profiles_only else select_rules(index, n)
    if not n.incident_event:
        return rules
    decisions = list(rules.decisions)
    if n.in_maintenance:
        decisions.append(RouteVerdict("suppress", "maintenance", "check in scheduled maintenance"))
        return Selection(rules.targets, tuple(decisions), (), rules.policies)
    match = evaluate(index.profiles, n)
    taken = {(t.medium.type, t.medium.address) for t in rules.targets}
    direct = []
    for contact, medium in match.targets:
        if (medium.type, medium.address) in taken:
            continue  # a rule already sends this event to the same address
        taken.add((medium.type, medium.address))
        direct.append(MediumTarget(contact, medium))
    for v in match.verdicts:
        if not v.matched:
            decisions.append(RouteVerdict("suppress", v.code, v.text, v.profile.owner.id))
    policies = dict.fromkeys(rules.policies)
    for pid, pk in match.policies:
        policies[(pid, f"profile {pk}")] = None
        decisions.append(
            RouteVerdict(
                "deliver",
                "escalation",
                f"profile {pk} routes {n.incident_event} to escalation policy {pid}",
            )
        )
    return Selection(rules.targets, tuple(decisions), tuple(direct), tuple(policies))


def select_rules(index: Index, n: Notification) -> Selection:
    """Contacts whose rules match ``n`` and the media those rules route its severity to.

    A contact is considered when one of its rules names the entity or names
    none; its reason then speaks about every one of its rules: which matched
    and what it does with the severity, and why each other did not (entity,
    tags, time restriction on the contact's clock).  Others stay silent
    (``no_contact`` when nobody is considered).
    """
    tags = frozenset(n.tags)
    considered: dict[str, None] = {}
    for compiled in index.rules_by_entity.get(n.entity, ()) + index.catch_all:
        considered[compiled.rule.contact_id] = None
    if not considered:
        return Selection((), (suppress("no_contact", f"no rule matches {n.entity}:{n.check}"),))
    clocks: dict[str, tuple[int, float]] = {}  # one local-time conversion per zone
    targets: list[MediumTarget] = []
    decisions: list[RouteVerdict] = []
    policies: dict[tuple[str, str], None] = {}
    for cid in considered:
        found, decision = _contact(index, n, cid, tags, clocks)
        targets.extend(found)
        routed = _policy_routes(index, n, cid, tags, clocks)
        if decision is not None and not (routed and decision.code == "no_media"):
            decisions.append(decision)
        for pid, rid in routed:
            policies[(pid, rid)] = None
    for pid, rid in policies:
        decisions.append(
            RouteVerdict(
                "deliver",
                "escalation",
                f"rule {rid} routes {n.severity} to escalation policy {pid}",
            )
        )
    return Selection(tuple(targets), tuple(decisions), (), tuple(policies))


def _policy_routes(
    index: Index,
    n: Notification,
    cid: str,
    tags: frozenset[str],
    clocks: dict[str, tuple[int, float]],
) -> list[tuple[str, str]]:
    """(policy, rule) for the contact's matching rules whose route names an escalation policy."""
    out: list[tuple[str, str]] = []
    for compiled in index.rules_by_contact.get(cid, ()):
        pid = compiled.rule.route(n.severity).escalation_policy_id
        if not isinstance(pid, str) or not pid:
            continue
        clock = None
        if compiled.rule.time_restrictions:
            tz = index.zones[cid]
            clock = clocks.get(tz.key)
            if clock is None:
                clock = clocks[tz.key] = local_clock(n.time, tz)
        if verdict(compiled, n.entity, tags, clock) == "matched":
            out.append((pid, compiled.rule.id))
    return out


def select_paged(index: Index, n: Notification) -> Selection:
    """An escalation page: only the paged contacts, each through their own rules and media.

    A person's rules that concern the check (their entities and tags match it)
    decide as for any notification: their time restrictions and blackholes
    apply, their routes pick the media.  A contact none of whose rules concern
    the check (or who has no rules) is paged on every medium: being on call
    is the reason, and rules about other checks do not block it.
    """
    tags = frozenset(n.tags)
    clocks: dict[str, tuple[int, float]] = {}
    targets: list[MediumTarget] = []
    decisions: list[RouteVerdict] = []
    why = f"escalation {n.escalation_policy_id} step {n.escalation_step}"
    for cid in n.escalation_contacts:
        contact = index.contacts.get(cid)
        if contact is None:
            decisions.append(
                suppress("no_contact", f"{why}: paged contact {cid} does not exist", cid)
            )
            continue
        if not rules_concern(index, n, cid, tags):
            media = [m for ms in index.media_by_contact.get(cid, {}).values() for m in ms]
            if not media:
                decisions.append(
                    suppress("no_media", f"{why}: the paged contact has no media", cid)
                )
            targets.extend(MediumTarget(contact, m) for m in media)
            continue
        found, decision = _contact(index, n, cid, tags, clocks)
        targets.extend(found)
        if decision is not None:
            text = f"{why}: paged, but by the contact's own rules: {decision.text}"
            decisions.append(
                RouteVerdict(decision.verdict, decision.code, text, cid, decision.medium_id)
            )
    return Selection(tuple(targets), tuple(decisions))


def rules_concern(index: Index, n: Notification, cid: str, tags: frozenset[str]) -> bool:
    """Whether a rule of the contact speaks about ``n``'s check (entities and tags match;
    time aside)."""
    return any(
        verdict(c, n.entity, tags, None) == "matched" for c in index.rules_by_contact.get(cid, ())
    )


def routes_to(index: Index, n: Notification, medium: Medium) -> bool:
    """Whether a rule of ``medium``'s contact routes ``n`` to it now (rollup accounting)."""
    if medium.contact_id not in index.contacts:
        return False
    targets, _ = _contact(index, n, medium.contact_id, frozenset(n.tags), {})
    return any(t.medium.id == medium.id for t in targets)


def contact_decision(index: Index, n: Notification, cid: str) -> RouteVerdict | None:
    """The routing verdict on one contact, considered or not (None: it gets ``n``)."""
    _, decision = _contact(index, n, cid, frozenset(n.tags), {})
    return decision


def _contact(
    index: Index,
    n: Notification,
    cid: str,
    tags: frozenset[str],
    clocks: dict[str, tuple[int, float]],
) -> tuple[list[MediumTarget], RouteVerdict | None]:
    rules = index.rules_by_contact.get(cid, ())
    if not rules:
        return [], suppress("no_contact", "the contact has no rules", cid)
    tz = index.zones[cid]
    clock: tuple[int, float] | None = None
    verdicts: list[tuple[CompiledRule, RuleMatch]] = []
    for compiled in rules:
        if compiled.rule.time_restrictions and clock is None:
            clock = clocks.get(tz.key)
            if clock is None:
                clock = clocks[tz.key] = local_clock(n.time, tz)
        verdicts.append((compiled, verdict(compiled, n.entity, tags, clock)))
    matched = [c.rule for c, code in verdicts if code == "matched"]
    severity = n.severity
    hole = next((r for r in matched if r.route(severity).blackhole), None)
    if hole is None and matched:
        by_type = index.media_by_contact.get(cid, {})
        routing: dict[str, list[str]] = {}
        for r in matched:
            for mtype in r.route(severity).media:
                routing.setdefault(mtype, []).append(r.id)
        found = [
            MediumTarget(index.contacts[cid], m, tuple(routing[t]))
            for t in sorted(routing)
            for m in by_type.get(t, ())
        ]
        if found:
            return found, None

    def words(c: CompiledRule, code: RuleMatch) -> str:
        return reason(c, code, n.entity, tags, severity, n.time, tz)

    def others(skip: str | None) -> str:
        rest = [f"rule {c.rule.id}: {words(c, code)}" for c, code in verdicts if c.rule.id != skip]
        return "".join(f"; {text}" for text in rest) if len(verdicts) > 1 else ""

    if hole is not None:
        text = f"blackholed by rule {hole.id} for {severity}"
        return [], suppress("blackhole", text + others(hole.id), cid)
    wanted = sorted({t for r in matched for t in r.route(severity).media})
    if wanted:
        text = f"rules route {severity} to no medium of the contact (they name {', '.join(wanted)})"
        return [], suppress("no_media", text + others(None), cid)
    # No matching rule routes the severity: the real reason is why the rules that
    # would have routed it did not match (else why none matched at all).
    blockers: list[tuple[CompiledRule, RuleMatch]] = [
        (c, code) for c, code in verdicts if code != "matched" and c.rule.route(severity).media
    ]
    if not blockers and not matched:
        blockers = verdicts
    for c, code in blockers[:1]:
        prefix = f"rule {c.rule.id}: " if len(verdicts) > 1 else ""
        text = prefix + words(c, code) + others(c.rule.id)
        return [], suppress(_EXCLUDED[code], text, cid)
    text = f"rules route {severity} to no medium of the contact"
    return [], suppress("no_media", text + others(None), cid)
