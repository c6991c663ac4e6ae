"""CLI error lines are printed whole: never wrapped or cut at the terminal's width."""

from __future__ import annotations

import pytest

from services.cli.output import fail


def test_a_long_path_in_an_error_is_neither_wrapped_nor_cut(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = "/tmp/" + "/".join(f"directory-{i}" for i in range(12)) + "/token"
    fail(f"HTTP 401: invalid token; the CLI read its token from the token file {path} [file]")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 150
    assert lines[0].endswith(f"token file {path} [file]")
