"""``tocsin import``/``export`` and the configuration commands against a real API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.cli_api import Cli, cli

pytestmark = pytest.mark.integration
__all__ = ["cli"]

# Written the way a person writes it, with the CLI's spellings (not the API's).
HANDWRITTEN = """
contacts:
  - name: Alice
    timezone: Europe/Oslo
    media:
      - type: email
        address: alice@example.com
        interval: 10m
    rules:
      - critical: email
        warning: blackhole
        time_restrictions:
          - days: [mon, tue, wed, thu, fri]
            start: 08:00
            end: 17:00
  - name: Bob
    timezone: America/New_York
    media:
      - {type: webhook, address: "http://127.0.0.1:9/hook", interval: 0}
    rules:
      - time_restrictions: ["sat,sun all-day", "mon-fri 17:00-24:00"]
        critical: {media: [webhook]}
"""


def _names(cli: Cli) -> list[str]:
    return sorted(c["name"] for c in cli.json("contacts", "list"))


def test_a_handwritten_file_imports_with_the_cli_spellings(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(HANDWRITTEN)
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output + result.stderr
    assert _names(cli) == ["Alice", "Bob"]
    rules = {r["contact_id"]: r for r in cli.json("rules", "list")}
    alice = next(c for c in cli.json("contacts", "list") if c["name"] == "Alice")
    assert rules[alice["id"]]["time_restrictions"] == [
        {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "17:00", "all_day": False}
    ]
    assert rules[alice["id"]]["warning"] == {"media": [], "blackhole": True}
    media = {m["type"]: m for m in cli.json("media", "list")}
    assert media["email"]["interval"] == 600


def test_export_quotes_times_and_reads_back_unchanged(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(HANDWRITTEN)
    assert cli("import", str(path)).exit_code == 0
    exported = cli("export")
    assert exported.exit_code == 0
    assert 'start: "08:00"' in exported.stdout and 'end: "17:00"' in exported.stdout
    assert (
        yaml.safe_load(exported.stdout)["contacts"][0]["rules"][0]["time_restrictions"][0]["end"]
        == "17:00"
    )
    again = tmp_path / "export.yaml"
    again.write_text(exported.stdout)
    result = cli("import", str(again))
    assert result.exit_code == 0, result.output + result.stderr
    assert "create" not in result.stdout and "update" not in result.stdout, result.stdout
    assert cli("export").stdout == exported.stdout


def test_a_bad_item_is_named_and_nothing_is_written(cli: Cli, tmp_path: Path) -> None:
    bad = yaml.safe_load(HANDWRITTEN)
    bad["contacts"].append(
        {
            "name": "Carol",
            "timezone": "Europe/Paris",
            "media": [{"type": "webhook", "address": "not a url"}],
        }
    )
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    for args in (["--dry-run"], []):
        result = cli("import", str(path), *args)
        assert result.exit_code == 1, result.output
        assert "contacts[2] 'Carol': media[0].address: must be an http(s) URL" in result.stderr
        assert "nothing was changed" in result.stderr
        assert _names(cli) == []  # Alice and Bob were valid, but not created either


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(
            {"media": [{"type": "email", "address": "a@example.com", "interval": "10x"}]},
            "contacts[0] 'Dora': media[0].interval: bad duration '10x'",
            id="bad duration",
        ),
        pytest.param(
            {"rules": [{"time_restrictions": ["mon-fri 08:00-25:00"]}]},
            "contacts[0] 'Dora': rules[0].time_restrictions[0]: bad end '25:00'",
            id="bad time, said without a regex",
        ),
        pytest.param(
            {"timezone": "Mars/Olympus"},
            "contacts[0] 'Dora': timezone: unknown timezone 'Mars/Olympus'",
            id="unknown timezone, found by the API",
        ),
        pytest.param(
            {"rules": [{"critical": "sms"}]},
            "contacts[0] 'Dora': rules[0].critical.media: critical.media names 'sms'",
            id="rule names a medium the contact lacks",
        ),
        pytest.param(
            {"pager": "yes"},
            "contacts[0] 'Dora': unknown key(s) pager",
            id="unknown key",
        ),
    ],
)
def test_problems_name_the_item(
    cli: Cli, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({"contacts": [{"name": "Dora", **change}]}))
    result = cli("import", str(path), "--dry-run")
    assert result.exit_code == 1
    assert problem in result.stderr, result.stderr
    assert "^" not in result.stderr


def test_import_warns_about_an_address_the_gateway_would_refuse(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "gus.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "contacts": [
                    {"name": "Gus", "media": [{"type": "webhook", "address": "http://10.9.9.9/h"}]}
                ]
            }
        )
    )
    for args in (["--dry-run"], []):
        result = cli("import", str(path), *args)
        assert result.exit_code == 0, result.stderr
        assert "warning: contacts[0] 'Gus': media[0].address: destination" in result.stdout
        assert "10.9.9.9" in result.stdout
    assert _names(cli) == ["Gus"]  # a warning, not a refusal
