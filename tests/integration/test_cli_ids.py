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
