"""An attacker's walk through the security review (docs/security.md) against a running ``tocsin up``.

One stack (API, ingest, processor, notifier, webhook and Slack gateways) on a
fresh namespace; each step is one attack, and each must end in a refusal, a
mask or a bounded time.  Steps that need a clean failed-auth count connect
from their own loopback address (127.0.0.x): the limiter counts per address.
"""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from shared.config import Settings
from tests.faults.conftest import (
    ReceiverServer,
    fault_env,
    free_port,
    start_up,
    stop_up,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SLACK_SECRET = "SLACKPATHSECRET" + uuid.uuid4().hex[:8]
HOOK_SECRET = "hook-" + uuid.uuid4().hex
LIMIT = 30


@dataclass
class Capture:
    """An HTTP receiver that keeps every body; answers ``status`` (with a body that must not leak)."""

    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    status: int = 204
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> Capture:
        cap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with cap.lock:
                    cap.bodies.append((self.path, body))
                reply = b"receiver-internal-detail " + HOOK_SECRET.encode()
                self.send_response(cap.status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.bodies)


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    token: str
    capture: Capture

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """A client whose connections come from ``source`` (its own failed-auth count)."""
        return httpx.Client(
            base_url=self.settings.api_url,
            transport=httpx.HTTPTransport(local_address=source),
            timeout=20,
        )

    def api(self) -> httpx.Client:
        c = self.client("127.0.0.9")
        c.headers.update(self.auth)
        return c


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.conftest import _service_reachable, cleanup_namespace
    from tests.faults.conftest import make_settings

    problem = _service_reachable()
    if problem:
        pytest.skip(problem)
    capture = Capture().start()
    s = make_settings()
    s = msgspec.structs.replace(s, api_listen=f"127.0.0.1:{free_port()}")
    token = "attack-" + uuid.uuid4().hex
    env = fault_env(
        s,
        TOCSIN_API_TOKEN=token,
        TOCSIN_API_LISTEN=s.api_listen,
        TOCSIN_CHECKS_PER_SOURCE="3",
        TOCSIN_RETRY_BASE_S="0.1",
        TOCSIN_DELIVERY_ATTEMPTS="1",
    )
    log = tmp_path_factory.mktemp("attacks") / "up.log"
    up = start_up(env, "ingest,processor,notifier,gateway:webhook,gateway:slack,api", log)
    st = Stack(s, env, token, capture)
    try:
        from shared.keys import Keys
        from shared.store import connect_redis

        r = connect_redis(s)
        installed = Keys(s.namespace).media_installed()

        def ready() -> bool:
            if not (r.hexists(installed, "webhook") and r.hexists(installed, "slack")):
                return False
            try:
                with st.api() as api:
                    return api.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, 60, 0.2), log.read_text(errors="replace")[-3000:]
        yield st
    finally:
        stop_up(up)
        capture.server.shutdown() if capture.server else None
        cleanup_namespace(s)


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


# ----------------------------------------------------------------------------- 1, 2: guessing


def test_rotating_x_forwarded_for_is_still_limited(stack: Stack) -> None:
    with stack.client("127.0.0.2") as c:
        codes = [
            c.get(
                "/media",
                headers={"Authorization": "Bearer guess", "X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(LIMIT + 1)
        ]
    assert set(codes[:LIMIT]) == {401} and codes[LIMIT] == 429, codes


def test_a_forged_victim_address_locks_out_only_the_attacker(stack: Stack) -> None:
    with stack.client("127.0.0.3") as attacker:
        for _ in range(LIMIT):
            forged = {"Authorization": "Bearer guess", "X-Forwarded-For": "127.0.0.4"}
            assert attacker.get("/media", headers=forged).status_code == 401
        assert attacker.get("/media", headers=stack.auth).status_code == 429
    with stack.client("127.0.0.4") as victim:
        assert victim.get("/media", headers=stack.auth).status_code == 200


def test_dashboard_login_guessing_is_limited(stack: Stack) -> None:
    with stack.client("127.0.0.5") as c:

        def attempt(token: str) -> int:
            nonce = LOGIN_CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
            return c.post("/ui/login", data={"token": token, "login_csrf": nonce}).status_code

        assert {attempt(f"guess-{i}") for i in range(LIMIT)} == {401}
        assert attempt(stack.token) == 429


def test_intake_token_guessing_is_limited(stack: Stack) -> None:
    with stack.client("127.0.0.6") as c:
        codes = [
            c.post(f"/sources/alertmanager?token=guess{i}", content=b"{}").status_code
            for i in range(LIMIT + 1)
        ]
    assert codes[LIMIT] == 429, codes


# ----------------------------------------------------------------------------- 3, 10: dashboard


def _login(c: httpx.Client, token: str) -> str:
    nonce = LOGIN_CSRF.search(c.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    r = c.post("/ui/login", data={"token": token, "login_csrf": nonce})
    assert r.status_code == 303, r.text
    return CSRF.search(c.get("/ui/").text).group(1)  # type: ignore[union-attr]


def test_a_huge_duration_answers_in_bounded_time(stack: Stack) -> None:
    with stack.client("127.0.0.7") as c:
        csrf = _login(c, stack.token)
        form = {"csrf": csrf, "entity": "x", "check": "y", "duration": " " * 9_999 + "x"}
        r, took = _timed(lambda: c.post("/ui/check/ack", data=form))
        assert r.status_code in (404, 422) and took < 2.0, (r.status_code, took)
        assert c.get("/health").status_code == 200


def test_logout_revokes_a_stolen_cookie(stack: Stack) -> None:
    with stack.client("127.0.0.8") as victim, stack.client("127.0.0.8") as thief:
        csrf = _login(victim, stack.token)
        thief.cookies.set("tocsin_session", victim.cookies["tocsin_session"], path="/ui")
        assert thief.get("/ui/").status_code == 200
        assert victim.post("/ui/logout", data={"csrf": csrf}).status_code == 303
        r = thief.get("/ui/")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


# ----------------------------------------------------------------------------- 5, 7, 9: secrets, Slack


def _event(api: httpx.Client, entity: str, check: str, state: str, summary: str = "") -> None:
    body = {"entity": entity, "check": check, "state": state, "summary": summary}
    r = api.post("/events", json={**body, "initial_failure_delay": 0})
    assert r.status_code == 202, r.text


def _cli(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout + done.stderr


def _dead_show(stack: Stack) -> str:
    """Every dead letter as `tocsin dead show` prints it."""
    listed = json.loads(_cli(stack, "dead", "list", "--json") or "[]")
    ids = [d["id"] for d in listed]
    return _cli(stack, "dead", "show", *ids) if ids else ""


def _given_up(api: httpx.Client, entity: str, check: str) -> bool:
    """A delivery of the check was refused for good or ran out of attempts (dead-lettered)."""
    items = api.get("/deliveries", params={"entity": entity, "check": check}).json()["items"]
    return any(i["outcome"] in ("failed", "dead") for i in items)


def test_argus_destinations_are_masked(stack: Stack) -> None:
    with stack.api() as api:
        dests = "/api/v2/notificationprofiles/destinations/"
        body = {
            "media": "webhook",
            "settings": {"url": stack.capture.url("/d"), "secret": HOOK_SECRET},
        }
        made = api.post(dests, json=body)
        assert made.status_code == 201, made.text
        shown = made.text + api.get(dests).text + api.get("/api/v2/notificationprofiles/").text
    assert HOOK_SECRET not in shown and '"secret":"***"' in shown.replace(" ", "")


def test_slack_text_is_escaped_and_dead_letters_mask_the_webhook_path(stack: Stack) -> None:
    with stack.api() as api:
        contact = api.post("/contacts", json={"name": "slack-victim"}).json()
        slack_url = stack.capture.url(f"/services/T0/B0/{SLACK_SECRET}")
        m = api.post(
            "/media",
            json={
                "contact_id": contact["id"],
                "type": "slack",
                "address": slack_url,
                "interval": 0,
            },
        )
        assert m.status_code == 201, m.text
        route = {"media": ["slack"]}
        rule = {"contact_id": contact["id"], "critical": route, "entities": ["chat"]}
        assert api.post("/rules", json=rule).status_code == 201
        _event(api, "chat", "inject", "critical", "<!channel> & <https://evil.example|click>")

        def slack_body() -> bytes | None:
            found = [b for p, b in stack.capture.snapshot() if SLACK_SECRET in p]
            return found[0] if found else None

        assert wait_until(lambda: slack_body() is not None, 60)
        texts = json.dumps(json.loads(slack_body() or b"{}"))
        assert "<!channel>" not in texts and "&lt;!channel&gt;" in texts
        # Refused for good: the dead letter carries the medium; `dead show` masks its path.
        stack.capture.status = 400
        try:
            _event(api, "chat", "inject2", "critical", "second")
            # Polling /deliveries is cheap; `tocsin dead` (two CLI processes) runs once the
            # delivery is given up.
            assert wait_until(lambda: _given_up(api, "chat", "inject2"), 60, 0.2)
            assert wait_until(lambda: "inject2" in _dead_show(stack), 60, 0.5)
            shown = _dead_show(stack)
            deliveries = api.get("/deliveries").text
        finally:
            stack.capture.status = 204
    assert SLACK_SECRET not in shown and SLACK_SECRET not in deliveries
    assert "receiver-internal-detail" not in deliveries, "a failed delivery's body was stored"


# ----------------------------------------------------------------------------- 6: SSRF


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("http://100.100.100.200/latest/meta-data", id="shared address space"),
        pytest.param("http://[2002:a9fe:a9fe::1]/latest", id="6to4 of 169.254.169.254"),
    ],
)
def test_non_global_destinations_are_refused(stack: Stack, address: str) -> None:
    entity = "ssrf-" + uuid.uuid4().hex[:6]
    with stack.api() as api:
        contact = api.post("/contacts", json={"name": entity}).json()
        medium = {"contact_id": contact["id"], "type": "webhook", "address": address, "interval": 0}
        assert api.post("/media", json=medium).status_code == 201
        rule = {
            "contact_id": contact["id"],
            "critical": {"media": ["webhook"]},
            "entities": [entity],
        }
        assert api.post("/rules", json=rule).status_code == 201
        _event(api, entity, "meta", "critical")

        def refused() -> list[dict[str, Any]]:
            items = api.get("/deliveries", params={"entity": entity}).json()["items"]
            return [i for i in items if i["outcome"] in ("failed", "dead")]

        assert wait_until(lambda: bool(refused()), 60, 0.3)
        assert "not a globally routable" in refused()[0]["error"]


# ----------------------------------------------------------------------------- 8: identity


def test_a_colon_cannot_resolve_another_check(stack: Stack) -> None:
    with stack.api() as api:
        _event(api, "web:prod", "disk", "critical", "full")

        def state(entity: str, check: str) -> str | None:
            r = api.get(f"/checks/{entity}/{check}")
            return r.json()["state"] if r.status_code == 200 else None

        assert wait_until(lambda: state("web:prod", "disk") == "critical", 30)
        _event(api, "web", "prod:disk", "ok")
        assert wait_until(lambda: state("web", "prod:disk") == "ok", 30)
        assert state("web:prod", "disk") == "critical"


# ----------------------------------------------------------------------------- Also: growth


def test_a_source_token_cannot_grow_checks_without_bound(stack: Stack) -> None:
    mapping = json.loads(
        (Path(__file__).parent.parent / "data" / "sources" / "cron_mapping.json").read_bytes()
    )
    with stack.api() as api:
        made = api.post("/sources", json={"name": "greedy", "mapping": mapping})
        assert made.status_code == 201, made.text
        url = f"/sources/greedy/events?token={made.json()['token']}"
        codes = []
        for i in range(5):
            job = {"host": "h", "job": f"j{i}", "exit_code": 0, "output": "", "finished_at": 1}
            codes.append(api.post(url, content=json.dumps(job).encode()).status_code)
        assert codes == [202, 202, 202, 422, 422], codes
        metrics = api.get("/metrics").text
    assert 'tocsin_api_source_check_cap_refusals_total{kind="declared"} 2.0' in metrics
