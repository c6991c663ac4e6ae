"""Two API processes (``tocsin worker api``) over one Redis behave as one (docs/scaling.md).

A load balancer may send each request of a client to another process: a
dashboard session started on one must hold (and its logout count) on the
other, wrong tokens must count once across both, and an Argus page's
``next`` link must continue on the other process where the first left off.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.api.auth import FAILED_AUTH_LIMIT
from services.api.ui import session
from shared.config import Settings
from tests.integration.cli_api import free_port

pytestmark = pytest.mark.integration

TOKEN = "replicas-" + uuid.uuid4().hex
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _start(settings: Settings, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {
            "TOCSIN_REDIS_URL": settings.redis_url,
            "TOCSIN_AMQP_URL": settings.amqp_url,
            "TOCSIN_NAMESPACE": settings.namespace,
            # The fixture deletes this many partition queues; the API declares the
            # topology with its own count (8 unset), and left p4-p7 behind.
            "TOCSIN_PARTITIONS": str(settings.partitions),
            "TOCSIN_API_LISTEN": f"127.0.0.1:{port}",
            "TOCSIN_API_TOKEN": TOKEN,
            "TOCSIN_METRICS_PORT": "0",
        }
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "worker", "api"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}"


def _ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # waiting for a process to start listening, not standing in for logic
    pytest.fail(f"API at {url} not ready:\n{log.read_text(errors='replace')}")


@pytest.fixture
def apis(settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    """Two API processes on their own ports, as two backends of one load balancer."""
    started = [_start(settings, tmp_path / f"api{i}.log") for i in range(2)]
    try:
        for i, (proc, url) in enumerate(started):
            _ready(proc, url, tmp_path / f"api{i}.log")
        yield [url for _, url in started]
    finally:
        for proc, _ in started:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_wrong_tokens_count_once_across_processes(apis: list[str]) -> None:
    a, b = (httpx.Client(base_url=url, timeout=10) for url in apis)
    wrong = {"Authorization": "Bearer guess"}
    # Half the guesses on each process: each alone stays under the limit.
    codes = [
        (a if i % 2 else b).get("/media", headers=wrong).status_code
        for i in range(FAILED_AUTH_LIMIT)
    ]
    assert set(codes) == {401}
    for api in (a, b):
        r = api.get("/media", headers=ADMIN)  # even the right token: no oracle while locked
        assert r.status_code == 429, r.text
        assert 0 < int(r.headers["retry-after"]) <= 61


def test_a_session_started_on_one_process_holds_and_ends_on_the_other(apis: list[str]) -> None:
    a, b = (httpx.Client(base_url=url, timeout=10) for url in apis)
    nonce = LOGIN_CSRF.search(a.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = a.post("/ui/login", data={"token": TOKEN, "login_csrf": nonce}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.cookies[session.COOKIE]
    b.cookies.set(session.COOKIE, cookie)
    page = b.get("/ui/", follow_redirects=False)
    assert page.status_code == 200
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert b.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    a.cookies.set(session.COOKIE, cookie)
    gone = a.get("/ui/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/login")


def test_argus_pages_continue_on_the_other_process(apis: list[str]) -> None:
    a, b = (httpx.Client(base_url=url, timeout=10) for url in apis)
    src = a.post("/api/v2/incidents/sources/", json={"name": "nav", "type": "nav"}, headers=ADMIN)
    assert src.status_code == 201, src.text
    auth = {"Authorization": f"Token {src.json()['token']}"}
    created = []
    for i in range(5):
        r = (a if i % 2 else b).post(
            "/api/v2/incidents/",
            json={"start_time": f"2026-01-0{i + 1}T10:00:00+00:00", "tags": []},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        created.append(r.json()["pk"])
    whole = a.get("/api/v2/incidents/", params={"page_size": 10}, headers=ADMIN).json()
    seen, page, turn = [], a.get("/api/v2/incidents/", params={"page_size": 2}, headers=ADMIN), 0
    while True:
        body = page.json()
        seen += [inc["pk"] for inc in body["results"]]
        if body["next"] is None:
            break
        turn += 1
        nxt = httpx.URL(body["next"])
        page = (b if turn % 2 else a).get(nxt.raw_path.decode(), headers=ADMIN)
    assert seen == [inc["pk"] for inc in whole["results"]]
    assert sorted(seen) == sorted(created)
