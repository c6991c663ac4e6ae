"""The dry run agrees with the real pipeline (hypothesis, 50 random scenarios, real Redis).

Each scenario configures random contacts, media (intervals, rollup) and rules
(entities, time restrictions, blackholes, media per severity), maybe a
scheduled maintenance, then feeds random events one at a time.  Before each
event, ``dry_run`` answers from the current state; then the event goes
through the real processor and notifier batch handlers in-process, and the
decision records they wrote and the deliveries they produced must equal the
dry run's answer.  The dry run must also leave Redis untouched.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics
from services.processor.worker import make_handler as processor_handler
from shared.amqp import Names, partition_of
from shared.check_store import CheckStore
from shared.config import Settings
from shared.consumer import Message
from shared.directory import Directory
from shared.explain.dry_run import dry_run
from shared.explain.packing import routine
from shared.explain.reading import read_records
from shared.explain.records import EventRecord, NotificationRecord
from shared.keys import Keys, check_id
from shared.models import (
    ENCODER,
    CheckEvent,
    Contact,
    Medium,
    Rule,
    SeverityRoute,
    TimeRecurrence,
    decode_deliveries,
)
from shared.notifier.expander import NotifierMetrics
from shared.notifier.expander import make_handler as notifier_handler
from shared.notifier.store import NotifierStore
from shared.store import connect_redis, delete_namespace

pytestmark = pytest.mark.integration

T0 = 1_799_996_400.0  # 2027-01-15 06:20 UTC, a Friday
CHECKS = (("web1", "http"), ("db1", "disk"))


class Pipeline:
    """The processor and notifier batch handlers, in-process, against one namespace."""

    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.s, self.r = settings, r
        self.names, self.keys = Names(settings.namespace), Keys(settings.namespace)
        self.process = processor_handler(
            r, self.names, self.keys, settings, ProcessorMetrics(CollectorRegistry())
        )
        self.notify = notifier_handler(
            NotifierStore(r, self.keys, settings.notification_ttl_s),
            Directory(r, self.keys),
            self.names,
            NotifierMetrics(CollectorRegistry()),
        )
        self.tag = 0

    def _msg(self, body: bytes, queue: str) -> Message:
        self.tag += 1
        return Message(
            body=body,
            delivery_tag=self.tag,
            queue=queue,
            routing_key="",
        )

    def send(self, event: CheckEvent) -> list[tuple[str, str, str]]:
        """One event through processor and notifier; (contact, medium, type) per delivery."""
        k = partition_of(event.entity, event.check, self.s.partitions)
        res = self.process([self._msg(ENCODER.encode([event]), self.names.processor(k))])
        assert not res.rejected
        if res.after_publish:
            res.after_publish()
        refs = [self._msg(o.body, self.names.notifications) for o in res.outputs]
        if not refs:
            return []
        out = self.notify(refs)
        assert not out.rejected
        if out.after_publish:
            out.after_publish()
        deliveries = [d for o in out.outputs for d in decode_deliveries(o.body)]
        return sorted((d.contact.id, d.medium.id, d.type) for d in deliveries)


def snapshot(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    """Every key of the namespace with its dumped value and TTL presence.

    The shared Redis holds every test's namespaces (80k keys seen): SCAN in
    pages of 10,000, not Redis's default 10, or each snapshot costs
    thousands of round trips.
    """
    found = r.scan_iter(match=keys.pattern(), count=10_000)
    return {k: (r.dump(k), r.ttl(k) > 0) for k in sorted(found)}


# --------------------------------------------------------------------------- scenarios

zones = st.sampled_from(["UTC", "Europe/Oslo", "America/New_York", "Asia/Tokyo"])
recurrences = st.builds(
    lambda days, start, length: TimeRecurrence(
        days=tuple(sorted(days)), start=f"{start:02d}:00", end=f"{(start + length) % 24:02d}:00"
    ),
    st.sets(st.integers(1, 7), min_size=1, max_size=7),
    st.integers(0, 23),
    st.integers(1, 23),
)
routes = st.builds(
    lambda media, hole: SeverityRoute(media=tuple(sorted(media)), blackhole=hole),
    st.sets(st.sampled_from(["webhook", "email"]), max_size=2),
    st.sampled_from([False, False, False, True]),
)


@st.composite
def configs(draw: st.DrawFn) -> tuple[list[Contact], list[Medium], list[Rule]]:
    contacts, media, rules = [], [], []
    for i in range(draw(st.integers(1, 3))):
        cid = f"c{i}"
        contacts.append(Contact(id=cid, name=f"C{i}", timezone=draw(zones)))
        for mtype in draw(st.sets(st.sampled_from(["webhook", "email"]), min_size=1)):
            media.append(
                Medium(
                    id=f"{cid}-{mtype}",
                    contact_id=cid,
                    type=mtype,
                    address="http://127.0.0.1:9/x" if mtype == "webhook" else f"{cid}@x.org",
                    interval=draw(st.sampled_from([0, 60, 600])),
                    rollup_threshold=draw(st.sampled_from([None, None, 2])),
                )
            )
        for j in range(draw(st.integers(1, 2))):
            rules.append(
                Rule(
                    id=f"{cid}-r{j}",
                    contact_id=cid,
                    entities=draw(st.sampled_from([(), ("web1",), ("db1",)])),
                    tags=draw(st.sampled_from([(), (), ("role=web",)])),
                    time_restrictions=tuple(draw(st.lists(recurrences, max_size=1))),
                    critical=draw(routes),
                    warning=draw(routes),
                    unknown=draw(routes),
                )
            )
    return contacts, media, rules


@st.composite
def event_lists(draw: st.DrawFn) -> list[CheckEvent]:
    t = T0 + draw(st.integers(0, 7 * 86400))  # any weekday and hour
    events = []
    for i in range(draw(st.integers(3, 10))):
        t += draw(st.sampled_from([0, 5, 20, 35, 70, 700, 5000]))
        entity, check = draw(st.sampled_from(CHECKS))
        state = draw(
            st.sampled_from(
                [
                    *("ok", "critical", "critical", "warning", "unknown"),
                    *("acknowledgement", "test_notifications"),
                ]
            )
        )
        kind = "action" if state in ("acknowledgement", "test_notifications") else "service"
        delay = draw(st.sampled_from([None, None, 0, 30]))
        events.append(
            CheckEvent(
                id=f"ev{i}",
                entity=entity,
                check=check,
                type=kind,  # type: ignore[arg-type]
                state=state,
                time=t,
                received=t,
                tags=("role=web",) if entity == "web1" else (),
                initial_failure_delay=delay if kind == "service" else None,
                duration=300 if state == "acknowledgement" else None,
            )
        )
    return events


@pytest.fixture
def r(settings: Settings) -> redis.Redis:
    return connect_redis(settings)


# Fifty examples through both pipelines: about 10 s on an idle box, over 120 s when
# other engineers load it (load average 15); the default timeout is for hangs.
@pytest.mark.timeout(600)
@hsettings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(config=configs(), events=event_lists(), maintenance=st.booleans())
def test_dry_run_agrees_with_the_pipeline(
    settings: Settings,
    r: redis.Redis,
    config: tuple[list[Contact], list[Medium], list[Rule]],
    events: list[CheckEvent],
    maintenance: bool,
) -> None:
    delete_namespace(r, settings.namespace)
    keys = Keys(settings.namespace)
    d = Directory(r, keys)
    contacts, media, rules = config
    for c in contacts:
        d.put_contact(c)
    for m in media:
        d.put_medium(m)
    for rule in rules:
        d.put_rule(rule)
    if maintenance:
        CheckStore(r, keys).add_scheduled_maintenance(
            "web1", "http", events[0].time + 30, events[0].time + 800, "planned"
        )
    pipe = Pipeline(settings, r)
    for ev in events:
        before = snapshot(r, keys)
        previous = r.hget(keys.check(check_id(ev.entity, ev.check)), "state")
        dry = dry_run(r, keys, ev)
        assert snapshot(r, keys) == before, "the dry run changed Redis"
        delivered = pipe.send(ev)

        recs = read_records(r, keys, check_id(ev.entity, ev.check))
        real_event = [x for x in recs if isinstance(x, EventRecord) and x.event_id == ev.id]
        assert dry.processor is not None
        stored = [] if routine(previous, ev.state, dry.processor) else [dry.processor]
        assert real_event == stored, ev
        assert dry.would_notify == (dry.processor.notification_id is not None)  # type: ignore[union-attr]
        if not dry.would_notify:
            assert delivered == []
            continue
        real_note = [
            x
            for x in recs
            if isinstance(x, NotificationRecord)
            and x.notification_id == dry.processor.notification_id  # type: ignore[union-attr]
        ]
        assert real_note == [dry.notifier], ev
        assert sorted((x.contact_id, x.medium_id, x.type) for x in dry.recipients) == delivered


def test_records_are_capped_and_expire(settings: Settings, r: redis.Redis) -> None:
    s = msgspec.structs.replace(settings, explain_max_records=5, explain_ttl_s=120)
    pipe = Pipeline(s, r)
    for i in range(12):
        pipe.send(
            CheckEvent(
                id=f"cap{i}",
                entity="web1",
                check="http",
                type="service",
                state="critical",
                time=T0 + i,
                received=T0 + i,
            )
        )
    keys = Keys(s.namespace)
    recs = read_records(r, keys, check_id("web1", "http"))
    assert [x.event_id for x in recs if isinstance(x, EventRecord)] == [
        f"cap{i}" for i in range(7, 12)
    ]
    assert 0 < r.ttl(keys.check_explain(check_id("web1", "http"))) <= 120


def test_recording_can_be_switched_off(settings: Settings, r: redis.Redis) -> None:
    s = msgspec.structs.replace(settings, explain_max_records=0)
    Pipeline(s, r).send(
        CheckEvent(
            id="off", entity="web1", check="http", type="service", state="ok", time=T0, received=T0
        )
    )
    assert not r.exists(Keys(s.namespace).check_explain(check_id("web1", "http")))


def test_routine_ok_events_are_not_recorded(settings: Settings, r: redis.Redis) -> None:
    """A failure and the ok ending it are decisions; ok after ok (or first seen ok) is not."""
    pipe = Pipeline(settings, r)
    for i, state in enumerate(["ok", "ok", "ok", "critical", "ok", "ok"]):
        pipe.send(
            CheckEvent(
                id=f"r{i}",
                entity="web1",
                check="http",
                type="service",
                state=state,
                time=T0 + i,
                received=T0 + i,
            )
        )
    recs = read_records(r, Keys(settings.namespace), check_id("web1", "http"))
    assert [(x.event_id, x.reason) for x in recs if isinstance(x, EventRecord)] == [
        ("r3", "initial_failure_delay: failing for 0 s of 30"),
        ("r4", "ok: no problem was notified for the critical episode"),
    ]
