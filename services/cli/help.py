"""How ``--help`` shows option types: only where a value is expected, in plain words.

Typer prints a Python annotation next to every option, flags included
(``--json <bool>``, ``--help <bool>``, ``--tag <list[str]>``).  A flag takes no
value, so it gets no type; a repeatable option shows its element type and
says it repeats.  :func:`install` is called once by ``services.cli.main``
before the app runs.
"""

from __future__ import annotations

from typing import Any

import click
from typer.core import TyperOption

_ORIGINAL = TyperOption.display_type_rich
_PLAIN = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH"}


def option_type(option: TyperOption, ctx: click.Context) -> str | None:
    """``None`` for flags, ``TEXT`` / ``INTEGER`` / ``TEXT (repeatable)`` for the rest."""
    if option.is_flag or option.count:
        return None
    if option.metavar is not None:
        return option.metavar
    label = str(_ORIGINAL(option, ctx) or "")
    inner = label.strip("<>.").removeprefix("list[").removesuffix("]")
    plain = _PLAIN.get(inner, inner if "|" in inner else inner.upper())
    return f"{plain} (repeatable)" if option.multiple else plain


def install() -> None:
    """Use :func:`option_type` for every option's help."""

    def display_type_rich(self: TyperOption, ctx: click.Context) -> Any:
        return option_type(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
