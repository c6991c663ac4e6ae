"""``POST /config/validate``: check a whole configuration file before any of it is written.

``tocsin import`` sends the file (contacts with their media and rules nested)
here first and writes nothing unless every item passes, so a bad medium in the
third contact no longer leaves the first two created.  Each item goes through
exactly what ``POST /contacts``, ``/media`` and ``/rules`` would do (the same
schemas, timezone, installed media types, the gateway's address and settings
check, the destination allow-list, rule media against the contact's media), so
``--dry-run`` finds what the real import would trip over.

Redacted values from ``tocsin export`` (``***``) stand for what is stored: a
medium given with the ``id`` of an existing medium keeps its stored secret
settings and PagerDuty key.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from services.api.context import ApiContext, ctx_of
from services.api.errors import split_field
from services.api.schemas import ContactIn, MediumIn, RuleIn
from shared.directory import ValidationFailed, validate_rule, validate_timezone
from shared.models import Contact, Medium, Rule

REDACTED = "***"
PLACEHOLDER_ID = "validate"


class ConfigFileIn(msgspec.Struct, forbid_unknown_fields=True):
    contacts: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ItemError(msgspec.Struct):
    """One problem: ``contact`` is the index in ``contacts``; ``path`` is inside that contact."""

    contact: int
    path: str
    error: str
    field: str | None = None


class ConfigReport(msgspec.Struct):
    ok: bool
    errors: list[ItemError]
    # Accepted, but worth saying: a medium address the gateway would refuse to deliver to.
    warnings: list[ItemError] = msgspec.field(default_factory=list)


CONTACT_KEYS = ("name", "email", "timezone", "tags")
MEDIUM_KEYS = ("type", "address", "interval", "rollup_threshold", "settings")
RULE_KEYS = ("entities", "tags", "time_restrictions", "critical", "warning", "unknown")


def _problem(exc: Exception) -> tuple[str, str | None]:
    if isinstance(exc, ValidationFailed):
        return exc.message, exc.field
    if isinstance(exc, msgspec.ValidationError):
        return split_field(str(exc))
    return str(exc), getattr(exc, "field", None)


def _with_stored_secrets(ctx: ApiContext, item: dict[str, Any]) -> dict[str, Any]:
    stored = ctx.directory.get_medium(str(item["id"])) if item.get("id") else None
    wanted = {k: item[k] for k in MEDIUM_KEYS if k in item}
    if stored is None:
        return wanted
    if str(wanted.get("address", "")).startswith(REDACTED):
        wanted["address"] = stored.address
    settings = wanted.get("settings")
    if isinstance(settings, dict):
        wanted["settings"] = {
            k: (stored.settings.get(k, v) if v == REDACTED else v) for k, v in settings.items()
        }
    return wanted


def _contact_errors(
    ctx: ApiContext, index: int, c: dict[str, Any], warnings: list[ItemError]
) -> list[ItemError]:
    errors: list[ItemError] = []

    def check(path: str, fn: Any) -> Any:
        try:
            return fn()
        except (ValueError, msgspec.ValidationError) as exc:
            message, field = _problem(exc)
            errors.append(ItemError(contact=index, path=path, error=message, field=field))
            return None

    def contact() -> Contact:
        body = msgspec.convert({k: c[k] for k in CONTACT_KEYS if k in c}, ContactIn)
        validate_timezone(body.timezone)
        return Contact(
            id=PLACEHOLDER_ID, **msgspec.structs.asdict(body) | {"tags": tuple(body.tags)}
        )

    check("", contact)
    existing = None
    if c.get("id"):
        existing = ctx.directory.get_contact(str(c["id"]))
    if existing is None and c.get("name"):
        existing = next((x for x in ctx.directory.list_contacts() if x.name == c["name"]), None)
    media_types = {m.type for m in ctx.directory.contact_media(existing.id)} if existing else set()
    installed = ctx.installed_media()

    for i, m in enumerate(c.get("media") or []):

        def medium(m: dict[str, Any] = m) -> Medium:
            body = msgspec.convert(
                {"contact_id": PLACEHOLDER_ID, **_with_stored_secrets(ctx, m)}, MediumIn
            )
            made = Medium(id=PLACEHOLDER_ID, **msgspec.structs.asdict(body))
            ctx.check_medium(made, installed)
            return made

        if (made := check(f"media[{i}]", medium)) is not None:
            media_types.add(made.type)
            warning = ctx.destination_warning(made.type, made.address)
            if warning:
                warnings.append(
                    ItemError(contact=index, path=f"media[{i}]", error=warning, field="address")
                )
        elif isinstance(m, dict) and isinstance(m.get("type"), str):
            media_types.add(m["type"])  # reported already; do not blame the rules for it too

    for i, r in enumerate(c.get("rules") or []):

        def rule(r: dict[str, Any] = r) -> None:
            body = msgspec.convert(
                {"contact_id": PLACEHOLDER_ID, **{k: r[k] for k in RULE_KEYS if k in r}}, RuleIn
            )
            made = msgspec.convert({"id": PLACEHOLDER_ID, **msgspec.structs.asdict(body)}, Rule)
            validate_rule(made, media_types)

        check(f"rules[{i}]", rule)
    return errors


@post(
    "/config/validate",
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    opt={"role": "viewer", "audit": False},
)
def validate_config(request: Request[Any, Any, Any], data: JSONBody[ConfigFileIn]) -> ConfigReport:
    """Every problem of a configuration file, each naming its contact and item; writes nothing."""
    ctx = ctx_of(request)
    errors: list[ItemError] = []
    warnings: list[ItemError] = []
    for index, c in enumerate(data.contacts):
        errors.extend(_contact_errors(ctx, index, c, warnings))
    return ConfigReport(ok=not errors, errors=errors, warnings=warnings)
