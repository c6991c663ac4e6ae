"""The per-source cap on checks: in Redis, through a declared source and an Argus source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.check_quota import CheckQuota
from shared.config import Settings
from shared.keys import Keys
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.support import declare

pytestmark = pytest.mark.integration

TOKEN = "quota-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MAPPING = json.loads(
    (Path(__file__).parent.parent / "data" / "sources" / "cron_mapping.json").read_bytes()
)


def test_admission_is_all_or_nothing_and_known_checks_always_pass(settings: Settings) -> None:
    r = connect_redis(settings)
    quota = CheckQuota(r, Keys(settings.namespace), cap=3)
    assert not quota.admit("s", ["a", "b", "a"]).refused
    refused = quota.admit("s", ["a", "c", "d"])
    assert refused.refused and (refused.new, refused.known, refused.cap) == (2, 2, 3)
    assert quota.count("s") == 2  # nothing of the refused request was recorded
    assert not quota.admit("s", ["a", "b", "c"]).refused
    assert quota.admit("s", ["e"]).refused and not quota.admit("s", ["c", "a"]).refused
    assert not quota.admit("other", ["e"]).refused  # each source has its own count
    quota.forget("s")
    assert quota.count("s") == 0
    assert (
        not CheckQuota(r, Keys(settings.namespace), cap=0).admit("s", ["x", "y", "z", "w"]).refused
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[TestClient, ApiContext]]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN, checks_per_source=2)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    declare(s)
    with api_client(ctx) as c:
        yield c, ctx
    ctx.sender.close()


def _job(host: str, job: str) -> bytes:
    return json.dumps(
        {"host": host, "job": job, "exit_code": 2, "output": "x", "finished_at": 1714550400}
    ).encode()


def _refusals(ctx: ApiContext, kind: str) -> float:
    return (
        ctx.registry.get_sample_value("tocsin_api_source_check_cap_refusals_total", {"kind": kind})
        or 0.0
    )


def test_a_declared_source_is_capped(client: tuple[TestClient, ApiContext]) -> None:  # type: ignore[type-arg]
    c, ctx = client
    made = c.post("/sources", json={"name": "cron", "mapping": MAPPING}, headers=ADMIN)
    assert made.status_code == 201, made.text
    url = f"/sources/cron/events?token={made.json()['token']}"
    assert c.post(url, content=_job("h1", "a")).status_code == 202
    assert c.post(url, content=_job("h1", "b")).status_code == 202
    third = c.post(url, content=_job("h1", "c"))
    assert third.status_code == 422 and third.json()["field"] == "check"
    assert "TOCSIN_CHECKS_PER_SOURCE" in third.json()["error"]
    assert _refusals(ctx, "declared") == 1.0
    assert c.post(url, content=_job("h1", "a")).status_code == 202  # a known check still passes


def test_an_argus_source_is_capped(client: tuple[TestClient, ApiContext]) -> None:  # type: ignore[type-arg]
    c, ctx = client
    src = c.post("/api/v2/incidents/sources/", json={"name": "nav", "type": "nav"}, headers=ADMIN)
    auth = {"Authorization": f"Token {src.json()['token']}"}

    def incident(sid: str) -> int:
        body = {"start_time": "2026-11-23T10:00:00+00:00", "tags": [], "source_incident_id": sid}
        return c.post("/api/v2/incidents/", json=body, headers=auth).status_code

    assert [incident("a"), incident("b"), incident("c")] == [201, 201, 422]
    assert _refusals(ctx, "argus") == 1.0
