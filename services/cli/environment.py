"""The CLI's settings and API token, read from the environment, or a clear error and exit 2.

Commands that talk to Redis, RabbitMQ or the API start here, so a bad
variable is one red line instead of a traceback.
"""

from __future__ import annotations

import typer

from services.cli.output import err
from shared.config import Settings
from shared.errors import ConfigError


def settings_or_exit() -> Settings:
    """``Settings.from_env()``, or exit 2 saying which variable is wrong."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def token_or_exit(settings: Settings) -> str:
    """The API token (``TOCSIN_API_TOKEN`` or the file ``tocsin up`` wrote), or exit 2."""
    from shared.tokens import read_token

    token = read_token(settings)
    if not token:
        err.print(
            "[red]no API token[/red]: set TOCSIN_API_TOKEN or run `tocsin up` once (it creates one)"
        )
        raise typer.Exit(2)
    return token
