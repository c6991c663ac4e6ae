"""Maintenance, acks and incidents from the CLI: what is silenced now, and typos refused."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names
from shared.keys import Keys
from shared.store import connect_redis
from tests.integration.cli_api import Cli, cli
from tests.integration.test_processor_worker import ev, message

pytestmark = pytest.mark.integration
__all__ = ["cli"]


def _failing(cli: Cli, *names: str) -> None:
    """Make each ``entity:check`` a known, critical check, as the processor records it."""
    s = cli.settings
    handle = make_handler(
        connect_redis(s), Names(s.namespace), Keys(s.namespace), s,
        ProcessorMetrics(CollectorRegistry()),
    )  # fmt: skip
    now = time.time()
    for name in names:
        entity, check = name.split(":")
        e = ev(entity, check, now - 10, "critical", initial_failure_delay=0, tags=("team=db",))
        handle([message(s, [e])])


def test_maintenance_list_without_a_check_shows_everything_silenced_now(cli: Cli) -> None:
    _failing(cli, "db1:disk", "web1:http", "web2:http")
    assert (
        cli("maintenance", "add", "db1:disk", "--duration", "2h", "--summary", "swap").exit_code
        == 0
    )
    assert cli("ack", "web1:http", "--duration", "1h").exit_code == 0
    later = cli("maintenance", "add", "web2:http", "--start", "now+1h", "--duration", "1h")
    assert later.exit_code == 0

    # The ack goes through the pipeline as an event; record it as the processor would.
    s = cli.settings
    handle = make_handler(
        connect_redis(s), Names(s.namespace), Keys(s.namespace), s,
        ProcessorMetrics(CollectorRegistry()),
    )  # fmt: skip
    handle([message(s, [ev("web1", "http", time.time(), "acknowledgement", duration=3600)])])

    now = {(r["entity"], r["check"], r["kind"]) for r in cli.json("maintenance", "list")}
    assert now == {("db1", "disk", "maintenance"), ("web1", "http", "acknowledgement")}
    upcoming = cli.json("maintenance", "list", "--upcoming")
    assert {(r["entity"], r["active"]) for r in upcoming} == {
        ("db1", True),
        ("web1", True),
        ("web2", False),
    }
    checks = {f"{c['entity']}:{c['check']}": c for c in cli.json("checks", "list")}
    assert checks["db1:disk"]["scheduled_maintenance"]["summary"] == "swap"
    assert checks["web1:http"]["acknowledgement"] is not None


def test_maintenance_on_an_unknown_check_is_a_404(cli: Cli) -> None:
    result = cli("maintenance", "add", "nosuch:check", "--duration", "1h")
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr and "nosuch:check not found" in result.stderr
    assert cli.json("maintenance", "list", "--upcoming") == []


def test_incidents_name_their_check(cli: Cli) -> None:
    _failing(cli, "db1:disk")
    (incident,) = cli.json("incidents", "list")
    assert incident["check"] == "db1:disk"
    assert [t["tag"] for t in incident["tags"]] == ["team=db"]
