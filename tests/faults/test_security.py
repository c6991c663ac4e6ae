"""No way in: failed-auth limiting, secrets never leak, destinations denied by default, TLS URLs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import msgspec
import pika
import pytest

from services.api.auth import FailedAuth
from shared.amqp import Names
from shared.config import Settings
from shared.destinations import Allowlist, DestinationDenied, check_destination
from tests.faults.conftest import (
    CountingReceiver,
    fault_env,
    free_port,
    queue_depths,
    start_up,
    stop_up,
    wait_until,
)
from tests.faults.test_crash import wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_failed_auth_window_locks_out_and_ages_out() -> None:
    f = FailedAuth(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert not f.locked("10.0.0.1", t)
        f.record("10.0.0.1", t)
    assert f.locked("10.0.0.1", 3.0) and not f.locked("10.0.0.2", 3.0)
    assert not f.locked("10.0.0.1", 61.0)  # the first failure aged out


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:8080/x", id="loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data", id="cloud-metadata"),
        pytest.param("http://[::1]/x", id="ipv6-loopback"),
        pytest.param("http://10.1.2.3/x", id="private"),
        pytest.param("http://metadata.google.internal/x", id="metadata-name"),
    ],
)
def test_destinations_are_denied_by_default_and_allowed_only_when_listed(url: str) -> None:
    with pytest.raises(DestinationDenied):
        check_destination(url, Allowlist.parse(()))
    if "metadata" not in url and "169.254" not in url:
        check_destination(url, Allowlist.parse(("127.0.0.0/8", "::1/128", "10.0.0.0/8")))


def test_tls_urls_are_understood_by_the_clients() -> None:
    """``rediss://`` and ``amqps://`` (with TLS options in the query) parse into TLS clients."""
    from shared.store import connect_redis

    r = connect_redis(
        Settings(redis_url="rediss://user:pw@redis.example:6380/0?ssl_cert_reqs=required")
    )
    assert r.connection_pool.connection_class.__name__ == "SSLConnection"
    from urllib.parse import quote

    opts = quote(
        str({"ca_certs": "/etc/ssl/certs/ca-certificates.crt", "server_hostname": "mq.example"})
    )
    p = pika.URLParameters(f"amqps://u:pw@mq.example:5671/tocsin?ssl_options={opts}")
    assert p.ssl_options is not None and p.port == 5671 and p.virtual_host == "tocsin"


def test_secrets_never_appear_in_logs_metrics_errors_or_api_responses(
    shared_settings: Settings, receiver: CountingReceiver, tmp_path: Path
) -> None:
    secrets = {
        "api token": "tok-" + uuid.uuid4().hex,
        "smtp password": "smtp-" + uuid.uuid4().hex,
        "webhook secret": "hook-" + uuid.uuid4().hex,
    }
    port = free_port()
    s = msgspec.structs.replace(shared_settings, api_listen=f"127.0.0.1:{port}")
    env = fault_env(
        s,
        TOCSIN_API_TOKEN=secrets["api token"],
        TOCSIN_SMTP_PASSWORD=secrets["smtp password"],
        TOCSIN_SMTP_USER="alerts",
        TOCSIN_API_LISTEN=s.api_listen,
        TOCSIN_LOG_LEVEL="DEBUG",
    )
    log = tmp_path / "up.log"
    up = start_up(env, "ingest,processor,notifier,gateway:webhook,gateway:email,api", log)
    seen: list[str] = []
    auth = {"Authorization": f"Bearer {secrets['api token']}"}
    try:
        wait_ready(s, up.pid)
        api = httpx.Client(base_url=s.api_url, headers=auth, timeout=10)
        assert wait_until(lambda: _ok(api), 30)
        c = api.post("/contacts", json={"name": "sec"}).json()
        m = api.post(
            "/media",
            json={
                "contact_id": c["id"],
                "type": "webhook",
                "address": receiver.url,
                "interval": 0,
                "settings": {"secret": secrets["webhook secret"]},
            },
        )
        assert m.status_code == 201, m.text
        seen.append(m.text)
        route = {"media": ["webhook"]}
        api.post("/rules", json={"contact_id": c["id"], "critical": route})
        receiver.status = (
            400  # refused for good: the delivery (with its medium settings) is dead-lettered
        )
        api.post(
            "/events",
            json={
                "entity": "web1",
                "check": "sec",
                "state": "critical",
                "initial_failure_delay": 0,
            },
        )
        # The dead queue's depth is a cheap poll; ``tocsin dead list`` (a CLI process) runs
        # once it is non-empty.
        dead_q = Names(s.namespace).dead
        assert wait_until(lambda: queue_depths(s).get(dead_q, 0) > 0, 30)
        assert wait_until(lambda: b"hook" in _dead(env), 30)
        for path in ("/media", f"/media/{m.json()['id']}", "/deliveries", "/metrics", "/health"):
            seen.append(api.get(path).text)
        wrong = httpx.get(
            f"{s.api_url}/media",
            headers={"Authorization": "Bearer " + secrets["api token"][:-1] + "x"},
        )
        assert wrong.status_code == 401
        seen.append(wrong.text)
        listed = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "dead", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ids = [d["id"] for d in json.loads(listed.stdout)]
        shown = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "dead", "show", *ids],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        seen.append(shown.stdout + shown.stderr)
        # Guessing tokens is throttled: after the limit, even a right token waits (429).
        codes = [
            httpx.get(f"{s.api_url}/media", headers={"Authorization": "Bearer guess"}).status_code
            for _ in range(31)
        ]
        assert codes[-1] == 429 and set(codes[:29]) == {401}, codes
    finally:
        stop_up(up)
    seen.append(log.read_text(errors="replace"))
    text = "\n".join(seen)
    assert "sec" in text and len(text) > 1000
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"leaked: {leaked}"


def _ok(api: httpx.Client) -> bool:
    try:
        return api.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _dead(env: dict[str, str]) -> bytes:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "dead", "list"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    return out.stdout
