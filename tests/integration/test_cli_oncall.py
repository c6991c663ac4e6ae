"""``tocsin oncall``, ``schedules`` and ``policies`` against a real API (asserting on --json)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.integration.cli_api import Cli, cli  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def test_oncall_schedules_and_policies(cli: Cli) -> None:  # noqa: F811
    kari = cli.json("contacts", "create", "--name", "Kari")["id"]
    ola = cli.json("contacts", "create", "--name", "Ola")["id"]
    layers = json.dumps(
        [{"members": [kari, ola], "shift_hours": 24, "handoff": "2026-12-07T09:00"}]
    )
    sched = cli.json("schedules", "create", "ops", "--layers", layers, "--timezone", "Europe/Oslo")
    noon = datetime(2026, 12, 8, 12, 0, tzinfo=ZoneInfo("Europe/Oslo")).isoformat()
    [now] = cli.json("oncall", "--at", noon)
    assert (now["schedule"], now["contact_id"], now["source"]) == ("ops", ola, "layer:0")
    one = cli.json("oncall", "ops", "--at", noon)
    assert one["contact"] == "Ola"
    cover = cli.json(
        "schedules",
        "override",
        "ops",
        "--contact",
        kari,
        "--start",
        noon,
        "--end",
        "2026-12-08T18:00+01:00",
    )
    assert cli.json("oncall", "ops", "--at", noon)["source"] == f"override:{cover['id']}"
    shifts = cli.json(
        "schedules", "timeline", "ops", "--start", "2026-12-08T00:00+01:00", "--days", "1"
    )
    assert [s["contact_id"] for s in shifts] == [kari, ola, kari, ola]
    steps = json.dumps([{"targets": [{"schedule": sched["id"]}], "wait_s": 300}])
    policy = cli.json("policies", "create", "page-ops", "--steps", steps, "--repeat", "2")
    assert [p["id"] for p in cli.json("policies", "list")] == [policy["id"]]
    bad = cli("policies", "create", "x", "--steps", '[{"targets": [{"contact": "nobody"}]}]')
    assert bad.exit_code != 0 and "steps[0].targets[0].contact" in bad.output + bad.stderr
    missing = cli("oncall", "nope")
    assert missing.exit_code == 1 and "no schedule 'nope'" in missing.stderr
