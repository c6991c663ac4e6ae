"""A notification profile that names an escalation policy starts it through the real notifier."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
import redis
from prometheus_client import CollectorRegistry

from services.notifier.worker import build_consumer
from shared.config import Settings
from shared.directory import Directory
from shared.escalation import Policy, Step, Target
from shared.escalation_store import EscalationStore, escalation_id
from shared.keys import Keys
from shared.models import Contact, Notification
from shared.oncall_store import OncallStore
from shared.store import connect_redis
from tests.integration.test_notifier_worker import T0, deliveries, gateway_queues, send
from tests.support import collect_deliveries, declare, running

pytestmark = pytest.mark.integration

ENC = msgspec.json.encode


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_redis(settings)
    yield client
    client.close()


def configure(settings: Settings, r: redis.Redis, policy: str | None) -> None:
    """One always-on profile for every incident up to level 5, with a webhook destination."""
    keys = Keys(settings.namespace)
    d = Directory(r, keys)
    d.put_contact(Contact(id="lead", name="Lead"))
    OncallStore(r, keys).put_policy(
        Policy(id="pol", name="p", steps=(Step(targets=(Target(contact="lead"),)),)),
        {"lead": None},
    )
    rec = {
        "pk": 1,
        "name": "ops",
        "timeslot": 1,
        "filters": [1],
        "destinations": [1],
        "active": True,
        "contact": None,
        "timezone": "UTC",
    }
    if policy is not None:
        rec["escalation_policy"] = policy
    records = {
        "timeslot": {
            "pk": 1,
            "name": "always",
            "time_recurrences": [{"days": list(range(1, 8)), "all_day": True}],
        },
        "filter": {"pk": 1, "name": "all", "filter": {"maxlevel": 5}},
        "destination": {"pk": 1, "media": "webhook", "settings": {"url": "http://hook.test/"}},
        "profile": rec,
    }
    for kind, value in records.items():
        key = keys.timeslots() if kind == "timeslot" else keys.argus_records(kind)
        r.hset(key, "1", ENC(value))
    r.incr(keys.config_version())


def incident(nid: str, etype: str, t: float) -> Notification:
    """A Tocsin check's incident event as the processor writes it."""
    return Notification(
        id=nid,
        type="problem",
        check_id="http",
        entity="web1",
        check="http",
        state="critical",
        severity="critical",
        time=T0 + t,
        episode_id="ep-http",
        summary="down",
        incident_event=etype,
        incident_source="tocsin",
        incident_source_type="tocsin",
        incident_level=1,
        incident_open=True,
    )


@pytest.mark.parametrize("policy", ["pol", None], ids=["with-policy", "without"])
def test_a_profile_with_a_policy_starts_one_escalation_per_episode(
    settings: Settings, r: redis.Redis, policy: str | None
) -> None:
    declare(settings)
    configure(settings, r, policy)
    keys = Keys(settings.namespace)
    with running(build_consumer(settings, CollectorRegistry(), r)):
        send(settings, r, incident("n1", "STA", 0))
        got = collect_deliveries(settings, gateway_queues(settings), n=1, timeout=10)
        send(settings, r, incident("n2", "OTH", 60))  # same episode: no second escalation
        got += collect_deliveries(settings, gateway_queues(settings), n=1, timeout=10)
    assert [d.medium.address for d in deliveries(got)] == ["http://hook.test/"] * 2
    store = EscalationStore(r, keys)
    ids = store.of_check("http")
    if policy is None:
        assert ids == []
        return
    assert ids == [escalation_id("ep-http", "pol")]
    loaded = store.load(ids)[ids[0]]
    assert loaded is not None
    esc = loaded.escalation
    assert (esc.policy_id, esc.episode_id, esc.notification_id) == ("pol", "ep-http", "n1")
    assert r.zscore(keys.escalation_due(), ids[0]) is not None  # queued for the scheduler
