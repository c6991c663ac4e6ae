"""Run the management API under uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar

from services.api.app import create_app
from services.api.auth import proxy_options
from services.api.auth_limit import SharedFailedAuth
from services.api.context import ApiContext
from shared.config import Settings
from shared.errors import ConfigError
from shared.keys import Keys
from shared.media import destination_warning, validate_medium_settings
from shared.sender import Sender
from shared.store import connect_redis, migrate_routing_keys
from shared.telemetry import configure_logging
from shared.tokens import read_token

log = logging.getLogger(__name__)


def build_context(settings: Settings) -> ApiContext:
    """The API's context, with the medium settings and destination checks plugged in."""
    r = connect_redis(settings)
    migrate_routing_keys(r, settings.namespace)  # a namespace from before the routing slot
    return ApiContext(
        settings=settings,
        redis=r,
        sender=Sender(settings, name="tocsin-api"),
        validate_medium_settings=validate_medium_settings,
        destination_warning=destination_warning(settings),
        # Several API processes (docs/scaling.md) count wrong tokens together.
        failed_auth=SharedFailedAuth(r, Keys(settings.namespace)),
    )


def _with_token(settings: Settings) -> Settings:
    token = read_token(settings)
    if not token:
        raise ConfigError(
            "no API token: set TOCSIN_API_TOKEN or run `tocsin up`, which creates one"
        )
    return msgspec.structs.replace(settings, api_token=token)


def app_from_env() -> Litestar:
    """The app of one of ``TOCSIN_API_WORKERS`` uvicorn worker processes (a factory:
    each process builds its own Redis and broker connections from the environment)."""
    settings = _with_token(Settings.from_env())
    configure_logging(settings, "api")
    return create_app(build_context(settings))


def run(settings: Settings) -> None:
    """Serve the API on ``TOCSIN_API_LISTEN`` until SIGTERM/SIGINT.

    With ``TOCSIN_API_WORKERS`` > 1, uvicorn runs that many processes on the
    one listening socket; they share sessions and the wrong-token limit
    through Redis (docs/scaling.md).
    """
    configure_logging(settings, "api")
    settings = _with_token(settings)
    options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        **proxy_options(settings),
    }
    log.info("api listening", extra={"url": settings.api_url, "workers": settings.api_workers})
    if settings.api_workers > 1:
        uvicorn.run(
            "services.api.worker:app_from_env",
            factory=True,
            workers=settings.api_workers,
            **options,
        )
        return
    ctx = build_context(settings)
    uvicorn.run(create_app(ctx), **options)
    ctx.sender.close()
