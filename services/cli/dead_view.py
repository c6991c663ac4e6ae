"""How ``tocsin dead`` names and describes a dead letter: a stable id, its check, its age.

List positions shift as letters are requeued or new ones arrive, so letters
are picked by an id that stays the same between listings: the message id when
the message has one, else a hash of its body and reason.  As with other ids,
a unique prefix is enough.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Sequence
from typing import Any


def letter_id(message_id: str | None, body: bytes, reason: str) -> str:
    """The message id, else ``h`` + 11 hex characters of the body and reason (stable)."""
    if message_id:
        return message_id
    return "h" + hashlib.blake2b(body + b"\0" + reason.encode(), digest_size=8).hexdigest()[:11]


def check_of(body: bytes) -> str:
    """``entity:check`` the message is about (``web1:http +2`` for an array), or ``-``."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return "-"
    items = doc if isinstance(doc, list) else [doc]
    names = [
        f"{d['entity']}:{d['check']}"
        for d in items
        if isinstance(d, dict) and isinstance(d.get("entity"), str) and "check" in d
    ]
    if not names:
        return "-"
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")


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
