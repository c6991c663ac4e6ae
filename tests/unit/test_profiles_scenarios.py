"""Argus notification profiles through the notifier's own select + expand (pure, docs/profiles.md).

Each scenario: profiles (filters x timeslot x destinations x active), planned
maintenance, one incident event -> the addresses that get a message.  The
configuration goes through ``compile_index`` exactly as the worker loads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from shared.directory import DirectorySnapshot
from shared.models import Contact, Medium, Notification, Rule, SeverityRoute
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState
from shared.routing.selection import compile_index, select

OSLO = ZoneInfo("Europe/Oslo")


def oslo(day: int, hh: int, mm: int = 0, ss: float = 0.0) -> float:
    """Epoch of a local Oslo time in the week of Monday 2026-11-23 (day 1 = Monday)."""
    base = datetime(2026, 11, 22 + day, hh, mm, int(ss), int((ss % 1) * 1e6), tzinfo=OSLO)
    return base.timestamp()


MON_10 = oslo(1, 10)

SOURCES = {
    "1": {"pk": 1, "name": "tocsin", "type": "tocsin"},
    "2": {"pk": 2, "name": "nav", "type": "nav"},
    "3": {"pk": 3, "name": "zabbix", "type": "zabbix"},
}
TIMESLOTS = {
    1: {
        "pk": 1,
        "name": "always",
        "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}],
    },
    2: {
        "pk": 2,
        "name": "office",
        "time_recurrences": [{"days": [1, 2, 3, 4, 5], "start": "08:00:00", "end": "16:00:00"}],
    },
    3: {
        "pk": 3,
        "name": "night",
        "time_recurrences": [{"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "06:00"}],
    },
}
FILTERS: dict[str, dict[str, Any]] = {
    "empty": {},
    "nav_crit": {"sourceSystemIds": [2], "maxlevel": 2},
    "acked": {"acked": True},
    "unacked": {"acked": False},
    "sta_end": {"event_types": ["STA", "END"]},
    "ack_only": {"event_types": ["ACK"]},
    "host": {"tags": ["host=sw1"]},
    "host_site": {"tags": ["host=sw1", "site=osl"]},
    "site": {"tags": ["site=osl"]},
    "open": {"open": True},
    "stateless": {"stateful": False},
    "zabbix": {"source_types": ["zabbix"]},
    "tocsin": {"sourceSystemIds": [1]},
    "hide": {"hide_closed_acked": True, "maxlevel": 5},
}
FILTER_PK = {name: i for i, name in enumerate(FILTERS, 1)}
DESTINATIONS = {
    1: {"media": "webhook", "settings": {"url": "http://a/"}},
    2: {"media": "webhook", "settings": {"url": "http://b/"}},
    3: {"media": "email", "settings": {"email_address": "ops@example.org"}},
    4: {"media": "webhook", "settings": {"url": "http://a/"}},  # same as 1
}


def profile(
    filters: list[str],
    timeslot: int = 1,
    dests: tuple[int, ...] = (1,),
    active: bool = True,
    contact: str = "ops",
) -> dict[str, Any]:
    return {
        "filters": [FILTER_PK[f] for f in filters],
        "timeslot": timeslot,
        "destinations": list(dests),
        "active": active,
        "contact": contact,
    }


def window(filters: list[str], start: float, end: float | None) -> dict[str, Any]:
    return {"start": start, "end": end, "filters": [FILTER_PK[f] for f in filters]}


def snapshot(
    profiles: list[dict[str, Any]], maintenance: list[dict[str, Any]] = (), rules: bool = False
) -> DirectorySnapshot:
    enc = msgspec.json.encode
    contacts = {
        "ops": Contact(id="ops", name="Ops", timezone="Europe/Oslo"),
        "utc": Contact(id="utc", name="UTC desk", timezone="UTC"),
    }
    media = {}
    rule_map = {}
    if rules:
        media["ops-hook"] = Medium(
            id="ops-hook", contact_id="ops", type="webhook", address="http://a/"
        )
        rule_map["r"] = Rule(id="r", contact_id="ops", critical=SeverityRoute(media=("webhook",)))
    argus = {
        "source": {k: enc(v).decode() for k, v in SOURCES.items()},
        "timeslot": {str(k): enc(v).decode() for k, v in TIMESLOTS.items()},
        "filter": {
            str(FILTER_PK[n]): enc({"pk": FILTER_PK[n], "name": n, "filter": f}).decode()
            for n, f in FILTERS.items()
        },
        "destination": {str(k): enc({"pk": k, **v}).decode() for k, v in DESTINATIONS.items()},
        "profile": {str(i): enc({"pk": i, **p}).decode() for i, p in enumerate(profiles, 1)},
        "maintenance": {str(i): enc({"pk": i, **m}).decode() for i, m in enumerate(maintenance, 1)},
    }
    return DirectorySnapshot(version=1, contacts=contacts, media=media, rules=rule_map, argus=argus)


def event(etype: str = "STA", **changes: Any) -> Notification:
    base = Notification(
        id=f"argus:7:{etype}",
        type="problem",
        check_id="c1",
        entity="nav",
        check="port-3",
        state="critical",
        severity="critical",
        time=MON_10,
        episode_id="7",
        tags=("host=sw1", "site=osl"),
        incident_event=etype,
        incident_source="2",
        incident_source_type="nav",
        incident_level=2,
        incident_open=etype not in ("END", "CLO"),
        incident_acked=etype == "ACK",
        profiles_only=True,
    )
    return msgspec.structs.replace(base, **changes)


def delivered(snap: DirectorySnapshot, n: Notification) -> list[str]:
    index = compile_index(snap)
    outcome = expand(index, NotifierState(), n, select(index, n))
    return sorted(d.medium.address for d in outcome.deliveries)


A, B, MAIL = ["http://a/"], ["http://b/"], ["ops@example.org"]
NONE: list[str] = []

SCENARIOS = [
    pytest.param([profile(["empty"])], [], event(), NONE, id="empty-filter-matches-nothing"),
    pytest.param([profile(["nav_crit"])], [], event(), A, id="source-and-maxlevel-fit"),
    pytest.param(
        [profile(["nav_crit"])], [], event(incident_level=4), NONE, id="level-above-maxlevel"
    ),
    pytest.param(
        [profile(["nav_crit"])],
        [],
        event(incident_source="3", incident_source_type="zabbix"),
        NONE,
        id="other-source-id",
    ),
    pytest.param(
        [profile(["zabbix"])],
        [],
        event(incident_source="3", incident_source_type="zabbix"),
        A,
        id="source-type-fits",
    ),
    pytest.param([profile(["host_site"])], [], event(), A, id="incident-has-all-tags"),
    pytest.param(
        [profile(["host_site"])], [], event(tags=("host=sw1",)), NONE, id="incident-lacks-a-tag"
    ),
    pytest.param([profile(["acked"])], [], event("ACK"), A, id="acked-by-this-ack"),
    pytest.param([profile(["unacked"])], [], event("ACK"), NONE, id="unacked-profile-skips-ack"),
    pytest.param([profile(["unacked"])], [], event("STA"), A, id="unacked-profile-gets-sta"),
    pytest.param([profile(["sta_end"])], [], event("END"), A, id="event-type-end-listed"),
    pytest.param([profile(["sta_end"])], [], event("CHI"), NONE, id="event-type-chi-not-listed"),
    pytest.param([profile(["nav_crit", "host"])], [], event(), A, id="multiple-filters-all-fit"),
    pytest.param(
        [profile(["nav_crit", "site"])],
        [],
        event(tags=("host=sw1",)),
        NONE,
        id="multiple-filters-one-misses",
    ),
    pytest.param(
        [profile(["sta_end", "ack_only"])], [], event("ACK"), A, id="multiple-filters-event-any"
    ),
    pytest.param(
        [profile(["sta_end", "ack_only"])], [], event("OTH"), NONE, id="multiple-filters-event-none"
    ),
    pytest.param(
        [profile(["nav_crit"], dests=(1,)), profile(["host"], dests=(4,))],
        [],
        event(),
        A,
        id="duplicate-destinations-one-message",
    ),
    pytest.param(
        [profile(["nav_crit"], dests=(1, 3)), profile(["host"], dests=(1, 2))],
        [],
        event(),
        sorted(A + B + MAIL),
        id="same-destination-in-two-profiles",
    ),
    pytest.param([profile(["nav_crit"], active=False)], [], event(), NONE, id="inactive-profile"),
    pytest.param(
        [profile(["nav_crit"], timeslot=2)], [], event(time=oslo(1, 15, 59)), A, id="office-hours"
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=2)],
        [],
        event(time=oslo(1, 16, 0, 1)),
        NONE,
        id="after-office-hours",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=2)], [], event(time=oslo(6, 10)), NONE, id="office-saturday"
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3)],
        [],
        event(time=oslo(1, 23, 30)),
        A,
        id="night-oslo-evening",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3)],
        [],
        event(time=oslo(2, 5, 59)),
        A,
        id="night-oslo-morning",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3)],
        [],
        event(time=oslo(2, 6, 0)),
        A,
        id="night-end-inclusive",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3)],
        [],
        event(time=oslo(2, 6, 0, 1)),
        NONE,
        id="night-after-end",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3)],
        [],
        event(time=oslo(1, 21, 59)),
        NONE,
        id="night-not-yet",
    ),
    pytest.param(
        [profile(["nav_crit"], timeslot=3, contact="utc")],
        [],
        event(time=oslo(1, 22, 30)),
        NONE,
        id="night-in-owner-timezone-utc",
    ),
    pytest.param(
        [profile(["nav_crit"])],
        [window(["host"], MON_10 - 60, MON_10 + 60)],
        event(),
        NONE,
        id="planned-maintenance-silences",
    ),
    pytest.param(
        [profile(["sta_end"])],
        [window(["host"], MON_10 - 60, None)],
        event("END"),
        NONE,
        id="open-ended-maintenance-silences-end",
    ),
    pytest.param(
        [profile(["nav_crit"])],
        [window(["zabbix"], MON_10 - 60, MON_10 + 60)],
        event(),
        A,
        id="maintenance-for-other-incidents",
    ),
    pytest.param(
        [profile(["nav_crit"])],
        [window(["host"], MON_10 - 60, MON_10)],
        event(),
        A,
        id="maintenance-over",
    ),
    pytest.param(
        [profile(["nav_crit"])],
        [],
        event(in_maintenance=True),
        NONE,
        id="check-scheduled-maintenance",
    ),
    pytest.param([profile(["open"])], [], event("END"), NONE, id="open-filter-skips-end"),
    pytest.param(
        [profile(["stateless"])],
        [],
        event("LES", incident_stateful=False),
        A,
        id="stateless-filter",
    ),
    pytest.param(
        [profile(["hide"])],
        [],
        event("CLO", incident_acked=True, incident_open=False),
        NONE,
        id="hide-closed-acked",
    ),
    pytest.param([profile(["hide"])], [], event("ACK"), A, id="hide-closed-acked-open-is-shown"),
    pytest.param(
        [profile(["tocsin"], dests=(2,))],
        [],
        event(incident_source="tocsin", incident_source_type="tocsin", profiles_only=False),
        B,
        id="check-incident-by-tocsin-source-pk",
    ),
    pytest.param(
        [profile(["nav_crit"])], [], event(incident_event=""), NONE, id="no-incident-event"
    ),
    pytest.param(
        [profile(["nav_crit"], dests=(1,)), profile(["host"], dests=(2,), active=False)],
        [],
        event(),
        A,
        id="only-active-of-two",
    ),
]


@pytest.mark.parametrize(("profiles", "maintenance", "n", "want"), SCENARIOS)
def test_profile_scenarios(
    profiles: list[dict[str, Any]],
    maintenance: list[dict[str, Any]],
    n: Notification,
    want: list[str],
) -> None:
    assert delivered(snapshot(profiles, maintenance), n) == want


def test_a_rule_and_a_profile_to_the_same_address_send_one_message() -> None:
    snap = snapshot([profile(["tocsin"], dests=(1,))], rules=True)
    n = event(incident_source="tocsin", incident_source_type="tocsin", profiles_only=False)
    assert delivered(snap, n) == A


def test_rules_ignore_profile_only_notifications() -> None:
    assert delivered(snapshot([], rules=True), event()) == NONE
    assert delivered(snapshot([], rules=True), event(profiles_only=False)) == A


def test_planned_maintenance_silences_rules_too() -> None:
    snap = snapshot([], [window(["tocsin"], MON_10 - 60, MON_10 + 60)], rules=True)
    n = event(incident_source="tocsin", incident_source_type="tocsin", profiles_only=False)
    assert delivered(snap, n) == NONE
    decisions = select(compile_index(snap), n).decisions
    assert [d.code for d in decisions] == ["maintenance"]


def test_non_matching_profiles_leave_a_reason() -> None:
    index = compile_index(snapshot([profile(["nav_crit"], timeslot=2)]))
    n = event(time=oslo(6, 10))
    codes = [d.code for d in select(index, n).decisions]
    assert codes == ["time_restriction"]


def test_profile_deliveries_carry_the_owner_and_bypass_intervals() -> None:
    index = compile_index(snapshot([profile(["nav_crit"])]))
    n = event()
    state = NotifierState(blocks={"dest-1:c1:critical": MON_10 + 600})
    out = expand(index, state, n, select(index, n))
    assert [(d.contact.id, d.medium.id, d.type) for d in out.deliveries] == [
        ("ops", "dest-1", "problem")
    ]
    assert not out.effects.blocks_set and not out.effects.episode_added


def test_at_least_25_scenarios() -> None:
    assert len(SCENARIOS) >= 25


def test_profile_only_end_leaves_the_rule_episode_alone() -> None:
    """The API's END must not end the episode the processor's recovery still needs."""
    index = compile_index(snapshot([profile(["sta_end"])], rules=True))
    state = NotifierState(episodes={"7": {"ops-hook"}})
    n = event("END", type="recovery", state="ok")
    out = expand(index, state, n, select(index, n))
    assert [d.medium.id for d in out.deliveries] == ["dest-1"]
    assert not out.effects.episode_ended and not out.effects.rollup_removed


def test_planned_maintenance_silences_rule_notifications_of_source_incidents() -> None:
    """The processor names an Argus source incident's source as ``@<entity>``."""
    snap = snapshot([], [window(["nav_crit"], MON_10 - 60, MON_10 + 60)], rules=True)
    n = event(
        incident_event="", incident_source="@nav", incident_source_type="", profiles_only=False
    )
    assert delivered(snap, n) == NONE
    assert delivered(snapshot([], rules=True), n) == A
