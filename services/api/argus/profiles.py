"""``/api/v2/notificationprofiles/``: profiles (filters in ``profile_filters.py``, media and destinations in ``destinations.py``).

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
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta

from services.api.argus import plumbing, records
from services.api.argus.destinations import Name, destination_handlers, destination_out
from services.api.argus.profile_filters import filter_handlers, filter_out
from services.api.argus.schemas import IncidentOut
from services.api.argus.timeslots import _load as load_timeslot
from services.api.audit import note_change
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError
from shared.argus import listing_fits
from shared.directory import validate_timezone
from shared.oncall_store import OncallStore


class ProfileIn(msgspec.Struct, kw_only=True):
    timeslot: int
    filters: Annotated[list[int], Meta(min_length=1, max_length=100)]
    destinations: Annotated[list[int], Meta(max_length=100)] = msgspec.field(default_factory=list)
    name: Name | None = None
    active: bool = True
    contact: str | None = None  # Tocsin: owner contact (timezone, name on deliveries)
    timezone: str | None = None  # Tocsin: timezone when there is no owner contact
    escalation_policy: str | None = None  # Tocsin: a problem it takes starts this policy


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
        "filters": [filter_out(filters[f]) for f in rec["filters"] if f in filters],
        "destinations": [destination_out(dests[d]) for d in rec["destinations"] if d in dests],
        "active": rec["active"],
        "contact": rec.get("contact"),
        "timezone": rec.get("timezone"),
        # Tocsin extension, omitted when unset so the Argus shape stays as it was.
        **({"escalation_policy": pid} if (pid := rec.get("escalation_policy")) else {}),
    }


def _write_profile(request: Request[Any, Any, Any], body: bytes, pk: int | None) -> dict[str, Any]:
    """Create or replace a profile; a responder's names only their own timeslot and destinations."""
    user = records.owner(request)
    before = None
    if pk is not None:
        before = records.load(request, "profile", pk)
        user = before.get("user", "")
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
    records.save(request, "profile", rec)
    # As stored: pks of timeslot, filters and destinations (no destination's settings).
    note_change(request, target=f"profile:{pk}", before=before, after=rec)
    return _profile_out(request, rec)


@get("/notificationprofiles/", sync_to_thread=True)
def list_profiles(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    records.admin_only(request)
    found = records.all_records(request, "profile").values()
    return [_profile_out(request, r) for r in found if records.sees(request, r.get("user", ""))]


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
    return _profile_out(request, records.load_own(request, "profile", pk))


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
    note_change(request, target=f"profile:{pk}", before=rec)


@get("/notificationprofiles/{pk:int}/incidents/", sync_to_thread=True)
def profile_incidents(request: Request[Any, Any, Any], pk: FromPath[int]) -> list[IncidentOut]:
    """Incidents any of the profile's filters matches now (Argus lists the union)."""
    records.admin_only(request)
    rec = records.load_own(request, "profile", pk)
    blobs = records.stored_filters(request, rec["filters"])
    wants_log = any(b.event_types for b in blobs)
    return records.list_matching(
        request, lambda x: any(listing_fits(b, x) for b in blobs), wants_log
    )


# In the order Argus lists them (filters, media, destinations, profiles).
profile_handlers = [
    *filter_handlers,
    *destination_handlers,
    list_profiles,
    create_profile,
    get_profile,
    put_profile,
    delete_profile,
    profile_incidents,
]
