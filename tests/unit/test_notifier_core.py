"""Notifier scenarios on the pure core: config + notification sequence -> deliveries.

Each scenario runs a sequence of notifications through select -> expand ->
apply with one in-memory state (as a batch does), and compares, per
notification, the sorted deliveries written as ``medium:type`` (rollups also
list their checks: ``m1:rollup[c1,c2]``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.directory import DirectorySnapshot
from shared.models import (
    Contact,
    Delivery,
    Medium,
    Notification,
    Rule,
    SeverityRoute,
    TimeRecurrence,
)
from shared.routing.expansion import expand
from shared.routing.notifier_state import (
    Expansion,
    NotifierState,
    apply,
    block_id,
    rollup_block_id,
    state_query,
)
from shared.routing.selection import compile_index, select

T0 = datetime(2026, 1, 12, 12, 0, tzinfo=UTC).timestamp()  # a Monday


def utc(stamp: str) -> float:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


def contact(cid: str, tz: str = "UTC") -> Contact:
    return Contact(id=cid, name=cid.upper(), timezone=tz)


def medium(
    mid: str, cid: str = "a", mtype: str = "webhook", interval: int = 600, rollup: int | None = None
) -> Medium:
    return Medium(
        id=mid,
        contact_id=cid,
        type=mtype,
        address=f"http://x/{mid}",
        interval=interval,
        rollup_threshold=rollup,
    )


def rule(
    rid: str,
    cid: str = "a",
    media: tuple[str, ...] = ("webhook",),
    *,
    entities: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    times: tuple[TimeRecurrence, ...] = (),
    warning: tuple[str, ...] | None = None,
    unknown: tuple[str, ...] | None = None,
    blackhole: tuple[str, ...] = (),
) -> Rule:
    def route(sev: str, types: tuple[str, ...] | None) -> SeverityRoute:
        return SeverityRoute(media=media if types is None else types, blackhole=sev in blackhole)

    return Rule(
        id=rid,
        contact_id=cid,
        entities=entities,
        tags=tags,
        time_restrictions=times,
        critical=route("critical", None),
        warning=route("warning", warning),
        unknown=route("unknown", unknown),
    )


_seq = iter(range(1, 1_000_000))


def note(
    ntype: str = "problem",
    check: str = "c1",
    state: str = "critical",
    t: float = 0,
    *,
    entity: str = "web1",
    episode: str | None = None,
    tags: tuple[str, ...] = (),
    severity: str | None = None,
    at: float | None = None,
) -> Notification:
    sev = severity or ("critical" if state in ("ok", "acknowledgement", "test") else state)
    return Notification(
        id=f"n{next(_seq)}",
        type=ntype,
        check_id=check,
        entity=entity,
        check=check,
        state=state,
        severity=sev,
        time=T0 + t if at is None else at,  # type: ignore[arg-type]
        episode_id=episode or f"ep-{check}",
        tags=tags,
        summary=f"{check} is {state}",
    )


def run(
    contacts: list[Contact], media: list[Medium], rules: list[Rule], notes: list[Notification]
) -> list[Expansion]:
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
        out.append(o)
    return out


def fmt(d: Delivery) -> str:
    if d.type in ("rollup", "rollup_recovery"):
        return f"{d.medium.id}:{d.type}[{','.join(sorted(i.check for i in d.checks))}]"
    return f"{d.medium.id}:{d.type}"


A = [contact("a")]
AB = [contact("a"), contact("b")]
M1 = [medium("m1")]
OSLO_WORKDAY = (TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00"),)
P, R, K, X = "problem", "recovery", "acknowledgement", "test"

SCENARIOS: list[Any] = [
    pytest.param(
        A, M1, [rule("r")], [note()], [["m1:problem"]], id="catch-all rule delivers problem"
    ),
    pytest.param(A, M1, [], [note()], [[]], id="no rules no delivery"),
    pytest.param(
        A, M1, [rule("r", entities=("web1",))], [note()], [["m1:problem"]], id="entity match"
    ),
    pytest.param(A, M1, [rule("r", entities=("db1",))], [note()], [[]], id="entity mismatch"),
    pytest.param(
        A,
        M1,
        [rule("r", tags=("env=prod", "team=web"))],
        [note(tags=("env=prod", "team=web", "x=y"))],
        [["m1:problem"]],
        id="all rule tags present",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", tags=("env=prod", "team=web"))],
        [note(tags=("env=prod",))],
        [[]],
        id="one rule tag missing",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", warning=())],
        [note(state="warning"), note(check="c2")],
        [[], ["m1:problem"]],
        id="severity without media",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", unknown=("webhook",), warning=())],
        [note(state="unknown")],
        [["m1:problem"]],
        id="unknown severity routed",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2", mtype="email")],
        [rule("r1", media=("webhook",)), rule("r2", media=("email",))],
        [note()],
        [["m1:problem", "m2:problem"]],
        id="media union over rules",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2", mtype="email")],
        [rule("r1", media=("webhook",))],
        [note()],
        [["m1:problem"]],
        id="unrouted medium type skipped",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2")],
        [rule("r")],
        [note()],
        [["m1:problem", "m2:problem"]],
        id="two media of one type",
    ),
    pytest.param(
        A,
        M1,
        [rule("r1"), rule("r2")],
        [note()],
        [["m1:problem"]],
        id="two matching rules one delivery",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", blackhole=("warning",))],
        [note(state="warning"), note(check="c2", state="critical")],
        [[], ["m1:problem"]],
        id="blackhole on warning media on critical",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2", mtype="email")],
        [rule("r1"), rule("r2", media=("email",), blackhole=("critical",))],
        [note()],
        [[]],
        id="any blackhole silences contact",
    ),
    pytest.param(
        AB,
        [medium("m1"), medium("m2", "b")],
        [rule("r1"), rule("r2", "b", entities=("db1",))],
        [note()],
        [["m1:problem"]],
        id="only matching contact",
    ),
    pytest.param(
        AB,
        [medium("m1"), medium("m2", "b")],
        [rule("r1"), rule("r2", "b", blackhole=("critical",))],
        [note()],
        [["m1:problem"]],
        id="blackhole is per contact",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(t=300), note(t=700)],
        [["m1:problem"], [], ["m1:problem"]],
        id="interval 600 repeats 0 300 700",
    ),
    pytest.param(
        A,
        [medium("m1", interval=0)],
        [rule("r")],
        [note(t=0), note(t=1), note(t=2)],
        [["m1:problem"]] * 3,
        id="interval 0 never blocks",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(t=600)],
        [["m1:problem"], ["m1:problem"]],
        id="block ends exactly at expire_at",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(t=100, state="warning", severity="critical"), note(t=200)],
        [["m1:problem"]] * 3,
        id="state changes never blocked",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(t=10, check="c2")],
        [["m1:problem"], ["m1:problem"]],
        id="blocks are per check",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2", interval=100)],
        [rule("r")],
        [note(t=0), note(t=200)],
        [["m1:problem", "m2:problem"], ["m2:problem"]],
        id="blocks are per medium interval",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(R, state="ok", t=100), note(t=200, episode="ep2")],
        [["m1:problem"], ["m1:recovery"], ["m1:problem"]],
        id="recovery clears blocks",
    ),
    pytest.param(A, M1, [rule("r")], [note(R, state="ok")], [[]], id="recovery without problem"),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(episode="e1"), note(R, state="ok", t=5, episode="e2")],
        [["m1:problem"], []],
        id="recovery of another episode",
    ),
    pytest.param(
        AB,
        [medium("m1"), medium("m2", "b")],
        [
            rule("r1"),
            rule("r2", "b", times=(TimeRecurrence(days=(1,), start="13:00", end="14:00"),)),
        ],
        [note(t=0), note(R, state="ok", t=3600)],
        [["m1:problem"], ["m1:recovery"]],
        id="recovery only to media that got the problem",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(), note(K, state="acknowledgement", t=60), note(R, state="ok", t=120)],
        [["m1:problem"], ["m1:acknowledgement"], ["m1:recovery"]],
        id="ack then recovery to problem media",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(), note(R, state="ok", t=10), note(R, state="ok", t=20)],
        [["m1:problem"], ["m1:recovery"], []],
        id="episode ends with recovery",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(X, state="test", t=10), note(X, state="test", t=20)],
        [["m1:problem"], ["m1:test"], ["m1:test"]],
        id="test bypasses interval",
    ),
    pytest.param(
        A,
        [medium("m1"), medium("m2", mtype="email")],
        [rule("r1"), rule("r2", media=("email",), entities=("db1",))],
        [note(X, state="test")],
        [["m1:test"]],
        id="test to every selected medium",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", blackhole=("critical",))],
        [note(X, state="test")],
        [[]],
        id="test respects blackhole on critical",
    ),
    pytest.param(
        [contact("a", "Europe/Oslo")],
        M1,
        [rule("r", times=OSLO_WORKDAY)],
        [
            note(check="c1", at=utc("2026-01-12 06:30")),
            note(check="c2", at=utc("2026-01-12 07:30")),
            note(check="c3", at=utc("2026-01-12 15:30")),
            note(check="c4", at=utc("2026-01-17 09:03")),
            note(check="c5", at=utc("2026-07-13 06:30")),
        ],
        [[], ["m1:problem"], [], [], ["m1:problem"]],
        id="weekday 08-16 Oslo from UTC times",
    ),
    pytest.param(
        A,
        M1,
        [rule("r1", times=(TimeRecurrence(days=(7,), all_day=True),)), rule("r2")],
        [note()],
        [["m1:problem"]],
        id="unrestricted rule wins union",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [
            note(check="c1", t=0),
            note(check="c2", t=10),
            note(check="c3", t=20),
            note(R, check="c1", state="ok", t=30),
            note(R, check="c2", state="ok", t=40),
            note(R, check="c3", state="ok", t=50),
        ],
        [["m1:problem"], ["m1:rollup[c1,c2]"], [], [], ["m1:rollup_recovery[c3]"], ["m1:recovery"]],
        id="rollup enters and leaves three checks threshold 2",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [
            note(check="c1", t=0),
            note(check="c2", t=10),
            note(check="c3", t=700),
            note(check="c1", t=800),
        ],
        [["m1:problem"], ["m1:rollup[c1,c2]"], ["m1:rollup[c1,c2,c3]"], []],
        id="rollup at most once per interval",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [
            note(check="c1"),
            note(check="c2", t=10),
            note(K, check="c1", state="acknowledgement", t=20),
        ],
        [["m1:problem"], ["m1:rollup[c1,c2]"], ["m1:rollup_recovery[c2]"]],
        id="ack leaves rollup",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2), medium("m2", mtype="email")],
        [rule("r", media=("webhook", "email"))],
        [note(check="c1"), note(check="c2", t=10)],
        [["m1:problem", "m2:problem"], ["m1:rollup[c1,c2]", "m2:problem"]],
        id="rollup only on its medium",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [
            note(check="c1"),
            note(check="c2", t=10),
            note(R, check="c2", state="ok", t=20),
            note(check="c3", t=30, episode="x"),
        ],
        [["m1:problem"], ["m1:rollup[c1,c2]"], ["m1:rollup_recovery[c1]"], ["m1:rollup[c1,c3]"]],
        id="rollup re-entry within interval",
    ),
    pytest.param(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [note(check="c1"), note(X, check="c2", state="test", t=5)],
        [["m1:problem"], ["m1:test"]],
        id="test bypasses rollup",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(R, state="ok", t=20), note(t=0), note(check="c2", t=5)],
        [[], [], ["m1:problem"]],
        id="problem taken after its recovery is superseded (other checks unaffected)",
    ),
    pytest.param(
        A,
        M1,
        [rule("r", warning=("webhook",))],
        [note(state="critical", t=10), note(state="warning", t=0), note(R, state="ok", t=20)],
        [["m1:problem"], [], ["m1:recovery"]],
        id="older problem after a newer one is superseded; recovery still routed",
    ),
    pytest.param(
        A,
        M1,
        [rule("r")],
        [note(t=0), note(K, state="acknowledgement", t=100.7), note(R, state="ok", t=100)],
        [["m1:problem"], ["m1:acknowledgement"], ["m1:recovery"]],
        id="recovery in the ack's second (whole-second event time) is never superseded",
    ),
]


@pytest.mark.parametrize(("contacts", "media", "rules", "notes", "expected"), SCENARIOS)
def test_scenario(
    contacts: list[Contact],
    media: list[Medium],
    rules: list[Rule],
    notes: list[Notification],
    expected: list[list[str]],
) -> None:
    got = [sorted(fmt(d) for d in o.deliveries) for o in run(contacts, media, rules, notes)]
    assert got == expected


def test_at_least_thirty_scenarios() -> None:
    assert len(SCENARIOS) >= 30


def reasons(o: Expansion) -> list[tuple[str, str]]:
    return [(d.code, d.text) for d in o.decisions if d.verdict == "suppress"]


def test_reasons_name_the_decision() -> None:
    oslo = [contact("a", "Europe/Oslo")]
    [o] = run(oslo, M1, [rule("r", times=OSLO_WORKDAY)], [note(at=utc("2026-01-17 09:03"))])
    assert reasons(o) == [
        ("time_restriction", "time restriction Mon-Fri 08:00-16:00 Europe/Oslo excludes Sat 10:03")
    ]
    [o] = run(A, M1, [rule("rb", blackhole=("warning",))], [note(state="warning")])
    assert reasons(o) == [("blackhole", "blackholed by rule rb for warning")]
    _, o = run(A, M1, [rule("r")], [note(t=0), note(t=300)])
    [(code, text)] = reasons(o)
    assert code == "interval" and text.startswith(
        "interval: critical of web1:c1 on webhook blocked until"
    )
    [o] = run(A, M1, [], [note()])
    assert reasons(o) == [("no_contact", "no rule matches web1:c1")]
    [o] = run(A, M1, [rule("r", media=("email",))], [note()])
    assert [c for c, _ in reasons(o)] == ["no_media"]
    outs = run(
        A,
        [medium("m1", rollup=2)],
        [rule("r")],
        [note(check="c1"), note(check="c2"), note(check="c3")],
    )
    assert (
        reasons(outs[2])[0][0] == "rollup" and "3 failing >= threshold 2" in reasons(outs[2])[0][1]
    )
    [o] = run(A, M1, [rule("r")], [note(R, state="ok")])
    assert [c for c, _ in reasons(o)] == ["not_notified"]


def test_delivery_carries_what_gateways_need() -> None:
    m = Medium(
        id="m1", contact_id="a", type="webhook", address="http://x/hook", settings={"secret": "s"}
    )
    n = note(tags=("env=prod",))
    [o] = run(A, [m], [rule("r")], [n])
    [d] = o.deliveries
    assert d.id == f"{n.id}:m1" and d.notification_id == n.id
    assert (d.contact.id, d.contact.name) == ("a", "A")
    assert (d.medium.type, d.medium.address, d.medium.settings) == (
        "webhook",
        "http://x/hook",
        {"secret": "s"},
    )
    assert (d.entity, d.check, d.state, d.time, d.tags, d.summary) == (
        "web1",
        "c1",
        "critical",
        n.time,
        ("env=prod",),
        "c1 is critical",
    )


def test_rollup_delivery_lists_checks_worst_first_with_deterministic_id() -> None:
    notes = [note(check="c1", state="warning", severity="warning"), note(check="c2", t=10)]
    outs = run(A, [medium("m1", rollup=2)], [rule("r", warning=("webhook",))], notes)
    [d] = outs[1].deliveries
    assert d.type == "rollup" and d.state == "critical"
    assert [(i.check, i.state) for i in d.checks] == [("c2", "critical"), ("c1", "warning")]
    assert d.id == f"m1:rollup:{notes[1].id}"
    # Two rollups in the same second (interval 0) are two deliveries, not one deduplicated.
    same = [note(check="c1"), note(check="c2"), note(check="c3")]
    outs = run(A, [medium("m1", rollup=2, interval=0)], [rule("r")], same)
    assert outs[1].deliveries[0].id != outs[2].deliveries[0].id
    assert "2 failing checks" in d.summary


def test_effects_block_and_episode() -> None:
    n = note()
    [o] = run(A, M1, [rule("r")], [n])
    [b] = o.effects.blocks_set
    assert (b.contact_id, b.id, b.expire_at) == (
        "a",
        block_id("m1", "c1", "critical"),
        n.time + 600,
    )
    assert o.effects.episode_added == {"m1"}
    assert ("a", block_id("m1", "c1", "warning")) in o.effects.blocks_cleared


def test_state_query_reads_only_what_decisions_need() -> None:
    index = compile_index(
        DirectorySnapshot(
            version=1,
            contacts={"a": contact("a")},
            media={"m1": medium("m1", rollup=3), "m2": medium("m2", mtype="email")},
            rules={"r": rule("r")},
        )
    )
    p, r, t = note(), note(R, state="ok", check="c9", episode="e9"), note(X, state="test")
    q = state_query([(n, select(index, n)) for n in (p, r, t)])
    assert q.blocks == {"a": {block_id("m1", "c1", "critical"), rollup_block_id("m1")}}
    assert q.rollup_media == {"m1"}
    assert q.episodes == {"ep-c1", "e9"}
    assert q.checks == {"c1", "c9"}


def test_superseded_says_why_and_leaves_state_alone() -> None:
    late, early = note(R, state="ok", t=20), note(t=0)
    first, second = run(A, M1, [rule("r")], [late, early])
    assert first.effects.latest == late.time
    assert second.deliveries == ()
    assert second.effects.latest is None
    assert second.effects.blocks_set == []
    assert [code for code, _ in reasons(second)] == ["superseded"]
    assert "a later notification of the check" in reasons(second)[0][1]


@pytest.mark.serial  # asserts on timing: run alone (docs/testing.md)
def test_expand_500_contacts_1500_media_is_fast() -> None:
    import time

    contacts = [contact(f"c{i}") for i in range(500)]
    media = [
        medium(f"m{i}-{k}", f"c{i}", mtype)
        for i in range(500)
        for k, mtype in enumerate(("webhook", "email", "sms"))
    ]
    rules = [
        rule(
            f"r{i}", f"c{i}", media=("webhook", "email", "sms"), entities=("web1",) if i % 2 else ()
        )
        for i in range(500)
    ]
    started = time.perf_counter()
    [o] = run(contacts, media, rules, [note()])
    elapsed = time.perf_counter() - started
    assert len(o.deliveries) == 1500
    assert elapsed < 1.0, elapsed
