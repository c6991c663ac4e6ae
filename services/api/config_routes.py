"""Contacts, media and rules (README, "Management API"): validated writes through ``shared.directory``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.audit import note_change
from services.api.auth import principal_of
from services.api.context import ApiContext, ctx_of
from services.api.errors import ApiError
from services.api.paging import page_of
from services.api.people_store import PeopleStore
from services.api.schemas import (
    ContactIn,
    ContactPatch,
    MediumIn,
    MediumOut,
    MediumPatch,
    Page,
    RuleIn,
    RulePatch,
)
from shared.directory import new_id, validate_rule
from shared.masking import mask_medium, mask_url
from shared.models import SEVERITIES, Contact, Medium, Rule
from shared.oncall_store import OncallStore


def redact_medium(medium: Medium) -> Medium:
    """Hide secrets the way every API response does (:func:`shared.masking.mask_medium`)."""
    address, settings = mask_medium(medium.type, medium.address, medium.settings)
    return msgspec.structs.replace(medium, settings=settings, address=address)


def shown_medium(medium: Medium) -> Medium:
    """A medium as the audit log keeps it: the display form (URL paths too are masked)."""
    masked = redact_medium(medium)
    return msgspec.structs.replace(masked, address=mask_url(medium.type, masked.address))


def _not_found(kind: str, rid: FromPath[str]) -> ApiError:
    return ApiError(404, f"{kind} {rid!r} not found", "id")


def may_edit(request: Request[Any, Any, Any], *contact_ids: str) -> None:
    """403 unless the caller is an admin or the user whose linked contact this is.

    Responders edit their own notification settings: the contact linked to
    their user, its media and its rules (docs/users.md).
    """
    who = principal_of(request)
    if who is None or who.role == "admin":
        return
    ctx = ctx_of(request)
    user = PeopleStore(ctx.redis, ctx.keys).user(who.user_id) if who.user_id else None
    own = user.contact_id if user else ""
    if not own or any(cid != own for cid in contact_ids):
        raise ApiError(
            403, "a responder may change only their own contact's settings", "contact_id"
        )


def _merge(record: msgspec.Struct, patch_body: msgspec.Struct) -> dict[str, Any]:
    changes = {
        name: getattr(patch_body, name)
        for name in patch_body.__struct_fields__
        if getattr(patch_body, name) is not msgspec.UNSET
    }
    return {**msgspec.structs.asdict(record), **changes}


# ----------------------------------------------------------------------------- contacts


@post("/contacts", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_contact(request: Request[Any, Any, Any], data: JSONBody[ContactIn]) -> Contact:
    contact = Contact(id=new_id(), **msgspec.structs.asdict(data) | {"tags": tuple(data.tags)})
    saved = ctx_of(request).directory.put_contact(contact)
    note_change(request, target=f"contact:{saved.id}", after=saved)
    return saved


@get("/contacts", sync_to_thread=True)
def list_contacts(
    request: Request[Any, Any, Any], limit: FromQuery[int] = 100, offset: FromQuery[int] = 0
) -> Page[Contact]:
    return page_of(ctx_of(request).directory.list_contacts(), limit, offset)


@get("/contacts/{cid:str}", sync_to_thread=True)
def get_contact(request: Request[Any, Any, Any], cid: FromPath[str]) -> Contact:
    contact = ctx_of(request).directory.get_contact(cid)
    if contact is None:
        raise _not_found("contact", cid)
    return contact


@patch("/contacts/{cid:str}", sync_to_thread=True, opt={"role": "responder"})
def patch_contact(
    request: Request[Any, Any, Any], cid: FromPath[str], data: JSONBody[ContactPatch]
) -> Contact:
    may_edit(request, cid)
    directory = ctx_of(request).directory
    contact = directory.get_contact(cid)
    if contact is None:
        raise _not_found("contact", cid)
    saved = directory.put_contact(msgspec.convert(_merge(contact, data), Contact))
    note_change(request, target=f"contact:{cid}", before=contact, after=saved)
    return saved


@delete("/contacts/{cid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_contact(request: Request[Any, Any, Any], cid: FromPath[str]) -> None:
    before = ctx_of(request).directory.get_contact(cid)
    if not ctx_of(request).directory.delete_contact(cid):
        raise _not_found("contact", cid)
    note_change(request, target=f"contact:{cid}", before=before)


# ----------------------------------------------------------------------------- media


def with_warnings(ctx: ApiContext, medium: Medium) -> MediumOut:
    """The saved medium, redacted, with a warning when the gateway would refuse its address."""
    warning = ctx.destination_warning(medium.type, medium.address)
    shown = msgspec.structs.asdict(redact_medium(medium))
    return MediumOut(**shown, warnings=(warning,) if warning else ())


@post("/media", status_code=HTTP_201_CREATED, sync_to_thread=True, opt={"role": "responder"})
def create_medium(request: Request[Any, Any, Any], data: JSONBody[MediumIn]) -> MediumOut:
    may_edit(request, data.contact_id)
    ctx = ctx_of(request)
    if ctx.directory.get_contact(data.contact_id) is None:
        raise ApiError(422, f"contact {data.contact_id!r} does not exist", "contact_id")
    medium = Medium(id=new_id(), **msgspec.structs.asdict(data))
    ctx.check_medium(medium)
    stored = ctx.directory.put_medium(medium)
    saved = with_warnings(ctx, stored)
    note_change(request, target=f"medium:{saved.id}", after=shown_medium(stored))
    return saved


@get("/media", sync_to_thread=True)
def list_media(
    request: Request[Any, Any, Any],
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
    contact_id: FromQuery[str | None] = None,
) -> Page[Medium]:
    media = ctx_of(request).directory.list_media()
    if contact_id is not None:
        media = [m for m in media if m.contact_id == contact_id]
    return page_of([redact_medium(m) for m in media], limit, offset)


@get("/media/{mid:str}", sync_to_thread=True)
def get_medium(request: Request[Any, Any, Any], mid: FromPath[str]) -> Medium:
    medium = ctx_of(request).directory.get_medium(mid)
    if medium is None:
        raise _not_found("medium", mid)
    return redact_medium(medium)


@patch("/media/{mid:str}", sync_to_thread=True, opt={"role": "responder"})
def patch_medium(
    request: Request[Any, Any, Any], mid: FromPath[str], data: JSONBody[MediumPatch]
) -> MediumOut:
    ctx = ctx_of(request)
    medium = ctx.directory.get_medium(mid)
    may_edit(request, medium.contact_id if medium else "")
    if medium is None:
        raise _not_found("medium", mid)
    updated = msgspec.convert(_merge(medium, data), Medium)
    ctx.check_medium(updated)
    stored = ctx.directory.put_medium(updated)
    note_change(
        request, target=f"medium:{mid}", before=shown_medium(medium), after=shown_medium(stored)
    )
    saved = with_warnings(ctx, stored)
    return saved


@delete(
    "/media/{mid:str}",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def delete_medium(request: Request[Any, Any, Any], mid: FromPath[str]) -> None:
    before = ctx_of(request).directory.get_medium(mid)
    may_edit(request, before.contact_id if before else "")
    if not ctx_of(request).directory.delete_medium(mid):
        raise _not_found("medium", mid)
    note_change(request, target=f"medium:{mid}", before=shown_medium(before) if before else None)


# ----------------------------------------------------------------------------- rules


def _validated_rule(ctx: ApiContext, rule: Rule) -> Rule:
    contact = ctx.directory.get_contact(rule.contact_id)
    if contact is None:
        raise ApiError(422, f"contact {rule.contact_id!r} does not exist", "contact_id")
    validate_rule(rule, {m.type for m in ctx.directory.contact_media(rule.contact_id)})
    oncall = OncallStore(ctx.redis, ctx.keys)
    for severity in SEVERITIES:
        pid = rule.route(severity).escalation_policy_id
        if isinstance(pid, str) and oncall.get_policy(pid) is None:
            raise ApiError(
                422, f"escalation policy {pid!r} does not exist", f"{severity}.escalation_policy_id"
            )
    return rule


@post("/rules", status_code=HTTP_201_CREATED, sync_to_thread=True, opt={"role": "responder"})
def create_rule(request: Request[Any, Any, Any], data: JSONBody[RuleIn]) -> Rule:
    may_edit(request, data.contact_id)
    ctx = ctx_of(request)
    rule = msgspec.convert({"id": new_id(), **msgspec.structs.asdict(data)}, Rule)
    saved = ctx.directory.put_rule(_validated_rule(ctx, rule))
    note_change(request, target=f"rule:{saved.id}", after=saved)
    return saved


@get("/rules", sync_to_thread=True)
def list_rules(
    request: Request[Any, Any, Any],
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
    contact_id: FromQuery[str | None] = None,
) -> Page[Rule]:
    rules = ctx_of(request).directory.list_rules()
    if contact_id is not None:
        rules = [x for x in rules if x.contact_id == contact_id]
    return page_of(rules, limit, offset)


@get("/rules/{rid:str}", sync_to_thread=True)
def get_rule(request: Request[Any, Any, Any], rid: FromPath[str]) -> Rule:
    rule = ctx_of(request).directory.get_rule(rid)
    if rule is None:
        raise _not_found("rule", rid)
    return rule


@patch("/rules/{rid:str}", sync_to_thread=True, opt={"role": "responder"})
def patch_rule(
    request: Request[Any, Any, Any], rid: FromPath[str], data: JSONBody[RulePatch]
) -> Rule:
    ctx = ctx_of(request)
    rule = ctx.directory.get_rule(rid)
    may_edit(request, rule.contact_id if rule else "")
    if rule is None:
        raise _not_found("rule", rid)
    updated = msgspec.convert(_merge(rule, data), Rule)
    saved = ctx.directory.put_rule(_validated_rule(ctx, updated))
    note_change(request, target=f"rule:{rid}", before=rule, after=saved)
    return saved


@delete(
    "/rules/{rid:str}",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt={"role": "responder"},
)
def delete_rule(request: Request[Any, Any, Any], rid: FromPath[str]) -> None:
    before = ctx_of(request).directory.get_rule(rid)
    may_edit(request, before.contact_id if before else "")
    if not ctx_of(request).directory.delete_rule(rid):
        raise _not_found("rule", rid)
    note_change(request, target=f"rule:{rid}", before=before)


config_router = Router(
    path="/",
    route_handlers=[
        create_contact,
        list_contacts,
        get_contact,
        patch_contact,
        delete_contact,
        create_medium,
        list_media,
        get_medium,
        patch_medium,
        delete_medium,
        create_rule,
        list_rules,
        get_rule,
        patch_rule,
        delete_rule,
    ],
    tags=["configuration"],
    opt={"reads": "viewer", "writes": "admin"},  # services/api/access.py
)
