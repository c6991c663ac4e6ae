"""``tocsin export`` / ``tocsin import``: the whole configuration as one YAML or JSON file.

Import is idempotent: records are matched by id, else contacts by name, media
by (type, address) and rules by content, then created, updated or left alone;
running the same file twice changes nothing.  Exported secrets are redacted
(``***``): on import, a medium's stored secret is kept unless
``update_secrets`` is set (the API never shows it, so it cannot be compared).  With
``prune`` whatever the file does not mention is deleted, so the file can be
the single source of truth kept in git.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from services.cli.client import ApiClient
from services.cli.config_file import MEDIUM_KEYS, RULE_KEYS, label, normalise
from services.cli.oncall_io import export_oncall, import_oncall, names_policy, prune_oncall

REDACTED = "***"
CONTACT_FIELDS = ("name", "email", "timezone", "tags")
# What is written of a medium or rule: the file's keys but the id (one list to extend).
MEDIUM_FIELDS = tuple(k for k in MEDIUM_KEYS if k != "id")
RULE_FIELDS = tuple(k for k in RULE_KEYS if k != "id")


class ImportRefused(Exception):
    """The file has problems; nothing was written. ``problems`` name their items."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


def _item_text(data: Any, e: dict[str, Any]) -> str:
    """``contacts[2] 'Carol': media[0].address: <what>`` for one item of the API's report."""
    error, field = str(e["error"]), e.get("field")
    if field and error.startswith(f"{field}: "):
        error = error[len(field) + 2 :]
    where = ".".join(p for p in (e["path"], field) if p)
    name = label(e["contact"], data["contacts"][e["contact"]])
    return f"{name}: {where + ': ' if where else ''}{error}"


def check_file(
    api: ApiClient, data: Any, say: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """The file's contacts in the API's shapes, after the API has validated every item.

    Raises :class:`ImportRefused` with every problem, each naming its item
    (``contacts[2] 'Carol': media[0].address: ...``), before anything is written.
    Warnings (an address the gateway would refuse) are said, and do not stop it.
    """
    contacts, problems = normalise(data)
    if not problems and contacts:
        report = api.call("POST", "/config/validate", json={"contacts": contacts})
        problems.extend(_item_text(data, e) for e in report["errors"])
        for w in report.get("warnings", []):
            say(f"warning: {_item_text(data, w)}")
    if problems:
        raise ImportRefused(problems)
    return contacts


def export_config(api: ApiClient) -> dict[str, Any]:
    """Contacts with their media and rules nested, ids included, secrets redacted."""
    media = api.all_items("/media")
    rules = api.all_items("/rules")
    out = []
    for c in sorted(api.all_items("/contacts"), key=lambda c: c["name"]):
        out.append(
            {
                "id": c["id"],
                **{k: c.get(k) for k in CONTACT_FIELDS},
                "media": [
                    {"id": m["id"], **{k: m.get(k) for k in MEDIUM_FIELDS}}
                    for m in media
                    if m["contact_id"] == c["id"]
                ],
                "rules": [
                    {"id": r["id"], **{k: r.get(k) for k in RULE_FIELDS}}
                    for r in rules
                    if r["contact_id"] == c["id"]
                ],
            }
        )
    return {"contacts": out, **export_oncall(api)}


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def _normalise_rule(r: dict[str, Any]) -> dict[str, Any]:
    full = {
        "entities": [],
        "tags": [],
        "tag_strategy": "all",  # a file written before strategies existed means "all"
        "time_restrictions": [],
        "critical": {},
        "warning": {},
        "unknown": {},
    }
    full.update({k: v for k, v in r.items() if k in RULE_FIELDS})
    for sev in ("critical", "warning", "unknown"):
        route = {
            "media": list(full[sev].get("media", [])),
            "blackhole": bool(full[sev].get("blackhole", False)),
        }
        if full[sev].get("escalation_policy_id"):  # only when set, as the API writes it
            route["escalation_policy_id"] = full[sev]["escalation_policy_id"]
        full[sev] = route
    full["time_restrictions"] = [
        {
            "days": list(t.get("days", [1, 2, 3, 4, 5, 6, 7])),
            "start": t.get("start", "00:00"),
            "end": t.get("end", "24:00"),
            "all_day": bool(t.get("all_day", False)),
        }
        for t in full["time_restrictions"]
    ]
    return full


def import_config(
    api: ApiClient,
    data: dict[str, Any],
    prune: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _: None,
    update_secrets: bool = False,
) -> Counter[str]:
    """Make the API's configuration match ``data``; returns counts of what was done.

    Everything is validated first (:func:`check_file`), with or without
    ``dry_run``, so a file either applies whole or changes nothing.
    """
    wanted_contacts = check_file(api, data, say)
    done: Counter[str] = Counter()
    contacts = api.all_items("/contacts")
    media = api.all_items("/media")
    rules = api.all_items("/rules")
    keep_contacts, keep_media, keep_rules = set(), set(), set()
    ids: dict[str, str] = {}  # the file's contact ids -> the ones they match or got
    # Rules routing to an escalation policy wait until the file's policies exist.
    waiting: list[tuple[dict[str, Any], str, dict[str, Any]]] = []

    def act(kind: str, verb: str, label: str, call: Callable[[], Any]) -> Any:
        done[f"{kind} {verb}"] += 1
        say(f"{verb} {kind} {label}")
        return None if dry_run else call()

    def sync_rule(c: dict[str, Any], cid: str, r: dict[str, Any]) -> None:
        """Create, update or keep one of the file's rules of contact ``cid``."""
        wanted_r = _normalise_rule(r)
        mine = [x for x in rules if x["contact_id"] == cid]
        cur = next((x for x in mine if x["id"] == r.get("id")), None) or next(
            (x for x in mine if _normalise_rule(x) == wanted_r), None
        )
        if cur is None:
            made = act(
                "rule",
                "create",
                f"for {c.get('name')!r}",
                lambda w=wanted_r, i=cid: api.call("POST", "/rules", json={"contact_id": i, **w}),
            )
            keep_rules.add(made["id"] if made else None)
            return
        keep_rules.add(cur["id"])
        change = _differs(_normalise_rule(cur), wanted_r)
        if change:
            act(
                "rule",
                "update",
                cur["id"],
                lambda i=cur["id"], ch=change: api.call("PATCH", f"/rules/{i}", json=ch),
            )
        else:
            done["rule unchanged"] += 1

    for c in wanted_contacts:
        wanted = {k: c[k] for k in CONTACT_FIELDS if k in c}
        current = next((x for x in contacts if x["id"] == c.get("id")), None) or next(
            (x for x in contacts if x["name"] == c.get("name")), None
        )
        if current is None:
            created = act(
                "contact",
                "create",
                repr(c.get("name")),
                lambda w=wanted: api.call("POST", "/contacts", json=w),
            )
            cid = created["id"] if created else f"(new {c.get('name')})"
        else:
            cid = current["id"]
            change = _differs(current, wanted)
            if change:
                act(
                    "contact",
                    "update",
                    repr(current["name"]),
                    lambda i=cid, ch=change: api.call("PATCH", f"/contacts/{i}", json=ch),
                )
            else:
                done["contact unchanged"] += 1
        keep_contacts.add(cid)
        if c.get("id"):
            ids[str(c["id"])] = cid

        for m in c.get("media", []):
            wanted_m = {k: m[k] for k in MEDIUM_FIELDS if k in m}
            if isinstance(wanted_m.get("settings"), dict):
                wanted_m["settings"] = {
                    k: v for k, v in wanted_m["settings"].items() if v != REDACTED
                }
            mine = [x for x in media if x["contact_id"] == cid]
            cur = next((x for x in mine if x["id"] == m.get("id")), None) or next(
                (
                    x
                    for x in mine
                    if x["type"] == m.get("type") and x["address"] == m.get("address")
                ),
                None,
            )
            if cur is None:
                made = act(
                    "medium",
                    "create",
                    f"{m.get('type')} {m.get('address')}",
                    lambda w=wanted_m, i=cid: api.call(
                        "POST", "/media", json={"contact_id": i, **w}
                    ),
                )
                keep_media.add(made["id"] if made else None)
                continue
            keep_media.add(cur["id"])
            change = _differs(
                cur, {k: v for k, v in wanted_m.items() if k not in ("type", "settings")}
            )
            stored = cur.get("settings", {})
            # Secrets are write-only: a redacted stored value is only replaced with update_secrets.
            merged = {
                **stored,
                **{
                    k: v
                    for k, v in wanted_m.get("settings", {}).items()
                    if update_secrets or stored.get(k) != REDACTED
                },
            }
            if merged != stored:
                change["settings"] = {k: v for k, v in merged.items() if v != REDACTED}
            if cur.get("type") == "pagerduty" and str(change.get("address", "")).startswith(
                REDACTED
            ):
                change.pop("address")
            if change:
                act(
                    "medium",
                    "update",
                    f"{cur['type']} {cur['id']}",
                    lambda i=cur["id"], ch=change: api.call("PATCH", f"/media/{i}", json=ch),
                )
            else:
                done["medium unchanged"] += 1

        waiting.extend((c, cid, r) for r in c.get("rules", []) if names_policy(r))
        for r in c.get("rules", []):
            if not names_policy(r):
                sync_rule(c, cid, r)

    import_oncall(api, data, ids, act)
    for c, cid, r in waiting:
        sync_rule(c, cid, r)

    if prune:
        for x in rules:
            if x["id"] not in keep_rules and x["contact_id"] in keep_contacts:
                act("rule", "delete", x["id"], lambda i=x["id"]: api.call("DELETE", f"/rules/{i}"))
        for x in media:
            if x["id"] not in keep_media and x["contact_id"] in keep_contacts:
                act(
                    "medium", "delete", x["id"], lambda i=x["id"]: api.call("DELETE", f"/media/{i}")
                )
        prune_oncall(api, data, act)
        for x in contacts:
            if x["id"] not in keep_contacts:
                act(
                    "contact",
                    "delete",
                    repr(x["name"]),
                    lambda i=x["id"]: api.call("DELETE", f"/contacts/{i}"),
                )
    return done
