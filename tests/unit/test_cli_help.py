"""``--help`` reads as a person expects: every option visible, flags without a type."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from services.cli.main import app


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_send_help_shows_every_delay_option_uncut() -> None:
    text = _help("send")
    for option in ("--initial-failure-delay", "--repeat-failure-delay", "--initial-recovery-delay"):
        assert option in text
    assert "…" not in text  # no option name or text cut short


@pytest.mark.parametrize(
    "command", [("send",), ("contacts", "list"), ("rules", "create"), ("dead", "list"), ()]
)
def test_flags_get_no_type_and_values_a_plain_one(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert not re.search(r"<(bool|str|int|float|list\[\w+\])>", text), text


def test_help_names_nothing_a_user_cannot_look_up() -> None:
    for command in [("send",), ("simulate",), ("dead",)]:
        text = _help(*command)
        assert "CONTRACTS" not in text and "NS." not in text and "§" not in text


def test_repeatable_options_say_so() -> None:
    assert "TEXT (repeatable)" in _help("rules", "create")
