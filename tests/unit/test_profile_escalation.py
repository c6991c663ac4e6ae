"""Argus notification profiles that route a problem to an escalation policy (pure)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.directory import DirectorySnapshot
from shared.escalation_store import escalation_id
from shared.models import Notification
from shared.notifier.batch import escalations_to_start
from shared.routing.selection import compile_index, select
from tests.unit.test_profiles_scenarios import event, profile, snapshot


def with_policy(p: dict[str, Any], pid: str) -> dict[str, Any]:
    return p | {"escalation_policy": pid}


def tocsin(etype: str = "STA", **changes: Any) -> Notification:
    """A Tocsin check's own incident event, as the processor writes it."""
    return event(
        etype,
        id=f"n-{etype}",
        incident_source="tocsin",
        incident_source_type="tocsin",
        profiles_only=False,
        **changes,
    )


def started(snap: DirectorySnapshot, n: Notification) -> list[tuple[str, str, str]]:
    index = compile_index(snap)
    sel = select(index, n)
    return [
        (e.policy_id, e.episode_id, e.notification_id) for e in escalations_to_start([(n, sel)])
    ]


def test_a_matching_profile_with_a_policy_starts_one_escalation() -> None:
    snap = snapshot([with_policy(profile(["tocsin"]), "pol")])
    n = tocsin()
    index = compile_index(snap)
    sel = select(index, n)
    assert [a.medium.address for a in sel.direct] == ["http://a/"]  # destinations still served
    assert ("pol", "profile 1") in sel.policies
    texts = [d.text for d in sel.decisions if d.code == "escalation"]
    assert texts == ["profile 1 routes STA to escalation policy pol"]
    assert started(snap, n) == [("pol", "7", "n-STA")]


def test_a_profile_that_does_not_match_starts_nothing() -> None:
    # nav_crit wants source 2; this is Tocsin's own incident.
    snap = snapshot([with_policy(profile(["nav_crit"]), "pol")])
    assert started(snap, tocsin()) == []


def test_an_inactive_profile_starts_nothing() -> None:
    snap = snapshot([with_policy(profile(["tocsin"], active=False), "pol")])
    assert started(snap, tocsin()) == []


def test_a_profile_without_a_policy_starts_nothing() -> None:
    snap = snapshot([profile(["tocsin"])])
    assert started(snap, tocsin()) == []


def test_one_escalation_per_episode_and_policy_across_profiles_and_rules() -> None:
    snap = snapshot(
        [
            with_policy(profile(["tocsin"]), "pol"),
            with_policy(profile(["tocsin"], dests=(2,)), "pol"),
            with_policy(profile(["tocsin"], dests=(3,)), "other"),
        ]
    )
    assert started(snap, tocsin()) == [("pol", "7", "n-STA"), ("other", "7", "n-STA")]
    # The id depends only on episode and policy, so a later event of the episode (OTH)
    # names the same escalation, which the store starts only once (HSETNX / ZADD NX).
    index = compile_index(snap)
    first = escalations_to_start([(tocsin(), select(index, tocsin()))])
    later = escalations_to_start([(tocsin("OTH"), select(index, tocsin("OTH")))])
    assert [e.id for e in first] == [e.id for e in later]


def test_only_problems_start_an_escalation() -> None:
    snap = snapshot([with_policy(profile(["tocsin"]), "pol")])
    assert started(snap, tocsin("END", type="recovery")) == []
    assert started(snap, tocsin("ACK", type="acknowledgement")) == []


def test_a_source_incident_profile_starts_an_escalation_stopped_by_the_incident() -> None:
    # An Argus source's incident (the API's profiles_only notification): its episode is
    # the incident pk, which the escalation carries so the incident's end or ack stops it.
    snap = snapshot([with_policy(profile(["nav_crit"]), "pol")])
    n = event()
    index = compile_index(snap)
    assert select(index, n).direct  # the profile matches and still delivers
    (esc,) = escalations_to_start([(n, select(index, n))])
    assert (esc.policy_id, esc.episode_id, esc.incident_id, esc.check_id) == ("pol", "7", "7", "c1")
    # The processor's notification of the check the API mirrors the incident to names
    # the same episode, so a rule routing it to the same policy starts the same escalation.
    assert esc.id == escalation_id("7", "pol")


@pytest.mark.parametrize(
    "changes",
    [
        {"incident_stateful": False, "incident_open": False, "incident_event": "LES"},
        {"incident_open": False},
        {"type": "recovery", "incident_event": "END", "incident_open": False},
        {"type": "acknowledgement", "incident_event": "ACK", "incident_acked": True},
    ],
    ids=["stateless", "already-closed", "end", "ack"],
)
def test_a_source_incident_starts_none_unless_an_open_stateful_problem(
    changes: dict[str, Any],
) -> None:
    snap = snapshot([with_policy(profile(["nav_crit"]), "pol")])
    n = event(**changes)
    assert escalations_to_start([(n, select(compile_index(snap), n))]) == []


def test_planned_maintenance_starts_no_escalation() -> None:
    snap = snapshot([with_policy(profile(["tocsin"]), "pol")])
    assert started(snap, tocsin(in_maintenance=True)) == []


def test_the_field_survives_compilation_and_unset_means_none() -> None:
    snap = snapshot([with_policy(profile(["tocsin"]), "pol"), profile(["tocsin"])])
    index = compile_index(snap)
    assert [p.escalation_policy for p in index.profiles.profiles] == ["pol", ""]
    assert msgspec.json.decode(snap.argus["profile"]["2"]).get("escalation_policy") is None
