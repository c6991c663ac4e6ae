"""The management API's app for a test, built once per test process.

``create_app`` costs about 0.4 s of CPU (Litestar parses and validates some
330 route handlers), and the API tests build one per test: about a fifth
of the whole suite's CPU went there.  Every part of the app that depends on
its context reads the context from ``app.state`` per request (the guard,
the middleware, every handler), so one app serves any number of contexts,
one after the other: :func:`api_app` binds a test's context into a fresh
state and clears it after.  While that app is bound (a test with two APIs
at once), a second one is built the ordinary way.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import MagicMock

import uvicorn
from litestar import Litestar
from litestar.testing import TestClient

from services.api.app import create_app
from services.api.context import ApiContext
from shared.config import Settings


@functools.cache
def _shared_app() -> Litestar:
    placeholder = Settings.from_env({"TOCSIN_API_TOKEN": "unbound", "TOCSIN_NAMESPACE": "unbound"})
    app = create_app(ApiContext(settings=placeholder, redis=MagicMock(), sender=MagicMock()))
    app.state.clear()
    return app


@contextmanager
def api_app(ctx: ApiContext) -> Iterator[Litestar]:
    """``create_app(ctx)`` for the duration of the block (the process's one app, rebound)."""
    if not ctx.settings.api_token:
        raise ValueError("the API needs TOCSIN_API_TOKEN (tocsin up generates one)")
    app = _shared_app()
    if "ctx" in app.state:  # bound by an enclosing block: this test runs two APIs
        yield create_app(ctx)
        return
    # A fresh state, as create_app gives: caches kept in the state (the decoded
    # on-call schedules) belong to one context and must not outlive it.
    app.state.clear()
    app.state.ctx = ctx
    try:
        yield app
    finally:
        app.state.clear()


@contextmanager
def api_client(ctx: ApiContext, **kwargs: Any) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """A ``TestClient`` on :func:`api_app` (``kwargs`` go to the client, e.g. ``base_url``)."""
    with api_app(ctx) as app, TestClient(app=app, **kwargs) as client:
        yield client


@contextmanager
def serving(app: Litestar, port: int, **options: Any) -> Iterator[uvicorn.Server]:
    """``app`` under uvicorn on 127.0.0.1:``port`` in a thread, for the duration of the block.

    For tests that need a real listening API (the CLI, a browser, a real
    Alertmanager, uvicorn's own proxy handling).  ``options`` go to
    ``uvicorn.Config``.  The block starts once uvicorn listens; after it,
    uvicorn finishes its requests and stops.
    """
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)  # waiting for the server thread, not standing in for logic
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
