"""Declared JSON sources: mapping validation, pointer resolution, per-item errors (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared.formats.generic import (
    MISSING,
    FieldMapping,
    decode_body,
    envelope,
    map_payload,
    resolve,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "sources"
NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC).timestamp()


def _mapping(**fields: Any) -> FieldMapping:
    return msgspec.convert(fields, FieldMapping)


CRON = msgspec.json.decode((DATA / "cron_mapping.json").read_bytes(), type=FieldMapping)


def test_golden_grafana_webhook_through_a_mapping() -> None:
    mapping = msgspec.json.decode((DATA / "grafana_mapping.json").read_bytes(), type=FieldMapping)
    body = envelope("grafana", mapping, (DATA / "grafana_webhook.json").read_bytes())
    got = decode_body(body, NOW, "m1")
    assert got.rejected == []
    cpu, mem = got.accepted
    assert (cpu.entity, cpu.check, cpu.state, cpu.summary) == (
        "app-3",
        "CPU high",
        "critical",
        "CPU above 95% for 10m",
    )
    assert cpu.time == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    assert cpu.tags == ("alertname=CPU high", "grafana_folder=Infra", "host=app-3")
    assert cpu.details == "https://grafana.example.net/alerting/grafana/abc/view"
    assert cpu.source == "generic:grafana" and cpu.id == "m1:0"
    assert (mem.entity, mem.state) == ("app-4", "ok")


def test_golden_cron_job_with_numeric_state_map() -> None:
    got = map_payload((DATA / "cron_job.json").read_bytes(), CRON, NOW, "p", "generic:cron")
    (event,) = got.accepted
    assert (event.entity, event.check, event.state, event.time) == (
        "backup-1",
        "nightly-backup",
        "critical",
        1714550400.0,
    )
    assert event.summary == "rsync: connection refused"


@pytest.mark.parametrize(
    ("doc", "pointer", "expected"),
    [
        pytest.param({"a": {"b": 1}}, "/a/b", 1, id="nested"),
        pytest.param({"a": [10, 20]}, "/a/1", 20, id="array index"),
        pytest.param({"a/b": 1}, "/a~1b", 1, id="escaped slash"),
        pytest.param({"m~n": 2}, "/m~0n", 2, id="escaped tilde"),
        pytest.param({"a": 1}, "", {"a": 1}, id="whole document"),
        pytest.param({"a": [1]}, "/a/5", MISSING, id="index out of range"),
        pytest.param({"a": [1]}, "/a/x", MISSING, id="index not a number"),
        pytest.param({"a": 1}, "/a/b", MISSING, id="through a scalar"),
        pytest.param({"a": None}, "/a", None, id="null is a value"),
    ],
)
def test_resolve(doc: Any, pointer: str, expected: Any) -> None:
    assert resolve(doc, pointer) == expected


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        pytest.param(
            {"job": "j", "exit_code": 0}, "entity: pointer `/host` not found", id="missing entity"
        ),
        pytest.param(
            {"host": "h", "exit_code": 0}, "check: pointer `/job` not found", id="missing check"
        ),
        pytest.param(
            {"host": ["h"], "job": "j", "exit_code": 0},
            "entity: pointer `/host` is list",
            id="wrong type",
        ),
        pytest.param(
            {"host": "h", "job": "j", "exit_code": 7},
            "state: pointer `/exit_code` value '7'",
            id="unmapped state",
        ),
        pytest.param(
            {"host": "h", "job": "j"}, "state: pointer `/exit_code` not found", id="missing state"
        ),
        pytest.param(
            {"host": "", "job": "j", "exit_code": 0},
            "entity: pointer `/host` must be",
            id="empty name",
        ),
        pytest.param(
            {"host": "h", "job": "j", "exit_code": 0, "finished_at": "soon"},
            "time: pointer `/finished_at`",
            id="bad time",
        ),
        pytest.param(
            {"host": "h", "job": "j", "exit_code": 0, "finished_at": 4e12},
            "out of range",
            id="time ms",
        ),
        pytest.param(
            {"host": "h", "job": "j", "exit_code": 0, "finished_at": NOW + 3600},
            "future",
            id="future",
        ),
    ],
)
def test_mapping_errors_name_the_pointer(item: dict[str, Any], fragment: str) -> None:
    got = map_payload(json.dumps(item).encode(), CRON, NOW, "p", "generic:cron")
    assert got.accepted == []
    assert len(got.rejected) == 1 and fragment in got.rejected[0][1], got.rejected


def test_items_fail_one_by_one_with_their_index() -> None:
    mapping = _mapping(items="/results", entity="/h", check="/c", state="/s")
    payload = json.dumps(
        {
            "results": [
                {"h": "a", "c": "x", "s": "OK"},
                {"h": "b", "s": "ok"},
                {"h": "c", "c": "y", "s": "warning"},
            ]
        }
    ).encode()
    got = map_payload(payload, mapping, NOW, "p", "generic:x")
    assert [(e.entity, e.state, e.id) for e in got.accepted] == [
        ("a", "ok", "p:0"),
        ("c", "warning", "p:2"),
    ]
    ((raw, reason),) = got.rejected
    assert reason == "check: pointer `/c` not found - at item 1"
    assert json.loads(raw) == {"h": "b", "s": "ok"}


def test_defaults_fill_constants_and_absent_values() -> None:
    mapping = _mapping(
        entity="/host",
        state="/ok",
        defaults={"check": "heartbeat", "entity": "unknown-host"},
        states={"true": "ok", "false": "critical"},
    )
    (event,) = map_payload(b'{"ok": false}', mapping, NOW, "p", "g").accepted
    assert (event.entity, event.check, event.state, event.time) == (
        "unknown-host",
        "heartbeat",
        "critical",
        NOW,
    )


def test_time_as_rfc3339_string_and_tags_as_list() -> None:
    mapping = _mapping(entity="/e", check="/c", state="/s", time="/t", tags="/tags")
    payload = b'{"e":"h","c":"c","s":"critical","t":"2024-05-01T10:00:00Z","tags":["a","b","a"]}'
    (event,) = map_payload(payload, mapping, NOW, "p", "g").accepted
    assert event.time == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    assert event.tags == ("a", "b")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        pytest.param(
            {"check": "/c", "state": "/s"}, "entity: give a pointer or a default", id="no entity"
        ),
        pytest.param(
            {"entity": "e", "check": "/c", "state": "/s"}, "entity", id="pointer without slash"
        ),
        pytest.param(
            {"entity": "/e", "check": "/c", "state": "/s", "states": {"x": "bad"}},
            "states",
            id="bad state value",
        ),
        pytest.param(
            {"entity": "/e", "check": "/c", "state": "/s", "color": "/x"}, "color", id="unknown key"
        ),
        pytest.param(
            {"entity": "/e", "check": "/c", "state": "/s", "defaults": {"perfdata": "x"}},
            "defaults",
            id="unknown default",
        ),
    ],
)
def test_bad_mappings_are_refused(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=fragment):
        msgspec.convert(fields, FieldMapping)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"nope", "not valid JSON", id="not json"),
        pytest.param(b'{"source":"x","payload":{}}', "mapping", id="no mapping"),
        pytest.param(
            b'{"source":"Bad Name","mapping":{"entity":"/e","check":"/c","state":"/s"},"payload":{}}',
            "source",
            id="bad name",
        ),
    ],
)
def test_malformed_envelope_is_rejected(body: bytes, fragment: str) -> None:
    got = decode_body(body, NOW)
    assert got.accepted == [] and fragment in got.rejected[0][1]


def test_payload_that_is_not_json_or_lacks_items_is_one_rejection() -> None:
    mapping = _mapping(items="/alerts", entity="/e", check="/c", state="/s")
    assert "payload: not valid JSON" in map_payload(b"{", mapping, NOW, "p", "g").rejected[0][1]
    assert (
        "items: pointer `/alerts` not found"
        in map_payload(b"{}", mapping, NOW, "p", "g").rejected[0][1]
    )
