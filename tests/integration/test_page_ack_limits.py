"""The ways in share the API's failed-auth limiter: forged signatures and links lock a client out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.auth import FailedAuth
from services.api.context import ApiContext
from shared.action_links import LINK_PATH, LinkClaims, action_secret, sign
from shared.config import Settings
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client

pytestmark = pytest.mark.integration
LIMIT = 3


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(
        settings,
        api_token="limits-token",
        slack_signing_secret="slack-secret",
        pagerduty_webhook_secret="pd-secret",
        sms_inbound_secret="sms-secret",
    )
    ctx = ApiContext(
        settings=s, redis=connect_redis(s), sender=Sender(s), failed_auth=FailedAuth(limit=LIMIT)
    )
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def _forged_slack(client: TestClient) -> int:  # type: ignore[type-arg]
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}
    return client.post(
        "/integrations/slack/actions", content=b"payload=%7B%7D", headers=headers
    ).status_code


def test_forged_requests_lock_the_client_out(client: TestClient) -> None:  # type: ignore[type-arg]
    assert [_forged_slack(client) for _ in range(LIMIT)] == [401] * LIMIT
    # Locked: every way in now answers 429, a link page included, until the window passes.
    assert _forged_slack(client) == 429
    pd = client.post("/integrations/pagerduty/webhook", content=b"{}")
    assert pd.status_code == 429 and pd.headers["retry-after"]
    assert client.get(LINK_PATH + "abc.def").status_code == 429
    assert client.post("/integrations/sms/inbound", content=b"{}").status_code == 429


def test_forged_links_count_but_expired_ones_do_not(client: TestClient) -> None:  # type: ignore[type-arg]
    secret = action_secret(Settings(api_token="limits-token"))
    assert secret is not None
    expired = sign(secret, LinkClaims(e="web1", c="http", ep="1", ct="c1", x=1))
    for _ in range(LIMIT * 2):
        assert client.get(LINK_PATH + expired).status_code == 410  # genuine, only too old
    for _ in range(LIMIT):
        assert client.get(LINK_PATH + "forged.AAAA").status_code == 403
    assert client.get(LINK_PATH + expired).status_code == 429
    metrics = client.get("/metrics").text
    assert 'tocsin_api_page_acks_total{channel="link",outcome="bad_signature"} 3.0' in metrics
    assert 'tocsin_api_page_acks_total{channel="link",outcome="expired"} 6.0' in metrics
