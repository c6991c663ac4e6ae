"""Rollup counts only checks that still alert on the medium, pure scenarios.

Three checks, threshold 2: c1 and c2 on web1, c3 on db1.  All fail, the medium
rolls up; then c1 and c2 leave the count one way or another (maintenance,
acknowledgement window, disabled, the rule no longer routing them), the next
notification brings the rollup recovery, and when they come back while still
failing the next notification rolls up again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.checks import CheckDetail, Maintenance
from shared.directory import DirectorySnapshot
from shared.models import Contact, Delivery, Medium, Notification, Rule, SeverityRoute
from shared.routing.expansion import expand
from shared.routing.notifier_state import Expansion, NotifierState, apply
from shared.routing.selection import Index, compile_index, select

T0 = datetime(2026, 1, 12, 12, 0, tzinfo=UTC).timestamp()
ENTITY = {"c1": "web1", "c2": "web1", "c3": "db1"}


def index(unless: tuple[str, ...] = ()) -> Index:
    """The rule routes every check's critical to webhook, except those tagged in ``unless``."""
    route = SeverityRoute(media=("webhook",))
    return compile_index(
        DirectorySnapshot(
            version=1,
            contacts={"a": Contact(id="a", name="A")},
            media={
                "m1": Medium(
                    id="m1",
                    contact_id="a",
                    type="webhook",
                    address="http://x/m1",
                    interval=600,
                    rollup_threshold=2,
                )
            },
            rules={
                "r": Rule(id="r", contact_id="a", tags=unless, tag_strategy="none", critical=route)
            },
        )
    )


def detail(cid: str, **kw: object) -> CheckDetail:
    base: dict[str, object] = {
        "id": cid,
        "entity": ENTITY[cid],
        "check": cid,
        "state": "critical",
        "summary": "",
        "details": "",
        "last_update": T0,
        "enabled": True,
        "failing": True,
        "tags": (cid,),
    }
    base.update(kw)
    return CheckDetail(**base)  # type: ignore[arg-type]


def problem(cid: str, t: float) -> Notification:
    return Notification(
        id=f"{cid}@{t}",
        type="problem",
        check_id=cid,
        entity=ENTITY[cid],
        check=cid,
        state="critical",
        severity="critical",
        time=T0 + t,
        episode_id=f"ep-{cid}",
        tags=(cid,),
    )


def fmt(o: Expansion) -> list[str]:
    def one(d: Delivery) -> str:
        if d.type.startswith("rollup"):
            return f"{d.type}[{','.join(sorted(i.check for i in d.checks))}]"
        return d.type

    return sorted(one(d) for d in o.deliveries)


class Run:
    """One notifier state through a scenario; ``checks`` is what the shell would load."""

    def __init__(self) -> None:
        self.state = NotifierState()
        self.index = index()
        self.unrouted: tuple[str, ...] = ()

    def send(self, n: Notification) -> list[str]:
        o = expand(self.index, self.state, n, select(self.index, n))
        apply(self.state, o.effects, n)
        return fmt(o)

    def status(self, **checks: CheckDetail) -> None:
        self.state.checks.update(checks)


def window(t0: float, t1: float, ack: bool = False) -> Maintenance:
    return Maintenance(
        id="w",
        check_id="c",
        start_time=T0 + t0,
        end_time=T0 + t1,
        acknowledgement_id="1" if ack else None,
    )


Leave = Callable[[Run, str], None]


def scheduled(run: Run, cid: str) -> None:
    run.status(**{cid: detail(cid, scheduled_maintenance=window(0, 1000))})


def acknowledged(run: Run, cid: str) -> None:
    run.status(**{cid: detail(cid, acknowledgement=window(0, 1000, ack=True))})


def disabled(run: Run, cid: str) -> None:
    run.status(**{cid: detail(cid, enabled=False)})


def unrouted(run: Run, cid: str) -> None:
    run.unrouted = (*run.unrouted, cid)  # the rule changed: "unless tagged c1 (, c2)"
    run.index = index(unless=run.unrouted)


def back(run: Run, cid: str) -> None:
    if cid in run.unrouted:
        run.unrouted = tuple(c for c in run.unrouted if c != cid)
        run.index = index(unless=run.unrouted)
    run.status(**{cid: detail(cid)})


@pytest.mark.parametrize(
    "leave",
    [
        pytest.param(scheduled, id="scheduled maintenance"),
        pytest.param(acknowledged, id="unscheduled maintenance"),
        pytest.param(disabled, id="disabled"),
        pytest.param(unrouted, id="rule no longer routes"),
    ],
)
def test_leaving_and_reentering_the_count(leave: Leave) -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"), c3=detail("c3"))
    assert run.send(problem("c1", 0)) == ["problem"]
    assert run.send(problem("c2", 1)) == ["rollup[c1,c2]"]
    assert run.send(problem("c3", 2)) == []  # rolled up, once per interval
    leave(run, "c1")
    leave(run, "c2")
    # The next notification on the medium: only c3 still alerts, 1 < 2.
    assert run.send(problem("c3", 700)) == ["problem", "rollup_recovery[c3]"]
    back(run, "c1")
    # c1 counts again while still failing: 2 >= 2.
    assert run.send(problem("c3", 800)) == ["rollup[c1,c3]"]


def test_one_leaving_keeps_the_rollup_while_the_count_holds() -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"), c3=detail("c3"))
    run.send(problem("c1", 0))
    run.send(problem("c2", 1))
    run.send(problem("c3", 2))
    disabled(run, "c1")
    assert run.send(problem("c3", 700)) == ["rollup[c2,c3]"]  # 2 still alert


def test_a_check_that_recovered_meanwhile_does_not_count() -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"), c3=detail("c3"))
    run.send(problem("c1", 0))
    run.send(problem("c2", 1))
    # c1 is ok now, though its recovery has not reached the notifier yet.
    run.status(c1=detail("c1", state="ok", failing=False))
    assert run.send(problem("c3", 700)) == ["rollup[c2,c3]"]
    run.status(c2=detail("c2", state="ok", failing=False))
    assert run.send(problem("c3", 800)) == ["problem", "rollup_recovery[c3]"]


def test_a_maintenance_window_that_has_ended_counts_again() -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"), c3=detail("c3"))
    run.send(problem("c1", 0))
    run.send(problem("c2", 1))
    # Loaded while the windows were open; at 700 they have ended.
    run.status(
        c1=detail("c1", scheduled_maintenance=window(0, 650)),
        c2=detail("c2", acknowledgement=window(0, 650, ack=True)),
    )
    assert run.send(problem("c3", 700)) == ["rollup[c1,c2,c3]"]


def test_rollup_lists_the_current_state_of_each_check() -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"))
    run.send(problem("c1", 0))
    run.send(problem("c2", 1))
    run.status(c1=detail("c1", state="warning"))
    run.index = compile_index(
        DirectorySnapshot(
            version=2,
            contacts={"a": Contact(id="a", name="A")},
            media={m.id: m for m in [run.index.media["m1"]]},
            rules={
                "r": Rule(
                    id="r",
                    contact_id="a",
                    critical=SeverityRoute(media=("webhook",)),
                    warning=SeverityRoute(media=("webhook",)),
                )
            },
        )
    )
    n = problem("c2", 700)
    o = expand(run.index, run.state, n, select(run.index, n))
    [d] = o.deliveries
    assert {(i.check, i.state) for i in d.checks} == {("c1", "warning"), ("c2", "critical")}


def test_the_rollup_reason_names_what_is_not_counted() -> None:
    run = Run()
    run.status(c1=detail("c1"), c2=detail("c2"), c3=detail("c3"))
    run.send(problem("c1", 0))
    run.send(problem("c2", 1))
    run.send(problem("c3", 2))
    scheduled(run, "c1")
    disabled(run, "c2")
    n = problem("c3", 700)
    o = expand(run.index, run.state, n, select(run.index, n))
    texts = [d.text for d in o.decisions if d.text.startswith("rollup recovery")]
    assert texts == [
        "rollup recovery: 1 failing < threshold 2 (not counted: "
        "web1:c1 is in scheduled maintenance; web1:c2 is disabled) (rule r)"
    ]
