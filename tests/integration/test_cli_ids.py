"""Commands take what tables show: id prefixes and contact names; ``--json`` has whole ids."""

from __future__ import annotations

import pytest

from tests.integration.cli_api import Cli, cli

pytestmark = pytest.mark.integration
__all__ = ["cli"]


def test_prefixes_and_names_work_wherever_an_id_is_asked(cli: Cli) -> None:
    alice = cli.json("contacts", "create", "--name", "Alice", "--timezone", "Europe/Oslo")
    assert len(alice["id"]) == 16  # whole ids in --json
    medium = cli.json(
        "media", "create", "--contact", alice["id"][:10], "--type", "email",
        "--address", "alice@example.com", "--interval", "10m",
    )  # fmt: skip
    assert medium["contact_id"] == alice["id"]
    rule = cli.json(
        "rules", "create", "--contact", "Alice", "--critical", "email", "--when",
        "mon-fri 08:00-17:00",
    )  # fmt: skip
    assert rule["contact_id"] == alice["id"]
    assert [m["id"] for m in cli.json("media", "list", "--contact", "Alice")] == [medium["id"]]

    shown = cli.json("contacts", "show", "Alice")
    assert shown["id"] == alice["id"]
    assert [m["id"] for m in shown["media"]] == [medium["id"]]
    assert [r["id"] for r in shown["rules"]] == [rule["id"]]

    assert cli("rules", "delete", rule["id"][:8]).exit_code == 0
    assert cli("media", "delete", medium["id"][:8]).exit_code == 0
    assert cli.json("contacts", "show", alice["id"][:6])["media"] == []
    gone = cli("contacts", "delete", "Alice")
    assert gone.exit_code == 0 and alice["id"] in gone.stdout
    assert cli.json("contacts", "list") == []


def test_an_unknown_contact_is_refused_before_the_api_is_asked(cli: Cli) -> None:
    result = cli("media", "create", "--contact", "Nobody", "--type", "email", "--address", "a@b.c")
    assert result.exit_code == 2
    assert "no contact with id or name 'Nobody'" in result.stderr


def test_the_demo_removes_its_contact_when_it_ends(cli: Cli) -> None:
    """Its receiver dies with the demo; a contact left behind would catch every later alert."""
    from services.cli.demo import DEMO_CONTACT, run_demo
    from tests.integration.cli_api import TOKEN

    said: list[str] = []
    # No workers run here, so no page arrives: the demo fails, and must still clean up.
    assert run_demo(cli.settings.api_url, TOKEN, said.append, timeout=0.2) is False
    assert cli.json("contacts", "list") == []
    assert any(f"removed the demo contact {DEMO_CONTACT!r}" in line for line in said)


def test_a_medium_the_gateway_would_refuse_is_saved_with_a_warning(cli: Cli) -> None:
    cli.json("contacts", "create", "--name", "Frank")
    args = ["media", "create", "--contact", "Frank", "--type", "webhook", "--address"]
    private = cli(*args, "http://10.20.30.40/hook", "--json")
    assert private.exit_code == 0, private.stderr
    assert "warning: " in private.stderr and "TOCSIN_DESTINATION_ALLOW" in private.stderr
    import json

    (warning,) = json.loads(private.stdout)["warnings"]
    assert "10.20.30.40" in warning
    allowed = cli.json(*args, "http://127.0.0.1:9/hook")  # the test allow-list has 127.0.0.0/8
    assert allowed["warnings"] == []
