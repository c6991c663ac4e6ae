"""Retention and incident indexes against real Redis: processor writes, sweep, listing, migration."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared import incident_index
from shared.amqp import Names
from shared.check_store import CheckStore
from shared.checks import Incident
from shared.config import Settings
from shared.keys import Keys, check_id
from shared.records import to_hash
from shared.store import connect_redis
from shared.sweeper import Sweeper, Windows
from tests.integration.test_processor_worker import ev, message

pytestmark = pytest.mark.integration

DAY = 86400.0


def _handler(settings: Settings) -> object:
    return make_handler(
        connect_redis(settings),
        Names(settings.namespace),
        Keys(settings.namespace),
        settings,
        ProcessorMetrics(CollectorRegistry()),
    )


def _sweeper(settings: Settings, retain_s: float = DAY) -> Sweeper:
    return Sweeper(
        connect_redis(settings),
        Keys(settings.namespace),
        Windows(incidents_s=retain_s, maintenances_s=retain_s),
        interval_s=60,
    )


def test_processor_indexes_and_sweeper_drops_only_old_closed_incidents(
    settings: Settings,
) -> None:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    handle = _handler(settings)
    # web:http fails at 1000 and recovers at 1100; db:disk fails at 1000 and stays failing.
    for i, events in enumerate(
        [
            [ev("web", "http", 1000.0, "critical", initial_failure_delay=0, tags=["role=web"])],
            [ev("db", "disk", 1000.0, "critical", initial_failure_delay=0)],
            [ev("web", "http", 1100.0, "ok")],
        ]
    ):
        handle([message(settings, events, tag=i + 1)])  # type: ignore[operator]
    store = CheckStore(r, keys)
    closed = store.list_incidents(open=False)
    (opened,) = store.list_incidents(open=True)
    assert [i.check for i in closed] == ["http"] and opened.check == "disk"
    closed_at = r.zscore(keys.incident_index("closed"), str(closed[0].id))
    # Scored by when the close was recorded (wall clock), not by the event's time.
    assert closed_at is not None and abs(closed_at - time.time()) < 60
    assert r.zscore(keys.incident_by_tag("role=web"), str(closed[0].id)) == 1000.0
    assert [i.check for i in store.list_incidents(tag="role=web")] == ["http"]

    # Just before a day after the close: nothing is due yet.
    assert _sweeper(settings).run(closed_at + DAY - 1, force=True).incidents == 0
    out = _sweeper(settings).run(closed_at + DAY, force=True)
    assert out.incidents == 1
    gone = str(closed[0].id)
    assert not r.exists(keys.incident(gone), keys.incident_events(gone))
    for key in (
        keys.incident_ids(),
        keys.incident_index("closed"),
        keys.incident_by_tag("role=web"),
        keys.incident_by_source("tocsin"),
    ):
        assert r.zscore(key, gone) is None, key
    assert not r.sismember(keys.incident_by_open(False), gone)
    # The open incident stays however old it is.
    assert _sweeper(settings).run(1e12, force=True).incidents == 0
    assert [i.check for i in store.list_incidents()] == ["disk"]


def test_lease_lets_one_replica_sweep_per_interval(settings: Settings) -> None:
    one, two = _sweeper(settings), _sweeper(settings)
    assert not one.run(0.0).skipped
    assert two.run(0.0).skipped
    assert one.run(0.0).skipped  # the lease is per interval, not per replica


def test_sweep_runs_in_bounded_batches(settings: Settings) -> None:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    pipe = r.pipeline(transaction=True)
    for n in range(1, 26):
        inc = Incident(
            id=n,
            start_time=10.0,
            end_time=20.0,
            level=1,
            source_incident_id=f"e:c{n}",
            description="",
            check_id="x",
            entity="e",
            check=f"c{n}",
        )
        pipe.hset(keys.incident(str(n)), mapping=to_hash(inc))
        indexed = incident_index.from_attrs(to_hash(inc))
        assert indexed is not None
        incident_index.queue(pipe, incident_index.write_commands(keys, indexed, None))
    pipe.execute()
    sweeper = Sweeper(r, keys, Windows(10, 10), 60, batch=10, max_batches=2)
    assert sweeper.run(100.0, force=True).incidents == 20
    assert sweeper.run(100.0, force=True).incidents == 5
    assert r.zcard(keys.incident_ids()) == 0


def test_migration_indexes_existing_incidents_once(settings: Settings) -> None:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    # As written before the indexes existed: the hash and incident::ids only.
    for n, end in ((1, None), (2, 50.0)):
        inc = Incident(
            id=n,
            start_time=float(n),
            end_time=end,
            level=1,
            source_incident_id="s",
            description="",
            check_id="x",
            entity="e",
            check="c",
            tags=("team=a",),
        )
        r.hset(keys.incident(str(n)), mapping=to_hash(inc))
        r.zadd(keys.incident_ids(), {str(n): float(n)})
    store = CheckStore(r, keys)
    # Before the migration listings walk incident::ids, which has every incident.
    assert incident_index.pick(r, keys, [keys.incident_index("open")]) == keys.incident_ids()
    assert [i.id for i in store.list_incidents(open=True)] == [1]
    assert incident_index.build(r, keys) == 2
    assert incident_index.pick(r, keys, [keys.incident_index("open")]) != keys.incident_ids()
    assert [i.id for i in store.list_incidents(open=True)] == [1]
    assert incident_index.build(r, keys) == 0
    assert r.zrange(keys.incident_index("open"), 0, -1) == ["1"]
    # Closed before the migration: retention counts from its end time.
    assert r.zrange(keys.incident_index("closed"), 0, -1, withscores=True) == [("2", 50.0)]
    assert r.zcard(keys.incident_by_tag("team=a")) == 2


def test_ended_acknowledgements_are_swept(settings: Settings) -> None:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    store = CheckStore(r, keys)
    old = store.add_unscheduled_maintenance("web", "http", 0.0, 100.0)
    new = store.add_unscheduled_maintenance("web", "http", 0.0, 1e12)
    assert _sweeper(settings, retain_s=50).run(200.0, force=True).maintenances == 1
    assert not r.exists(keys.unscheduled_maintenance(old))
    assert r.exists(keys.unscheduled_maintenance(new))
    assert r.smembers(keys.unscheduled_maintenance_ids()) == {new}
    cid = check_id("web", "http")
    assert r.zrange(keys.unscheduled_by_end(cid), 0, -1) == [new]


def test_redelivery_windows_lose_old_ids(settings: Settings) -> None:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    r.zadd(keys.processed_events(0), {"old": 100.0, "new": 1000.0})
    r.zadd(keys.processed_events(1), {"old2": 50.0})
    sweeper = Sweeper(r, keys, Windows(DAY, DAY, processed_s=500, partitions=2), 60)
    assert sweeper.run(1000.0, force=True).processed == 2
    assert r.zrange(keys.processed_events(0), 0, -1) == ["new"]
    assert not r.exists(keys.processed_events(1))


def test_explain_records_are_kept_by_age_not_only_by_count(settings: Settings) -> None:
    from shared.explain.reading import read_records
    from shared.explain.records import ENCODER as EXPLAIN_ENCODER
    from shared.explain.records import EventRecord
    from shared.explain.storage import queue_records

    r, keys = connect_redis(settings), Keys(settings.namespace)

    def record(t: float) -> bytes:
        rec = EventRecord(
            time=t,
            event_id=f"e{t}",
            type="service",
            state="ok",
            filter="f",
            outcome="pass",
            reason="r",
        )
        return EXPLAIN_ENCODER.encode(rec)

    pipe = r.pipeline(transaction=True)
    queue_records(pipe, keys, {"c1": [record(0.0), record(100.0), record(200.0)]}, 200, 500)
    pipe.execute()
    assert len(read_records(r, keys, "c1")) == 3
    pipe = r.pipeline(transaction=True)
    queue_records(pipe, keys, {"c1": [record(650.0)]}, 200, 500)
    pipe.execute()
    # 0 and 100 are more than 500 s older than the newest record (650); 200 is not.
    assert [rec.time for rec in read_records(r, keys, "c1")] == [200.0, 650.0]


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param("notification", id="a notification record, integer times"),
        pytest.param("other", id="time not first: decoded as JSON"),
    ],
)
def test_explain_ageing_reads_the_time_of_every_record_shape(
    settings: Settings, shape: str
) -> None:
    """The push reads a record's time from its first bytes when msgspec wrote it
    (tag, then time); any other shape is decoded, so ageing works for both."""
    import json

    from shared.explain.records import ENCODER as EXPLAIN_ENCODER
    from shared.explain.records import NotificationRecord
    from shared.explain.storage import queue_records

    r, keys = connect_redis(settings), Keys(settings.namespace)

    def record(t: int) -> bytes:
        if shape == "other":
            return json.dumps({"note": "x", "time": t}).encode()
        rec = NotificationRecord(
            time=t, notification_id=f"n{t}", type="problem", state="critical", severity="c"
        )
        return EXPLAIN_ENCODER.encode(rec)

    pipe = r.pipeline(transaction=True)
    queue_records(pipe, keys, {"c1": [record(0), record(100), record(200)]}, 200, 500)
    queue_records(pipe, keys, {"c1": [record(650)]}, 200, 500)
    pipe.execute()
    kept = [json.loads(raw)["time"] for raw in r.lrange(keys.check_explain("c1"), 0, -1)]
    assert kept == [650, 200]
