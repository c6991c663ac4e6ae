"""One rule against one notification: does it match, and if not, why (pure).

A rule matches when the check's entity is among its ``entities`` (none = any),
its ``tags`` match by the rule's ``tag_strategy`` (``all``, ``any``, ``none``;
no tags = any check), and its time restrictions contain the notification time
on the contact's clock.  A matching rule still says nothing about a severity
whose route has neither media nor a blackhole.

:func:`verdict` gives a short code per rule (cheap: the notifier runs it for
every candidate contact of every notification); :func:`reason` turns one into
the words the explanations show (only for contacts that end up with nothing,
and for ``tocsin explain``/``simulate`` and the dashboard).  The contact-level
reason is assembled in :func:`shared.routing.selection.select_rules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from shared.models import SEVERITIES, Rule
from shared.timeslots import covers, describe, describe_instant

# Why a rule did not match, or ``matched``.
RuleMatch = Literal["matched", "entity", "tags", "time_restriction"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    tags: frozenset[str]
    entities: frozenset[str]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        return cls(rule, frozenset(rule.tags), frozenset(rule.entities))


def tags_match(strategy: str, wanted: frozenset[str], have: frozenset[str]) -> bool:
    """A rule's tags against a check's: ``all`` present, ``any`` present or ``none`` present."""
    if not wanted:
        return True
    if strategy == "any":
        return not wanted.isdisjoint(have)
    if strategy == "none":
        return wanted.isdisjoint(have)
    return wanted <= have


def verdict(
    c: CompiledRule, entity: str, tags: frozenset[str], clock: tuple[int, float] | None
) -> RuleMatch:
    """Entity, then tags, then time (``clock`` = the contact's local weekday and minutes)."""
    if c.entities and entity not in c.entities:
        return "entity"
    if not tags_match(c.rule.tag_strategy, c.tags, tags):
        return "tags"
    recs = c.rule.time_restrictions
    if recs and clock is not None and not any(covers(rec, *clock) for rec in recs):
        return "time_restriction"
    return "matched"


def _set(values: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(values)) + "}"


def tags_clause(rule: Rule, have: frozenset[str]) -> str:
    """The tag condition in words, true or false for ``have``: ``none of {buf} present``."""
    wanted = frozenset(rule.tags)
    present = sorted(wanted & have)
    if rule.tag_strategy == "any":
        if present:
            return f"{', '.join(present)} of any of {_set(wanted)} present"
        return f"none of {_set(wanted)} present (any needed)"
    if rule.tag_strategy == "none":
        if present:
            return f"{', '.join(present)} present (none of {_set(wanted)} allowed)"
        return f"none of {_set(wanted)} present"
    missing = sorted(wanted - have)
    if missing:
        return f"{', '.join(missing)} of all of {_set(wanted)} missing"
    return f"all of {_set(wanted)} present"


def time_clause(rule: Rule, when: float, tz: ZoneInfo, verb: str = "excludes") -> str:
    """``time restriction Mon-Fri 08:00-16:00 Europe/Oslo excludes Sat 10:03`` (local time)."""
    spans = ", ".join(describe(rec) for rec in rule.time_restrictions)
    return f"time restriction {spans} {tz.key} {verb} {describe_instant(when, tz)}"


def route_clause(rule: Rule, severity: str) -> str:
    """What a matching rule does with ``severity``; names its other routes when it has none."""
    route = rule.route(severity)
    if route.blackhole:
        return f"blackholes {severity}"
    if route.media:
        return f"routes {severity} to {', '.join(route.media)}"
    others = []
    for sev in SEVERITIES:
        r = rule.route(sev)
        if sev != severity and (r.blackhole or r.media):
            others.append(f"{sev}: {'blackhole' if r.blackhole else ', '.join(r.media)}")
    only = f" (only {'; '.join(others)})" if others else ""
    return f"routes {severity} nowhere{only}"


def reason(
    c: CompiledRule,
    code: RuleMatch,
    entity: str,
    tags: frozenset[str],
    severity: str,
    when: float,
    tz: ZoneInfo,
) -> str:
    """One rule's verdict in words; a matched rule also says what it does with ``severity``."""
    rule = c.rule
    if code == "entity":
        return f"entity {entity} not in {_set(c.entities)}"
    if code == "tags":
        return tags_clause(rule, tags)
    if code == "time_restriction":
        return time_clause(rule, when, tz)
    parts = []
    if c.tags:
        parts.append(tags_clause(rule, tags))
    if rule.time_restrictions:
        parts.append(time_clause(rule, when, tz, "includes"))
    parts.append(f"matched, {route_clause(rule, severity)}")
    return ": ".join(parts)
