"""``tocsin oncall``, ``schedules`` and ``policies`` against a real API (asserting on --json)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.integration.cli_api import Cli, cli  # noqa: F401  (fixture)
from tests.integration.test_feed_sync import Feed, feed, rotation  # noqa: F401  (fixture)

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
    # Daily hand-offs at 09:00 from Monday 7th (Kari): Friday 11th 09:00 is Kari's again, so
    # at 03:00 on Saturday she is on call; the one step repeats twice, 5 minutes apart.
    sat_0300 = "2026-12-12T03:00+01:00"
    sim = cli.json("policies", "simulate", policy["id"], "--at", sat_0300, "--for", "10m")
    assert [(s["step"], s["paged"]) for s in sim] == [(1, [kari]), (2, [kari]), (3, [kari])]
    assert sim[1]["time"] - sim[0]["time"] == 300
    assert cli.json("policies", "update", policy["id"], "--repeat", "0")["repeat"] == 0
    assert cli.json("policies", "show", policy["id"])["name"] == "page-ops"
    renamed = cli.json("schedules", "update", "ops", "--name", "ops-primary")
    assert renamed["name"] == "ops-primary" and len(renamed["overrides"]) == 1
    gone = cli("schedules", "delete-override", "ops-primary", cover["id"])
    assert gone.exit_code == 0, gone.output
    assert cli.json("schedules", "show", "ops-primary")["overrides"] == []
    bad = cli("policies", "create", "x", "--steps", '[{"targets": [{"contact": "nobody"}]}]')
    assert bad.exit_code != 0 and "steps[0].targets[0].contact" in bad.output + bad.stderr
    missing = cli("oncall", "nope")
    assert missing.exit_code == 1 and "no schedule 'nope'" in missing.stderr


def test_export_import_carry_schedules_policies_and_rules_routing_to_them(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    kari = cli.json("contacts", "create", "--name", "Kari")["id"]
    layers = json.dumps([{"members": [kari], "shift_hours": 168, "handoff": "2026-12-07T09:00"}])
    sched = cli.json("schedules", "create", "ops", "--layers", layers)
    steps = json.dumps([{"targets": [{"schedule": sched["id"]}, {"contact": kari}], "wait_s": 60}])
    policy = cli.json("policies", "create", "page-ops", "--steps", steps)
    with cli.api as api:
        made = api.post(
            "/rules", json={"contact_id": kari, "critical": {"escalation_policy_id": policy["id"]}}
        )
        assert made.status_code == 201, made.text
    exported = cli("export")
    assert exported.exit_code == 0, exported.output + exported.stderr
    data = yaml.safe_load(exported.stdout)
    assert [s["id"] for s in data["schedules"]] == [sched["id"]]
    assert [p["id"] for p in data["escalation_policies"]] == [policy["id"]]
    path = tmp_path / "oncall.yaml"
    path.write_text(exported.stdout)
    same = cli("import", str(path))
    assert same.exit_code == 0 and "create" not in same.stdout, same.stdout

    with cli.api as api:  # lose them all, then import the file back
        assert api.delete(f"/rules/{made.json()['id']}").status_code == 204
        assert api.delete(f"/escalation-policies/{policy['id']}").status_code == 204
        assert api.delete(f"/schedules/{sched['id']}").status_code == 204
    back = cli("import", str(path))
    assert back.exit_code == 0, back.output + back.stderr
    assert "create schedule 'ops'" in back.stdout and "create escalation policy" in back.stdout
    assert cli.json("policies", "list")[0]["id"] == policy["id"]
    with cli.api as api:
        rules = api.get("/rules", params={"contact_id": kari}).json()["items"]
    assert [r["critical"].get("escalation_policy_id") for r in rules] == [policy["id"]]
    again = yaml.safe_load(cli("export").stdout)  # rules get new ids; the rest is as it was
    assert (again["schedules"], again["escalation_policies"]) == (
        data["schedules"],
        data["escalation_policies"],
    )


def test_schedules_import_a_feed_url_then_sync(cli: Cli, feed: tuple[Feed, str]) -> None:  # noqa: F811
    state, url = feed
    kari = cli.json("contacts", "create", "--name", "Kari")["id"]
    ola = cli.json("contacts", "create", "--name", "Ola")["id"]
    layers = json.dumps([{"members": [kari], "shift_hours": 168, "handoff": "2026-01-05T09:00"}])
    cli.json("schedules", "create", "team", "--layers", layers)
    state.body = rotation(["Kari", "Ola"])
    imported = cli.json("schedules", "import-ical", "team", url)
    assert imported["layer"]["feed_url"] == url
    state.body = rotation(["Ola", "Kari"], hours=12)
    synced = cli.json("schedules", "sync", "team")
    assert [(x["layer"], x["members"], x["shift_hours"]) for x in synced["layers"]] == [
        (1, [ola, kari], 12)
    ]
    state.status = 503
    failed = cli("schedules", "sync", "team")
    assert failed.exit_code != 0
    assert "answered HTTP 503" in failed.output + failed.stderr
