"""The CLI's API token: ``TOCSIN_API_TOKEN``, else the personal token ``tocsin login`` stored,
else the bootstrap token file ``tocsin up`` wrote."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shared.config import Settings


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, PermissionError):
        return None


def read_token(settings: Settings) -> str | None:
    """The admin token from the environment, else from the token file, else None."""
    return settings.api_token or _read(settings.token_path)


def cli_token(settings: Settings) -> tuple[str | None, str]:
    """The token the CLI calls with and where it came from (for error messages)."""
    if settings.api_token:
        return settings.api_token, "TOCSIN_API_TOKEN"
    personal = _read(settings.login_path)
    if personal:
        return personal, f"the login file {settings.login_path} (tocsin login)"
    return _read(settings.token_path), f"the token file {settings.token_path} (TOCSIN_TOKEN_FILE)"


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by its owner only (0600, directory 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)


def ensure_token(settings: Settings) -> tuple[str, bool]:
    """Return the admin token, creating and storing one (mode 0600) if there is none.

    The second value says whether it was created now, so the caller prints it once.
    """
    existing = read_token(settings)
    if existing:
        return existing, False
    token = secrets.token_urlsafe(32)
    write_secret(settings.token_path, token)
    return token, True
