"""Request count and latency per route template and status, for ``GET /metrics``.

Labels use the route *template* (``/contacts/{cid}``), never the raw path,
so ids in URLs cannot blow up the number of series.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.api.context import ApiContext


def request_metrics(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: observe every HTTP request's duration by method, route and status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the handler raises past every handler

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            ctx: ApiContext = scope["app"].state.ctx
            labels: dict[str, Any] = {
                "method": scope.get("method", "?"),
                "route": scope.get("path_template") or "unmatched",
                "status": str(status),
            }
            ctx.requests.labels(**labels).inc()
            ctx.request_seconds.labels(**labels).observe(time.perf_counter() - started)

    return middleware
