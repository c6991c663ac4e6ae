"""Lint deploy/prometheus.yml, deploy/alerts.yml and deploy/grafana/tocsin.json.

No Prometheus or Grafana runs here, so check what breaks silently: files that
do not parse, and expressions naming a metric no worker exports (a typo there
makes an alert that can never fire).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.supervisor import default_workers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Info|Summary)(?:MetricFamily)?\(\s*\"(tocsin_[a-z0-9_]+)\""
)
_REFERENCE = re.compile(r"\btocsin_[a-z0-9_]+\b")
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("_sum", "_count", "_created"),
    "Info": ("_info",),
}


def exported_metrics() -> dict[str, str]:
    """Every sample name the code can export -> its family (found by reading the sources)."""
    names: dict[str, str] = {}
    for path in [*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py")]:
        for kind, family in _DEFINITION.findall(path.read_text()):
            for suffix in _SUFFIXES[kind]:
                names[family + suffix] = family
            if kind == "Counter":
                names[family] = family  # PromQL may name the family of a counter, too
    return names


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "tocsin.json").read_text())  # type: ignore[no-any-return]


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]


def test_the_source_scan_finds_the_shared_consumer_metrics() -> None:
    names = exported_metrics()
    assert "tocsin_messages_consumed_total" in names
    assert "tocsin_batch_seconds_bucket" in names
    assert "tocsin_build_info" in names
    assert "tocsin_batch_seconds_total" not in names


@pytest.mark.parametrize(
    "expr",
    [pytest.param(rule["expr"], id=rule["alert"]) for rule in _alerts()]
    + [pytest.param(e, id=f"panel-{i}") for i, e in enumerate(_dashboard_exprs())],
)
def test_every_expression_names_only_metrics_the_workers_export(expr: str) -> None:
    exported = exported_metrics()
    referenced = set(_REFERENCE.findall(expr))
    assert referenced or "up{" in expr, f"no Tocsin metric in {expr!r}"
    assert referenced <= exported.keys(), f"unknown metrics: {sorted(referenced - exported.keys())}"


def test_every_alert_has_a_severity_a_summary_and_a_unique_name() -> None:
    alerts = _alerts()
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names))
    for alert in alerts:
        assert alert["labels"]["severity"] in {"page", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]


@pytest.mark.parametrize(
    ("concern", "metric"),
    [
        pytest.param("backlog growing", "tocsin_queue_messages", id="backlog"),
        pytest.param("no consumers", "tocsin_worker_healthy", id="no-consumers"),
        pytest.param("dead letters rising", "tocsin_dead_letters_total", id="dead-letters"),
        pytest.param("delivery failures", "tocsin_gateway_failed_total", id="delivery-failures"),
    ],
)
def test_the_issue_s_unhealthy_conditions_page(concern: str, metric: str) -> None:
    paging = [a for a in _alerts() if a["labels"]["severity"] == "page" and metric in a["expr"]]
    assert paging, f"no paging alert on {concern} ({metric})"


def test_prometheus_scrapes_every_worker_and_loads_the_alert_rules() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    for rule_file in doc["rule_files"]:
        assert (DEPLOY / rule_file).is_file(), rule_file
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "tocsin"]
    workers = {group["labels"]["worker"] for group in job["static_configs"]}
    assert all(group["targets"] for group in job["static_configs"])
    assert workers == {w.replace(":", "-") for w in default_workers()}


def test_dashboard_parses_with_unique_panel_ids_and_shows_every_consumer_metric() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "tocsin" and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    shown = {exported_metrics()[m] for e in _dashboard_exprs() for m in _REFERENCE.findall(e)}
    telemetry = (ROOT / "shared" / "telemetry.py").read_text()
    consumer_families = {family for _, family in _DEFINITION.findall(telemetry)}
    assert consumer_families <= shown, f"not on the dashboard: {consumer_families - shown}"
