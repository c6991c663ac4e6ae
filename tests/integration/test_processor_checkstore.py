"""CheckStore (the API's and CLI's view of processor state) against real Redis."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared import check_store
from shared.amqp import Names
from shared.check_store import CheckStore
from shared.config import Settings
from shared.keys import Keys, check_id
from shared.store import connect_redis
from tests.integration.test_processor_worker import ev, message

pytestmark = pytest.mark.integration


@pytest.fixture
def store(settings: Settings) -> CheckStore:
    r = connect_redis(settings)
    handle = make_handler(
        r,
        Names(settings.namespace),
        Keys(settings.namespace),
        settings,
        ProcessorMetrics(CollectorRegistry()),
    )
    for events in (
        [ev("web1", "http", 0, "critical", tags=("role=web",), initial_failure_delay=0)],
        [ev("web1", "disk", 0, "ok", tags=("role=web", "tier=1"))],
        [ev("db1", "disk", 0, "warning", initial_failure_delay=0), ev("db1", "disk", 10, "ok")],
        [ev("db2", "disk", 0, "unknown")],
    ):
        handle([message(settings, events)])
    return CheckStore(r, Keys(settings.namespace))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["db1:disk", "db2:disk", "web1:disk", "web1:http"], id="all"),
        pytest.param({"state": "critical"}, ["web1:http"], id="by state"),
        pytest.param({"entity": "web1"}, ["web1:disk", "web1:http"], id="by entity"),
        pytest.param({"tag": "tier=1"}, ["web1:disk"], id="by tag"),
        pytest.param({"failing": True}, ["db2:disk", "web1:http"], id="failing"),
        pytest.param({"failing": False}, ["db1:disk", "web1:disk"], id="not failing"),
        pytest.param(
            {"enabled": True, "offset": 1, "limit": 2}, ["db2:disk", "web1:disk"], id="page"
        ),
    ],
)
def test_list_filters(store: CheckStore, filters: dict[str, object], expected: list[str]) -> None:
    assert [f"{d.entity}:{d.check}" for d in store.list(**filters)] == expected  # type: ignore[arg-type]


def test_get_unknown_check_is_none(store: CheckStore) -> None:
    assert store.get("nope", "nope") is None


def test_enable_disable_moves_indexes(store: CheckStore) -> None:
    assert store.set_enabled("web1", "http", False)
    assert [d.check for d in store.list(enabled=False)] == ["http"]
    assert store.get("web1", "http").enabled is False  # type: ignore[union-attr]
    assert store.set_enabled("web1", "http", True)
    assert store.list(enabled=False) == []
    assert not store.set_enabled("ghost", "x", True)


def test_maintenance_crud(store: CheckStore) -> None:
    with pytest.raises(ValueError, match="end_time"):
        store.add_scheduled_maintenance("web1", "http", 100, 100, "empty")
    a = store.add_scheduled_maintenance("web1", "http", 300, 400, "later")
    b = store.add_scheduled_maintenance("web1", "http", 100, 200, "first")
    assert [m.id for m in store.list_maintenances("web1", "http")] == [b, a]
    detail = store.get("web1", "http", now=150)
    assert detail is not None and detail.scheduled_maintenance is not None
    assert detail.scheduled_maintenance.id == b
    assert not store.delete_maintenance("web1", "disk", a)  # another check's id
    assert store.delete_maintenance("web1", "http", a)
    assert [m.id for m in store.list_maintenances("web1", "http")] == [b]


def test_history_newest_first_with_limit(store: CheckStore) -> None:
    assert [h.state for h in store.history("db1", "disk")] == ["ok", "warning"]
    assert [h.state for h in store.history("db1", "disk", limit=1)] == ["ok"]


def test_incidents_list_and_get(store: CheckStore) -> None:
    all_ = store.list_incidents()
    assert sorted(i.check_id for i in all_) == sorted({i.check_id for i in all_})
    assert len(all_) == 3
    assert [i.entity for i in store.list_incidents(open=False)] == ["db1"]
    assert sorted(i.entity for i in store.list_incidents(open=True)) == ["db2", "web1"]
    assert [i.entity for i in store.list_incidents(level_lte=1)] == ["web1"]
    assert [i.entity for i in store.list_incidents(tag="role=web")] == ["web1"]
    assert len(store.list_incidents(limit=1)) == 1
    db1 = store.list_incidents(open=False)[0]
    got = store.get_incident(db1.id)
    assert got is not None
    incident, events = got
    assert incident.end_time == 10.0 and [e.type for e in events] == ["STA", "END"]
    assert store.get_incident(99999) is None


def test_list_shows_the_ack_and_maintenance_that_get_shows(
    settings: Settings, store: CheckStore
) -> None:
    """``checks list`` and ``checks show`` agree: the list carries the current ack and window."""
    now = time.time()
    handle = make_handler(
        store.r,
        Names(settings.namespace),
        Keys(settings.namespace),
        settings,
        ProcessorMetrics(CollectorRegistry()),
    )
    handle([message(settings, [ev("web9", "api", now - 5, "critical", initial_failure_delay=0)])])
    handle([message(settings, [ev("web9", "api", now - 1, "acknowledgement", duration=600)])])
    mid = store.add_scheduled_maintenance("db2", "disk", now - 60, now + 3600, "patching")

    listed = {f"{d.entity}:{d.check}": d for d in store.list()}
    assert listed["db2:disk"].scheduled_maintenance is not None
    assert listed["db2:disk"].scheduled_maintenance.id == mid
    assert listed["db2:disk"].acknowledgement is None
    assert listed["web9:api"].acknowledgement is not None
    assert listed["web9:api"].acknowledgement == store.get("web9", "api").acknowledgement  # type: ignore[union-attr]
    assert listed["web1:http"].scheduled_maintenance is None
    assert listed["web1:http"].acknowledgement is None


def test_details_at_reads_many_checks_as_at_a_time(store: CheckStore) -> None:
    """The rollup accounting's read: known checks only, each with its tags and the window
    covering ``t``, across several script calls (more checks than one call takes)."""
    a = store.add_scheduled_maintenance("web1", "http", 100, 200, "covers 150")
    store.add_scheduled_maintenance("web1", "http", 300, 400, "later")
    store.add_scheduled_maintenance("db2", "disk", 10, 20, "over by 150")
    ids = [check_id("web1", "http"), check_id("web1", "disk"), check_id("db2", "disk")]
    unknown = [check_id(f"ghost{i}", "c") for i in range(check_store._DETAILS_CHUNK + 5)]
    found = store.details_at([*unknown[:3], *ids, *unknown[3:], ids[0]], 150)
    assert sorted(found) == sorted(ids)
    http, disk, db2 = (found[i] for i in ids)
    assert http.state == "critical" and http.failing and http.tags == ("role=web",)
    assert http.scheduled_maintenance is not None and http.scheduled_maintenance.id == a
    assert disk.tags == ("role=web", "tier=1") and not disk.failing
    assert disk.scheduled_maintenance is None and db2.scheduled_maintenance is None
    assert found == store.details_at(ids, 150)  # the same, read in one call
    assert store.details_at([], 150) == {}
