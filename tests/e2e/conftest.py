"""A whole pipeline (`tocsin up`) as a subprocess, in its own namespace, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from benchmarks.ports import free_port
from shared.config import Settings
from tests.conftest import AMQP_URL, REDIS_URL, cleanup_namespace

TOKEN = "e2e-" + uuid.uuid4().hex


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.settings.api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def tocsin(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``tocsin ARGS`` run in this process (typer's ``CliRunner``) with the pipeline's
        environment: the same parsing, API calls, output and exit code as :meth:`tocsin`,
        without a new interpreter importing the CLI (0.5-1 s of CPU) per command.  For
        tests of what commands do; :meth:`tocsin` for how the process behaves."""
        from typer.testing import CliRunner

        from services.cli.main import app

        env: dict[str, str | None] = {k: None for k in os.environ if k not in self.env}
        env.update(self.env)
        result = CliRunner().invoke(app, list(args), env=env)
        stderr = result.stderr
        if result.exc_info is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*result.exc_info))  # as python would
        return subprocess.CompletedProcess(
            ["tocsin", *args], result.exit_code, result.stdout, stderr
        )

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


# What a module's pipeline runs unless it sets ``PIPELINE_UP_ARGS``: the workers
# an event crosses to reach a webhook (and the scheduler, for escalations), one
# processor.  Eleven processes starting at once on two shared cores took 20-50 s;
# these six start in about half that.  Modules that need every worker (every
# work queue consumed, other media, the supervisor) set ``PIPELINE_UP_ARGS = ()``.
LEAN_UP_ARGS = (
    "--workers",
    "ingest,processor,notifier,scheduler,gateway:webhook,api",
    "--processors",
    "1",
)


@pytest.fixture(scope="module")
def pipeline(
    services_up: None, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    """``tocsin up`` for one test module; a module may add variables in ``PIPELINE_ENV``
    and choose the workers with ``PIPELINE_UP_ARGS`` (default ``LEAN_UP_ARGS``)."""
    with start_pipeline(
        tmp_path_factory.mktemp("pipeline"),
        getattr(request.module, "PIPELINE_ENV", {}),
        getattr(request.module, "PIPELINE_UP_ARGS", LEAN_UP_ARGS),
    ) as pipe:
        yield pipe


@contextmanager
def start_pipeline(
    tmp: Path, extra_env: Mapping[str, str], up_args: Sequence[str] = ()
) -> Iterator[Pipeline]:
    """``tocsin up [up_args]`` in a fresh namespace with ``extra_env`` on top; stopped and cleaned after."""
    namespace = "e" + uuid.uuid4().hex[:12]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": REDIS_URL,
            "TOCSIN_AMQP_URL": AMQP_URL,
            "TOCSIN_NAMESPACE": namespace,
            "TOCSIN_PARTITIONS": "4",
            "TOCSIN_API_LISTEN": f"127.0.0.1:{free_port()}",
            "TOCSIN_API_TOKEN": TOKEN,
            "TOCSIN_TOKEN_FILE": str(tmp / "token"),
            "TOCSIN_DESTINATION_ALLOW": "127.0.0.0/8",
            "TOCSIN_BATCH_WAIT_MS": "5",
            "TOCSIN_LOG_FORMAT": "json",
            "TOCSIN_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra_env)
    settings = Settings.from_env(env)
    log_path = tmp / "tocsin-up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", "--metrics-port", "0", *up_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    pipe = Pipeline(settings, env, proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"tocsin up exited early:\n{pipe.log_tail()}"
            if _gateways_registered(pipe):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"pipeline not ready in 60 s:\n{pipe.log_tail()}")
        yield pipe
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cleanup_namespace(settings)


def _gateways_registered(pipe: Pipeline) -> bool:
    """Ready = the API answers and the webhook gateway has registered its medium type."""
    try:
        with pipe.api as api:
            if api.get("/health").status_code != 200:
                return False
    except httpx.HTTPError:
        return False
    from shared.keys import Keys
    from shared.store import connect_redis

    r = connect_redis(pipe.settings)  # the pipeline's own Redis (a cluster, in cluster tests)
    return bool(r.hexists(Keys(pipe.settings.namespace).media_installed(), "webhook"))
