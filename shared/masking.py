"""Masking secrets for display: one set of rules for the API, dashboard, CLI and delivery log.

Medium settings whose name looks like a credential (``secret``, ``password``,
``token``, ``..._key``, ``authorization``) are shown as ``***``.  A medium's
address is a secret for some types: a PagerDuty routing key keeps only its
last 4 characters.  Where an address is only displayed, never edited back
(the delivery log, the dashboard, ``tocsin dead show``), webhook and Slack
URLs also lose their path and query, which for Slack *is* the credential
(:func:`mask_url`).

The admin API's ``/media`` and the Argus destinations return the editable
form (:func:`mask_medium`): webhook URLs stay readable there so that a
config export can be imported again, and a masked value sent back unchanged
(``PUT`` of what a ``GET`` returned) keeps the stored secret
(:func:`restore_masked`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MASK = "***"
SECRET_WORDS = ("secret", "password", "token", "key", "authorization")
URL_MEDIA = ("webhook", "slack")


def is_secret_name(name: str) -> bool:
    """Whether a setting or field called ``name`` holds a credential."""
    lowered = name.lower()
    return any(w in lowered for w in SECRET_WORDS)


def mask_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every credential-looking value replaced by ``***``."""
    return {
        k: (MASK if is_secret_name(k) and v not in (None, "") else v) for k, v in settings.items()
    }


def mask_key(address: str) -> str:
    """A PagerDuty routing key as shown: ``***`` and its last 4 characters."""
    return MASK + address[-4:] if len(address) > 8 else MASK


def mask_address(medium_type: str, address: str) -> str:
    """The editable form of an address: routing keys masked, everything else as is."""
    if medium_type == "pagerduty":
        return mask_key(address)
    return address


def mask_medium(
    medium_type: str, address: str, settings: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Address and settings of a medium (or an Argus destination) as the API returns them."""
    return mask_address(medium_type, address), mask_settings(settings)


def mask_url(medium_type: str, address: str) -> str:
    """The display-only form: URLs keep scheme, host and port; routing keys their first 4."""
    if medium_type in URL_MEDIA or address.startswith(("http://", "https://")):
        try:
            parts = urlsplit(address)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return MASK
        rest = "/" + MASK if (parts.path not in ("", "/") or parts.query) else parts.path
        return f"{parts.scheme}://{host}{port}{rest}"
    if medium_type == "pagerduty":
        return f"{address[:4]}{MASK}" if len(address) > 4 else MASK
    return address


def mask_document(value: Any) -> Any:
    """A copy of a decoded JSON document with secrets masked, at any depth.

    Credential-looking fields become ``***``; a medium (an object with
    ``type`` and ``address``) has its address shown by :func:`mask_url`.
    """
    if isinstance(value, dict):
        out = {
            k: (MASK if is_secret_name(str(k)) and v not in (None, "") else mask_document(v))
            for k, v in value.items()
        }
        kind, address = value.get("type"), value.get("address")
        if isinstance(kind, str) and isinstance(address, str):
            out["address"] = mask_url(kind, address)
        return out
    if isinstance(value, list):
        return [mask_document(v) for v in value]
    return value


def restore_masked(
    new: Mapping[str, Any], stored: Mapping[str, Any], medium_type: str, address_key: str
) -> dict[str, Any]:
    """Settings to store: a value sent back exactly as it was shown keeps the stored secret.

    Clients read, edit and write back whole objects; without this a ``***``
    would replace the real secret.
    """
    shown = mask_settings(stored)
    if address_key in stored:
        shown[address_key] = mask_address(medium_type, str(stored[address_key]))
    return {
        k: (stored[k] if k in stored and v == shown.get(k) and v != stored[k] else v)
        for k, v in new.items()
    }
