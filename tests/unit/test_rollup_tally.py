"""The rollup tally: a batch judges each rollup entry once, and decides exactly as without it.

A batch's expansions share one :class:`RollupTally`; an expansion on its own
judges every entry afresh.  The property test runs random batches both ways
(maintenance windows, disabled and recovered checks, tag rules, a time
restriction whose edge falls inside the batch, zones with half- and
quarter-hour offsets) and wants the same deliveries and reasons.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shared.routing.rollup_accounting as accounting
from shared.checks import CheckDetail, Maintenance
from shared.directory import DirectorySnapshot
from shared.models import (
    Contact,
    Medium,
    Notification,
    RollupItem,
    Rule,
    SeverityRoute,
    TimeRecurrence,
)
from shared.notifier.batch import expand_all
from shared.routing.expansion import expand
from shared.routing.notifier_state import Expansion, NotifierState, RollupState, apply
from shared.routing.rollup_accounting import judged
from shared.routing.selection import Index, compile_index, select
from shared.timeslots import zone

T0 = datetime(2026, 3, 29, 0, 58, tzinfo=UTC).timestamp()  # 01:00 UTC: Europe's clocks go forward
ZONES = ["UTC", "Europe/Oslo", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"]
ROUTE = SeverityRoute(media=("webhook",))


def make_index(tz: str, threshold: int, interval: int, restricted: bool, unless_b: bool) -> Index:
    """One contact, one rollup webhook; rules optionally time-restricted and excluding tag ``b``."""
    rules: dict[str, Rule] = {
        "r": Rule(
            id="r",
            contact_id="a",
            tags=("b",) if unless_b else (),
            tag_strategy="none",
            critical=ROUTE,
            warning=ROUTE,
            time_restrictions=(_two_minutes_after(T0 + 60, tz),) if restricted else (),
        ),
        # The batch's notifications (tagged a) are always routed, so rollup entries get judged
        # on both sides of the time restriction's edges.
        "always": Rule(id="always", contact_id="a", tags=("a",), critical=ROUTE, warning=ROUTE),
    }
    return compile_index(
        DirectorySnapshot(
            version=1,
            contacts={"a": Contact(id="a", name="A", timezone=tz)},
            media={
                "m": Medium(
                    id="m",
                    contact_id="a",
                    type="webhook",
                    address="http://x/m",
                    interval=interval,
                    rollup_threshold=threshold,
                )
            },
            rules=rules,
        )
    )


def _two_minutes_after(t: float, tz: str) -> TimeRecurrence:
    local = datetime.fromtimestamp(t, zone(tz))
    end = local + timedelta(minutes=2)
    return TimeRecurrence(start=local.strftime("%H:%M"), end=end.strftime("%H:%M"))


def check_record(cid: str = "c", **kw: Any) -> CheckDetail:
    """A check's record: failing and enabled unless ``kw`` says otherwise."""
    base: dict[str, Any] = {"state": "critical", "summary": "", "details": "", "last_update": T0}
    base |= {"enabled": True, "failing": True, "tags": ()}
    return CheckDetail(id=cid, entity="web", check=cid, **(base | kw))


def window(start: int, length: int, ack: bool) -> Maintenance:
    return Maintenance(
        id="w",
        check_id="c",
        start_time=T0 + start,
        end_time=T0 + start + length,
        acknowledgement_id="1" if ack else None,
    )


@st.composite
def records(draw: st.DrawFn, cid: str) -> CheckDetail:
    state = draw(st.sampled_from(["critical", "warning", "ok"]))
    windows = st.tuples(st.integers(-60, 200), st.integers(1, 150))
    ack, sched = draw(st.none() | windows), draw(st.none() | windows)
    return check_record(
        cid,
        state=state,
        enabled=draw(st.booleans()) or draw(st.booleans()),
        failing=state != "ok",
        tags=tuple(draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True))),
        acknowledgement=None if ack is None else window(*ack, ack=True),
        scheduled_maintenance=None if sched is None else window(*sched, ack=False),
    )


def note(i: int, cid: str, kind: str, at: float, state: str) -> Notification:
    return Notification(
        id=f"n{i}",
        type="problem" if kind == "problem" else "recovery",
        check_id=cid,
        entity="web",
        check=cid,
        state=state if kind == "problem" else "ok",
        severity=state if kind == "problem" else "ok",
        time=at,
        episode_id=f"ep-{cid}",
        tags=("a",),
    )


@st.composite
def batches(draw: st.DrawFn) -> tuple[Index, NotifierState, list[Notification]]:
    checks = [f"c{i}" for i in range(draw(st.integers(2, 10)))]
    index = make_index(
        draw(st.sampled_from(ZONES)),
        threshold=draw(st.integers(1, 4)),
        interval=draw(st.sampled_from([0, 60])),
        restricted=draw(st.booleans()),
        unless_b=draw(st.booleans()),
    )
    state = NotifierState(checks={cid: draw(records(cid)) for cid in checks})
    already = draw(st.lists(st.sampled_from(checks), unique=True))
    item = RollupItem(entity="web", check="x", state="critical")
    state.rollups["m"] = RollupState(
        active=draw(st.booleans()),
        items={cid: RollupItem(entity="web", check=cid, state=item.state) for cid in already},
    )
    state.episodes = {f"ep-{cid}": {"m"} for cid in already}
    notes = []
    for i in range(draw(st.integers(1, 30))):
        # Whole seconds often: a Flapjack event's time may fall on a minute's edge.
        at = T0 + draw(st.integers(0, 240)) + draw(st.sampled_from([0.0, 0.0, 0.25, 0.999999]))
        kind = draw(st.sampled_from(["problem", "problem", "recovery"]))
        notes.append(
            note(
                i,
                draw(st.sampled_from(checks)),
                kind,
                at,
                draw(st.sampled_from(["critical", "warning"])),
            )
        )
    return index, state, notes


def shape(outcomes: list[Expansion]) -> list[Any]:
    return [(o.deliveries, [d.text for d in o.decisions]) for o in outcomes]


@settings(max_examples=300, deadline=None)
@given(batches())
def test_a_shared_tally_decides_as_judging_afresh(
    case: tuple[Index, NotifierState, list[Notification]],
) -> None:
    index, state, notes = case
    plans = [(n, select(index, n)) for n in notes]
    fresh_state = copy.deepcopy(state)
    fresh: list[Expansion] = []
    for n, sel in plans:
        o = expand(index, fresh_state, n, sel)  # no tally: every entry judged again
        apply(fresh_state, o.effects, n)
        fresh.append(o)
    assert shape(expand_all(index, state, plans)) == shape(fresh)


def test_a_storm_judges_each_entry_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 problems into a rollup that already holds 1,000 checks: about 3,000 rule matches
    (without the tally, some 4 million)."""
    calls = 0
    routes_to = accounting.routes_to

    def counting(*args: Any) -> bool:
        nonlocal calls
        calls += 1
        return routes_to(*args)

    monkeypatch.setattr(accounting, "routes_to", counting)
    index = make_index("UTC", threshold=10, interval=60, restricted=False, unless_b=False)
    ids = [f"c{i}" for i in range(3000)]
    state = NotifierState(checks={cid: check_record(cid) for cid in ids})
    state.rollups["m"] = RollupState(
        True, {cid: RollupItem(entity="web", check=cid, state="critical") for cid in ids[:1000]}
    )
    notes = [note(i, cid, "problem", T0 + i / 100, "critical") for i, cid in enumerate(ids[1000:])]
    outcomes = expand_all(index, state, [(n, select(index, n)) for n in notes])
    assert len(state.rollups["m"].items) == 3000
    assert [d.type for o in outcomes for d in o.deliveries] == ["rollup"]
    assert calls <= 3000


@pytest.mark.parametrize("tz", ZONES)
def test_a_time_restricted_verdict_holds_for_its_local_minute(tz: str) -> None:
    index = make_index(tz, threshold=2, interval=0, restricted=True, unless_b=False)
    record = check_record()
    m = index.media["m"]
    seen = set()
    for offset in (0.0, 59.0, 59.9999995, 60.0, 60.5, 179.999999, 180.0, 181.0):
        now = T0 + offset
        verdict, lo, hi = judged(index, record, m, now)
        seen.add(verdict)
        assert lo <= now < hi <= lo + 60
        # The verdict holds across the span; just past it, the contact's clock shows the next minute.
        assert judged(index, record, m, lo)[0] == verdict
        assert judged(index, record, m, hi - 2e-6)[0] == verdict
        minute = datetime.fromtimestamp(now, zone(tz)).replace(second=0, microsecond=0)
        assert datetime.fromtimestamp(hi + 2e-6, zone(tz)) >= minute + timedelta(minutes=1)
    assert seen == {None, "is no longer routed to webhook"}


def test_a_maintenance_verdict_holds_until_the_window_ends() -> None:
    index = make_index("UTC", threshold=2, interval=0, restricted=False, unless_b=False)
    record = check_record(scheduled_maintenance=window(100, 50, ack=False))
    m = index.media["m"]
    assert judged(index, record, m, T0) == (None, float("-inf"), T0 + 100)
    assert judged(index, record, m, T0 + 120) == ("is in scheduled maintenance", T0 + 100, T0 + 150)
    assert judged(index, record, m, T0 + 150) == (None, T0 + 150, float("inf"))


def test_a_decision_names_ten_checks_it_does_not_count_and_how_many_more() -> None:
    """A rollup with 30 checks disabled: the count leaves all 30 out, the reason names 10."""
    index = make_index("UTC", threshold=2, interval=600, restricted=False, unless_b=False)
    ids = [f"c{i:02}" for i in range(30)]
    state = NotifierState(checks={cid: check_record(cid, enabled=False) for cid in ids})
    state.rollups["m"] = RollupState(
        True, {cid: RollupItem(entity="web", check=cid, state="critical") for cid in ids}
    )
    state.episodes = {"ep-a": {"m"}}
    n = note(0, "a", "problem", T0, "critical")
    texts = [d.text for d in expand(index, state, n, select(index, n)).decisions]
    [text] = [t for t in texts if t.startswith("rollup")]
    shown = "; ".join(f"web:c{i:02} is disabled" for i in range(10))
    # 31 entries with a's own, 30 not counted: 1 < 2 ends the rollup.
    assert text.startswith("rollup recovery: 1 failing < threshold 2")
    assert f"(not counted: {shown}; and 20 more)" in text
