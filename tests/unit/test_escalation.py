"""Escalation policy step selection and stop rules (pure)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.escalation import (
    CheckAtStep,
    Escalation,
    IncidentAtStep,
    Policy,
    Step,
    Target,
    incident_view,
    next_due,
    pages,
    policy_error,
    step_at,
    stop_reason,
    total_steps,
)
from shared.oncall import Layer, Override, Schedule

PRIMARY = Schedule(
    id="pri",
    name="primary",
    timezone="UTC",
    layers=(Layer(members=("kari", "ola"), shift_hours=24, handoff="2026-12-07T00:00"),),
)
T0 = 1796601600.0  # 2026-12-07T00:00Z

POLICY = Policy(
    id="p",
    name="ops",
    repeat=1,
    steps=(
        Step(targets=(Target(schedule="pri"),), wait_s=300),
        Step(
            targets=(Target(contact="lead"), Target(schedule="pri", all_members=True)), wait_s=600
        ),
    ),
)
ESC = Escalation(
    id="e", policy_id="p", notification_id="n", check_id="web1:http", episode_id="ep1", started=T0
)


def test_steps_repeat_then_stop() -> None:
    assert total_steps(POLICY) == 4
    assert [step_at(POLICY, n) for n in range(5)] == [
        (0, POLICY.steps[0]),
        (0, POLICY.steps[1]),
        (1, POLICY.steps[0]),
        (1, POLICY.steps[1]),
        None,
    ]


def test_next_due_uses_the_fired_steps_wait() -> None:
    assert next_due(POLICY, 0, 100.0) == 400.0
    assert next_due(POLICY, 1, 400.0) == 1000.0
    assert next_due(POLICY, 3, 2000.0) is None  # last step: nothing after it


@pytest.mark.parametrize(
    ("view", "reason"),
    [
        pytest.param(CheckAtStep(failing=True, episode_id="ep1"), None, id="still failing"),
        pytest.param(CheckAtStep(failing=False, episode_id=None), "recovered", id="recovered"),
        pytest.param(
            CheckAtStep(failing=True, episode_id="ep1", acknowledged=True), "acknowledged", id="ack"
        ),
        pytest.param(
            CheckAtStep(failing=True, episode_id="ep1", in_maintenance=True),
            "in maintenance",
            id="maintenance",
        ),
        pytest.param(
            CheckAtStep(failing=True, episode_id="ep2"), "a new failure episode", id="new episode"
        ),
        pytest.param(None, "check deleted", id="deleted"),
    ],
)
def test_stop_reason(view: CheckAtStep | None, reason: str | None) -> None:
    assert stop_reason(ESC, view) == reason


SOURCE_ESC = msgspec.structs.replace(ESC, episode_id="42", incident_id="42")
MIRROR = CheckAtStep(failing=True, episode_id="42")


@pytest.mark.parametrize(
    ("inc", "check", "reason"),
    [
        pytest.param(IncidentAtStep(), None, None, id="open, check not seen yet"),
        pytest.param(IncidentAtStep(), MIRROR, None, id="open"),
        pytest.param(IncidentAtStep(end_time=T0 - 1), MIRROR, "recovered", id="ended"),
        pytest.param(IncidentAtStep(end_time=T0 + 60), MIRROR, None, id="end still ahead"),
        pytest.param(IncidentAtStep(acked=True), MIRROR, "acknowledged", id="acked"),
        pytest.param(IncidentAtStep(acked=True, ack_until=T0 - 1), MIRROR, None, id="ack expired"),
        pytest.param(
            IncidentAtStep(acked=True, ack_until=T0 + 60), MIRROR, "acknowledged", id="ack running"
        ),
        pytest.param(
            IncidentAtStep(),
            msgspec.structs.replace(MIRROR, in_maintenance=True),
            "in maintenance",
            id="check in maintenance",
        ),
        pytest.param(
            IncidentAtStep(),
            msgspec.structs.replace(MIRROR, enabled=False),
            "check disabled",
            id="check disabled",
        ),
        pytest.param(None, MIRROR, "incident 42 deleted", id="incident gone"),
    ],
)
def test_an_argus_incident_escalation_stops_on_the_incidents_own_state(
    inc: IncidentAtStep | None, check: CheckAtStep | None, reason: str | None
) -> None:
    # The incident, not the check, says failing and acknowledged (the check may lag).
    assert stop_reason(SOURCE_ESC, incident_view("42", inc, check, T0)) == reason


def test_pages_resolve_on_call_members_and_contacts_once() -> None:
    schedules = {"pri": PRIMARY}
    first, notes = pages(POLICY.steps[0], schedules, T0 + 3600)
    assert [(p.contact_id, p.why) for p in first] == [
        ("kari", "on call in schedule primary (layer:0)")
    ]
    second, _ = pages(POLICY.steps[1], schedules, T0 + 86400 + 60)
    assert [p.contact_id for p in second] == ["lead", "kari", "ola"]
    assert notes == []


def test_pages_follow_overrides_and_note_nobody() -> None:
    covered = Override(id="o", contact_id="per", start=T0, end=T0 + 60)
    sched = Schedule(id="pri", name="primary", layers=PRIMARY.layers, overrides=(covered,))
    got, _ = pages(POLICY.steps[0], {"pri": sched}, T0 + 10)
    assert [p.contact_id for p in got] == ["per"]
    empty, notes = pages(POLICY.steps[0], {}, T0)
    assert empty == [] and notes == ["schedule pri no longer exists"]


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        pytest.param(Policy(id="x", name="n"), "steps", id="no steps"),
        pytest.param(
            Policy(id="x", name="n", steps=(Step(targets=(Target(),)),)),
            "steps[0].targets[0]",
            id="empty target",
        ),
        pytest.param(
            Policy(id="x", name="n", steps=(Step(targets=(Target(schedule="nope"),)),)),
            "steps[0].targets[0].schedule",
            id="unknown schedule",
        ),
        pytest.param(
            Policy(id="x", name="n", steps=(Step(targets=(Target(contact="nope"),)),)),
            "steps[0].targets[0].contact",
            id="unknown contact",
        ),
    ],
)
def test_policy_errors(policy: Policy, field: str) -> None:
    err = policy_error(policy, {"pri": PRIMARY}, {"lead": object()})
    assert err is not None and err[1] == field
    assert policy_error(POLICY, {"pri": PRIMARY}, {"lead": object()}) is None


@settings(deadline=None)  # pure and fast; a loaded 2-core box once took 336 ms for one case
@given(
    n_steps=st.integers(1, 5),
    repeat=st.integers(0, 4),
    waits=st.lists(st.integers(0, 3600), min_size=5, max_size=5),
)
def test_due_times_never_go_backwards_and_end(n_steps: int, repeat: int, waits: list[int]) -> None:
    steps = tuple(Step(targets=(Target(contact="c"),), wait_s=w) for w in waits[:n_steps])
    policy = Policy(id="p", name="n", steps=steps, repeat=repeat)
    t, n, fired = 0.0, 0, 0
    while (due := next_due(policy, n, t)) is not None:
        assert due >= t
        t, n, fired = due, n + 1, fired + 1
    assert fired + 1 == n_steps * (repeat + 1)
