"""Routing to escalation policies and paging people through their own rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scheduler.core import fire
from shared.directory import DirectorySnapshot
from shared.escalation import CheckAtStep, Escalation, Policy, Step, Target, simulate
from shared.models import Contact, Medium, Notification, Rule, SeverityRoute, TimeRecurrence
from shared.notifier.batch import escalations_to_start
from shared.oncall import Layer, Schedule
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState
from shared.routing.selection import compile_index, select

# Saturday 2026-12-12 03:00 UTC
SAT_0300 = datetime(2026, 12, 12, 3, 0, tzinfo=UTC).timestamp()
OFFICE = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="17:00")
HOOK = SeverityRoute(media=("webhook",))


def snap() -> DirectorySnapshot:
    contacts = {c: Contact(id=c, name=c.title()) for c in ("team", "kari", "ola", "per", "bo")}
    media = {
        f"m-{c}": Medium(id=f"m-{c}", contact_id=c, type="webhook", address=f"https://x/{c}")
        for c in ("kari", "ola", "per", "bo")
    }
    rules = {
        "r-team": Rule(
            id="r-team", contact_id="team", critical=SeverityRoute(escalation_policy_id="pol")
        ),
        "r-ola": Rule(id="r-ola", contact_id="ola", critical=HOOK, time_restrictions=(OFFICE,)),
        "r-per": Rule(id="r-per", contact_id="per", critical=SeverityRoute(blackhole=True)),
        "r-bo": Rule(id="r-bo", contact_id="bo", critical=HOOK),
        # rules about other checks only: they do not block an on-call page
        "r-kari-db": Rule(id="r-kari-db", contact_id="kari", entities=("db1",), critical=HOOK),
    }
    return DirectorySnapshot(version=1, contacts=contacts, media=media, rules=rules)


def problem(**kw: object) -> Notification:
    base: dict[str, object] = {
        "id": "n1",
        "type": "problem",
        "check_id": "c1",
        "entity": "web1",
        "check": "http",
        "state": "critical",
        "severity": "critical",
        "time": SAT_0300,
        "episode_id": "ep1",
        "incident_event": "STA",
    }
    return Notification(**(base | kw))  # type: ignore[arg-type]


def test_a_rule_routes_a_problem_to_a_policy_and_the_notifier_starts_it() -> None:
    index = compile_index(snap())
    n = problem()
    sel = select(index, n)
    assert sel.policies == (("pol", "r-team"),)
    assert any("escalation policy pol" in d.text for d in sel.decisions)
    assert not any(d.contact_id == "team" and d.verdict == "suppress" for d in sel.decisions)
    [esc] = escalations_to_start([(n, sel)])
    assert (esc.policy_id, esc.episode_id, esc.notification_id) == ("pol", "ep1", "n1")
    assert escalations_to_start([(problem(type="recovery"), sel)]) == []


def test_paged_people_get_their_own_media_under_their_own_rules() -> None:
    index = compile_index(snap())
    page = problem(
        id="e.0",
        escalation_id="e",
        escalation_policy_id="pol",
        escalation_step=1,
        escalation_contacts=("kari", "ola", "per", "bo"),
    )
    sel = select(index, page)
    assert sorted(t.contact.id for t in sel.targets) == ["bo", "kari"]
    why = {d.contact_id: (d.code, d.text) for d in sel.decisions}
    assert why["ola"][0] == "time_restriction" and "escalation pol step 1" in why["ola"][1]
    assert why["per"][0] == "blackhole"
    out = expand(index, NotifierState(), page, sel)
    assert {d.escalation.step for d in out.deliveries if d.escalation} == {1}
    assert out.effects.episode_added == {"m-kari", "m-bo"}  # recoveries reach them


def test_simulate_who_is_paged_at_0300_saturday_and_after_ten_minutes() -> None:
    schedule = Schedule(
        id="s",
        name="weekend",
        layers=(Layer(members=("kari", "bo"), shift_hours=24, handoff="2026-12-11T00:00"),),
    )
    policy = Policy(
        id="pol",
        name="ops",
        steps=(
            Step(targets=(Target(schedule="s"),), wait_s=600),
            Step(targets=(Target(contact="ola"),), wait_s=600),
        ),
    )
    esc = Escalation(
        id="e", policy_id="pol", notification_id="n1", check_id="c1", episode_id="ep1", started=0
    )
    failing = CheckAtStep(failing=True, episode_id="ep1")
    now = fire(esc, 0, policy, {"s": schedule}, problem(), failing, SAT_0300)
    later = fire(esc, 1, policy, {"s": schedule}, problem(), failing, SAT_0300 + 600)
    assert now.entry.paged == ("bo",) and now.next_due == SAT_0300 + 600
    assert later.entry.paged == ("ola",) and later.next_due is None
    assert now.page is not None and now.page.escalation_contacts == ("bo",)
    acked = fire(
        esc,
        1,
        policy,
        {"s": schedule},
        problem(),
        CheckAtStep(failing=True, episode_id="ep1", acknowledged=True),
        SAT_0300 + 600,
    )
    assert (acked.page, acked.entry.outcome, acked.entry.reason) == (
        None,
        "stopped",
        "acknowledged",
    )


def test_simulate_steps_until_the_window_ends() -> None:
    schedule = Schedule(
        id="s",
        name="weekend",
        layers=(Layer(members=("kari", "bo"), shift_hours=24, handoff="2026-12-11T00:00"),),
    )
    policy = Policy(
        id="pol",
        name="ops",
        repeat=1,
        steps=(
            Step(targets=(Target(schedule="s"),), wait_s=600),
            Step(targets=(Target(contact="ola"),), wait_s=600),
        ),
    )
    got = simulate(policy, {"s": schedule}, SAT_0300, SAT_0300 + 600)
    assert [(s.time - SAT_0300, s.step, s.paged) for s in got] == [
        (0, 1, ("bo",)),
        (600, 2, ("ola",)),
    ]
    whole = simulate(policy, {"s": schedule}, SAT_0300 + 21 * 3600 - 600, SAT_0300 + 86400)
    # the repeat pass pages whoever is on call by then: Sunday's member
    assert [s.paged for s in whole] == [("bo",), ("ola",), ("kari",), ("ola",)]


def test_recovery_reaches_paged_people_their_own_rules_or_no_rules_at_all() -> None:
    index = compile_index(snap())
    state = NotifierState(episodes={"ep1": {"m-kari", "m-bo", "m-ola"}})
    ok = problem(id="n2", type="recovery", state="ok", incident_event="END")
    out = expand(index, state, ok, select(index, ok))
    assert sorted(d.medium.id for d in out.deliveries) == ["m-bo", "m-kari"]
    # Ola's rules (weekdays only) do not route a Saturday recovery: her rules decide.
    assert not any(d.medium.id == "m-ola" for d in out.deliveries)
    assert any("paged by an escalation" in d.text for d in out.decisions if d.contact_id == "kari")


def test_a_page_for_an_argus_source_incident_reaches_people_not_profiles() -> None:
    # The problem that started it is the Argus API's profiles_only notification; its pages
    # must be expanded for the paged people (profiles_only would send them to profiles).
    origin = problem(
        id="argus:42:1", episode_id="42", profiles_only=True, incident_source="2", entity="nav"
    )
    esc = Escalation(
        id="e",
        policy_id="pol",
        notification_id=origin.id,
        check_id="c1",
        episode_id="42",
        started=SAT_0300,
        incident_id="42",
    )
    policy = Policy(id="pol", name="ops", steps=(Step(targets=(Target(contact="bo"),)),))
    out = fire(esc, 0, policy, {}, origin, CheckAtStep(failing=True, episode_id="42"), SAT_0300)
    assert out.page is not None and not out.page.profiles_only
    index = compile_index(snap())
    sent = expand(index, NotifierState(), out.page, select(index, out.page))
    assert [
        (d.medium.address, d.escalation.step if d.escalation else None) for d in sent.deliveries
    ] == [("https://x/bo", 1)]
    assert sent.effects.episode_added == {"m-bo"}  # the incident's end reaches Bo
