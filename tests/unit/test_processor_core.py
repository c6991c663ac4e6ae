"""The processor core's effects beyond the notification sequence: fields, history, incidents."""

from __future__ import annotations

import pytest

from services.processor.worker import parse_partitions
from shared.errors import ConfigError
from shared.processing.effects import CheckView, notification_id
from shared.processing.state_machine import apply_event, episode_starts_bound
from tests.unit.processor_sim import CID, ev, run


def test_notification_fields_follow_the_episode() -> None:
    notes, _ = run(
        [
            ev(0, "warning", tags=("role=web",)),
            ev(30, "warning"),
            ev(40, "critical"),
            ev(50, "acknowledgement", duration=600, acknowledgement_id="a1"),
            ev(100, "ok"),
        ]
    )
    problem_w, problem_c, ack, recovery = notes
    assert (problem_w.severity, problem_w.previous_state, problem_w.duration) == (
        "warning",
        "warning",
        30.0,
    )
    assert (problem_c.severity, problem_c.previous_state, problem_c.duration) == (
        "critical",
        "warning",
        40.0,
    )
    assert ack.type == "acknowledgement" and ack.severity == "critical"
    assert ack.ack_until == 650.0 and ack.duration == 600.0 and ack.acknowledgement_id == "a1"
    assert recovery.severity == "critical" and recovery.previous_state == "critical"
    assert recovery.duration == 100.0
    assert {n.episode_id for n in notes} == {"1"}
    assert all(n.tags == ("role=web",) for n in notes)
    assert notes[0].id == notification_id(CID, notes[0].event_id)


def test_test_notification_is_critical() -> None:
    notes, _ = run([ev(0, "ok"), ev(5, "test_notifications")])
    assert notes[0].type == "test" and notes[0].severity == "critical"


def test_history_records_changes_and_counts_repeats() -> None:
    _, results = run(
        [ev(0, "critical", summary="a"), ev(10, "critical", summary="b"), ev(20, "ok")]
    )
    sid0, _ = results[0].states[0]
    sid1, rec1 = results[1].states[0]
    sid2, rec2 = results[2].states[0]
    assert sid0 == sid1 == f"{CID}.1" and sid2 == f"{CID}.2"
    assert (rec1.count, rec1.summary, rec1.timestamp, rec1.last_update) == (2, "b", 0.0, 10.0)
    assert rec2.state == "ok" and rec2.count == 1


def test_stale_event_goes_to_history_only() -> None:
    _, results = run([ev(100, "critical"), ev(50, "ok", summary="late")])
    stale = results[1]
    assert stale.decisions[-1].filter == "out_of_order"
    assert stale.view.record is not None and stale.view.record.state == "critical"
    ((sid, rec),) = stale.states
    assert sid == f"{CID}.2" and rec.state == "ok" and rec.timestamp == 50.0
    assert stale.view.record.state_seq == 1


def test_incident_lifecycle_events() -> None:
    _, results = run(
        [
            ev(0, "critical", initial_failure_delay=0, tags=("role=db", "prod")),
            ev(10, "warning"),
            ev(20, "acknowledgement"),
            ev(30, "ok"),
        ]
    )
    opened = results[0].incident
    assert opened is not None and opened.opened is not None
    assert opened.opened.level == 1 and opened.opened.tags == ("role=db", "tag=prod")
    assert opened.opened.source_incident_id == "web1:http"
    assert [e.type for e in opened.events] == ["STA"]
    level = results[1].incident
    assert level is not None and level.fields["level"] == "3" and level.events[0].type == "OTH"
    ack = results[2].incident
    assert ack is not None and ack.fields["acked"] == "true" and ack.events[0].type == "ACK"
    end = results[3].incident
    assert (
        end is not None
        and end.closed
        and end.events[0].type == "END"
        and end.fields["end_time"] == "30.0"
    )
    assert results[3].view.record is not None and results[3].view.record.episode_id is None


def test_silent_episode_closes_its_incident_at_ok() -> None:
    _, results = run([ev(0, "critical"), ev(10, "ok")])
    end = results[1].incident
    assert end is not None and end.closed and end.id == "1"


def test_ok_ends_the_acknowledgement() -> None:
    _, results = run(
        [ev(0, "critical", initial_failure_delay=0), ev(10, "acknowledgement"), ev(20, "ok")]
    )
    (ack,) = results[1].maintenances
    assert (ack.start_time, ack.end_time) == (10.0, 14410.0)
    (ended,) = results[2].maintenances
    assert ended.id == ack.id and ended.end_time == 20.0


def test_rejected_ack_says_why() -> None:
    _, results = run([ev(0, "ok"), ev(5, "acknowledgement")])
    last = results[1].decisions[-1]
    assert (last.filter, last.outcome) == ("acknowledgement", "block")
    assert "rejected" in last.reason and "ok" in last.reason
    assert results[1].maintenances == ()


def test_decision_reasons_name_the_numbers() -> None:
    _, results = run([ev(0, "critical"), ev(12, "critical")])
    assert results[1].decisions[-1].reason == "initial_failure_delay: failing for 12 s of 30"


def test_new_episode_needs_a_reserved_id() -> None:
    with pytest.raises(ValueError, match="incident id"):
        apply_event(CheckView(id=CID), ev(0, "critical"), None)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(["critical", "critical"], 1, id="one episode"),
        pytest.param(["critical", "ok", "warning"], 2, id="two episodes"),
        pytest.param(["ok", "ok"], 0, id="no failure"),
        pytest.param(["acknowledgement"], 0, id="actions never open"),
    ],
)
def test_episode_starts_bound(states: list[str], expected: int) -> None:
    assert episode_starts_bound(None, [ev(i, s) for i, s in enumerate(states)]) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(None, [0, 1, 2, 3, 4, 5, 6, 7], id="unset: all"),
        pytest.param("0-3,6", [0, 1, 2, 3, 6], id="ranges and singles"),
        pytest.param(" 5 , 1-2 ", [1, 2, 5], id="spaces"),
    ],
)
def test_parse_partitions(spec: str | None, expected: list[int]) -> None:
    assert parse_partitions(spec, 8) == expected


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("8", id="too high"),
        pytest.param("a-b", id="not numbers"),
        pytest.param("3-1", id="reversed"),
    ],
)
def test_parse_partitions_rejects(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_partitions(spec, 8)


def test_delayed_recovery_names_the_failing_state() -> None:
    notes, _ = run(
        [
            ev(0, "warning", initial_failure_delay=0),
            ev(10, "ok", initial_recovery_delay=30),
            ev(45, "ok"),
        ]
    )
    assert [(n.type, n.previous_state, n.episode_id) for n in notes] == [
        ("problem", None, "1"),
        ("recovery", "warning", "1"),
    ]
    assert notes[1].duration == 10.0


def test_an_ack_from_a_page_records_the_contact_and_the_channel() -> None:
    notes, results = run(
        [
            ev(0, "critical", initial_failure_delay=0),
            ev(
                10,
                "acknowledgement",
                acknowledged_by="Alice",
                ack_contact_id="c7",
                ack_channel="sms",
            ),
        ]
    )
    ack = results[-1]
    (window,) = ack.maintenances
    assert (window.contact_id, window.channel) == ("c7", "sms")
    assert ack.incident is not None
    (entry,) = ack.incident.events
    assert (entry.type, entry.contact_id, entry.channel) == ("ACK", "c7", "sms")
    assert notes[-1].type == "acknowledgement" and notes[-1].acknowledged_by == "Alice"
