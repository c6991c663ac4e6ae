"""Decision records name the filter or suppression reason and its numbers (pure cores only).

Each processor scenario runs events through ``apply_event`` and packs the last
event's verdicts with ``shared.explain.event_record`` (what the processor
worker stores); each notifier scenario runs ``select``/``expand`` and packs
with ``notification_record`` (what the notifier worker stores).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from shared.directory import DirectorySnapshot
from shared.explain.display import humanize
from shared.explain.packing import event_record, notification_record
from shared.explain.reading import decode_records
from shared.explain.records import ENCODER, EventRecord, NotificationRecord
from shared.explain.simulate import route, simulate
from shared.models import CheckEvent, Medium, TimeRecurrence
from shared.processing.effects import CheckView
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState, apply, state_query
from shared.routing.selection import compile_index, select
from tests.unit.processor_sim import CID, DISABLE, ev, maint, run
from tests.unit.test_notifier_core import T0, contact, medium, note, rule


def last_record(events: list[CheckEvent | str], scheduled: tuple = ()) -> EventRecord:  # type: ignore[type-arg]
    _, results = run(events, scheduled)
    plain = [e for e in events if isinstance(e, CheckEvent)]
    res = results[-1]
    return event_record(plain[-1], res.decisions, res.notification)


@pytest.mark.parametrize(
    ("events", "scheduled", "filter_", "outcome", "words"),
    [
        pytest.param(
            [ev(0, "critical"), ev(12, "critical")],
            (),
            "initial_failure_delay",
            "block",
            ["failing for 12 s of 30"],
            id="initial_failure_delay holds",
        ),
        pytest.param(
            [ev(0, "critical", initial_failure_delay=5), ev(12, "critical")],
            (),
            "state_change",
            "notify",
            ["first problem of the episode"],
            id="first problem notifies",
        ),
        pytest.param(
            [ev(0, "critical"), ev(30, "critical"), ev(50, "critical")],
            (),
            "repeat_failure_delay",
            "block",
            ["critical notified 20 s ago, repeat 60"],
            id="repeat_failure_delay holds",
        ),
        pytest.param(
            [ev(0, "critical"), ev(30, "critical"), ev(95, "critical")],
            (),
            "repeat_failure_delay",
            "notify",
            ["notified 65 s ago >= 60"],
            id="repeat_failure_delay repeats",
        ),
        pytest.param(
            [ev(0, "warning"), ev(30, "warning"), ev(40, "critical"), ev(50, "warning")],
            (),
            "state_change",
            "block",
            ["critical -> warning", "notified 20 s ago (repeat 60)"],
            id="state_change flapping held",
        ),
        pytest.param(
            [ev(0, "critical"), ev(40, "critical")],
            (maint(10, 100, "mw3"),),
            "scheduled_maintenance",
            "block",
            ["mw3 from 10 to 100"],
            id="scheduled_maintenance",
        ),
        pytest.param(
            [
                ev(0, "critical"),
                ev(30, "critical"),
                ev(35, "acknowledgement", duration=600),
                ev(100, "critical"),
            ],
            (),
            "unscheduled_maintenance",
            "block",
            ["acknowledged until 635"],
            id="acknowledged",
        ),
        pytest.param(
            [ev(0, "critical"), DISABLE, ev(40, "critical")],
            (),
            "disabled",
            "block",
            ["check is disabled"],
            id="disabled",
        ),
        pytest.param(
            [ev(0, "ok"), ev(10, "ok")],
            (),
            "ok",
            "block",
            ["already ok"],
            id="ok while ok",
        ),
        pytest.param(
            [ev(0, "critical"), ev(10, "ok")],
            (),
            "ok",
            "block",
            ["no problem was notified for the critical episode"],
            id="ok before any problem",
        ),
        pytest.param(
            [ev(0, "critical", initial_recovery_delay=60), ev(30, "critical"), ev(40, "ok")],
            (),
            "initial_recovery_delay",
            "block",
            ["ok for 0 s of 60"],
            id="initial_recovery_delay holds",
        ),
        pytest.param(
            [ev(0, "critical"), ev(30, "critical"), ev(40, "ok")],
            (),
            "initial_recovery_delay",
            "notify",
            ["ok for 0 s >= 0"],
            id="recovery notifies",
        ),
        pytest.param(
            [ev(0, "ok"), ev(10, "acknowledgement")],
            (),
            "acknowledgement",
            "block",
            ["rejected, the check is ok"],
            id="ack of a healthy check",
        ),
        pytest.param(
            [ev(0, "ok"), ev(10, "test_notifications")],
            (),
            "test_notifications",
            "notify",
            ["always notified"],
            id="test notification",
        ),
        pytest.param(
            [ev(100, "critical"), ev(50, "ok")],
            (),
            "out_of_order",
            "block",
            ["event time 50 < last update 100"],
            id="out of order",
        ),
    ],
)
def test_processor_record_names_filter_and_numbers(
    events: list[CheckEvent | str],
    scheduled: tuple,  # type: ignore[type-arg]
    filter_: str,
    outcome: str,
    words: list[str],
) -> None:
    rec = last_record(events, scheduled)
    assert (rec.filter, rec.outcome) == (filter_, outcome)
    for w in words:
        assert w in rec.reason, rec.reason
    assert rec.reason.startswith(f"{filter_}:")
    assert (rec.notification_id is not None) == (outcome == "notify")
    # Round trip through the stored form.
    assert decode_records([ENCODER.encode(rec)]) == [rec]


def test_notified_problem_keeps_the_reasons_that_let_it_through() -> None:
    rec = last_record([ev(0, "critical"), ev(45, "critical")])
    assert rec.notification_type == "problem"
    assert "initial_failure_delay: failing for 45 s >= 30" in rec.passed
    assert "disabled: check is enabled" in rec.passed


# --------------------------------------------------------------------------- notifier

OSLO_SAT = datetime(2026, 1, 17, 9, 3, tzinfo=UTC).timestamp()  # Sat 10:03 in Oslo (UTC+1)


def notifier_records(
    contacts: list,
    media: list,
    rules: list,
    notes: list,  # type: ignore[type-arg]
) -> list[NotificationRecord]:
    index = compile_index(
        DirectorySnapshot(
            version=1,
            contacts={c.id: c for c in contacts},
            media={m.id: m for m in media},
            rules={r.id: r for r in rules},
        )
    )
    state = NotifierState()
    out = []
    for n in notes:
        o = expand(index, state, n, select(index, n))
        apply(state, o.effects, n)
        out.append(
            notification_record(n, o.decisions, len(o.deliveries), index.contacts, index.media)
        )
    return out


WORKDAYS = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00")


@pytest.mark.parametrize(
    ("contacts", "media", "rules", "notes", "code", "words"),
    [
        pytest.param(
            [contact("a", "Europe/Oslo")],
            [medium("m1")],
            [rule("7", times=(WORKDAYS,))],
            [note(at=OSLO_SAT)],
            "time_restriction",
            ["Mon-Fri 08:00-16:00", "Europe/Oslo", "excludes Sat 10:03"],
            id="time restriction",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1")],
            [rule("4", warning=(), blackhole=("warning",))],
            [note(state="warning")],
            "blackhole",
            ["blackholed by rule 4 for warning"],
            id="blackhole",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1", interval=900)],
            [rule("1")],
            [note(t=0), note(t=60)],
            "interval",
            [f"blocked until {T0 + 900:.0f}"],
            id="interval",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1", rollup=2, interval=600)],
            [rule("1")],
            [note("problem", "c1", t=0), note("problem", "c2", t=1), note("problem", "c3", t=2)],
            "rollup",
            ["rolled up: 3 failing >= threshold 2"],
            id="rollup",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1", mtype="email")],
            [rule("1", media=("webhook",))],
            [note()],
            "no_media",
            ["rules route critical to no medium"],
            id="no media",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1")],
            [rule("1", entities=("db1",))],
            [note()],
            "no_contact",
            ["no rule matches web1:c1"],
            id="no rule at all",
        ),
        pytest.param(
            [contact("a")],
            [medium("m1")],
            [rule("1")],
            [note("recovery", state="ok")],
            "not_notified",
            ["got no problem in episode ep-c1"],
            id="recovery without problem",
        ),
    ],
)
def test_notifier_record_names_reason_and_numbers(
    contacts: list,  # type: ignore[type-arg]
    media: list,  # type: ignore[type-arg]
    rules: list,  # type: ignore[type-arg]
    notes: list,  # type: ignore[type-arg]
    code: str,
    words: list[str],
) -> None:
    rec = notifier_records(contacts, media, rules, notes)[-1]
    (suppressed,) = [r for r in rec.routes if r.verdict == "suppress"]
    assert suppressed.code == code
    for w in words:
        assert w in suppressed.text, suppressed.text
    if suppressed.contact_id:
        assert suppressed.contact == suppressed.contact_id.upper()  # name from the config
    assert rec.deliveries == 0
    assert decode_records([ENCODER.encode(rec)]) == [rec]


def test_delivered_route_names_contact_and_medium() -> None:
    (rec,) = notifier_records([contact("a")], [medium("m1")], [rule("1")], [note()])
    (r,) = rec.routes
    assert (r.verdict, r.contact, r.medium_id, r.medium_type) == ("deliver", "A", "m1", "webhook")
    assert rec.deliveries == 1 and rec.severity == "critical"


# --------------------------------------------------------------------------- dry run (pure)


def _index(media: list[Medium]):  # type: ignore[no-untyped-def]
    return compile_index(
        DirectorySnapshot(
            version=3,
            contacts={c.id: c for c in (contact("a"), contact("b"), contact("c"))},
            media={m.id: m for m in media},
            rules={
                r.id: r
                for r in (
                    rule("1", "a", media=("webhook",)),
                    rule("2", "b", entities=("db1",)),
                )
            },
        )
    )


def test_simulate_explains_everyone() -> None:
    media = [medium("ma", "a"), medium("ma2", "a", mtype="email"), medium("mb", "b")]
    index = _index(media)
    view = CheckView(id=CID)
    first = simulate(
        view, ev(0, "critical", initial_failure_delay=0), 1, index, lambda q: NotifierState()
    )
    assert first.would_notify and first.notification_type == "problem"
    assert first.processor is not None and first.processor.filter == "state_change"
    assert [(r.contact, r.medium_type) for r in first.recipients] == [("A", "webhook")]
    others = {(o.contact_id, o.medium_id): (o.code, o.text) for o in first.others}
    assert others[("b", None)][0] == "no_rule" and "web1:http" in others[("b", None)][1]
    assert others[("c", None)][0] == "no_rule"
    assert others[("a", "ma2")] == ("not_routed", "matching rules do not route critical to email")


def test_simulate_blocked_event_does_not_route() -> None:
    index = _index([medium("ma", "a")])
    dry = simulate(CheckView(id=CID), ev(0, "critical"), 1, index, lambda q: NotifierState())
    assert not dry.would_notify and dry.notifier is None and dry.recipients == ()
    assert dry.processor is not None
    assert dry.processor.reason == "initial_failure_delay: failing for 0 s of 30"


def test_route_reads_only_what_the_query_asks_and_sees_blocks() -> None:
    index = _index([medium("ma", "a", interval=600)])
    n = note(t=0, check="http")
    asked = []

    def reader(q):  # type: ignore[no-untyped-def]
        asked.append(q)
        return NotifierState(blocks={f"ma:{n.check_id}:critical": T0 + 300})

    dry = route(index, reader, n)
    assert asked == [state_query([(n, select(index, n))])]
    (r,) = dry.notifier.routes  # type: ignore[union-attr]
    assert r.code == "interval" and f"blocked until {T0 + 300:.0f}" in r.text
    assert dry.recipients == ()


def test_humanize_shows_epochs_on_the_operator_clock() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    text = humanize(f"interval: critical blocked until {OSLO_SAT:.0f}", oslo)
    assert text == "interval: critical blocked until 2026-01-17 10:03:00 CET"
    # Small numbers (delays, counts) are left alone.
    assert humanize("failing for 12 s of 30", oslo) == "failing for 12 s of 30"
    assert (
        msgspec.json.decode(
            ENCODER.encode(
                EventRecord(
                    time=1,
                    event_id="e",
                    type="service",
                    state="ok",
                    filter="ok",
                    outcome="block",
                    reason="r",
                )
            )
        )["kind"]
        == "event"
    )
