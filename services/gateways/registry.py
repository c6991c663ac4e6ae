"""Medium types Tocsin can deliver to: settings schema, address rule and sender for each.

The API calls :func:`validate_medium_settings` when a medium is created or
changed, so a typo fails at creation time with the field named, not at 3 am
when the page is sent.  :func:`settings_json_schema` documents each type's
settings for clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from services.gateways import email, pagerduty, slack, sms, webhook
from services.gateways.destinations import (
    check_e164,
    check_email,
    check_http_url,
    check_routing_key,
)
from services.gateways.runner import RequestBuilder, Sender


class MediumSettingsError(ValueError):
    """A medium's address or settings are invalid; ``field`` names what (``address``, ``settings.x``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class MediumSpec:
    """One medium type: its settings Struct, its address rule and its sender."""

    name: str
    settings_type: type[msgspec.Struct]
    check_address: Callable[[str], str | None]
    send: Sender
    address_hint: str
    # HTTP media: the request for a delivery, sent many at once by the runner.
    request: RequestBuilder | None = None


MEDIA: dict[str, MediumSpec] = {
    "email": MediumSpec("email", email.EmailSettings, check_email, email.send, "an email address"),
    "webhook": MediumSpec(
        "webhook",
        webhook.WebhookSettings,
        check_http_url,
        webhook.send,
        "an http(s) URL",
        webhook.request,
    ),
    "slack": MediumSpec(
        "slack",
        slack.SlackSettings,
        check_http_url,
        slack.send,
        "a Slack incoming-webhook URL",
        slack.request,
    ),
    "pagerduty": MediumSpec(
        "pagerduty",
        pagerduty.PagerDutySettings,
        check_routing_key,
        pagerduty.send,
        "a PagerDuty routing key",
        pagerduty.request,
    ),
    "sms": MediumSpec(
        "sms", sms.SmsSettings, check_e164, sms.send, "an E.164 phone number", sms.request
    ),
}


def spec(medium_type: str) -> MediumSpec:
    """The spec of ``medium_type``; :class:`MediumSettingsError` (field ``type``) if unknown."""
    found = MEDIA.get(medium_type)
    if found is None:
        raise MediumSettingsError(
            f"unknown medium type {medium_type!r} (known: {', '.join(MEDIA)})", field="type"
        )
    return found


def validate_medium_settings(medium_type: str, address: str, settings: Mapping[str, Any]) -> None:
    """Raise :class:`MediumSettingsError` naming the field unless address and settings are valid."""
    s = spec(medium_type)
    problem = s.check_address(address)
    if problem:
        raise MediumSettingsError(f"address: {problem}", field="address")
    try:
        msgspec.convert(dict(settings), s.settings_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        name = ""
        if "`$." in text:
            name = text.rsplit("`$.", 1)[1].rstrip("`").split(".")[0].split("[")[0]
        elif "unknown field" in text and "`" in text:
            name = text.split("`")[1]
        field = f"settings.{name}" if name else "settings"
        raise MediumSettingsError(f"{field}: {text}", field=field) from None


def settings_json_schema(medium_type: str) -> dict[str, Any]:
    """JSON Schema of the settings of ``medium_type`` (for API docs and clients)."""
    schema: dict[str, Any] = msgspec.json.schema(spec(medium_type).settings_type)
    return schema
