"""DNS rebinding: the gateway connects to exactly the address its destination guard checked.

A rebinding name answers the guard with an allowed address and the sender's
own lookup, a moment later, with a forbidden one.  Here the guard's resolver
answers 127.0.0.2 (allowed, the "public" receiver) while the system resolver
answers ``localhost`` with 127.0.0.1, where a "private" receiver listens on
the same port: a request that resolved the name again would reach it.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from services.gateways import transport
from services.gateways.core import HttpRequest, SendOutcome
from shared import destinations
from shared.destinations import Allowlist

pytestmark = pytest.mark.integration


class _Receiver:
    def __init__(self, host: str, port: int, status: int) -> None:
        self.hits: list[str] = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.hits.append(self.headers.get("Host", ""))
                body = b"internal detail that must not be kept"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[_Receiver, _Receiver, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = int(s.getsockname()[1])
    public = _Receiver("127.0.0.2", port, 400)
    private = _Receiver("127.0.0.1", port, 204)
    yield public, private, port
    public.stop()
    private.stop()


def test_the_checked_address_is_the_one_connected_to(
    receivers: tuple[_Receiver, _Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    public, private, port = receivers

    def rebinding_dns(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "localhost"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]

    monkeypatch.setattr(destinations.socket, "getaddrinfo", rebinding_dns)
    req = HttpRequest(url=f"http://localhost:{port}/hook", body=b"{}")
    result = transport.perform(req, Allowlist.parse(("127.0.0.2/32",)), timeout_s=5)
    assert private.hits == [], "the request resolved the name again and reached 127.0.0.1"
    assert public.hits == [f"localhost:{port}"]  # the Host header is the URL's own
    # A failure is kept as its status line only, never the receiver's body.
    assert result.outcome is SendOutcome.FAILED and result.error == "HTTP 400"
