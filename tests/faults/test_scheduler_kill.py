"""Durable escalation timers: kill -9 the scheduler between steps, step 2 still fires once.

A two-step escalation (step 1 waits 2 s) is started in Redis the way the
notifier starts one.  Scheduler A fires step 1 and is SIGKILLed (its lease is
left behind); scheduler B takes over once the lease lapses and fires step 2
at its due time plus a few seconds.  Exactly one page per step reaches
``NS.notifications``, each with its deterministic id, and the timeline holds
each step once.  Two schedulers running side by side (one holds the lease)
fire each step of a three-step escalation once, and a private Redis (AOF)
restarted between steps keeps the pending step, which then fires once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry

from services.scheduler.worker import Scheduler, SchedulerMetrics
from shared.checks import CheckRecord
from shared.config import Settings
from shared.escalation import Escalation, Policy, Step, Target
from shared.escalation_store import EscalationStore, page_id
from shared.keys import Keys
from shared.models import Notification
from shared.oncall_store import OncallStore
from shared.records import to_hash
from shared.sender import Sender
from shared.store import connect_redis
from tests.conftest import REDIS_URL, cleanup_namespace, settings_env
from tests.faults.conftest import (
    PrivateRabbit,
    PrivateRedis,
    fault_env,
    make_settings,
    queue_depths,
)
from tests.support import collect, declare

pytestmark = pytest.mark.faults

LEASE_MS = 1500
WAIT_S = 2


@pytest.fixture
def scheduler_env(settings: Settings) -> dict[str, str]:
    env = settings_env(settings)
    env.update(
        {
            "TOCSIN_SCHEDULER_TICK_MS": "100",
            "TOCSIN_SCHEDULER_LEASE_MS": str(LEASE_MS),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }
    )
    return env


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _timeline(store: EscalationStore, eid: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in store.timeline(eid)]


def _until(what: str, test: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():  # type: ignore[operator]
            return
        time.sleep(0.05)  # polling Redis for the scheduler's write, not waiting out a duration
    raise AssertionError(f"timed out waiting for {what}")


def _all_pages(
    settings: Settings, procs: list[subprocess.Popen[bytes]], n: int
) -> list[dict[str, object]]:
    """Every page ever published, once no scheduler can publish any more: the schedulers
    are stopped (SIGTERM: a scheduler finishes the tick it is in, so a step it claimed is
    published before it exits), the queue must hold exactly ``n`` pages, and they are read.
    Replaces waiting 3 s for an ``n+1``-th page that should never come."""
    running = [p for p in procs if p.poll() is None]  # not one the test killed
    for p in running:
        p.send_signal(signal.SIGTERM)
    for p in running:
        assert p.wait(timeout=15) == 0
    queue = f"{settings.namespace}.notifications"
    assert queue_depths(settings)[queue] == n
    return collect(settings, [queue], n, timeout=10)


def _start_escalation(
    settings: Settings, waits: tuple[int, ...]
) -> tuple[redis.Redis, Keys, EscalationStore]:
    """A running escalation ``e1`` with one step per wait, each paging contact ``c<n>``,
    started as the notifier starts one (problem notification, failing check)."""
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    oncall, store = OncallStore(r, keys), EscalationStore(r, keys)
    steps = tuple(Step(targets=(Target(contact=f"c{i}"),), wait_s=w) for i, w in enumerate(waits))
    oncall.put_policy(
        Policy(id="pol", name="ops", steps=steps), {f"c{i}": 1 for i in range(len(waits))}
    )
    now = time.time()
    r.hset(
        keys.check("c1"),
        mapping=to_hash(
            CheckRecord(entity_name="web1", name="http", state="critical", episode_id="ep1")
        ),
    )
    origin = Notification(
        id="n1",
        type="problem",
        check_id="c1",
        entity="web1",
        check="http",
        state="critical",
        severity="critical",
        time=now,
        episode_id="ep1",
    )
    r.hset(keys.notification("n1"), mapping=to_hash(origin))
    esc = Escalation(
        id="e1", policy_id="pol", notification_id="n1", check_id="c1", episode_id="ep1", started=now
    )
    pipe = r.pipeline(transaction=True)
    store.start(pipe, esc, now)
    pipe.execute()
    return r, keys, store


@pytest.mark.serial  # asserts on timing: run alone (docs/testing.md)
def test_step_two_fires_once_after_the_scheduler_is_killed(
    settings: Settings, scheduler_env: dict[str, str], procs: list[subprocess.Popen[bytes]]
) -> None:
    r, keys, store = _start_escalation(settings, waits=(WAIT_S, 60))
    cmd = [sys.executable, "-m", "services.scheduler"]
    a = subprocess.Popen(cmd, env=scheduler_env, stderr=subprocess.DEVNULL)
    procs.append(a)
    _until("step 1", lambda: len(_timeline(store, "e1")) >= 1)
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert r.get(keys.scheduler_lease()) is not None  # A died holding the lease
    b = subprocess.Popen(cmd, env=scheduler_env, stderr=subprocess.DEVNULL)
    procs.append(b)
    _until("step 2", lambda: len(_timeline(store, "e1")) >= 2)
    pages = _all_pages(settings, procs, 2)

    entries = _timeline(store, "e1")
    assert [(e["step"], e["outcome"], e["paged"]) for e in entries] == [
        (1, "paged", ["c0"]),
        (2, "paged", ["c1"]),
    ]
    fired_1, fired_2 = float(entries[0]["time"]), float(entries[1]["time"])  # type: ignore[arg-type]
    assert WAIT_S <= fired_2 - fired_1 <= WAIT_S + 5
    assert sorted(json.loads(p["body"])["id"] for p in pages) == [
        page_id("e1", 0),
        page_id("e1", 1),
    ]
    assert store.pending() == 0  # last step: the escalation is finished


def test_two_schedulers_at_once_fire_each_step_once(
    settings: Settings, scheduler_env: dict[str, str], procs: list[subprocess.Popen[bytes]]
) -> None:
    _, _, store = _start_escalation(settings, waits=(1, 1, 60))
    cmd = [sys.executable, "-m", "services.scheduler"]
    for _ in range(2):
        procs.append(subprocess.Popen(cmd, env=scheduler_env, stderr=subprocess.DEVNULL))
    _until("step 3", lambda: len(_timeline(store, "e1")) >= 3)
    pages = _all_pages(settings, procs, 3)
    assert [e["step"] for e in _timeline(store, "e1")] == [1, 2, 3]
    assert sorted(json.loads(p["body"])["id"] for p in pages) == [
        page_id("e1", n) for n in range(3)
    ]
    assert store.pending() == 0  # last step: nothing is left to fire again


def test_a_pending_step_survives_a_redis_restart(
    private_redis: PrivateRedis, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Redis (AOF) restarts between steps; the scheduler reconnects and step 2 fires once."""
    settings = make_settings(redis_url=private_redis.url)
    try:
        _, _, store = _start_escalation(settings, waits=(2, 60))
        env = fault_env(
            settings,
            TOCSIN_SCHEDULER_TICK_MS="100",
            TOCSIN_SCHEDULER_LEASE_MS=str(LEASE_MS),
            PYTHONPATH=os.environ.get("PYTHONPATH", ""),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.scheduler"], env=env, stderr=subprocess.DEVNULL
            )
        )
        _until("step 1", lambda: len(_timeline(store, "e1")) >= 1)
        private_redis.stop()  # SIGTERM: Redis writes its AOF and exits
        private_redis.start()
        _until("step 2", lambda: len(_timeline(store, "e1")) >= 2, timeout=30)
        pages = _all_pages(settings, procs, 2)
        assert [e["step"] for e in _timeline(store, "e1")] == [1, 2]
        assert sorted(json.loads(p["body"])["id"] for p in pages) == [
            page_id("e1", 0),
            page_id("e1", 1),
        ]
        assert store.pending() == 0  # last step: nothing is left to fire again
    finally:
        cleanup_namespace(settings)


def test_a_scheduler_dying_mid_step_refires_the_same_page_once(settings: Settings) -> None:
    """Killed after publishing step 1's page but before advancing: the step is claimed
    again after ``TOCSIN_SCHEDULER_INFLIGHT_S`` and re-published with the *same* page id
    (the notifier expands an id once: test_notifier_worker's redelivery test), and the
    timeline and the step counter move once.  In-process, on a fake clock."""
    declare(settings)
    r, keys, store = _start_escalation(settings, waits=(60, 60))
    now = time.time()

    class Killed(Exception):
        pass

    def killed(*_: object) -> list[bool]:
        raise Killed

    a = Scheduler(settings, r, Sender(settings), SchedulerMetrics(CollectorRegistry()))
    a.store.advance = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        a.tick(now)
    assert _timeline(store, "e1") == []
    r.delete(keys.scheduler_lease())  # A's lease lapsed
    b = Scheduler(settings, r, Sender(settings), SchedulerMetrics(CollectorRegistry()))
    assert b.tick(now + 1) == 0  # still in flight: nobody fires it twice at once
    assert b.tick(now + settings.scheduler_inflight_s + 0.5) == 1
    assert b.tick(now + settings.scheduler_inflight_s + 1) == 0  # step 2 is 60 s away
    pages = _all_pages(settings, [], 2)  # in-process: nothing else publishes
    assert [json.loads(p["body"])["id"] for p in pages] == [page_id("e1", 0)] * 2
    assert [(e["step"], e["paged"]) for e in _timeline(store, "e1")] == [(1, ["c0"])]
    loaded = store.load(["e1"])["e1"]
    assert loaded is not None and loaded.step == 1
    for s in (a, b):
        s.sender.close()


def test_a_step_due_while_rabbitmq_is_down_fires_once_when_it_is_back(
    services_up: None,
    private_rabbit: PrivateRabbit,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """A private RabbitMQ stops (SIGTERM) after step 1; step 2 falls due while it is down,
    so its page cannot be published and the escalation is not advanced.  When the broker
    is back, step 2 fires once; step 1's page, published before the restart, is still
    queued (durable queue, persistent message)."""
    node = private_rabbit
    settings = make_settings(REDIS_URL, node.url)
    try:
        r, keys, store = _start_escalation(settings, waits=(WAIT_S, 60))
        env = fault_env(
            settings,
            TOCSIN_SCHEDULER_TICK_MS="100",
            TOCSIN_SCHEDULER_LEASE_MS=str(LEASE_MS),
            TOCSIN_SCHEDULER_INFLIGHT_S="2",
            # Ticks fail while the broker is down; retried every 0.25 s (not 1 s), the
            # scheduler sees the broker back sooner.
            TOCSIN_RECONNECT_MAX_S="0.25",
            PYTHONPATH=os.environ.get("PYTHONPATH", ""),
        )
        cmd = [sys.executable, "-m", "services.scheduler"]
        procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL))
        _until("step 1", lambda: len(_timeline(store, "e1")) >= 1)
        fired_1 = float(_timeline(store, "e1")[0]["time"])  # type: ignore[arg-type]
        node.stop()
        # The scheduler claimed step 2 (its score moved past the due time by the in-flight
        # time) but could not publish: nothing advanced.
        _until(
            "step 2 claimed while the broker is down",
            lambda: (r.zscore(keys.escalation_due(), "e1") or 0) > fired_1 + WAIT_S + 1,
            timeout=30,
        )
        assert len(_timeline(store, "e1")) == 1
        node.start()
        _until("step 2", lambda: len(_timeline(store, "e1")) >= 2, timeout=90)
        pages = _all_pages(settings, procs, 2)
        assert [e["step"] for e in _timeline(store, "e1")] == [1, 2]
        assert sorted(json.loads(p["body"])["id"] for p in pages) == [
            page_id("e1", 0),
            page_id("e1", 1),
        ]
        assert store.pending() == 0  # last step: nothing is left to fire again
    finally:
        cleanup_namespace(settings)
