"""Contacts, media and rules (README, "Management API"): validated writes through ``shared.directory``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.context import ApiContext, ctx_of
from services.api.errors import ApiError
from services.api.paging import page_of
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
from shared.directory import ValidationFailed, new_id, validate_medium, validate_rule
from shared.masking import mask_medium
from shared.models import Contact, Medium, Rule


def redact_medium(medium: Medium) -> Medium:
    """Hide secrets the way every API response does (:func:`shared.masking.mask_medium`)."""
    address, settings = mask_medium(medium.type, medium.address, medium.settings)
    return msgspec.structs.replace(medium, settings=settings, address=address)


def _not_found(kind: str, rid: FromPath[str]) -> ApiError:
    return ApiError(404, f"{kind} {rid!r} not found", "id")


def check_medium_settings(
    ctx: ApiContext, medium: Medium, installed: list[str] | None = None
) -> None:
    """Type installed, address and settings valid for the type (the gateway's own schema)."""
    validate_medium(medium, ctx.installed_media() if installed is None else installed)
    try:
        ctx.validate_medium_settings(medium.type, medium.address, medium.settings)
    except ValidationFailed:
        raise
    except ValueError as exc:
        raise ValidationFailed(str(exc), getattr(exc, "field", "settings")) from None


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
    return ctx_of(request).directory.put_contact(contact)


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


@patch("/contacts/{cid:str}", sync_to_thread=True)
def patch_contact(
    request: Request[Any, Any, Any], cid: FromPath[str], data: JSONBody[ContactPatch]
) -> Contact:
    directory = ctx_of(request).directory
    contact = directory.get_contact(cid)
    if contact is None:
        raise _not_found("contact", cid)
    return directory.put_contact(msgspec.convert(_merge(contact, data), Contact))


@delete("/contacts/{cid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_contact(request: Request[Any, Any, Any], cid: FromPath[str]) -> None:
    if not ctx_of(request).directory.delete_contact(cid):
        raise _not_found("contact", cid)


# ----------------------------------------------------------------------------- media


def with_warnings(ctx: ApiContext, medium: Medium) -> MediumOut:
    """The saved medium, redacted, with a warning when the gateway would refuse its address."""
    warning = ctx.destination_warning(medium.type, medium.address)
    shown = msgspec.structs.asdict(redact_medium(medium))
    return MediumOut(**shown, warnings=(warning,) if warning else ())


@post("/media", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_medium(request: Request[Any, Any, Any], data: JSONBody[MediumIn]) -> MediumOut:
    ctx = ctx_of(request)
    if ctx.directory.get_contact(data.contact_id) is None:
        raise ApiError(422, f"contact {data.contact_id!r} does not exist", "contact_id")
    medium = Medium(id=new_id(), **msgspec.structs.asdict(data))
    check_medium_settings(ctx, medium)
    return with_warnings(ctx, ctx.directory.put_medium(medium))


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


@patch("/media/{mid:str}", sync_to_thread=True)
def patch_medium(
    request: Request[Any, Any, Any], mid: FromPath[str], data: JSONBody[MediumPatch]
) -> MediumOut:
    ctx = ctx_of(request)
    medium = ctx.directory.get_medium(mid)
    if medium is None:
        raise _not_found("medium", mid)
    updated = msgspec.convert(_merge(medium, data), Medium)
    check_medium_settings(ctx, updated)
    return with_warnings(ctx, ctx.directory.put_medium(updated))


@delete("/media/{mid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_medium(request: Request[Any, Any, Any], mid: FromPath[str]) -> None:
    if not ctx_of(request).directory.delete_medium(mid):
        raise _not_found("medium", mid)


# ----------------------------------------------------------------------------- rules


def _validated_rule(ctx: ApiContext, rule: Rule) -> Rule:
    contact = ctx.directory.get_contact(rule.contact_id)
    if contact is None:
        raise ApiError(422, f"contact {rule.contact_id!r} does not exist", "contact_id")
    validate_rule(rule, {m.type for m in ctx.directory.contact_media(rule.contact_id)})
    return rule


@post("/rules", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_rule(request: Request[Any, Any, Any], data: JSONBody[RuleIn]) -> Rule:
    ctx = ctx_of(request)
    rule = msgspec.convert({"id": new_id(), **msgspec.structs.asdict(data)}, Rule)
    return ctx.directory.put_rule(_validated_rule(ctx, rule))


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


@patch("/rules/{rid:str}", sync_to_thread=True)
def patch_rule(
    request: Request[Any, Any, Any], rid: FromPath[str], data: JSONBody[RulePatch]
) -> Rule:
    ctx = ctx_of(request)
    rule = ctx.directory.get_rule(rid)
    if rule is None:
        raise _not_found("rule", rid)
    updated = msgspec.convert(_merge(rule, data), Rule)
    return ctx.directory.put_rule(_validated_rule(ctx, updated))


@delete("/rules/{rid:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True)
def delete_rule(request: Request[Any, Any, Any], rid: FromPath[str]) -> None:
    if not ctx_of(request).directory.delete_rule(rid):
        raise _not_found("rule", rid)


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
)
