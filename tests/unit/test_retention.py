"""Retention settings and the pure parts of the incident indexes and the sweeper."""

from __future__ import annotations

import pytest

from shared import incident_index
from shared.checks import Maintenance
from shared.config import Settings
from shared.errors import ConfigError
from shared.incident_index import IndexedIncident
from shared.keys import Keys
from shared.sweeper import due_incident, due_maintenance

K = Keys("t")


def test_retain_group_defaults() -> None:
    s = Settings.from_env({})
    assert s.retain_incidents_s == 30 * 86400
    assert s.retain_delivered_s == 86400
    assert s.notification_ttl_s == 86400


@pytest.mark.parametrize(
    ("var", "field"),
    [
        pytest.param("TOCSIN_RETAIN_NOTIFICATIONS_S", "notification_ttl_s", id="notifications"),
        pytest.param("TOCSIN_RETAIN_EXPLAIN_S", "explain_ttl_s", id="explain"),
        pytest.param("TOCSIN_RETAIN_HISTORY_S", "history_max_age_s", id="history age"),
        pytest.param("TOCSIN_RETAIN_HISTORY_STATES", "history_max_states", id="history count"),
        pytest.param("TOCSIN_RETAIN_INCIDENTS_S", "retain_incidents_s", id="incidents"),
        pytest.param("TOCSIN_RETAIN_DELIVERED_S", "retain_delivered_s", id="delivered"),
    ],
)
def test_retain_variables(var: str, field: str) -> None:
    assert getattr(Settings.from_env({var: "120"}), field) == 120


def test_retain_alias_wins_over_old_name() -> None:
    env = {"TOCSIN_NOTIFICATION_TTL_S": "50", "TOCSIN_RETAIN_NOTIFICATIONS_S": "70"}
    assert Settings.from_env(env).notification_ttl_s == 70


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_retain_bad_value_names_a_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="TOCSIN_RETAIN_INCIDENTS_S"):
        Settings.from_env({"TOCSIN_RETAIN_INCIDENTS_S": value})


def _keys_of(commands: list[incident_index.Command], op: str) -> set[str]:
    return {c[1] for c in commands if c[0] == op}


def test_open_incident_enters_open_source_and_tag_indexes() -> None:
    inc = IndexedIncident(id="7", start_time=100.0, source="3", tags=("a=b",))
    cmds = incident_index.write_commands(K, inc, None)
    assert _keys_of(cmds, "ZADD") == {
        K.incident_ids(),
        K.incident_index("open"),
        K.incident_by_source("3"),
        K.incident_by_tag("a=b"),
    }
    assert ("ZADD", K.incident_index("open"), "100.0", "7") in cmds


def test_closing_moves_to_closed_scored_by_end_and_drops_removed_tags() -> None:
    old = IndexedIncident(id="7", start_time=100.0, tags=("a=b", "c=d"))
    new = IndexedIncident(id="7", start_time=100.0, end_time=250.0, tags=("c=d",), acked=True)
    cmds = incident_index.write_commands(K, new, old)
    assert ("ZADD", K.incident_index("closed"), "NX", "250.0", "7") in cmds
    recorded = incident_index.write_commands(K, new, old, closed_at=900.0)
    assert ("ZADD", K.incident_index("closed"), "NX", "900.0", "7") in recorded
    assert ("ZREM", K.incident_index("open"), "7") in cmds
    assert ("ZREM", K.incident_by_tag("a=b"), "7") in cmds
    assert ("ZADD", K.incident_index("acked"), "100.0", "7") in cmds


def test_stateless_incident_is_retired_at_its_start() -> None:
    inc = IndexedIncident(id="8", start_time=100.0, stateless=True)
    assert incident_index.retired_at(inc) == 100.0
    assert K.incident_index("open") not in _keys_of(
        incident_index.write_commands(K, inc, None), "ZADD"
    )


@pytest.mark.parametrize(
    ("end", "now", "due"),
    [
        pytest.param(None, 1e12, False, id="open incidents are never dropped"),
        pytest.param(1_000.0, 1_099.0, False, id="closed, window not over"),
        pytest.param(1_000.0, 1_100.0, True, id="closed, window over"),
        pytest.param(5.0, 1_099.0, False, id="counts from the recorded close, not the end"),
    ],
)
def test_due_incident(end: float | None, now: float, due: bool) -> None:
    inc = IndexedIncident(id="1", start_time=1.0, end_time=end)
    assert due_incident(inc, closed_at=1_000.0, now=now, retain_s=100) is due


def test_due_incident_without_its_record() -> None:
    assert due_incident(None, closed_at=1_000.0, now=1_100.0, retain_s=100)


def test_due_maintenance() -> None:
    m = Maintenance(id="m", check_id="c", start_time=0.0, end_time=50.0)
    assert not due_maintenance(m, 149.0, 100)
    assert due_maintenance(m, 150.0, 100)
