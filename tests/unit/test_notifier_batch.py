"""The notifier's batch decisions (services/notifier/batch.py), without Redis."""

from __future__ import annotations

from services.notifier.batch import expand_all, explain_records, triage
from shared.directory import DirectorySnapshot
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
