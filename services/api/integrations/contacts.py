"""Who is acting: a Slack user, a PagerDuty user or a phone number, as a Tocsin contact.

A contact is linked to an outside identity by a setting on one of its media
(``slack_user_id``, ``pagerduty_user_id``) or, for SMS, by an ``sms`` medium
with that number; see docs/acknowledge.md.
"""

from __future__ import annotations

import logging

import httpx
import msgspec

from shared.config import Settings
from shared.directory import Directory
from shared.models import Contact, Medium

log = logging.getLogger("tocsin.api.contacts")


def by_medium_setting(directory: Directory, key: str, value: str) -> Contact | None:
    """The contact owning a medium whose setting ``key`` equals ``value`` (first by medium id)."""
    if not value:
        return None
    for medium in sorted(directory.list_media(), key=lambda m: m.id):
        if medium.settings.get(key) == value:
            return directory.get_contact(medium.contact_id)
    return None


def sms_media(directory: Directory, number: str) -> list[Medium]:
    """The ``sms`` media at ``number`` (several contacts may share a phone)."""
    return [m for m in directory.list_media() if m.type == "sms" and m.address == number]


def by_email(directory: Directory, email: str) -> Contact | None:
    """The contact with this email address (case-insensitive), if exactly one has it."""
    wanted = email.strip().lower()
    found = [c for c in directory.list_contacts() if c.email and c.email.lower() == wanted]
    return found[0] if wanted and len(found) == 1 else None


class _Profile(msgspec.Struct):
    email: str = ""


class _SlackUser(msgspec.Struct):
    profile: _Profile = msgspec.field(default_factory=_Profile)


class _UsersInfo(msgspec.Struct):
    ok: bool
    user: _SlackUser | None = None


_USERS_INFO = msgspec.json.Decoder(_UsersInfo)


def slack_email(settings: Settings, user_id: str) -> str | None:
    """The Slack user's email from ``users.info`` (needs a bot token with ``users:read.email``).

    None without a token, or when Slack does not answer with one; a lookup
    failure only means the click is refused as from an unknown user.
    """
    if not settings.slack_bot_token:
        return None
    try:
        reply = httpx.post(
            f"{settings.slack_api_url.rstrip('/')}/users.info",
            data={"user": user_id},
            headers={"Authorization": f"Bearer {settings.slack_bot_token}"},
            timeout=settings.delivery_timeout_s,
        )
        info = _USERS_INFO.decode(reply.content)
    except (httpx.HTTPError, msgspec.DecodeError) as exc:
        log.warning("slack users.info failed", extra={"error": repr(exc)})
        return None
    if not info.ok or info.user is None:
        return None
    return info.user.profile.email or None


def slack_contact(directory: Directory, settings: Settings, user_id: str) -> Contact | None:
    """The contact of a Slack user: ``slack_user_id`` medium setting first, else by email."""
    found = by_medium_setting(directory, "slack_user_id", user_id)
    if found is not None:
        return found
    email = slack_email(settings, user_id)
    return by_email(directory, email) if email else None
