"""The admin API token: from ``TOCSIN_API_TOKEN``, else the token file ``tocsin up`` wrote."""

from __future__ import annotations

import os
import secrets

from shared.config import Settings


def read_token(settings: Settings) -> str | None:
    """The admin token from the environment, else from the token file, else None."""
    if settings.api_token:
        return settings.api_token
    try:
        token = settings.token_path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None
    return token or None


def ensure_token(settings: Settings) -> tuple[str, bool]:
    """Return the admin token, creating and storing one (mode 0600) if there is none.

    The second value says whether it was created now, so the caller prints it once.
    """
    existing = read_token(settings)
    if existing:
        return existing, False
    token = secrets.token_urlsafe(32)
    path = settings.token_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True
