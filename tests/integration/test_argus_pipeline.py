"""Argus incidents through ingest and the processor; one list for check and source incidents;
timeslots mapped onto rules.

The API runs in-process; what it publishes is read from the ingest queue,
decoded by ingest's decoder for routing key ``argus`` and fed to the real
processor batch handler, so the hand-over (``incident_id``) is tested end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from services.api.context import ApiContext
from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names, partition_key, partition_of
from shared.check_store import CheckStore
from shared.config import Settings
from shared.consumer import BatchResult, Message
from shared.keys import Keys, check_id
from shared.models import ENCODER, CheckEvent, Notification
from shared.records import from_hash
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.integration.test_argus_api import ADMIN, TOKEN, make_incident, make_source
from tests.support import collect_events

pytestmark = pytest.mark.integration

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def process(settings: Settings, events: list[CheckEvent]) -> BatchResult:
    """Run the processor's batch handler on events, as its partition queue would deliver them."""
    handle = make_handler(
        connect_redis(settings),
        Names(settings.namespace),
        Keys(settings.namespace),
        settings,
        ProcessorMetrics(CollectorRegistry()),
    )
    k = partition_of(events[0].entity, events[0].check, settings.partitions)
    msg = Message(
        body=ENCODER.encode(events),
        delivery_tag=1,
        queue=Names(settings.namespace).processor(k),
        routing_key=partition_key(k),
    )
    return handle([msg])


def ingested(settings: Settings, n: int) -> list[CheckEvent]:
    return collect_events(settings, n, timeout=5)


def notifications(settings: Settings, result: BatchResult) -> list[Notification]:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    ids = [msgspec.json.decode(o.body)["id"] for o in result.outputs]
    return [from_hash(Notification, r.hgetall(keys.notification(i))) for i in ids]


def test_processor_attaches_the_episode_to_the_api_incident_without_duplicating_events(
    client: Client, settings: Settings
) -> None:
    _, auth = make_source(client, "nav")
    inc = make_incident(client, auth, source_incident_id="sw1", level=3)
    pk = inc["pk"]
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    seq_before = r.get(keys.incident_seq())

    (failing,) = ingested(settings, 1)
    assert failing.incident_id == str(pk) and failing.state == "warning"
    (problem,) = notifications(settings, process(settings, [failing]))
    assert problem.type == "problem" and problem.episode_id == str(pk)
    detail = CheckStore(r, keys).get("nav", "sw1")
    assert detail is not None and detail.incident_id == str(pk)
    assert r.get(keys.incident_seq()) == seq_before  # the processor reserved no incident id

    end = client.post(
        f"/api/v2/incidents/{pk}/events/",
        json={"type": "END", "timestamp": "2026-11-23T10:30:00+00:00"},
        headers=auth,
    )
    assert end.status_code == 201
    (ok,) = ingested(settings, 1)
    (recovery,) = notifications(settings, process(settings, [ok]))
    assert recovery.type == "recovery" and recovery.episode_id == str(pk)
    events = client.get(f"/api/v2/incidents/{pk}/events/", headers=auth).json()
    assert sorted(e["type"]["value"] for e in events) == ["END", "STA"]
    assert r.hget(keys.check(check_id("nav", "sw1")), "episode_id") is None


def _ids(page: dict[str, Any]) -> list[int]:
    return [i["pk"] for i in page["results"]]


def test_check_and_source_incidents_are_listed_together_and_filtered(
    client: Client, settings: Settings
) -> None:
    check = CheckEvent(
        id="c1",
        entity="web1",
        check="http",
        type="service",
        state="critical",
        time=1.8e9,
        received=1.8e9,
        initial_failure_delay=0,
        tags=("team=web",),
    )
    process(settings, [check])
    src, auth = make_source(client, "nav")
    a = make_incident(client, auth, level=1, tags=[{"tag": "host=a"}, {"tag": "site=x"}])
    b = make_incident(client, auth, level=4, tags=[{"tag": "host=b"}, {"tag": "site=y"}])
    c = make_incident(
        client, auth, level=2, tags=[{"tag": "host=c"}], end_time="2026-11-23T12:00:00+00:00"
    )

    def page(query: str) -> dict[str, Any]:
        r = client.get(f"/api/v2/incidents/?{query}", headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())

    everything = page("")
    tocsin = everything["results"][0]
    assert tocsin["source"]["name"] == "tocsin" and tocsin["tags"][0]["tag"] == "team=web"
    assert tocsin["source_incident_id"] == "web1:http" and tocsin["level"] == 1
    assert len(everything["results"]) == 4 and everything["next"] is None
    assert set(_ids(page(f"source__id__in={src['pk']}"))) == {a["pk"], b["pk"], c["pk"]}
    assert set(_ids(page("open=true&source__name__in=nav"))) == {a["pk"], b["pk"]}
    assert _ids(page("open=false")) == [c["pk"]]
    assert set(_ids(page("level__lte=2&source__type__in=nav"))) == {a["pk"], c["pk"]}
    # One tag rule: same key OR, different keys AND.
    assert set(_ids(page("tags=host=a,host=b"))) == {a["pk"], b["pk"]}
    assert _ids(page("tags=host=a,host=b,site=y")) == [b["pk"]]
    assert _ids(page("tags=nosuch=tag")) == []
    bad = client.get("/api/v2/incidents/?level__lte=high", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["field"] == "level__lte"

    seen: list[int] = []
    url: str | None = "/api/v2/incidents/?page_size=1&source__id__in=" + str(src["pk"])
    while url:
        body = client.get(url, headers=ADMIN).json()
        seen += _ids(body)
        url = body["next"]
    assert sorted(seen) == sorted([a["pk"], b["pk"], c["pk"]]) and len(seen) == 3
    assert body["previous"] is not None
    back = client.get(body["previous"], headers=ADMIN).json()
    assert _ids(back) == [seen[-2]]

    mine = client.get("/api/v2/incidents/mine/?open=true", headers=auth).json()
    assert set(_ids(mine)) == {a["pk"], b["pk"]}


def test_timeslot_is_applied_to_linked_rules(client: Client, settings: Settings) -> None:
    contact = client.post("/contacts", json={"name": "ops"}, headers=ADMIN).json()
    rule = client.post("/rules", json={"contact_id": contact["id"]}, headers=ADMIN).json()
    body = {
        "name": "office hours",
        "time_recurrences": [
            {"days": [5, 1, 2, 3, 4], "start": "08:00:00", "end": "16:00:00"},
            {"days": [6, 7], "all_day": True},
        ],
    }
    made = client.post("/api/v2/notificationprofiles/timeslots/", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    slot = made.json()
    assert slot["time_recurrences"][0]["days"] == [1, 2, 3, 4, 5]
    url = f"/api/v2/notificationprofiles/timeslots/{slot['pk']}/"
    linked = client.post(url + "rules/", json={"rule_id": rule["id"]}, headers=ADMIN)
    assert linked.status_code == 201 and linked.json()["rules"] == [rule["id"]]
    restrictions = client.get(f"/rules/{rule['id']}", headers=ADMIN).json()["time_restrictions"]
    assert restrictions == [
        {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "16:00", "all_day": False},
        {"days": [6, 7], "start": "00:00", "end": "24:00", "all_day": True},
    ]
    body["time_recurrences"] = [{"days": [1], "start": "09:00", "end": "23:59:59.999999"}]
    assert client.put(url, json=body, headers=ADMIN).status_code == 200
    restrictions = client.get(f"/rules/{rule['id']}", headers=ADMIN).json()["time_restrictions"]
    assert restrictions == [{"days": [1], "start": "09:00", "end": "24:00", "all_day": False}]

    # One span across midnight is allowed (docs/profiles.md); an empty one is not.
    wrap = {"name": "night", "time_recurrences": [{"days": [1], "start": "22:00", "end": "06:00"}]}
    night = client.post("/api/v2/notificationprofiles/timeslots/", json=wrap, headers=ADMIN)
    assert night.status_code == 201, night.text
    empty = {"name": "empty", "time_recurrences": [{"days": [1], "start": "06:00", "end": "06:00"}]}
    bad = client.post("/api/v2/notificationprofiles/timeslots/", json=empty, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["field"] == "time_recurrences[0].end"
    dup = client.post("/api/v2/notificationprofiles/timeslots/", json=body, headers=ADMIN)
    assert dup.status_code == 400 and dup.json()["field"] == "name"
    _, auth = make_source(client)
    assert client.get("/api/v2/notificationprofiles/timeslots/", headers=auth).status_code == 403
    assert client.delete(url, headers=ADMIN).status_code == 204
    assert client.get(url, headers=ADMIN).status_code == 404
