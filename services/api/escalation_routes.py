"""Escalation policies, their dry run, and running escalations (docs/oncall.md).

Validation is ``shared/escalation.py``'s, applied by ``shared/oncall_store.py``;
a policy a rule still routes to cannot be deleted.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus.records import all_records
from services.api.audit import note_change
from services.api.context import ctx_of
from services.api.errors import ApiError
from services.api.oncall_plumbing import Name, check_id_format, contacts_of, store_of
from shared.directory import new_id
from shared.escalation import Policy, SimulatedStep, Step, simulate
from shared.escalation_store import EscalationStore
from shared.keys import check_id


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    steps: Annotated[list[Step], Meta(min_length=1, max_length=20)]
    repeat: Annotated[int, Meta(ge=0, le=20)] = 0


# ----------------------------------------------------------------------------- policies


@post("/escalation-policies", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_policy(request: Request[Any, Any, Any], data: JSONBody[PolicyIn]) -> Policy:
    p = Policy(id=new_id(), name=data.name, steps=tuple(data.steps), repeat=data.repeat)
    saved = store_of(request).put_policy(p, contacts_of(request))
    note_change(request, target=f"escalation_policy:{p.id}", after=saved)
    return saved


@get("/escalation-policies", sync_to_thread=True)
def list_policies(request: Request[Any, Any, Any]) -> list[Policy]:
    return sorted(store_of(request).policies().values(), key=lambda p: p.name)


def _policy(request: Request[Any, Any, Any], pid: str) -> Policy:
    p = store_of(request).get_policy(pid)
    if p is None:
        raise ApiError(404, f"escalation policy {pid!r} not found", "id")
    return p


@get("/escalation-policies/{pid:str}", sync_to_thread=True)
def get_policy(request: Request[Any, Any, Any], pid: FromPath[str]) -> Policy:
    return _policy(request, pid)


@put("/escalation-policies/{pid:str}", sync_to_thread=True)
def replace_policy(
    request: Request[Any, Any, Any], pid: FromPath[str], data: JSONBody[PolicyIn]
) -> Policy:
    check_id_format(pid)
    p = Policy(id=pid, name=data.name, steps=tuple(data.steps), repeat=data.repeat)
    before = store_of(request).get_policy(pid)
    saved = store_of(request).put_policy(p, contacts_of(request))
    note_change(request, target=f"escalation_policy:{pid}", before=before, after=saved)
    return saved


@get("/escalation-policies/{pid:str}/simulate", sync_to_thread=True)
def simulate_policy(
    request: Request[Any, Any, Any],
    pid: FromPath[str],
    at: FromQuery[float | None] = None,
    minutes: FromQuery[float] = 60,
) -> list[SimulatedStep]:
    """Who would be paged, when, if a problem started at ``at`` and nobody acknowledged for
    ``minutes``; changes nothing."""
    if not 0 <= minutes <= 7 * 1440:
        raise ApiError(400, "minutes must be between 0 and 10080", "minutes")
    start = time.time() if at is None else at
    policy = _policy(request, pid)
    return simulate(policy, store_of(request).schedules(), start, start + minutes * 60)


@delete("/escalation-policies/{pid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_policy(request: Request[Any, Any, Any], pid: FromPath[str]) -> None:
    used = [
        r.id
        for r in ctx_of(request).directory.list_rules()
        if any(
            r.route(sev).escalation_policy_id == pid for sev in ("critical", "warning", "unknown")
        )
    ]
    if used:
        raise ApiError(422, f"escalation policy is used by rules: {', '.join(used)}", "id")
    profiles = [
        str(pk)
        for pk, rec in all_records(request, "profile").items()
        if rec.get("escalation_policy") == pid
    ]
    if profiles:
        raise ApiError(
            422, f"escalation policy is used by notification profiles: {', '.join(profiles)}", "id"
        )
    before = store_of(request).get_policy(pid)
    if not store_of(request).delete_policy(pid):
        raise ApiError(404, f"escalation policy {pid!r} not found", "id")
    note_change(request, target=f"escalation_policy:{pid}", before=before)


# ----------------------------------------------------------------------------- escalations


class EscalationOut(msgspec.Struct, kw_only=True):
    id: str
    policy_id: str
    check_id: str
    started: float
    next_step: int
    done: bool
    timeline: list[msgspec.Raw]


@get("/escalations", sync_to_thread=True)
def list_escalations(
    request: Request[Any, Any, Any], entity: FromQuery[str], check: FromQuery[str]
) -> list[EscalationOut]:
    """A check's escalations (newest last), each with its timeline: who was on call and paged."""
    ctx = ctx_of(request)
    store = EscalationStore(ctx.redis, ctx.keys)
    ids = store.of_check(check_id(entity, check))
    out = []
    for eid, x in store.load(ids).items():
        if x is None:
            continue
        out.append(
            EscalationOut(
                id=eid,
                policy_id=x.escalation.policy_id,
                check_id=x.escalation.check_id,
                started=x.escalation.started,
                next_step=x.step + 1,
                done=x.done,
                timeline=[msgspec.Raw(e.encode()) for e in store.timeline(eid)],
            )
        )
    return out


escalation_router = Router(
    path="/",
    route_handlers=[
        create_policy,
        list_policies,
        get_policy,
        replace_policy,
        simulate_policy,
        delete_policy,
        list_escalations,
    ],
    tags=["on call"],
    opt={"reads": "viewer", "writes": "admin"},
)
