"""The configuration file of ``tocsin import``/``export``: its spellings and its errors.

The file takes what the command line takes (one schema for both): a rule's
time restriction is ``"mon-fri 08:00-17:00"`` or a mapping whose ``days`` are
numbers or names, a medium's ``interval`` is seconds or ``15m``, a severity
route may be written ``critical: email,webhook`` or ``critical: blackhole``.
:func:`normalise` turns all of that into the API's shapes and returns every
problem, each naming its item (``contacts[2] 'Carol': media[0].interval:
bad duration '10x'``), so nothing is written until the whole file is right.

:func:`dump_yaml` writes what :func:`normalise` reads back unchanged; clock
times are quoted, because YAML 1.1 reads an unquoted ``17:00`` as the number
1020.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from services.cli.parsing import parse_duration, parse_recurrence
from shared.models import TAG_STRATEGIES

CONTACT_KEYS = ("id", "name", "email", "timezone", "tags", "media", "rules")
MEDIUM_KEYS = ("id", "type", "address", "interval", "rollup_threshold", "settings")
RULE_KEYS = (
    "id",
    "entities",
    "tags",
    "tag_strategy",
    "time_restrictions",
    "critical",
    "warning",
    "unknown",
)
SEVERITIES = ("critical", "warning", "unknown")
_CLOCK = re.compile(r"^\d\d:\d\d$")


def label(index: int, contact: Any) -> str:
    """``contacts[2] 'Carol'``: how errors name a contact of the file."""
    name = contact.get("name") if isinstance(contact, dict) else None
    return f"contacts[{index}]" + (f" {name!r}" if name else "")


def _unknown(item: dict[str, Any], allowed: tuple[str, ...]) -> str | None:
    extra = sorted(str(k) for k in item if k not in allowed)
    if not extra:
        return None
    return f"unknown key(s) {', '.join(extra)} (allowed: {', '.join(allowed)})"


def _route(value: Any) -> Any:
    """``email,webhook`` / ``blackhole`` (as ``--critical`` takes them) or the API's mapping."""
    if isinstance(value, str):
        if value.strip() == "blackhole":
            return {"media": [], "blackhole": True}
        return {"media": [m.strip() for m in value.split(",") if m.strip()], "blackhole": False}
    if isinstance(value, list):
        return {"media": value, "blackhole": False}
    return value


def _medium(m: Any, where: str, errors: list[str]) -> dict[str, Any] | None:
    if not isinstance(m, dict):
        errors.append(f"{where}: must be a mapping (type, address, interval, ...)")
        return None
    problem = _unknown(m, MEDIUM_KEYS)
    if problem:
        errors.append(f"{where}: {problem}")
    out = {k: m[k] for k in MEDIUM_KEYS if k in m}
    if "interval" in out:
        try:
            out["interval"] = parse_duration(out["interval"])
        except ValueError as exc:
            errors.append(f"{where}.interval: {exc}")
    if isinstance(out.get("settings"), dict):
        out["settings"] = {str(k): str(v) for k, v in out["settings"].items()}
    return out


def _rule(r: Any, where: str, errors: list[str]) -> dict[str, Any] | None:
    if not isinstance(r, dict):
        errors.append(f"{where}: must be a mapping (entities, tags, time_restrictions, ...)")
        return None
    problem = _unknown(r, RULE_KEYS)
    if problem:
        errors.append(f"{where}: {problem}")
    out = {k: r[k] for k in RULE_KEYS if k in r}
    if "tag_strategy" in out and out["tag_strategy"] not in TAG_STRATEGIES:
        errors.append(
            f"{where}.tag_strategy: {out['tag_strategy']!r} is not one of {', '.join(TAG_STRATEGIES)}"
        )
    spans = out.get("time_restrictions") or []
    if not isinstance(spans, list):
        spans = [spans]
    parsed = []
    for j, t in enumerate(spans):
        try:
            parsed.append(parse_recurrence(t))
        except ValueError as exc:
            errors.append(f"{where}.time_restrictions[{j}]: {exc}")
    out["time_restrictions"] = parsed
    for sev in SEVERITIES:
        if sev in out:
            out[sev] = _route(out[sev])
    return out


def normalise(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The file's contacts in the API's shapes, and every problem found (empty when fine)."""
    if data is None:
        return [], []
    if not isinstance(data, dict) or set(data) - {"contacts", "schedules", "escalation_policies"}:
        return [], [
            "the file must be a mapping of contacts, schedules and escalation_policies"
            " (as `tocsin export` writes)"
        ]
    raw = data.get("contacts") or []
    if not isinstance(raw, list):
        return [], ["contacts: must be a list"]
    contacts: list[dict[str, Any]] = []
    errors: list[str] = []
    for i, c in enumerate(raw):
        name = label(i, c)
        if not isinstance(c, dict):
            errors.append(f"{name}: must be a mapping (name, timezone, media, rules, ...)")
            continue
        problem = _unknown(c, CONTACT_KEYS)
        if problem:
            errors.append(f"{name}: {problem}")
        found: list[str] = []
        out = {k: c[k] for k in CONTACT_KEYS if k in c and k not in ("media", "rules")}
        media = c.get("media") or []
        rules = c.get("rules") or []
        if not isinstance(media, list):
            found.append("media: must be a list")
            media = []
        if not isinstance(rules, list):
            found.append("rules: must be a list")
            rules = []
        out["media"] = [x for j, m in enumerate(media) if (x := _medium(m, f"media[{j}]", found))]
        out["rules"] = [x for j, r in enumerate(rules) if (x := _rule(r, f"rules[{j}]", found))]
        errors.extend(f"{name}: {e}" for e in found)
        contacts.append(out)
    return contacts, errors


class _Dumper(yaml.SafeDumper):
    """Quotes clock times, so every YAML reader reads ``"08:00"`` back as text."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _CLOCK.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    """YAML that :func:`normalise` reads back to the same values."""
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    return text
