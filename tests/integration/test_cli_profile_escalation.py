"""``tocsin profiles create --escalation-policy`` and enable/disable keep the policy (--json)."""

from __future__ import annotations

import json

import pytest

from tests.integration.cli_api import Cli, cli  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration
BASE = "/api/v2/notificationprofiles"


def test_profile_escalation_policy_from_the_cli(cli: Cli) -> None:  # noqa: F811
    lead = cli.json("contacts", "create", "--name", "Lead")["id"]
    steps = json.dumps([{"targets": [{"contact": lead}]}])
    policy = cli.json("policies", "create", "page-lead", "--steps", steps)["id"]
    with cli.api as api:
        always = [{"days": [1, 2, 3, 4, 5, 6, 7], "all_day": True}]
        slot = api.post(f"{BASE}/timeslots/", json={"name": "a", "time_recurrences": always})
        flt = api.post(f"{BASE}/filters/", json={"name": "f", "filter": {"maxlevel": 5}})
        assert slot.status_code == flt.status_code == 201, slot.text + flt.text
    args = ["--timeslot", str(slot.json()["pk"]), "--filter", str(flt.json()["pk"])]
    bad = cli("profiles", "create", *args, "--escalation-policy", "nope")
    assert bad.exit_code != 0 and "escalation_policy" in bad.output + bad.stderr
    made = cli.json("profiles", "create", *args, "--escalation-policy", policy)
    assert made["escalation_policy"] == policy
    off = cli("profiles", "disable", str(made["pk"]))
    assert off.exit_code == 0, off.output + off.stderr
    shown = cli.json("profiles", "show", str(made["pk"]))
    assert (shown["active"], shown["escalation_policy"]) == (False, policy)
    plain = cli.json("profiles", "create", *args, "--name", "plain")
    assert "escalation_policy" not in plain
