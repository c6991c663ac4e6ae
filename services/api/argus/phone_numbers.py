"""Argus's ``auth/phone-number/``: each person's own phone numbers, ``{pk, user, phone_number}``.

The Argus frontend lists and edits them on the user's settings page (they feed
SMS destinations there).  They belong to the caller: every role manages its own
and sees no one else's, the admin included (as in Argus, whose queryset is the
request user's).  Stored per user, one Redis hash ``pk -> JSON`` per owner; the
pks come from one sequence, so a pk names one number across users.  The
bootstrap token is user pk 0 (``services/api/argus/users.py``).  See docs/users.md.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from services.api.argus import plumbing
from services.api.audit import note_change
from services.api.auth import principal_of
from services.api.context import ctx_of
from services.api.errors import ApiError

# E.164: "+", a country code that does not start with 0, at most 15 digits in all.
# Spaces, dots, dashes and brackets people type are dropped before the check.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SEPARATORS = re.compile(r"[\s.()\-]")
KIND = "phone_number"


class PhoneNumberIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    phone_number: str
    user: int | None = None  # Argus echoes it; it is always the caller


def normalised_phone_number(raw: str) -> str:
    """The number in E.164 (``+4790000000``), or ValueError saying what a valid one looks like."""
    number = _SEPARATORS.sub("", raw)
    if not _E164.fullmatch(number):
        raise ValueError(
            f"{raw!r} is not a phone number in international format: "
            "'+', the country code and the number, 8 to 16 characters (e.g. +4790000000)"
        )
    return number


def _owner(request: Request[Any, Any, Any]) -> tuple[str, int]:
    """The caller's user id ("" for the bootstrap token) and Argus pk."""
    who = principal_of(request)
    if who is None or who.kind == "source":
        raise ApiError(403, "phone numbers belong to people, not source systems", "token")
    return who.user_id, who.pk


def _key(request: Request[Any, Any, Any], user_id: str) -> str:
    return ctx_of(request).keys.argus_records(f"{KIND}:{user_id or 'admin'}")


def _out(rec: dict[str, Any], pk_of_user: int) -> dict[str, Any]:
    return {"pk": rec["pk"], "user": pk_of_user, "phone_number": rec["phone_number"]}


def _load(request: Request[Any, Any, Any], pk: int) -> tuple[dict[str, Any], int]:
    """The caller's number ``pk``; 404 for an unknown pk and for another user's."""
    user_id, user_pk = _owner(request)
    raw = ctx_of(request).redis.hget(_key(request, user_id), str(pk))
    if raw is None:
        raise ApiError(404, f"phone number {pk} not found", "pk")
    found: dict[str, Any] = msgspec.json.decode(raw)
    return found, user_pk


def _number(body: bytes) -> str:
    data = plumbing.decode(body, PhoneNumberIn)
    try:
        return normalised_phone_number(data.phone_number)
    except ValueError as exc:
        raise ApiError(400, str(exc), "phone_number") from None


def _store(request: Request[Any, Any, Any], rec: dict[str, Any]) -> None:
    user_id, _ = _owner(request)
    mine = _all(request)
    if any(o["phone_number"] == rec["phone_number"] and o["pk"] != rec["pk"] for o in mine):
        raise ApiError(
            400, f"you already have the phone number {rec['phone_number']}", "phone_number"
        )
    ctx_of(request).redis.hset(_key(request, user_id), str(rec["pk"]), msgspec.json.encode(rec))


def _all(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    user_id, _ = _owner(request)
    raw = ctx_of(request).redis.hgetall(_key(request, user_id))
    return sorted((msgspec.json.decode(v) for v in raw.values()), key=lambda r: r["pk"])


OWN = {"role": "viewer"}  # every person manages their own (the handlers see to it)


@get("/auth/phone-number/", sync_to_thread=True, opt=OWN)
def list_phone_numbers(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """The caller's phone numbers."""
    _, user_pk = _owner(request)
    return [_out(r, user_pk) for r in _all(request)]


@post("/auth/phone-number/", status_code=HTTP_201_CREATED, sync_to_thread=True, opt=OWN)
def create_phone_number(request: Request[Any, Any, Any], body: RawBody) -> dict[str, Any]:
    """``{phone_number}`` in international format; 400 says what a valid one looks like."""
    _, user_pk = _owner(request)
    number = _number(body)
    ctx = ctx_of(request)
    rec = {"pk": int(ctx.redis.incr(ctx.keys.argus_record_seq(KIND))), "phone_number": number}
    _store(request, rec)
    out = _out(rec, user_pk)
    note_change(request, target=f"phone_number:{rec['pk']}", after=out)
    return out


@get("/auth/phone-number/{pk:int}/", sync_to_thread=True, opt=OWN)
def get_phone_number(request: Request[Any, Any, Any], pk: FromPath[int]) -> dict[str, Any]:
    rec, user_pk = _load(request, pk)
    return _out(rec, user_pk)


def _change(request: Request[Any, Any, Any], pk: int, body: bytes) -> dict[str, Any]:
    rec, user_pk = _load(request, pk)
    before = _out(rec, user_pk)
    rec["phone_number"] = _number(body)
    _store(request, rec)
    out = _out(rec, user_pk)
    note_change(request, target=f"phone_number:{pk}", before=before, after=out)
    return out


@put("/auth/phone-number/{pk:int}/", sync_to_thread=True, opt=OWN)
def put_phone_number(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> dict[str, Any]:
    return _change(request, pk, body)


@patch("/auth/phone-number/{pk:int}/", sync_to_thread=True, opt=OWN)
def patch_phone_number(
    request: Request[Any, Any, Any], pk: FromPath[int], body: RawBody
) -> dict[str, Any]:
    return _change(request, pk, body)


@delete(
    "/auth/phone-number/{pk:int}/", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True, opt=OWN
)
def delete_phone_number(request: Request[Any, Any, Any], pk: FromPath[int]) -> None:
    user_id, _ = _owner(request)
    rec, user_pk = _load(request, pk)
    ctx_of(request).redis.hdel(_key(request, user_id), str(pk))
    note_change(request, target=f"phone_number:{pk}", before=_out(rec, user_pk))


phone_number_handlers = [
    list_phone_numbers,
    create_phone_number,
    get_phone_number,
    put_phone_number,
    patch_phone_number,
    delete_phone_number,
]
