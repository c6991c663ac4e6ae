"""``/api/v2/notificationprofiles/``: profiles, filters, destinations, media, filterpreview.

Argus's shapes (docs/profiles.md, docs/argus.md): a filter is ``{pk, name,
filter}``; a destination ``{pk, media, label, suggested_label, settings}``
with the address in ``settings`` (``email_address``, ``phone_number``,
``url``, ``routing_key``) and the rest validated by the installed gateway's
schema; a profile is written ``{name, timeslot: pk, filters: [pk],
destinations: [pk], active}`` and read with timeslot, filters and
destinations nested.  Profiles, timeslots and destinations belong to the
user who made them: a responder edits their own, an admin all (docs/users.md);
a profile may also name an owner ``contact`` (its timezone
evaluates the timeslot, its name is on the deliveries) or a ``timezone``.
The notifier evaluates profiles (``shared/routing/profiles.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus import plumbing, records
from services.api.argus.schemas import IncidentOut
from services.api.argus.timeslots import _load as load_timeslot
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.argus import ADDRESS_KEYS, listing_fits
from shared.directory import validate_timezone
from shared.masking import mask_medium, restore_masked
from shared.media import MediumSettingsError, settings_json_schema, validate_medium_settings
from shared.oncall_store import OncallStore

Name = Annotated[str, Meta(max_length=255)]
MEDIA_NAMES = {"email": "Email", "sms": "SMS", "webhook": "Webhook", "slack": "Slack"}


class FilterIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255)]
    filter: dict[str, Any]


class DestinationIn(msgspec.Struct, kw_only=True):
    media: Annotated[str, Meta(min_length=1, max_length=64)]
    settings: dict[str, Any]
    label: Name | None = None


class ProfileIn(msgspec.Struct, kw_only=True):
    timeslot: int
    filters: Annotated[list[int], Meta(min_length=1, max_length=100)]
    destinations: Annotated[list[int], Meta(max_length=100)] = msgspec.field(default_factory=list)
    name: Name | None = None
    active: bool = True
    contact: str | None = None  # Tocsin: owner contact (timezone, name on deliveries)
    timezone: str | None = None  # Tocsin: timezone when there is no owner contact
    escalation_policy: str | None = None  # Tocsin: a problem it takes starts this policy


# --------------------------------------------------------------------------- filters


def _filter_out(rec: dict[str, Any]) -> dict[str, Any]:
    return {"pk": rec["pk"], "name": rec["name"], "filter": rec.get("filter", {})}


@get("/notificationprofiles/filters/", sync_to_thread=True)
def list_filters(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    return [_filter_out(r) for r in records.all_records(request, "filter").values()]


def _write_filter(request: Request[Any, Any, Any], body: bytes, pk: int | None) -> dict[str, Any]:
    records.admin_only(request)
    data = plumbing.decode(body, FilterIn)
    blob = records.filter_blob(data.filter)
    if pk is None:
        pk = records.next_pk(request, "filter")
    else:
        records.load(request, "filter", pk)
    rec = {"pk": pk, "name": data.name, "filter": msgspec.to_builtins(blob)}
    return _filter_out(records.save(request, "filter", rec))


@post("/notificationprofiles/filters/", status_code=HTTP_201_CREATED, sync_to_thread=True)
def create_filter(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """Store a validated filter blob (unknown keys dropped, tags normalised)."""
    return _write_filter(request, body, None)


@get("/notificationprofiles/filters/{pk:int}/", sync_to_thread=True)
def get_filter(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    records.admin_only(request)
    return _filter_out(records.load(request, "filter", pk))


@put("/notificationprofiles/filters/{pk:int}/", sync_to_thread=True)
def put_filter(request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody) -> dict[str, Any]:
    return _write_filter(request, body, pk)


@delete(
    "/notificationprofiles/filters/{pk:int}/", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True
)
def delete_filter(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    records.admin_only(request)
    records.load(request, "filter", pk)
    records.refuse_if_used(request, "filters", pk, "filter")
    records.remove(request, "filter", pk)


@post(
    "/notificationprofiles/filterpreview/",
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    opt={"role": "viewer", "audit": False},
)
def filter_preview(request: Request[Any, Any, Any], body: RawBody) -> list[IncidentOut]:
    """Incidents a filter blob matches now (tags: all of them; event_types: in the log)."""
    records.admin_only(request)
    blob = records.filter_blob(plumbing.decode(body, dict[str, Any]))
    return records.list_matching(request, lambda x: listing_fits(blob, x), bool(blob.event_types))


# --------------------------------------------------------------------------- media and destinations


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


def _destination_out(rec: dict[str, Any]) -> dict[str, Any]:
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


@get("/notificationprofiles/destinations/", sync_to_thread=True)
def list_destinations(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    return [_destination_out(r) for r in records.all_records(request, "destination").values()]


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
    out = _destination_out(records.save(request, "destination", rec))
    return _warned(request, data.media, data.settings, out)


@get("/notificationprofiles/destinations/{pk:int}/", sync_to_thread=True)
def get_destination(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    records.admin_only(request)
    return _destination_out(records.load(request, "destination", pk))


@put("/notificationprofiles/destinations/{pk:int}/", sync_to_thread=True, opt=records.OWN_WRITES)
def put_destination(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> dict[str, Any]:
    """Change settings or label; the medium type cannot change (as in Argus)."""
    records.admin_only(request)
    rec = records.load(request, "destination", pk)
    records.check_owner(request, rec.get("user", ""), f"destination {pk}")
    data = plumbing.decode(body, DestinationIn)
    if data.media != rec["media"]:
        raise ApiError(400, "the medium of a destination cannot be changed", "media")
    key = ADDRESS_KEYS.get(data.media, "address")
    settings = restore_masked(data.settings, rec["settings"], data.media, key)
    _check_destination(request, data.media, settings)
    _refuse_duplicate(request, data.media, settings, pk)
    rec.update(settings=settings, label=data.label)
    out = _destination_out(records.save(request, "destination", rec))
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


@get("/notificationprofiles/destinations/{pk:int}/duplicate/", sync_to_thread=True)
def duplicate_destination(request: Request[Any, Any, Any], pk: FromPath[int]) -> bool:
    """Whether another destination has the same medium and settings."""
    records.admin_only(request)
    rec = records.load(request, "destination", pk)
    return any(
        o["pk"] != pk and o["media"] == rec["media"] and o["settings"] == rec["settings"]
        for o in records.all_records(request, "destination").values()
    )


# --------------------------------------------------------------------------- profiles


def _profile_out(request: Request[Any, Any, Any], rec: dict[str, Any]) -> dict[str, Any]:
    filters = records.all_records(request, "filter")
    dests = records.all_records(request, "destination")
    try:
        timeslot: Any = msgspec.to_builtins(load_timeslot(request, rec["timeslot"]))
        timeslot.pop("rules", None)
    except ApiError:
        timeslot = None
    return {
        "pk": rec["pk"],
        "name": rec.get("name"),
        "timeslot": timeslot,
        "filters": [_filter_out(filters[f]) for f in rec["filters"] if f in filters],
        "destinations": [_destination_out(dests[d]) for d in rec["destinations"] if d in dests],
        "active": rec["active"],
        "contact": rec.get("contact"),
        "timezone": rec.get("timezone"),
        # Tocsin extension, omitted when unset so the Argus shape stays as it was.
        **({"escalation_policy": pid} if (pid := rec.get("escalation_policy")) else {}),
    }


def _write_profile(request: Request[Any, Any, Any], body: bytes, pk: int | None) -> dict[str, Any]:
    """Create or replace a profile; a responder's names only their own timeslot and destinations."""
    user = records.owner(request)
    if pk is not None:
        user = records.load(request, "profile", pk).get("user", "")
        records.check_owner(request, user, f"notification profile {pk}")
    data = plumbing.decode(body, ProfileIn)
    slot = load_timeslot(request, data.timeslot)
    records.stored_filters(request, data.filters)
    dests = records.all_records(request, "destination")
    for d in data.destinations:
        if d not in dests:
            raise ApiError(400, f"destination {d} does not exist", "destinations")
    who = principal_of(request)
    if who is not None and who.role != "admin":
        if slot.user != who.user_id:
            raise ApiError(400, f"timeslot {data.timeslot} is not yours", "timeslot")
        for d in data.destinations:
            if dests[d].get("user", "") != who.user_id:
                raise ApiError(400, f"destination {d} is not yours", "destinations")
    directory = ctx_of(request).directory
    if data.contact is not None and directory.get_contact(data.contact) is None:
        raise ApiError(400, f"contact {data.contact!r} does not exist", "contact")
    if data.timezone is not None:
        try:
            validate_timezone(data.timezone)
        except ValueError as exc:
            raise ApiError(400, str(exc), "timezone") from None
    pid = data.escalation_policy
    if (
        pid is not None
        and OncallStore(ctx_of(request).redis, ctx_of(request).keys).get_policy(pid) is None
    ):
        raise ApiError(400, f"escalation policy {pid!r} does not exist", "escalation_policy")
    others = records.all_records(request, "profile").values()
    # Names are unique per user, as in Argus.
    mine = (p for p in others if p.get("user", "") == user and p["pk"] != pk)
    if data.name and any(p.get("name") == data.name for p in mine):
        raise ApiError(400, f"a notification profile named {data.name!r} already exists", "name")
    if pk is None:
        pk = records.next_pk(request, "profile")
    else:
        records.load(request, "profile", pk)
    rec = {"pk": pk, **msgspec.to_builtins(data), "user": user}
    rec["filters"] = list(dict.fromkeys(data.filters))
    rec["destinations"] = list(dict.fromkeys(data.destinations))
    return _profile_out(request, records.save(request, "profile", rec))


@get("/notificationprofiles/", sync_to_thread=True)
def list_profiles(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    return [_profile_out(request, r) for r in records.all_records(request, "profile").values()]


@post(
    "/notificationprofiles/",
    status_code=HTTP_201_CREATED,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def create_profile(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """``{name?, timeslot, filters, destinations, active}`` (+ Tocsin's ``contact``/``timezone``)."""
    return _write_profile(request, body, None)


@get("/notificationprofiles/{pk:int}/", sync_to_thread=True)
def get_profile(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    records.admin_only(request)
    return _profile_out(request, records.load(request, "profile", pk))


@put("/notificationprofiles/{pk:int}/", sync_to_thread=True, opt=records.OWN_WRITES)
def put_profile(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> dict[str, Any]:
    return _write_profile(request, body, pk)


@delete(
    "/notificationprofiles/{pk:int}/",
    status_code=HTTP_204_NO_CONTENT,
    sync_to_thread=True,
    opt=records.OWN_WRITES,
)
def delete_profile(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    records.admin_only(request)
    rec = records.load(request, "profile", pk)
    records.check_owner(request, rec.get("user", ""), f"notification profile {pk}")
    records.remove(request, "profile", pk)


@get("/notificationprofiles/{pk:int}/incidents/", sync_to_thread=True)
def profile_incidents(request: Request[Any, Any, Any], pk: FromPath[int]) -> list[IncidentOut]:
    """Incidents any of the profile's filters matches now (Argus lists the union)."""
    records.admin_only(request)
    rec = records.load(request, "profile", pk)
    blobs = records.stored_filters(request, rec["filters"])
    wants_log = any(b.event_types for b in blobs)
    return records.list_matching(
        request, lambda x: any(listing_fits(b, x) for b in blobs), wants_log
    )


profile_handlers = [
    list_filters,
    create_filter,
    get_filter,
    put_filter,
    delete_filter,
    filter_preview,
    list_media,
    get_medium,
    get_medium_schema,
    list_destinations,
    create_destination,
    get_destination,
    put_destination,
    delete_destination,
    duplicate_destination,
    list_profiles,
    create_profile,
    get_profile,
    put_profile,
    delete_profile,
    profile_incidents,
]
