"""The API's /metrics: request latency by route template and status, no *_created series."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer metrics-token"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token="metrics-token")
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def test_requests_are_timed_by_route_template_and_status(client: TestClient) -> None:  # type: ignore[type-arg]
    made = client.post("/contacts", json={"name": "Ada"}, headers=AUTH)
    assert made.status_code == 201
    assert client.get(f"/contacts/{made.json()['id']}", headers=AUTH).status_code == 200
    assert client.get("/contacts/nosuch", headers=AUTH).status_code == 404
    text = client.get("/metrics").text
    bucket = "tocsin_api_request_duration_seconds_bucket"
    assert f'{bucket}{{le="10.0",method="GET",route="/contacts/{{cid}}",status="200"}} 1.0' in text
    assert f'{bucket}{{le="10.0",method="GET",route="/contacts/{{cid}}",status="404"}} 1.0' in text
    assert 'tocsin_api_requests_total{method="POST",route="/contacts",status="201"} 1.0' in text
    assert made.json()["id"] not in text  # ids never become label values


def test_no_created_series(client: TestClient) -> None:  # type: ignore[type-arg]
    client.get("/contacts", headers=AUTH)
    text = client.get("/metrics").text
    assert "tocsin_api_requests_total" in text
    assert "_created" not in text


def test_redis_memory_against_maxmemory(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    info = connect_redis(settings).info("memory")
    text = client.get("/metrics").text
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("tocsin_redis_")
    }
    assert lines["tocsin_redis_maxmemory_bytes"] == float(info["maxmemory"])
    # Used memory moves between the two reads; it is the server's, not a made-up figure.
    assert abs(lines["tocsin_redis_used_memory_bytes"] - info["used_memory"]) < 50e6
