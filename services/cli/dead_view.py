"""How ``tocsin dead`` describes and picks dead letters: age, reason, ids typed by people.

List positions shift as letters are requeued or new ones arrive, so letters
are picked by the stable id of ``shared.deadletters.letter_id``; as with other
ids, a unique prefix is enough.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence


def age(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h``, ``2d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def short_reason(text: str, width: int = 160) -> str:
    """The reason cut at a word boundary, never mid-word."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …")


def pick(ids: Sequence[str], known: Sequence[str]) -> tuple[set[str], list[str]]:
    """The letter ids named by ``ids`` (whole or unique prefixes) and the problems."""
    chosen: set[str] = set()
    problems: list[str] = []
    for text in ids:
        exact = [k for k in known if k == text]
        found = exact or [k for k in known if k.startswith(text)]
        if len(found) == 1:
            chosen.add(found[0])
        elif found:
            problems.append(f"{text!r} matches {len(found)} dead letters; give more of the id")
        else:
            hint = " (letters are picked by id, not by list position)" if text.isdigit() else ""
            problems.append(f"no dead letter with id {text!r}{hint}")
    return chosen, problems
