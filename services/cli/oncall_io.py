"""Schedules and escalation policies in ``tocsin export`` / ``tocsin import`` files.

They sit next to ``contacts`` as ``schedules`` and ``escalation_policies``,
with their ids, in the API's shapes.  Import writes them with
``PUT /schedules/{id}`` and ``PUT /escalation-policies/{id}`` (create or
replace, so a rule's ``escalation_policy_id`` in the same file keeps
pointing at its policy); contact ids in them are mapped to the contacts the
import matched or created (a file's contact may get a new id on a fresh
system).  Overrides that have not ended are carried too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from services.cli.client import ApiClient

SCHEDULE_FIELDS = ("name", "timezone", "layers")
POLICY_FIELDS = ("name", "steps", "repeat")

Act = Callable[[str, str, str, Callable[[], Any]], Any]


def export_oncall(api: ApiClient) -> dict[str, Any]:
    now = time.time()
    schedules = []
    for s in api.call("GET", "/schedules"):
        full = api.call("GET", f"/schedules/{s['id']}")
        item = {"id": full["id"], **{k: full[k] for k in SCHEDULE_FIELDS}}
        item["overrides"] = [
            {k: o[k] for k in ("contact_id", "start", "end")}
            for o in full["overrides"]
            if o["end"] > now
        ]
        schedules.append(item)
    policies = [
        {"id": p["id"], **{k: p[k] for k in POLICY_FIELDS}}
        for p in api.call("GET", "/escalation-policies")
    ]
    return {"schedules": schedules, "escalation_policies": policies}


def names_policy(rule: Mapping[str, Any]) -> bool:
    """Whether a rule routes a severity to an escalation policy (it must wait for policies)."""
    return any(
        isinstance(rule.get(sev), dict) and rule[sev].get("escalation_policy_id")
        for sev in ("critical", "warning", "unknown")
    )


def _map_layers(layers: list[dict[str, Any]], ids: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {**layer, "members": [ids.get(m, m) for m in layer.get("members", [])]} for layer in layers
    ]


def _map_steps(steps: list[dict[str, Any]], ids: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        targets = [
            {**t, "contact": ids.get(t["contact"], t["contact"])} if t.get("contact") else t
            for t in step.get("targets", [])
        ]
        out.append({**step, "targets": targets})
    return out


def import_oncall(
    api: ApiClient, data: Mapping[str, Any], ids: Mapping[str, str], act: Act
) -> None:
    """Create or replace the file's schedules and policies (``ids``: file contact id -> real)."""
    current_s = {s["id"]: s for s in api.call("GET", "/schedules")}
    current_p = {p["id"]: p for p in api.call("GET", "/escalation-policies")}
    wanted_s = data.get("schedules") or []
    wanted_p = data.get("escalation_policies") or []
    for s in wanted_s:
        body = {k: s[k] for k in SCHEDULE_FIELDS if k in s}
        body["layers"] = _map_layers(body.get("layers", []), ids)
        sid = str(s.get("id") or "")
        cur = current_s.get(sid)
        if cur is not None and all(cur.get(k) == body.get(k) for k in SCHEDULE_FIELDS):
            act("schedule", "unchanged", repr(s.get("name")), lambda: None)
        elif sid:
            verb = "update" if cur is not None else "create"
            act(
                "schedule",
                verb,
                repr(s.get("name")),
                partial(api.call, "PUT", f"/schedules/{sid}", json=body),
            )
        else:
            made = act(
                "schedule",
                "create",
                repr(s.get("name")),
                partial(api.call, "POST", "/schedules", json=body),
            )
            sid = made["id"] if made else ""
        known = {(o["contact_id"], o["start"], o["end"]) for o in (cur or {}).get("overrides", [])}
        for o in s.get("overrides") or []:
            body_o = {**o, "contact_id": ids.get(o["contact_id"], o["contact_id"])}
            if (body_o["contact_id"], body_o["start"], body_o["end"]) not in known and sid:
                act(
                    "override",
                    "create",
                    f"in {s.get('name')!r}",
                    partial(api.call, "POST", f"/schedules/{sid}/overrides", json=body_o),
                )
    for p in wanted_p:
        body = {k: p[k] for k in POLICY_FIELDS if k in p}
        body["steps"] = _map_steps(body.get("steps", []), ids)
        pid = str(p.get("id") or "")
        cur = current_p.get(pid)
        if cur is not None and all(cur.get(k) == body.get(k) for k in POLICY_FIELDS):
            act("escalation policy", "unchanged", repr(p.get("name")), lambda: None)
        elif pid:
            verb = "update" if cur is not None else "create"
            act(
                "escalation policy",
                verb,
                repr(p.get("name")),
                partial(api.call, "PUT", f"/escalation-policies/{pid}", json=body),
            )
        else:
            act(
                "escalation policy",
                "create",
                repr(p.get("name")),
                partial(api.call, "POST", "/escalation-policies", json=body),
            )


def prune_oncall(api: ApiClient, data: Mapping[str, Any], act: Act) -> None:
    """Delete the schedules and policies the file does not mention (after rules are pruned)."""
    current_p = {p["id"] for p in api.call("GET", "/escalation-policies")}
    current_s = {s["id"] for s in api.call("GET", "/schedules")}
    keep_p = {str(p.get("id")) for p in data.get("escalation_policies") or []}
    keep_s = {str(s.get("id")) for s in data.get("schedules") or []}
    for pid in sorted(current_p - keep_p):
        act(
            "escalation policy",
            "delete",
            pid,
            partial(api.call, "DELETE", f"/escalation-policies/{pid}"),
        )
    for sid in sorted(current_s - keep_s):
        act("schedule", "delete", sid, partial(api.call, "DELETE", f"/schedules/{sid}"))
