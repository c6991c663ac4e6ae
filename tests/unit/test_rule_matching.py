"""Rule tag strategies and the reasons routing gives per rule (docs/explain.md).

Pure: a configuration snapshot and a notification in, the routing core's
targets and reasons out.  The dry run (``simulate.route``) and the dashboard's
"who would be notified now" (``views.who_would_be_notified``) are checked to
give the very same reason text as the notifier's ``select``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from typer.testing import CliRunner

from services.api.ui.views import contact_views, rule_text
from services.cli import rules as rule_commands
from services.cli.config_file import normalise
from services.cli.config_io import _normalise_rule
from services.cli.main import app as cli_app
from shared.checks import CheckDetail
from shared.directory import DirectorySnapshot
from shared.explain.preview import who_would_be_notified
from shared.explain.simulate import route
from shared.models import (
    Contact,
    Medium,
    Notification,
    Rule,
    SeverityRoute,
    TimeRecurrence,
)
from shared.records import from_hash, to_hash
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState
from shared.routing.rules import tags_match
from shared.routing.selection import Index, compile_index, contact_decision, select

# Wednesday 14 January 2026, 16:41 UTC = 17:41 in Oslo (UTC+1 in winter).
WED_1741_OSLO = datetime(2026, 1, 14, 16, 41, tzinfo=UTC).timestamp()
WED_1000_OSLO = datetime(2026, 1, 14, 9, 0, tzinfo=UTC).timestamp()
WORKDAY = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="17:00")
EMAIL = SeverityRoute(media=("email",))
HOLE = SeverityRoute(blackhole=True)


def snapshot(rules: list[Rule], tz: str = "UTC") -> DirectorySnapshot:
    return DirectorySnapshot(
        version=1,
        contacts={"alice": Contact(id="alice", name="Alice", timezone=tz)},
        media={
            "m-email": Medium(id="m-email", contact_id="alice", type="email", address="a@x"),
        },
        rules={r.id: r for r in rules},
    )


def note(
    state: str = "critical", tags: tuple[str, ...] = (), at: float = WED_1000_OSLO
) -> Notification:
    return Notification(
        id="n1",
        type="problem",
        check_id="web1:http",
        entity="web1",
        check="http",
        state=state,
        severity=state,  # type: ignore[arg-type]
        time=at,
        tags=tags,
    )


def rule(rid: str, **kw: object) -> Rule:
    return msgspec.convert({"id": rid, "contact_id": "alice", **kw}, Rule)


def suppressed(index: Index, n: Notification) -> list[tuple[str, str]]:
    return [(d.code, d.text) for d in select(index, n).decisions]


# --------------------------------------------------------------------------- tag strategies


@pytest.mark.parametrize(
    ("strategy", "wanted", "have", "match"),
    [
        pytest.param("all", {"a", "b"}, {"a", "b", "c"}, True, id="all present"),
        pytest.param("all", {"a", "b"}, {"a"}, False, id="all: one missing"),
        pytest.param("any", {"a", "b"}, {"b"}, True, id="any: one present"),
        pytest.param("any", {"a", "b"}, {"c"}, False, id="any: none present"),
        pytest.param("none", {"buf"}, {"c"}, True, id="none: absent"),
        pytest.param("none", {"buf", "x"}, {"x"}, False, id="none: one present"),
        pytest.param("any", set(), set(), True, id="no tags: global (any)"),
        pytest.param("none", set(), {"buf"}, True, id="no tags: global (none)"),
    ],
)
def test_tags_match(strategy: str, wanted: set[str], have: set[str], match: bool) -> None:
    assert tags_match(strategy, frozenset(wanted), frozenset(have)) is match


@pytest.mark.parametrize(
    ("tags", "delivered"),
    [
        pytest.param(("buf",), True, id="tagged buf: not blackholed"),
        pytest.param(("other",), False, id="untagged: blackholed"),
    ],
)
def test_blackhole_everything_except_tagged(tags: tuple[str, ...], delivered: bool) -> None:
    """Flapjack's usual 'none': a blackhole unless tagged buf, next to a global email rule."""
    index = compile_index(
        snapshot(
            [
                rule("1", critical=EMAIL),
                rule("2", tags=["buf"], tag_strategy="none", critical=HOLE),
            ]
        )
    )
    sel = select(index, note(tags=tags))
    assert bool(sel.targets) is delivered
    if not delivered:
        [d] = sel.decisions
        assert d.code == "blackhole"
        assert d.text == (
            "blackholed by rule 2 for critical; rule 1: matched, routes critical to email"
        )


def test_any_strategy_routes_acceptors() -> None:
    index = compile_index(
        snapshot([rule("1", tags=["a", "b"], tag_strategy="any", critical=EMAIL)])
    )
    assert [t.medium.id for t in select(index, note(tags=("b",))).targets] == ["m-email"]
    assert suppressed(index, note(tags=("c",))) == [("tags", "none of {a, b} present (any needed)")]


def test_stored_rules_without_a_strategy_keep_meaning_all() -> None:
    # A hash written before tag strategies existed.
    old = {"id": "1", "contact_id": "alice", "tags": '["a","b"]'}
    r = from_hash(Rule, old)
    assert r.tag_strategy == "all"
    index = compile_index(snapshot([msgspec.structs.replace(r, critical=EMAIL)]))
    assert not select(index, note(tags=("a",))).targets
    assert select(index, note(tags=("a", "b"))).targets
    again = from_hash(Rule, to_hash(rule("2", tag_strategy="none", tags=["x"])))
    assert again.tag_strategy == "none"


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(msgspec.ValidationError, match="tag_strategy"):
        rule("1", tag_strategy="some")


def test_rule_text_for_people() -> None:
    assert (
        rule_text(rule("1", tags=["buf"], tag_strategy="none")) == "any entity, unless tagged buf"
    )
    assert rule_text(rule("1", entities=["web1"], tags=["a", "b"], tag_strategy="any")) == (
        "entities web1, tagged any of a, b"
    )
    assert rule_text(rule("1", tags=["a", "b"])) == "any entity, tagged all of a, b"
    [view] = contact_views(snapshot([rule("1", tags=["buf"], tag_strategy="none")]))
    assert view.rules[0].match == "any entity, unless tagged buf"


# --------------------------------------------------------------------------- reasons


def alice() -> Index:
    """Alice (Oslo): critical -> email Mon-Fri 08:00-17:00, warning -> blackhole at any time."""
    return compile_index(
        snapshot(
            [
                rule("1", time_restrictions=[WORKDAY], critical=EMAIL),
                rule("2", warning=HOLE),
            ],
            tz="Europe/Oslo",
        )
    )


ALICE_1741 = (
    "rule 1: time restriction Mon-Fri 08:00-17:00 Europe/Oslo excludes Wed 17:41; "
    "rule 2: matched, routes critical nowhere (only warning: blackhole)"
)


def test_alice_after_hours_names_the_time_restriction() -> None:
    assert suppressed(alice(), note(at=WED_1741_OSLO)) == [("time_restriction", ALICE_1741)]


def test_alice_in_hours_names_the_matching_rule() -> None:
    index = alice()
    n = note(at=WED_1000_OSLO)
    sel = select(index, n)
    [t] = sel.targets
    assert t.rules == ("1",)
    [d] = expand(index, NotifierState(), n, sel).decisions
    assert d.verdict == "deliver" and d.text.endswith("(rule 1)")


def three_rules() -> DirectorySnapshot:
    """Each rule would email a critical and each is excluded for another reason."""
    return snapshot(
        [
            rule("e", entities=["db1"], critical=EMAIL),
            rule("t", tags=["team=db"], critical=EMAIL),
            rule("w", time_restrictions=[WORKDAY], critical=EMAIL),
            rule("s", tags=["buf"], tag_strategy="none", warning=EMAIL),
        ],
        tz="Europe/Oslo",
    )


THREE = (
    "rule e: entity web1 not in {db1}; "
    "rule s: none of {buf} present: matched, routes critical nowhere (only warning: email); "
    "rule t: team=db of all of {team=db} missing; "
    "rule w: time restriction Mon-Fri 08:00-17:00 Europe/Oslo excludes Wed 17:41"
)


def test_each_rule_says_why_it_did_not_match() -> None:
    [(code, text)] = suppressed(compile_index(three_rules()), note(at=WED_1741_OSLO))
    # The first rule that would have routed critical decides the code; every rule is named.
    assert code == "entity"
    assert text == THREE


def test_dry_run_and_dashboard_give_the_same_reason() -> None:
    index = compile_index(three_rules())
    n = note(at=WED_1741_OSLO)
    dry = route(index, lambda q: NotifierState(), n)
    assert dry.notifier is not None
    assert [(r.code, r.text) for r in dry.notifier.routes] == [("entity", THREE)]
    check = CheckDetail(
        id="web1:http",
        entity="web1",
        check="http",
        state="critical",
        summary="",
        details="",
        last_update=n.time,
        enabled=True,
        failing=True,
        tags=(),
    )
    page = who_would_be_notified(three_rules(), check, n.time)
    assert page.suppressed == [("Alice", THREE)]


def test_a_contact_no_rule_considers_is_explained_on_request() -> None:
    index = compile_index(snapshot([rule("e", entities=["db1"], critical=EMAIL)]))
    n = note()
    assert suppressed(index, n) == [("no_contact", "no rule matches web1:http")]
    d = contact_decision(index, n, "alice")
    assert d is not None and (d.code, d.text) == ("entity", "entity web1 not in {db1}")
    dry = route(index, lambda q: NotifierState(), n)
    [other] = dry.others
    assert other.text == "no rule of Alice matches web1:http: entity web1 not in {db1}"


def test_import_file_carries_and_checks_the_strategy() -> None:
    good = {"contacts": [{"name": "A", "rules": [{"tags": ["buf"], "tag_strategy": "none"}]}]}
    contacts, errors = normalise(good)
    assert errors == [] and contacts[0]["rules"][0]["tag_strategy"] == "none"
    bad = {"contacts": [{"name": "A", "rules": [{"tags": ["buf"], "tag_strategy": "some"}]}]}
    _, errors = normalise(bad)
    assert (
        len(errors) == 1
        and "rules[0].tag_strategy: 'some' is not one of all, any, none" in errors[0]
    )


def test_import_compares_a_rule_without_strategy_as_all() -> None:
    before = {"tags": ["a"], "critical": {"media": ["email"]}}
    assert _normalise_rule(before) == _normalise_rule({**before, "tag_strategy": "all"})
    assert _normalise_rule(before) != _normalise_rule({**before, "tag_strategy": "any"})


def test_cli_shows_and_checks_the_strategy() -> None:
    assert rule_commands._tags({"tags": ["buf"], "tag_strategy": "none"}) == "none:buf"
    assert rule_commands._tags({"tags": ["a", "b"], "tag_strategy": "any"}) == "any:a,b"
    assert rule_commands._tags({"tags": ["a"]}) == "a"  # an old API answer: all
    assert rule_commands._tags({"tags": [], "tag_strategy": "none"}) == "any"
    bad = CliRunner().invoke(
        cli_app, ["rules", "create", "--contact", "c", "--tag", "x", "--tag-strategy", "some"]
    )
    assert bad.exit_code == 2 and "some" in bad.output
