"""``/api/v2/notificationprofiles/media/`` and ``destinations/``: where a profile's messages go.

A destination is ``{pk, media, label, suggested_label, settings}`` with the
address in ``settings`` (``email_address``, ``phone_number``, ``url``,
``routing_key``) and the rest validated by the installed gateway's schema
(``shared/media.py``); media are the installed gateways.  A destination
belongs to the user who made it (docs/users.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus import plumbing, records
from services.api.audit import note_change
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.argus import ADDRESS_KEYS
from shared.masking import mask_medium, mask_settings, mask_url, restore_masked
from shared.media import MediumSettingsError, settings_json_schema, validate_medium_settings

Name = Annotated[str, Meta(max_length=255)]
MEDIA_NAMES = {"email": "Email", "sms": "SMS", "webhook": "Webhook", "slack": "Slack"}


class DestinationIn(msgspec.Struct, kw_only=True):
    media: Annotated[str, Meta(min_length=1, max_length=64)]
    settings: dict[str, Any]
    label: Name | None = None


def _media_schema(slug: str) -> dict[str, Any]:
    """The destination settings schema: the address key plus the gateway's own settings."""
    schema = settings_json_schema(slug)
    body = schema.get("$defs", {}).get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
    props = dict(body.get("properties", {}))
    key = ADDRESS_KEYS[slug]
    props[key] = {"type": "string", "title": key.replace("_", " ")}
    return {
        "title": f"{MEDIA_NAMES.get(slug, slug)} settings",
        "type": "object",
        "properties": props,
        "required": [key],
        "additionalProperties": False,
    }


def _medium_out(request: Request[Any, Any, Any], slug: str) -> dict[str, Any]:
    installed = set(ctx_of(request).installed_media())
    return {
        "slug": slug,
        "name": MEDIA_NAMES.get(slug, slug.capitalize()),
        "installed": slug in installed,
        "json_schema": _media_schema(slug),
    }


@get("/notificationprofiles/media/", sync_to_thread=True)
def list_media(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Every medium type, whether a gateway is installed for it, and its settings schema."""
    records.admin_only(request)
    return [_medium_out(request, slug) for slug in ADDRESS_KEYS]


def _known_medium(slug: str) -> str:
    if slug not in ADDRESS_KEYS:
        raise ApiError(404, f"medium {slug!r} not found", "media")
    return slug


@get("/notificationprofiles/media/{slug:str}/", sync_to_thread=True)
def get_medium(request: Request[Any, Any, Any], slug: FromPath[str]) -> dict[str, Any]:
    records.admin_only(request)
    return _medium_out(request, _known_medium(slug))


@get("/notificationprofiles/media/{slug:str}/json_schema/", sync_to_thread=True)
def get_medium_schema(request: Request[Any, Any, Any], slug: FromPath[str]) -> dict[str, Any]:
    records.admin_only(request)
    return _media_schema(_known_medium(slug))


def destination_out(rec: dict[str, Any]) -> dict[str, Any]:
    """A destination as returned: secrets masked the way ``/media`` masks them."""
    media = rec["media"]
    key = ADDRESS_KEYS.get(media, "address")
    rest = {k: v for k, v in rec["settings"].items() if k != key}
    address, settings = mask_medium(media, str(rec["settings"].get(key, "")), rest)
    if key in rec["settings"]:
        settings = {key: address, **settings}
    return {
        "pk": rec["pk"],
        "media": media,
        "label": rec.get("label"),
        "suggested_label": f"{MEDIA_NAMES.get(media, media)}: {address}",
        "settings": settings,
    }


def _destination_shown(rec: dict[str, Any]) -> dict[str, Any]:
    """A destination as the audit log keeps it: the display form (webhook and Slack URLs
    without path), as the dashboard shows media, and its owner."""
    media = rec["media"]
    key = ADDRESS_KEYS.get(media, "address")
    settings = mask_settings({k: v for k, v in rec["settings"].items() if k != key})
    if key in rec["settings"]:
        settings[key] = mask_url(media, str(rec["settings"][key]))
    return {
        "pk": rec["pk"],
        "media": media,
        "label": rec.get("label"),
        "settings": settings,
        "user": rec.get("user", ""),
    }


def _check_destination(
    request: Request[Any, Any, Any], media: str, settings: dict[str, Any]
) -> None:
    """The medium must be installed and the settings pass the gateway's validation."""
    ctx = ctx_of(request)
    installed = ctx.installed_media()
    if media not in ADDRESS_KEYS or media not in installed:
        raise ApiError(
            400,
            f"medium {media!r} is not installed (installed: {', '.join(installed) or 'none'})",
            "media",
        )
    key = ADDRESS_KEYS[media]
    address = settings.get(key)
    if not isinstance(address, str) or not address.strip():
        raise ApiError(400, f"settings.{key} is required for {media}", f"settings.{key}")
    rest = {k: v for k, v in settings.items() if k != key}
    try:
        validate_medium_settings(media, address, rest)
    except MediumSettingsError as exc:
        field = f"settings.{key}" if exc.field == "address" else exc.field
        raise ApiError(400, exc.message.replace("address:", f"settings.{key}:", 1), field) from None


def _warned(
    request: Request[Any, Any, Any], media: str, settings: dict[str, Any], out: dict[str, Any]
) -> dict[str, Any]:
    """``out`` plus ``warnings`` (Tocsin's extension, only when there is one) if the gateway
    would refuse the destination's address (loopback/private, not allowed)."""
    address = settings.get(ADDRESS_KEYS.get(media, "address"))
    warning = (
        ctx_of(request).destination_warning(media, address) if isinstance(address, str) else None
    )
    return {**out, "warnings": [warning]} if warning else out


def _refuse_duplicate(
    request: Request[Any, Any, Any], media: str, settings: dict[str, Any], pk: int | None = None
) -> None:
    """400 when another destination has the same medium and settings (as Argus answers)."""
    for other in records.all_records(request, "destination").values():
        if other["pk"] != pk and other["media"] == media and other["settings"] == settings:
            raise ApiError(
                400,
                f"a destination with the same medium and settings already exists "
                f"(pk {other['pk']})",
                "settings",
            )


def add_user_email(request: Request[Any, Any, Any], user_id: str, email: str) -> int | None:
    """A new user's email destination, managed (synced from the user), as Argus creates one.

    None when another destination already has that address (Argus refuses duplicates too).
    """
    settings = {"email_address": email}
    for other in records.all_records(request, "destination").values():
        if other["media"] == "email" and other["settings"] == settings:
            return None
    pk = records.next_pk(request, "destination")
    rec = {"pk": pk, "media": "email", "label": email, "settings": settings}
    records.save(request, "destination", {**rec, "user": user_id, "managed": True})
    return pk


def sync_user_email(request: Request[Any, Any, Any], user_id: str, email: str) -> None:
    """Keep the user's managed email destination at their email, as Argus does.

    A changed email rewrites it (profiles naming it follow), or creates one if the
    user has none; it is left alone when another destination has the new address
    (Argus refuses duplicates) and when the email is cleared.
    """
    if not email:
        return
    mine = [
        d
        for d in records.all_records(request, "destination").values()
        if d.get("user") == user_id and d.get("managed")
    ]
    if not mine:
        add_user_email(request, user_id, email)
        return
    settings = {"email_address": email}
    others = records.all_records(request, "destination").values()
    if any(o["media"] == "email" and o["settings"] == settings for o in others):
        return
    records.save(request, "destination", {**mine[0], "settings": settings, "label": email})


@get("/notificationprofiles/destinations/", sync_to_thread=True)
def list_destinations(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    found = records.all_records(request, "destination").values()
    return [destination_out(r) for r in found if records.sees(request, r.get("user", ""))]


@post(
    "/notificationprofiles/destinations/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def create_destination(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """A destination of the caller's own: medium type plus settings the gateway validates."""
    user = records.owner(request)
    data = plumbing.decode(body, DestinationIn)
    _check_destination(request, data.media, data.settings)
    _refuse_duplicate(request, data.media, data.settings)
    rec = {
        "pk": records.next_pk(request, "destination"),
        "media": data.media,
        "label": data.label,
        "settings": data.settings,
        "user": user,
    }
    out = destination_out(records.save(request, "destination", rec))
    note_change(request, target=f"destination:{rec['pk']}", after=_destination_shown(rec))
    return _warned(request, data.media, data.settings, out)


@get("/notificationprofiles/destinations/{pk:int}/", sync_to_thread=True)
def get_destination(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    records.admin_only(request)
    return destination_out(records.load_own(request, "destination", pk))


@put("/notificationprofiles/destinations/{pk:int}/", sync_to_thread=True, opt=records.OWN_WRITES)
def put_destination(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> dict[str, Any]:
    """Change settings or label; the medium type cannot change (as in Argus)."""
    records.admin_only(request)
    rec = records.load(request, "destination", pk)
    records.check_owner(request, rec.get("user", ""), f"destination {pk}")
    before = _destination_shown(rec)
    data = plumbing.decode(body, DestinationIn)
    if data.media != rec["media"]:
        raise ApiError(400, "the medium of a destination cannot be changed", "media")
    key = ADDRESS_KEYS.get(data.media, "address")
    settings = restore_masked(data.settings, rec["settings"], data.media, key)
    _check_destination(request, data.media, settings)
    _refuse_duplicate(request, data.media, settings, pk)
    rec.update(settings=settings, label=data.label)
    out = destination_out(records.save(request, "destination", rec))
    note_change(request, target=f"destination:{pk}", before=before, after=_destination_shown(rec))
    return _warned(request, data.media, settings, out)


@delete(
    "/notificationprofiles/destinations/{pk:int}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def delete_destination(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    records.admin_only(request)
    rec = records.load(request, "destination", pk)
    records.check_owner(request, rec.get("user", ""), f"destination {pk}")
    records.refuse_if_used(request, "destinations", pk, "destination")
    records.remove(request, "destination", pk)
    note_change(request, target=f"destination:{pk}", before=_destination_shown(rec))


@get("/notificationprofiles/destinations/{pk:int}/duplicate/", sync_to_thread=True)
def duplicate_destination(request: Request[Any, Any, Any], pk: FromPath[int]) -> bool:
    """Whether another destination has the same medium and settings."""
    records.admin_only(request)
    rec = records.load_own(request, "destination", pk)
    return any(
        o["pk"] != pk and o["media"] == rec["media"] and o["settings"] == rec["settings"]
        for o in records.all_records(request, "destination").values()
    )


destination_handlers = [
    list_media,
    get_medium,
    get_medium_schema,
    list_destinations,
    create_destination,
    get_destination,
    put_destination,
    delete_destination,
    duplicate_destination,
]
