"""Argus notification-profile destinations the gateway would refuse are saved with a warning."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.media import destination_warning, validate_medium_settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration
TOKEN = "argus-destination-token"
ADMIN = {"Authorization": f"Token {TOKEN}"}
URL = "/api/v2/notificationprofiles/destinations/"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN)  # allow-list: 127.0.0.0/8 only
    ctx = ApiContext(
        settings=s,
        redis=connect_redis(s),
        sender=Sender(s),
        validate_medium_settings=validate_medium_settings,
        destination_warning=destination_warning(s),
    )
    ctx.redis.hset(ctx.keys.media_installed(), mapping={"webhook": "1", "email": "1"})
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def test_a_private_destination_is_saved_with_a_warning(client: TestClient) -> None:  # type: ignore[type-arg]
    private = client.post(
        URL,
        json={"media": "webhook", "settings": {"url": "http://192.168.7.7/hook"}},
        headers=ADMIN,
    )
    assert private.status_code == 201, private.text
    (warning,) = private.json()["warnings"]
    assert "192.168.7.7" in warning and "TOCSIN_DESTINATION_ALLOW" in warning
    allowed = client.post(
        URL,
        json={"media": "webhook", "settings": {"url": "http://127.0.0.1:9/hook"}},
        headers=ADMIN,
    )
    assert allowed.status_code == 201 and "warnings" not in allowed.json()
    moved = client.put(
        f"{URL}{allowed.json()['pk']}/",
        json={"media": "webhook", "settings": {"url": "http://10.0.0.9/hook"}},
        headers=ADMIN,
    )
    assert moved.status_code == 200 and "10.0.0.9" in moved.json()["warnings"][0]
