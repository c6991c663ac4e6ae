"""Alertmanager webhook payloads and API v2 alert lists -> CheckEvents (pure decoder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.formats.alertmanager import check_name, decode_body, decoder, parse_rfc3339, state_of
from shared.formats.bodies import MAX_BODY_BYTES

DATA = Path(__file__).resolve().parent.parent / "data" / "sources"
NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC).timestamp()


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _webhook(*alerts: dict[str, Any]) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "alerts": list(alerts)}).encode()


def _alert(**over: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "A", "instance": "h1", "severity": "critical"},
        "annotations": {"summary": "s"},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    alert.update(over)
    return alert


def test_golden_firing_webhook_maps_every_field() -> None:
    body = (DATA / "alertmanager_webhook_firing.json").read_bytes()
    got = decode_body(body, NOW, "m1", identity_labels=("cluster",))
    assert got.rejected == []
    first, second = got.accepted
    assert (first.entity, first.check, first.state) == (
        "web-1.example.net:9100",
        "HighErrorRate[cluster=eu1]",
        "critical",
    )
    assert first.id == "m1:0" and first.source == "alertmanager" and first.type == "service"
    assert first.time == pytest.approx(_ts("2024-05-01T10:00:00.123456+00:00"))
    assert first.summary == "High error rate on web-1"
    assert "5xx ratio is 12.5%" in first.details
    assert "runbook_url: https://runbooks.example.net/HighErrorRate" in first.details
    assert "source: http://prometheus.example.net:9090/graph" in first.details
    assert first.initial_failure_delay == 0
    assert first.tags == (
        "alertname=HighErrorRate",
        "cluster=eu1",
        "instance=web-1.example.net:9100",
        "job=node",
        "severity=critical",
    )
    # No instance: the job is the entity; the description doubles as the summary.
    assert (second.entity, second.check, second.state) == (
        "node-exporter",
        "DiskFilling[cluster=eu1]",
        "warning",
    )
    assert second.summary == "/var is 91% full" and "91%" not in second.details
    assert second.time == _ts("2024-05-01T08:01:30+00:00")


def test_golden_resolved_webhook_is_ok_at_ends_at() -> None:
    body = (DATA / "alertmanager_webhook_resolved.json").read_bytes()
    got = decode_body(body, NOW, "m2")
    assert got.rejected == []
    (event,) = got.accepted
    assert (event.entity, event.check, event.state) == (
        "web-1.example.net:9100",
        "HighErrorRate",
        "ok",
    )
    assert event.time == _ts("2024-05-01T10:20:00+00:00")


def test_golden_api_v2_list_resolves_by_ends_at() -> None:
    body = (DATA / "prometheus_api_v2_alerts.json").read_bytes()
    received = _ts("2024-05-01T10:00:00+00:00")
    got = decode_body(body, received, "m3")
    assert got.rejected == []
    down, cert = got.accepted
    assert (down.entity, down.check, down.state) == (
        "db-2.example.net:9100",
        "InstanceDown",
        "critical",
    )
    assert down.time == pytest.approx(_ts("2024-05-01T09:55:12.345+00:00"))
    assert (cert.entity, cert.check, cert.state) == ("blackbox", "CertExpiring", "ok")
    assert cert.time == _ts("2024-05-01T09:00:00+00:00")


def test_grafana_copy_of_the_webhook_with_extra_fields_is_accepted() -> None:
    body = (DATA / "grafana_webhook.json").read_bytes()
    got = decode_body(body, NOW, "g")
    assert got.rejected == []
    assert [(e.entity, e.check, e.state) for e in got.accepted] == [
        ("alertmanager", "CPU high", "unknown"),
        ("alertmanager", "Memory high", "ok"),
    ]


@pytest.mark.parametrize(
    ("status", "labels", "state"),
    [
        pytest.param("resolved", {"severity": "critical"}, "ok", id="resolved"),
        pytest.param("firing", {"severity": "critical"}, "critical", id="critical"),
        pytest.param("firing", {"severity": "PAGE"}, "critical", id="page, any case"),
        pytest.param("firing", {"severity": "warning"}, "warning", id="warning"),
        pytest.param("firing", {"severity": "info"}, "unknown", id="info"),
        pytest.param("firing", {}, "unknown", id="no severity"),
    ],
)
def test_state_of(status: str, labels: dict[str, str], state: str) -> None:
    assert state_of(status, labels) == state


@pytest.mark.parametrize(
    ("labels", "identity", "name"),
    [
        pytest.param({"alertname": "A"}, (), "A", id="plain"),
        pytest.param(
            {"alertname": "A", "cluster": "eu1"}, ("cluster",), "A[cluster=eu1]", id="one"
        ),
        pytest.param(
            {"alertname": "A", "env": "prod", "cluster": "eu1"},
            ("cluster", "env"),
            "A[cluster=eu1,env=prod]",
            id="configured order, not the alert's",
        ),
        pytest.param({"alertname": "A"}, ("cluster",), "A", id="absent identity label"),
    ],
)
def test_check_name(labels: dict[str, str], identity: tuple[str, ...], name: str) -> None:
    assert check_name(labels, identity) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2024-05-01T10:00:00Z", _ts("2024-05-01T10:00:00+00:00"), id="Z"),
        pytest.param("2024-05-01T10:00:00.5Z", _ts("2024-05-01T10:00:00.5+00:00"), id="fraction"),
        pytest.param(
            "2024-05-01T12:00:00.123456789+02:00",
            _ts("2024-05-01T10:00:00.123456+00:00"),
            id="ns+offset",
        ),
        pytest.param("0001-01-01T00:00:00Z", None, id="Go zero time"),
    ],
)
def test_parse_rfc3339(text: str, expected: float | None) -> None:
    got = parse_rfc3339(text, "startsAt")
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_identity_labels_through_the_bound_decoder() -> None:
    body = _webhook(_alert(labels={"alertname": "A", "instance": "h", "dc": "x"}))
    (event,) = decoder(["dc"])(body, NOW, "m", "alertmanager").accepted
    assert event.check == "A[dc=x]"


def test_firing_without_starts_at_uses_receive_time() -> None:
    (event,) = decode_body(_webhook(_alert(startsAt=None)), NOW).accepted
    assert event.time == NOW


def test_good_alerts_pass_and_bad_ones_are_rejected_with_index_and_field() -> None:
    body = _webhook(
        _alert(),
        _alert(labels={"instance": "h1"}),
        _alert(status="pending"),
        _alert(labels={"alertname": 7}),
        _alert(startsAt="yesterday"),
        _alert(),
    )
    got = decode_body(body, NOW, "m")
    assert [e.id for e in got.accepted] == ["m:0", "m:5"]
    reasons = [reason for _, reason in got.rejected]
    assert (
        "missing required label `alertname`" in reasons[0] and "`$.alerts[1].labels`" in reasons[0]
    )
    assert "`$.alerts[2].status`" in reasons[1]
    assert "Expected `str`, got `int`" in reasons[2] and "`$.alerts[3].labels" in reasons[2]
    assert "not an RFC 3339 time" in reasons[3] and "`$.alerts[4].startsAt`" in reasons[3]
    assert json.loads(got.rejected[0][0])["labels"] == {"instance": "h1"}


@pytest.mark.parametrize(
    ("alert", "fragment"),
    [
        pytest.param(_alert(labels="x"), "Expected `object`", id="labels not an object"),
        pytest.param(
            _alert(annotations={"summary": 1}), "annotations", id="annotation not a string"
        ),
        pytest.param(_alert(status="unknown"), "`$.alerts[0].status`", id="unknown status"),
        pytest.param(_alert(startsAt=1714550400), "startsAt", id="time as number"),
        pytest.param(_alert(startsAt="2024-05-01T10:00:00"), "needs an offset", id="naive time"),
        pytest.param(_alert(startsAt="2099-01-01T00:00:00Z"), "in the future", id="future"),
        pytest.param(
            _alert(labels={"alertname": "A", "instance": "x" * 300}),
            "labels.instance",
            id="long entity",
        ),
        pytest.param(
            _alert(labels={"alertname": "A\nB", "instance": "h"}),
            "labels.alertname",
            id="control char",
        ),
        pytest.param(_alert(labels={"alertname": ""}), "labels.alertname", id="empty alertname"),
    ],
)
def test_malformed_alert_is_rejected_naming_the_field(alert: dict[str, Any], fragment: str) -> None:
    got = decode_body(_webhook(alert), NOW)
    assert got.accepted == []
    assert len(got.rejected) == 1 and fragment in got.rejected[0][1]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"not json", "not valid JSON", id="not json"),
        pytest.param(b'"a string"', "not an Alertmanager payload", id="string"),
        pytest.param(b'{"version": "4"}', "alerts", id="no alerts"),
        pytest.param(b'{"alerts": {}}', "alerts", id="alerts not a list"),
        pytest.param(b"[" * 100_000, "", id="deeply nested"),
        pytest.param(b" " * (MAX_BODY_BYTES + 1), "byte limit", id="huge"),
    ],
)
def test_malformed_body_is_one_rejection(body: bytes, fragment: str) -> None:
    got = decode_body(body, NOW)
    assert got.accepted == [] and len(got.rejected) == 1
    assert got.rejected[0][1].startswith("body:") and fragment in got.rejected[0][1]


def test_labels_unusable_as_tags_are_left_out_not_fatal() -> None:
    labels = {"alertname": "A", "instance": "h", "big": "y" * 300, "nl": "a\nb"}
    (event,) = decode_body(_webhook(_alert(labels=labels)), NOW).accepted
    assert event.tags == ("alertname=A", "instance=h")


def test_empty_alert_list_gives_nothing() -> None:
    got = decode_body(b"[]", NOW)
    assert got.accepted == [] and got.rejected == []
