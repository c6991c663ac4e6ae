"""The ``tocsin`` CLI in-process against a real API server (uvicorn in a thread) on real Redis.

Faster than the e2e pipeline (no worker processes) yet end to end for the
command line: argument parsing, the HTTP client, the API's validation and its
error messages.  Tests assert on ``--json`` output, never on wrapped tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from click.testing import Result
from typer.testing import CliRunner

from benchmarks.ports import free_port
from services.api.worker import build_context
from services.cli.main import app
from shared.config import Settings
from tests.api_app import api_app, serving
from tests.conftest import settings_env

TOKEN = "cli-test-token"


@dataclass
class Cli:
    settings: Settings
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env, input=input)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output + result.stderr
        return json.loads(result.stdout)

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.settings.api_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )


@pytest.fixture
def cli(settings: Settings) -> Iterator[Cli]:
    """The CLI pointed at an API on a free port, with webhook and email media installed."""
    port = free_port()
    s = msgspec.structs.replace(settings, api_listen=f"127.0.0.1:{port}", api_token=TOKEN)
    ctx = build_context(s)
    ctx.redis.hset(ctx.keys.media_installed(), mapping={"webhook": "1", "email": "1"})
    try:
        with api_app(ctx) as app, serving(app, port, log_config=None):
            env = settings_env(s) | {
                "TOCSIN_API_LISTEN": s.api_listen,
                "TOCSIN_API_TOKEN": TOKEN,
                "COLUMNS": "200",
            }
            yield Cli(s, env)
    finally:
        ctx.sender.close()
