"""``tocsin demo``: see a notification arrive, end to end, in under a minute.

Starts a webhook receiver on a free loopback port, creates a demo contact,
webhook medium and rule through the API, sends a critical event and then an
ok for a fresh check, and prints the problem and the recovery as the receiver
gets them.
"""

from __future__ import annotations

import http.server
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

DEMO_CONTACT = "Tocsin demo"


class _Server(http.server.ThreadingHTTPServer):
    # The default listen backlog (5) drops SYNs when a gateway opens a burst of
    # connections; each drop costs a 1 s retransmit.
    request_queue_size = 1024


class Receiver:
    """A tiny HTTP server that records every JSON POST it gets."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    received.put(json.loads(body))
                except ValueError:
                    received.put({"raw": body.decode(errors="replace")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = _Server((host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/demo"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.received.get(timeout=left)
            except queue.Empty:
                return None
            if predicate(item):
                return item
        return None


def _api(client: httpx.Client, method: str, path: str, **kw: Any) -> Any:
    r = client.request(method, path, **kw)
    if r.status_code >= 400:
        raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text}")
    return r.json() if r.content else None


def setup_demo_config(client: httpx.Client, webhook_url: str) -> dict[str, str]:
    """(Re)create the demo contact with one webhook medium and a catch-all rule."""
    contacts = _api(client, "GET", "/contacts", params={"limit": 1000})["items"]
    for c in contacts:
        if c["name"] == DEMO_CONTACT:
            _api(client, "DELETE", f"/contacts/{c['id']}")
    contact = _api(client, "POST", "/contacts", json={"name": DEMO_CONTACT, "timezone": "UTC"})
    medium = _api(
        client,
        "POST",
        "/media",
        json={
            "contact_id": contact["id"],
            "type": "webhook",
            "address": webhook_url,
            "interval": 0,
        },
    )
    route = {"media": ["webhook"]}
    rule = _api(
        client,
        "POST",
        "/rules",
        json={"contact_id": contact["id"], "critical": route, "warning": route, "unknown": route},
    )
    return {"contact": contact["id"], "medium": medium["id"], "rule": rule["id"]}


def run_demo(api_url: str, token: str, say: Callable[[str], None], timeout: float = 30.0) -> bool:
    """Run the demo against a running pipeline; True when both notifications arrived."""
    check = f"http-{time.strftime('%H%M%S')}"
    with (
        Receiver() as receiver,
        httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client,
    ):
        ids = setup_demo_config(client, receiver.url)
        say(f"demo contact {ids['contact']} with a webhook medium at {receiver.url}")
        try:
            return _page_and_recover(client, receiver, check, say, timeout)
        finally:
            # The receiver dies with the demo: a contact left pointing at it would
            # catch every later alert, fail to deliver and fill the dead letters.
            _api(client, "DELETE", f"/contacts/{ids['contact']}")
            say(f"removed the demo contact {DEMO_CONTACT!r} (its receiver stops with the demo)")


def _page_and_recover(
    client: httpx.Client,
    receiver: Receiver,
    check: str,
    say: Callable[[str], None],
    timeout: float,
) -> bool:
    """Send a failure then a recovery for ``demo-host:<check>``; True when both arrived."""
    for state, summary in (("critical", "HTTP 503 from /healthz"), ("ok", "HTTP 200 in 35 ms")):
        sent = time.monotonic()
        _api(
            client,
            "POST",
            "/events",
            json={
                "entity": "demo-host",
                "check": check,
                "state": state,
                "summary": summary,
                "initial_failure_delay": 0,
                "tags": ["env=demo"],
            },
        )
        say(f"sent {state} for demo-host:{check}")
        want = "problem" if state != "ok" else "recovery"
        got = receiver.wait_for(
            lambda d, w=want: d.get("type") == w and d.get("check") == check, timeout
        )
        if got is None:
            say(
                f"no {want} notification within {timeout:.0f} s; run `tocsin check` to see where it is stuck"
            )
            return False
        ms = (time.monotonic() - sent) * 1000
        say(
            f"received {got['type'].upper()} for {got['entity']}:{got['check']} "
            f"state={got['state']} summary={got['summary']!r} after {ms:.0f} ms"
        )
    return True
