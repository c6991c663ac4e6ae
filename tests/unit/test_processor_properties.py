"""Properties of the processor core over random event sequences (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.models import DEFAULT_REPEAT_FAILURE_DELAY, CheckEvent
from tests.unit.processor_sim import ev, maint, run

STATES = ["ok", "warning", "critical", "unknown", "acknowledgement", "test_notifications"]


@st.composite
def sequences(draw: st.DrawFn) -> tuple[list[CheckEvent], list]:
    n = draw(st.integers(min_value=1, max_value=40))
    t = 0.0
    events: list[CheckEvent] = []
    for i in range(n):
        step = draw(st.integers(min_value=-20, max_value=90))  # negative: out of order
        t = max(0.0, t + step)
        state = draw(st.sampled_from(STATES))
        kw: dict[str, int] = {}
        if state not in ("acknowledgement", "test_notifications"):
            for name in ("initial_failure_delay", "repeat_failure_delay", "initial_recovery_delay"):
                if draw(st.booleans()) and draw(st.booleans()):
                    kw[name] = draw(st.integers(min_value=0, max_value=120))
        else:
            kw["duration"] = draw(st.integers(min_value=1, max_value=300))
        events.append(ev(t, state, id=f"p{i}", **kw))
    windows = draw(st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 400)), max_size=2))
    return events, [maint(s, s + d, f"m{j}") for j, (s, d) in enumerate(windows)]


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_recovery_only_after_a_notified_problem_of_the_same_episode(case) -> None:
    events, scheduled = case
    notes, _ = run(events, scheduled)
    problems: set[str | None] = set()
    for n in notes:
        if n.type == "problem":
            problems.add(n.episode_id)
        if n.type == "recovery":
            assert n.episode_id in problems


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_problems_of_one_state_respect_the_repeat_delay(case) -> None:
    events, scheduled = case
    _, results = run(events, scheduled)
    last: dict[tuple[str | None, str], float] = {}
    for res in results:
        n = res.notification
        if n is None or n.type != "problem":
            continue
        rec = res.view.record
        assert rec is not None
        repeat = rec.repeat_failure_delay
        repeat = DEFAULT_REPEAT_FAILURE_DELAY if repeat is None else repeat
        key = (n.episode_id, n.state)
        if key in last:
            assert n.time - last[key] >= repeat
        last[key] = n.time


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_replay_gives_the_same_notifications(case) -> None:
    events, scheduled = case
    first, _ = run(events, scheduled)
    second, _ = run(events, scheduled)
    assert first == second


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_out_of_order_events_never_notify_or_change_state(case) -> None:
    events, scheduled = case
    _, results = run(events, scheduled)
    newest = None
    for e, res in zip([e for e in events], results, strict=True):
        if e.type == "service" and newest is not None and e.time < newest:
            assert res.notification is None
            assert res.view.record is not None and res.view.record.last_update == newest
        elif e.type == "service":
            newest = e.time
