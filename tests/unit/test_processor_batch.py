"""The processor's batch decisions (services/processor/batch.py), without Redis."""

from __future__ import annotations

import msgspec

from services.processor.batch import (
    apply_batch,
    explain_record,
    fresh_events,
    incident_ids_needed,
    load_query,
    reused_incident_ids,
)
from shared.keys import check_id
from shared.processing.effects import CheckView
from shared.processing.state_machine import apply_event
from tests.unit.processor_sim import CID, ev

OTHER = check_id("db1", "disk")


def test_load_query_groups_events_per_check_and_ids_per_partition() -> None:
    a, b = ev(0, "ok", id="a"), ev(1, "critical", id="b")
    other = msgspec.structs.replace(ev(0, "ok", id="c"), entity="db1", check="disk")
    q = load_query([(0, a), (2, other), (0, b)])
    assert q.by_check == {CID: [a, b], OTHER: [other]}
    assert q.ids == {0: ["a", "b"], 2: ["c"]}
    assert q.checks == [CID, OTHER, CID]  # per item, so fresh_events need not hash again
    items = [(0, a), (2, other), (0, b)]
    assert fresh_events(items, set(), q.checks) == fresh_events(items, set())


def test_redelivered_and_repeated_events_are_dropped_and_counted() -> None:
    a, b, c = ev(0, "ok", id="a"), ev(1, "critical", id="b"), ev(2, "critical", id="c")
    fresh, dropped = fresh_events([(1, a), (1, b), (1, b), (1, c)], seen={"a"})
    assert fresh == [(1, CID, b), (1, CID, c)]
    assert dropped == 2  # a was applied before; b's second copy is a repeat


def test_one_episode_needs_one_incident_id() -> None:
    fresh, _ = fresh_events([(0, ev(t, "critical")) for t in (0, 10, 20)], seen=set())
    assert incident_ids_needed({CID: CheckView(id=CID)}, fresh) == 1
    ok, _ = fresh_events([(0, ev(0, "ok"))], seen=set())
    assert incident_ids_needed({CID: CheckView(id=CID)}, ok) == 0


def test_apply_batch_hands_out_the_reserved_id_and_records_the_decisions() -> None:
    fresh, _ = fresh_events([(3, ev(0, "critical", id="x")), (3, ev(5, "ok", id="y"))], set())
    applied = apply_batch({CID: CheckView(id=CID)}, fresh, [41], record_decisions=True)
    assert applied.ids_short == 0
    assert [i.id for i in applied.pending.incidents][:1] == ["41"]
    assert set(applied.pending.processed[3]) == {"x", "y"}
    assert applied.events == {("service", "critical"): 1, ("service", "ok"): 1}
    assert sum(applied.decisions.values()) >= 2
    assert [e.id for e, _ in applied.verdicts] == ["x", "y"]
    assert len(applied.pending.explain[CID]) == 2


def test_without_enough_ids_apply_batch_says_how_many_more() -> None:
    fresh, _ = fresh_events([(0, ev(0, "critical"))], set())
    short = apply_batch({CID: CheckView(id=CID)}, fresh, [], record_decisions=False)
    assert short.ids_short == 1
    again = apply_batch({CID: CheckView(id=CID)}, fresh, [7], record_decisions=False)
    assert again.ids_short == 0 and [i.id for i in again.pending.incidents] == ["7"]
    assert again.pending.explain == {}  # recording off


def test_routine_ok_events_get_no_explain_record() -> None:
    view = CheckView(id=CID)
    first = apply_event(view, ev(0, "ok"), None)
    second_ev = ev(10, "ok")
    second = apply_event(first.view, second_ev, None)
    assert explain_record("ok", second_ev, second) is None
    failing = ev(20, "critical")
    res = apply_event(second.view, failing, 1)
    assert explain_record("ok", failing, res) is not None


def test_each_notification_names_the_checks_previous_one_across_batches() -> None:
    """The notifier uses the link to expand a problem before its recovery (docs/scaling.md)."""
    first, _ = fresh_events(
        [(0, ev(0, "critical", id="p", initial_failure_delay=0)), (0, ev(60, "ok", id="r"))],
        set(),
    )
    one = apply_batch({CID: CheckView(id=CID)}, first, [1], record_decisions=False)
    problem, recovery = (n for _, n in one.pending.notifications)
    assert (problem.type, problem.previous_id) == ("problem", "")
    assert (recovery.type, recovery.previous_id) == ("recovery", problem.id)
    record = one.pending.records[CID]
    assert record.last_notification_id == recovery.id
    # The next batch starts from the stored record.
    later, _ = fresh_events([(0, ev(120, "critical", id="p2", initial_failure_delay=0))], set())
    two = apply_batch({CID: CheckView(id=CID, record=record)}, later, [2], record_decisions=False)
    ((_, again),) = two.pending.notifications
    assert again.previous_id == recovery.id


def test_a_redelivered_batch_gets_back_the_incident_ids_its_stored_notifications_name() -> None:
    fresh, _ = fresh_events([(0, ev(0, "critical", id="p", initial_failure_delay=0))], set())
    first = apply_batch({CID: CheckView(id=CID)}, fresh, [7], record_decisions=False)
    ((_, problem),) = first.pending.notifications
    assert problem.episode_id == "7"
    # The crashed attempt stored the notification under 7; the retry reserved 9.
    again = apply_batch({CID: CheckView(id=CID)}, fresh, [9], record_decisions=False)
    reused = reused_incident_ids([9], again.pending.notifications, {problem.id: "7"})
    assert reused == [7]
    assert reused_incident_ids([9], again.pending.notifications, {}) == [9]  # nothing stored
    redo = apply_batch({CID: CheckView(id=CID)}, fresh, reused, record_decisions=False)
    assert [n.episode_id for _, n in redo.pending.notifications] == ["7"]
    assert [i.id for i in redo.pending.incidents][:1] == ["7"]
