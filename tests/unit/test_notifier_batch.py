"""The notifier's batch decisions (services/notifier/batch.py), without Redis."""

from __future__ import annotations

import msgspec

from shared.directory import DirectorySnapshot
from shared.notifier.batch import (
    expand_all,
    explain_records,
    triage,
    unexpanded_predecessors,
    with_predecessors,
)
from shared.routing.notifier_state import NotifierState
from shared.routing.selection import compile_index, select
from tests.unit.test_notifier_core import M1, A, note, rule


def test_triage_skips_done_and_repeated_ids_and_rejects_missing_or_invalid_ones() -> None:
    good, gone = note(), note()
    refs = [("m0", "done"), ("m1", good.id), ("m2", good.id), ("m3", "bad"), ("m4", gone.id)]
    t = triage(
        refs,
        notifications={good.id: good, "bad": None, gone.id: None},
        invalid={"bad": "notification bad: `$.time` expected a number"},
        done=frozenset({"done"}),
    )
    assert t.todo == [good]
    assert t.skipped == ["done", good.id]
    assert [(m, why.split(":")[0]) for m, why in t.rejected] == [
        ("m3", "notification bad"),
        ("m4", f"notification {gone.id}"),
    ]
    assert "expired or never written" in t.rejected[1][1]


def test_expand_all_lets_a_later_notification_see_an_earlier_ones_block() -> None:
    index = compile_index(
        DirectorySnapshot(
            version=1,
            contacts={c.id: c for c in A},
            media={m.id: m for m in M1},
            rules={"r1": rule("r1")},
        )
    )
    first, repeat = note(t=0), note(t=60)  # the medium's interval is 600 s
    plans = [(n, select(index, n)) for n in (first, repeat)]
    expansions = expand_all(index, NotifierState(), plans)
    assert [len(e.deliveries) for e in expansions] == [1, 0]
    assert [d.code for d in expansions[1].decisions] == ["interval"]
    records = explain_records(index, expansions)
    assert list(records) == [first.check_id] and len(records[first.check_id]) == 2


def test_a_checks_earlier_notification_goes_just_before_the_first_that_follows_it() -> None:
    problem = note("problem", "c1", "critical")
    recovery = msgspec.structs.replace(note("recovery", "c1", "ok", 60), previous_id=problem.id)
    other = note("problem", "c2", "warning")
    again = msgspec.structs.replace(note("problem", "c1", "critical", 120), previous_id=recovery.id)
    todo = [other, recovery, again]
    assert unexpanded_predecessors(todo) == [problem.id]  # the recovery is in the batch
    ordered = with_predecessors(todo, {problem.id: problem})
    assert [n.id for n in ordered] == [other.id, problem.id, recovery.id, again.id]
    # Nothing found (expired, or expanded meanwhile): the batch stays as it is.
    assert with_predecessors(todo, {}) == todo


def test_expanding_a_pulled_problem_first_lets_its_recovery_through() -> None:
    """Without the problem first the recovery finds no problem in the episode and is dropped."""
    idx = compile_index(
        DirectorySnapshot(
            version=1,
            contacts={c.id: c for c in A},
            media={m.id: m for m in M1},
            rules={"r1": rule("r1")},
        )
    )
    problem = note("problem", "c1", "critical")
    recovery = msgspec.structs.replace(note("recovery", "c1", "ok", 60), previous_id=problem.id)
    alone = expand_all(idx, NotifierState(), [(recovery, select(idx, recovery))])
    assert [d.type for o in alone for d in o.deliveries] == []
    todo = with_predecessors([recovery], {problem.id: problem})
    both = expand_all(idx, NotifierState(), [(n, select(idx, n)) for n in todo])
    assert [d.type for o in both for d in o.deliveries] == ["problem", "recovery"]
