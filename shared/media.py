"""Medium types: each one's settings schema and address rule, checked when a medium is saved.

The API validates a medium when it is created or changed, so a typo fails at
creation time with the field named, not at 3 am when the page is sent; the
gateways read the same settings when they deliver.  Both sides need these
definitions, so they live here rather than in either service.  How each type
sends is the gateways' business (``services/gateways/registry.py``).

:func:`destination_warning` asks, at save time, the question the gateways ask
before every HTTP delivery (:func:`shared.destinations.check_destination`):
would a webhook or Slack URL be refused as a private or metadata address?  The
medium is still saved, because the API may run with another allow-list or
resolver than the gateways, but the person creating it learns now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from shared.config import Settings
from shared.destinations import (
    Allowlist,
    DestinationDenied,
    check_destination,
    check_e164,
    check_email,
    check_http_url,
    check_routing_key,
)

_NUMBER = r"^[0-9]+(\.[0-9]+)?$"


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Medium settings every type accepts: its own limit instead of the type's default."""

    rate_per_s: Annotated[str, msgspec.Meta(pattern=_NUMBER)] | None = None
    rate_burst: Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]*$")] | None = None


class EmailSettings(RateLimitSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional: ``subject_prefix`` goes in front of the subject (e.g. ``[prod]``)."""

    subject_prefix: str | None = None


class WebhookSettings(RateLimitSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-medium settings: ``secret`` signs the body (HMAC-SHA256)."""

    secret: str | None = None


class SlackSettings(RateLimitSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional overrides of the incoming webhook's defaults."""

    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None


class PagerDutySettings(RateLimitSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional: ``source`` overrides payload.source (default: the entity)."""

    source: str | None = None


class SmsSettings(RateLimitSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """No per-medium settings yet; unknown ones are refused so typos show."""


class MediumSettingsError(ValueError):
    """A medium's address or settings are invalid; ``field`` names what (``address``, ``settings.x``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class MediumType:
    """One medium type: its settings Struct and its address rule (with a hint for people)."""

    name: str
    settings_type: type[msgspec.Struct]
    check_address: Callable[[str], str | None]
    address_hint: str


TYPES: dict[str, MediumType] = {
    "email": MediumType("email", EmailSettings, check_email, "an email address"),
    "webhook": MediumType("webhook", WebhookSettings, check_http_url, "an http(s) URL"),
    "slack": MediumType("slack", SlackSettings, check_http_url, "a Slack incoming-webhook URL"),
    "pagerduty": MediumType(
        "pagerduty", PagerDutySettings, check_routing_key, "a PagerDuty routing key"
    ),
    "sms": MediumType("sms", SmsSettings, check_e164, "an E.164 phone number"),
}

# Media whose address is the URL the gateway posts to (sms, pagerduty and email
# post to a provider configured by environment variables, not to the address).
URL_MEDIA = frozenset({"webhook", "slack"})


def medium_type(name: str) -> MediumType:
    """The medium type ``name``; :class:`MediumSettingsError` (field ``type``) if unknown."""
    found = TYPES.get(name)
    if found is None:
        raise MediumSettingsError(
            f"unknown medium type {name!r} (known: {', '.join(TYPES)})", field="type"
        )
    return found


def validate_medium_settings(
    medium_type_name: str, address: str, settings: Mapping[str, Any]
) -> None:
    """Raise :class:`MediumSettingsError` naming the field unless address and settings are valid."""
    kind = medium_type(medium_type_name)
    problem = kind.check_address(address)
    if problem:
        raise MediumSettingsError(f"address: {problem}", field="address")
    try:
        msgspec.convert(dict(settings), kind.settings_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        name = ""
        if "`$." in text:
            name = text.rsplit("`$.", 1)[1].rstrip("`").split(".")[0].split("[")[0]
        elif "unknown field" in text and "`" in text:
            name = text.split("`")[1]
        field = f"settings.{name}" if name else "settings"
        raise MediumSettingsError(f"{field}: {text}", field=field) from None


def settings_json_schema(medium_type_name: str) -> dict[str, Any]:
    """JSON Schema of the settings of a medium type (for API docs and clients)."""
    schema: dict[str, Any] = msgspec.json.schema(medium_type(medium_type_name).settings_type)
    return schema


def destination_warning(settings: Settings) -> Callable[[str, str], str | None]:
    """A check of (medium type, address) -> a warning, or None when deliveries may go there."""
    allow = Allowlist.parse(settings.destination_allow)

    def check(medium_type_name: str, address: str) -> str | None:
        if medium_type_name not in URL_MEDIA:
            return None
        try:
            check_destination(address, allow)
        except DestinationDenied as exc:
            return (
                f"{exc}; the {medium_type_name} gateway will refuse to deliver here and "
                "dead-letter every page (unless its TOCSIN_DESTINATION_ALLOW lists the address)"
            )
        except OSError as exc:
            return f"cannot resolve the address now ({exc}); deliveries fail until it resolves"
        return None

    return check
