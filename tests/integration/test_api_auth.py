"""Failed-auth limiting through a real uvicorn: forwarded headers, and who gets locked out."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import msgspec
import pytest

from benchmarks.ports import free_port as _free_port
from services.api.auth import FAILED_AUTH_LIMIT, proxy_options
from services.api.context import ApiContext
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_app, api_client, serving

pytestmark = pytest.mark.integration

TOKEN = "auth-test-admin-token"


def _serve(settings: Settings) -> Iterator[str]:
    """The API under uvicorn, with the options ``tocsin up`` gives it, on a free port."""
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    port = _free_port()
    options = {"log_config": None, "access_log": False, **proxy_options(s)}
    try:
        with api_app(ctx) as app, serving(app, port, **options):
            yield f"http://127.0.0.1:{port}"
    finally:
        ctx.sender.close()


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    yield from _serve(settings)


@pytest.fixture
def proxied_api(settings: Settings) -> Iterator[str]:
    yield from _serve(msgspec.structs.replace(settings, trusted_proxies=("127.0.0.1",)))


def _get(url: str, token: str, source: str = "127.0.0.1", **headers: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as c:
        return c.get(
            f"{url}/media", headers={"Authorization": f"Bearer {token}", **headers}
        ).status_code


def test_rotating_x_forwarded_for_does_not_escape_the_limit(api: str) -> None:
    codes = [_get(api, "guess", **{"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(31)]
    assert set(codes[:30]) == {401} and codes[30] == 429, codes


def test_a_forged_victim_address_does_not_lock_the_victim_out(api: str) -> None:
    """30 wrong tokens claiming to come from 127.0.0.2 lock only their real sender."""
    for _ in range(30):
        assert _get(api, "guess", **{"X-Forwarded-For": "127.0.0.2"}) == 401
    assert _get(api, TOKEN) == 429  # the guesser itself, even with the right token
    assert _get(api, TOKEN, source="127.0.0.2") == 200  # the victim


def test_named_proxy_forwards_the_client_address(proxied_api: str) -> None:
    """Behind a trusted proxy, each forwarded client has its own count; others' headers are ignored."""
    for _ in range(30):
        assert _get(proxied_api, "guess", **{"X-Forwarded-For": "203.0.113.9"}) == 401
    assert _get(proxied_api, TOKEN, **{"X-Forwarded-For": "203.0.113.9"}) == 429
    assert _get(proxied_api, TOKEN, **{"X-Forwarded-For": "203.0.113.10"}) == 200
    # 127.0.0.2 is not a trusted proxy: its header is ignored and it is counted as itself.
    for i in range(30):
        assert _get(proxied_api, "guess", "127.0.0.2", **{"X-Forwarded-For": f"192.0.2.{i}"}) == 401
    assert _get(proxied_api, TOKEN, "127.0.0.2") == 429
    assert _get(proxied_api, TOKEN, **{"X-Forwarded-For": "192.0.2.1"}) == 200


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/sources/alertmanager", id="alertmanager webhook"),
        pytest.param("/sources/cron/events", id="declared source"),
    ],
)
def test_routes_with_their_own_token_check_share_the_limit(settings: Settings, path: str) -> None:
    """``?token=`` on the public intake routes was an unlimited oracle for the admin token."""
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    try:
        with api_client(ctx) as c:
            codes = [
                c.post(f"{path}?token=guess-{i}", content=b"{}").status_code
                for i in range(FAILED_AUTH_LIMIT)
            ]
            assert set(codes) == {401}, codes
            right = c.post(f"{path}?token={TOKEN}", content=b"{}")
            assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
            assert c.get("/media", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    finally:
        ctx.sender.close()
