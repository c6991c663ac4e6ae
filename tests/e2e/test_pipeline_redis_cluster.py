"""The whole pipeline on a 3-node Redis Cluster: ingest, processor, notifier, gateway and API.

``tocsin up`` runs with ``TOCSIN_REDIS_URL=…?cluster=true`` against a private
cluster (tests/redis_cluster.py), with two notifiers and two webhook gateways
so the notifier's WATCH/MULTI races on the cluster too.  Everything is
configured through the API and observed at a webhook receiver: each page
arrives exactly once, the checks' records spread over the three shards, and
the routing state (configuration, notifier state, lanes) sits in one slot.
A configuration change made through the API after the notifiers have cached
the configuration is seen by the next event (docs/scaling.md).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.cluster import RedisCluster

from services.cli.demo import Receiver
from shared.keys import PEOPLE_TAG, ROUTING_TAG, Keys, check_id
from shared.store import connect_redis
from tests.e2e.conftest import Pipeline, start_pipeline
from tests.e2e.test_pipeline import _wait_idle
from tests.redis_cluster import redis_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

N_CHECKS = 24


@pytest.fixture(scope="module")
def cluster_pipeline(
    services_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    with (
        redis_cluster() as url,
        start_pipeline(
            tmp_path_factory.mktemp("cluster-pipeline"),
            {"TOCSIN_REDIS_URL": url},
            ("--replicas", "notifier=2,gateway:webhook=2"),
        ) as pipe,
    ):
        yield pipe


def _contact(api: httpx.Client, name: str, url: str) -> str:
    contact = api.post("/contacts", json={"name": name})
    assert contact.status_code == 201, contact.text
    cid = str(contact.json()["id"])
    medium = api.post(
        "/media", json={"contact_id": cid, "type": "webhook", "address": url, "interval": 0}
    )
    assert medium.status_code == 201, medium.text
    route = {"media": ["webhook"]}
    rule = api.post(
        "/rules", json={"contact_id": cid, "critical": route, "warning": route, "unknown": route}
    )
    assert rule.status_code == 201, rule.text
    return cid


def _send(api: httpx.Client, checks: list[str], state: str) -> None:
    for check in checks:
        event = {"entity": "web1", "check": check, "state": state, "initial_failure_delay": 0}
        resp = api.post("/events", json={**event, "summary": f"{check} {state}"})
        assert resp.status_code == 202, resp.text


def _take(receiver: Receiver, n: int, pipe: Pipeline, timeout: float = 60) -> list[dict[str, Any]]:
    """The next ``n`` deliveries (fails with the pipeline's log if they do not come)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        item = receiver.wait_for(lambda d: True, max(0.1, deadline - time.monotonic()))
        assert item is not None, f"{len(got)} of {n} deliveries:\n{pipe.log_tail()}"
        got.append(item)
    return got


def test_every_page_arrives_once_with_state_sharded_and_routing_in_one_slot(
    cluster_pipeline: Pipeline,
) -> None:
    pipe = cluster_pipeline
    checks = [f"disk-{i}" for i in range(N_CHECKS)]
    with Receiver() as receiver, pipe.api as api:
        _contact(api, "cluster ops", receiver.url)
        _send(api, checks, "critical")
        problems = _take(receiver, N_CHECKS, pipe)
        _send(api, checks, "ok")
        recoveries = _take(receiver, N_CHECKS, pipe)
        _wait_idle(pipe, timeout=30)
        assert receiver.received.empty(), f"extra deliveries: {list(receiver.received.queue)}"
    assert sorted(d["check"] for d in problems) == sorted(checks)
    assert {(d["type"], d["state"]) for d in problems} == {("problem", "critical")}
    assert sorted(d["check"] for d in recoveries) == sorted(checks)
    assert {(d["type"], d["state"]) for d in recoveries} == {("recovery", "ok")}

    r = connect_redis(pipe.settings)
    assert isinstance(r, RedisCluster)
    keys = Keys(pipe.settings.namespace)
    # The checks' records are spread over all three primaries.
    owners = {
        r.nodes_manager.get_node_from_slot(r.keyslot(keys.check(check_id("web1", c)))).name
        for c in checks
    }
    assert len(owners) == 3
    # Configuration and notifier markers are there (lanes, episodes and the outbox are
    # empty again once every page is through), all in the routing slot.
    routing = list(r.scan_iter(match=f"{keys.rp}*", count=1000))
    kinds = {k[len(keys.rp) :].split(":")[0] for k in routing}
    assert {"contact", "medium", "notification_rule", "config", "notified"} <= kinds
    assert {r.keyslot(k) for k in routing} == {r.keyslot(ROUTING_TAG)}
    # The notifiers' decision records went to each check's own slot after their commit.
    for c in checks:
        records = [json.loads(x) for x in r.lrange(keys.check_explain(check_id("web1", c)), 0, -1)]
        assert "notification" in {x.get("kind") for x in records}, (c, records)


def test_a_configuration_change_reaches_every_notifier(cluster_pipeline: Pipeline) -> None:
    """The notifiers cache the configuration; a change made through the API is used next."""
    pipe = cluster_pipeline
    with Receiver() as first, Receiver() as second, pipe.api as api:
        first_id = _contact(api, "first", first.url)
        _send(api, ["cache-1"], "critical")
        assert [d["check"] for d in _take(first, 1, pipe)] == ["cache-1"]
        # Both notifiers hold version v now (or load it at their next batch).
        _contact(api, "second", second.url)
        _send(api, ["cache-2"], "critical")
        assert [d["check"] for d in _take(first, 1, pipe)] == ["cache-2"]
        assert [d["check"] for d in _take(second, 1, pipe)] == ["cache-2"]
        assert api.delete(f"/contacts/{first_id}").status_code in (200, 204)
        _send(api, ["cache-3", "cache-4"], "critical")
        assert sorted(d["check"] for d in _take(second, 2, pipe)) == ["cache-3", "cache-4"]
        _wait_idle(pipe, timeout=30)
        assert first.received.empty(), f"to a deleted contact: {list(first.received.queue)}"
        assert second.received.empty(), f"extra deliveries: {list(second.received.queue)}"


LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_users_tokens_and_dashboard_sessions_work_on_the_cluster(
    cluster_pipeline: Pipeline,
) -> None:
    """The people slot: a user, a personal token, revocation, a login and a logout."""
    pipe = cluster_pipeline
    with pipe.api as api, httpx.Client(base_url=pipe.settings.api_url, timeout=10) as browser:
        user = api.post("/users", json={"username": "ada", "role": "responder"})
        assert user.status_code == 201, user.text
        uid = user.json()["id"]
        issued = api.post(f"/users/{uid}/tokens", json={"name": "laptop"})
        assert issued.status_code == 201, issued.text
        mine = {"Authorization": f"Bearer {issued.json()['token']}"}
        me = browser.get("/me", headers=mine)
        assert me.status_code == 200 and me.json()["user"]["username"] == "ada", me.text
        tid = issued.json()["id"]
        assert api.delete(f"/users/{uid}/tokens/{tid}").status_code == 204
        assert browser.get("/me", headers=mine).status_code == 401

        nonce = LOGIN_CSRF.search(browser.get("/ui/login").text)
        assert nonce is not None
        login = browser.post(
            "/ui/login",
            data={"token": pipe.env["TOCSIN_API_TOKEN"], "login_csrf": nonce.group(1)},
            follow_redirects=False,
        )
        assert login.status_code == 303, login.text
        page = browser.get("/ui/", follow_redirects=False)
        assert page.status_code == 200
        csrf = CSRF.search(page.text)
        assert csrf is not None
        out = browser.post("/ui/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        gone = browser.get("/ui/", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/login")

    r = connect_redis(pipe.settings)
    keys = Keys(pipe.settings.namespace)
    people = list(r.scan_iter(match=f"{keys.pp}*", count=1000))
    assert keys.users() in people and keys.api_tokens() in people
    assert {r.keyslot(k) for k in people} == {r.keyslot(PEOPLE_TAG)}


def test_maintenance_and_enabling_through_the_api_on_the_cluster(
    cluster_pipeline: Pipeline,
) -> None:
    """Check writes of the API (shared/check_store.py) in ordered single-slot steps."""
    pipe = cluster_pipeline
    with Receiver() as receiver, pipe.api as api:
        _contact(api, "maintenance", receiver.url)
        _send(api, ["quiet", "loud"], "ok")  # both checks exist
        _wait_idle(pipe, timeout=30)
        window = api.post(
            "/checks/web1/quiet/maintenances",
            json={"end_time": time.time() + 600, "summary": "disk swap"},
        )
        assert window.status_code == 201, window.text
        mid = window.json()["id"]
        listed = api.get("/checks/web1/quiet/maintenances").json()["items"]
        assert [m["id"] for m in listed] == [mid]
        _send(api, ["quiet", "loud"], "critical")
        assert [d["check"] for d in _take(receiver, 1, pipe)] == ["loud"]
        _wait_idle(pipe, timeout=30)
        assert receiver.received.empty(), f"paged in maintenance: {list(receiver.received.queue)}"
        assert api.delete(f"/checks/web1/quiet/maintenances/{mid}").status_code == 204
        ended = api.get("/checks/web1/quiet/maintenances", params={"past": "true"}).json()["items"]
        assert [m["id"] for m in ended] == [mid] and ended[0]["end_time"] <= time.time()

        off = api.patch("/checks/web1/loud", json={"enabled": False})
        assert off.status_code == 200, off.text
        assert api.get("/checks/web1/loud").json()["enabled"] is False
        # Listings that combine index sets on several shards (read apart, combined here).
        disabled = api.get("/checks", params={"enabled": "false", "entity": "web1"})
        assert disabled.status_code == 200, disabled.text
        assert [c["check"] for c in disabled.json()["items"]] == ["loud"]
        failing = api.get("/checks", params={"failing": "true", "entity": "web1"}).json()
        assert {"quiet", "loud"} <= {c["check"] for c in failing["items"]}
        critical = api.get("/checks", params={"state": "critical", "enabled": "false"}).json()
        assert [c["check"] for c in critical["items"]] == ["loud"]
        assert api.patch("/checks/web1/loud", json={"enabled": True}).status_code == 200
        assert api.get("/checks/web1/loud").json()["enabled"] is True
    r = connect_redis(pipe.settings)
    keys = Keys(pipe.settings.namespace)
    cid = check_id("web1", "loud")
    assert r.sismember(keys.check_by_enabled(True), cid)
    assert not r.sismember(keys.check_by_enabled(False), cid)


def test_argus_incidents_through_the_api_on_the_cluster(cluster_pipeline: Pipeline) -> None:
    """The Argus store's ordered writes: create, change, close and list incidents."""
    pipe = cluster_pipeline
    with pipe.api as api:
        src = api.post("/api/v2/incidents/sources/", json={"name": "nav", "type": "nav"})
        assert src.status_code == 201, src.text
        auth = {"Authorization": f"Token {src.json()['token']}"}
        made = []
        for i in range(3):
            inc = api.post(
                "/api/v2/incidents/",
                json={
                    "start_time": f"2026-01-0{i + 1}T10:00:00+00:00",
                    "end_time": "infinity",
                    "source_incident_id": f"nav-{i}",
                    "tags": [{"tag": "host=a"}],
                },
                headers=auth,
            )
            assert inc.status_code == 201, inc.text
            made.append(inc.json()["pk"])
        changed = api.patch(
            f"/api/v2/incidents/{made[0]}/", json={"tags": [{"tag": "host=b"}]}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        end = api.post(
            f"/api/v2/incidents/{made[1]}/events/",
            json={"type": "END", "timestamp": "2026-01-05T10:00:00+00:00", "description": "ok"},
            headers=auth,
        )
        assert end.status_code == 201, end.text
        still_open = api.get("/api/v2/incidents/", params={"open": "true"})
        assert still_open.status_code == 200, still_open.text
        open_pks = {i["pk"] for i in still_open.json()["results"]}
        assert made[1] not in open_pks and {made[0], made[2]} <= open_pks
        tagged = api.get("/api/v2/incidents/", params={"tags": "host=b"}).json()["results"]
        assert [i["pk"] for i in tagged] == [made[0]]
        events = api.get(f"/api/v2/incidents/{made[1]}/events/").json()
        assert sorted(e["type"]["value"] for e in events) == ["END", "STA"]
