"""Who is acting: a Slack user, a PagerDuty user or a phone number, as a Tocsin contact.

A contact is linked to an outside identity by a setting on one of its media
(``slack_user_id``, ``pagerduty_user_id``) or, for SMS, by an ``sms`` medium
with that number; see docs/acknowledge.md.
"""

from __future__ import annotations

from shared.directory import Directory
from shared.models import Contact, Medium


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
