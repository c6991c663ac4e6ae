"""Table of event sequences -> expected notifications through the processor's pure core."""

from __future__ import annotations

import pytest

from shared.checks import Maintenance
from shared.models import CheckEvent
from tests.unit.processor_sim import DISABLE, ev, maint, run, summary

C, W, U, OK = "critical", "warning", "unknown", "ok"
ACK, TEST = "acknowledgement", "test_notifications"


def every(start: int, stop: int, step: int, state: str) -> list[CheckEvent]:
    return [ev(t, state) for t in range(start, stop + 1, step)]


P = "problem"
R = "recovery"
A = "acknowledgement"
T = "test"

SCENARIOS = [
    pytest.param([ev(0, C), ev(29, C)], [], [], id="failing shorter than initial delay: nothing"),
    pytest.param(
        [ev(0, C), ev(29, C), ev(31, C)], [], [(P, C, 31)], id="initial delay elapsed: one problem"
    ),
    pytest.param(
        [ev(0, C), ev(31, C), ev(40, W)],
        [],
        [(P, C, 31), (P, W, 40)],
        id="warning after problem: immediate problem",
    ),
    pytest.param(
        every(0, 200, 10, C),
        [],
        [(P, C, 30), (P, C, 90), (P, C, 150)],
        id="critical every 10 s: one problem per minute",
    ),
    pytest.param([ev(0, OK)], [], [], id="first sight ok: nothing"),
    pytest.param([ev(0, OK), ev(10, OK)], [], [], id="ok repeated: nothing"),
    pytest.param([ev(0, C), ev(10, OK)], [], [], id="ok without notified problem: no recovery"),
    pytest.param(
        [ev(0, C), ev(30, C), ev(40, OK)],
        [],
        [(P, C, 30), (R, OK, 40)],
        id="recovery after notified problem",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(100, ACK), ev(110, C), ev(170, C), ev(300, C), ev(400, OK)],
        [],
        [(P, C, 30), (A, ACK, 100), (R, OK, 400)],
        id="ack silences until ok",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(100, ACK, duration=60), ev(120, C), ev(159, C), ev(161, C)],
        [],
        [(P, C, 30), (A, ACK, 100), (P, C, 161)],
        id="ack silences until it expires",
    ),
    pytest.param([ev(0, OK), ev(10, ACK)], [], [], id="ack on ok check rejected"),
    pytest.param([ev(10, ACK)], [], [], id="ack on unseen check rejected"),
    pytest.param(
        [ev(0, C), ev(10, ACK), ev(40, C), ev(50, OK)],
        [],
        [(A, ACK, 10)],
        id="ack during initial delay: no problem, no recovery",
    ),
    pytest.param(
        [ev(0, C), ev(50, C), ev(100, C), ev(299, C), ev(301, C)],
        [maint(0, 300)],
        [(P, C, 301)],
        id="maintenance 0..300 silent, problem after it",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(200, OK)],
        [maint(100, 300)],
        [(P, C, 30), (R, OK, 200)],
        id="recovery inside maintenance",
    ),
    pytest.param(
        [ev(0, C), ev(31, C), ev(40, W), ev(45, C), ev(91, C)],
        [],
        [(P, C, 31), (P, W, 40), (P, C, 91)],
        id="flapping back to a recently notified state waits for the repeat delay",
    ),
    pytest.param([ev(0, OK), ev(10, TEST)], [], [(T, TEST, 10)], id="test on ok check"),
    pytest.param([ev(10, TEST)], [], [(T, TEST, 10)], id="test on unseen check"),
    pytest.param(
        [ev(0, C), ev(10, TEST)], [maint(0, 100)], [(T, TEST, 10)], id="test inside maintenance"
    ),
    pytest.param([ev(0, OK), DISABLE, ev(10, TEST)], [], [], id="test on disabled check: nobody"),
    pytest.param(
        [ev(0, C), DISABLE, ev(31, C), ev(100, C)], [], [], id="disabled check: no problems"
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0)], [], [(P, C, 0)], id="initial delay 0: problem at once"
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=60), ev(59, C), ev(60, C)],
        [],
        [(P, C, 60)],
        id="initial delay from event",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=10), ev(10, C)],
        [],
        [(P, C, 10)],
        id="delay remembered from earlier event",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0, repeat_failure_delay=0), ev(1, C), ev(2, C)],
        [],
        [(P, C, 0), (P, C, 1), (P, C, 2)],
        id="repeat delay 0: every event",
    ),
    pytest.param(
        [
            ev(0, C, initial_failure_delay=0),
            ev(10, OK, initial_recovery_delay=60),
            ev(50, OK),
            ev(70, OK),
        ],
        [],
        [(P, C, 0), (R, OK, 70)],
        id="recovery waits for initial recovery delay",
    ),
    pytest.param(
        [
            ev(0, C, initial_failure_delay=0),
            ev(10, OK, initial_recovery_delay=60),
            ev(20, C),
            ev(30, OK),
            ev(100, OK),
        ],
        [],
        [(P, C, 0), (R, OK, 100)],
        id="flapping inside recovery delay continues the episode",
    ),
    pytest.param(
        [ev(100, C, initial_failure_delay=0), ev(50, OK), ev(110, C)],
        [],
        [(P, C, 100)],
        id="out-of-order ok ignored",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(20, OK), ev(40, OK)],
        [],
        [(P, C, 30), (R, OK, 40)],
        id="stale ok then real ok",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(40, OK), ev(50, C), ev(79, C), ev(80, C)],
        [],
        [(P, C, 30), (R, OK, 40), (P, C, 80)],
        id="second episode waits its own initial delay",
    ),
    pytest.param([ev(0, U), ev(30, U)], [], [(P, U, 30)], id="unknown is a failure"),
    pytest.param(
        [ev(0, W), ev(20, C), ev(30, C)],
        [],
        [(P, C, 30)],
        id="state change before first problem waits for delay",
    ),
    pytest.param(
        [
            ev(0, C, initial_failure_delay=0),
            ev(10, ACK, duration=100),
            ev(20, ACK, duration=10),
            ev(31, C),
            ev(61, C),
        ],
        [],
        [(P, C, 0), (A, ACK, 10), (A, ACK, 20), (P, C, 61)],
        id="second ack replaces the first",
    ),
    pytest.param(
        [
            ev(0, C, initial_failure_delay=0),
            ev(10, ACK),
            ev(20, OK),
            ev(30, C, initial_failure_delay=0),
        ],
        [],
        [(P, C, 0), (A, ACK, 10), (R, OK, 20), (P, C, 30)],
        id="ack ends at ok",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), ev(10, ACK)],
        [maint(0, 100)],
        [(A, ACK, 10)],
        id="ack inside maintenance",
    ),
    pytest.param(
        [ev(100, C, initial_failure_delay=0)],
        [maint(0, 100)],
        [(P, C, 100)],
        id="maintenance end is exclusive",
    ),
    pytest.param(
        [ev(0, C), ev(30, C)],
        [maint(500, 600)],
        [(P, C, 30)],
        id="future maintenance has no effect",
    ),
    pytest.param(
        [ev(0, C), ev(30, C), ev(50, C), ev(95, C), ev(101, C)],
        [maint(40, 100)],
        [(P, C, 30), (P, C, 101)],
        id="repeat resumes after maintenance",
    ),
    pytest.param(
        [ev(0, C), ev(40, C), ev(50, OK)],
        [maint(0, 100)],
        [],
        id="ok after silenced episode: no recovery",
    ),
    pytest.param(
        [ev(0, C), ev(5, TEST), ev(30, C)],
        [],
        [(T, TEST, 5), (P, C, 30)],
        id="test bypasses delay, state unchanged",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), ev(10, ACK), ev(20, TEST)],
        [],
        [(P, C, 0), (A, ACK, 10), (T, TEST, 20)],
        id="test while acknowledged",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), DISABLE, ev(10, OK)],
        [],
        [(P, C, 0)],
        id="disabled: no recovery",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), ev(10, W), ev(20, W), ev(70, W)],
        [],
        [(P, C, 0), (P, W, 10), (P, W, 70)],
        id="repeat applies per state after a change",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), ev(0, C)],
        [],
        [(P, C, 0)],
        id="same-time repeat blocked by repeat delay",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), ev(5, U), ev(10, C), ev(15, U)],
        [],
        [(P, C, 0), (P, U, 5)],
        id="flapping between failing states is rate limited per state",
    ),
    pytest.param(
        [ev(0, C, initial_failure_delay=0), DISABLE, ev(10, ACK)],
        [],
        [(P, C, 0)],
        id="ack on disabled check: no notification",
    ),
]


@pytest.mark.parametrize(("events", "scheduled", "expected"), SCENARIOS)
def test_scenario(
    events: list[CheckEvent | str],
    scheduled: list[Maintenance],
    expected: list[tuple[str, str, float]],
) -> None:
    notes, _ = run(events, scheduled)
    assert summary(notes) == expected
