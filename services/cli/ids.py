"""Ids as people type them: a unique prefix (as git takes), or a contact's name.

Tables show ids that people copy, sometimes cut short; every command that
asks for a contact, medium or rule id takes the whole id, any prefix that only
one record has, or (for contacts) the contact's name.  An ambiguous prefix is
refused with the candidates, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from services.cli.client import ApiClient

# Command arguments and options that take such an id.
ContactArg = Annotated[str, typer.Argument(help="Contact id, a unique prefix of it, or the name")]
MediumArg = Annotated[str, typer.Argument(help="Medium id or a unique prefix of it")]
RuleArg = Annotated[str, typer.Argument(help="Rule id or a unique prefix of it")]
CONTACT_HELP = "Contact id, a unique prefix of it, or the name"

PATHS = {"contact": "/contacts", "medium": "/media", "rule": "/rules"}


def match(kind: str, text: str, records: Sequence[dict[str, Any]]) -> str:
    """The id ``text`` names among ``records``; ValueError saying why when none or several."""
    text = text.strip()
    if not text:
        raise ValueError(f"give a {kind} id")
    if any(r["id"] == text for r in records):
        return text
    if kind == "contact":
        named = [r["id"] for r in records if r.get("name") == text]
        if len(named) == 1:
            return str(named[0])
        if len(named) > 1:
            raise ValueError(
                f"{len(named)} contacts are named {text!r}; give an id: {', '.join(named)}"
            )
    found = [r["id"] for r in records if r["id"].startswith(text)]
    if len(found) == 1:
        return str(found[0])
    if found:
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise ValueError(f"{kind} id prefix {text!r} is ambiguous ({shown}); give more of it")
    hint = " or name" if kind == "contact" else ""
    raise ValueError(
        f"no {kind} with id{hint} {text!r} (list them with `tocsin {PATHS[kind][1:]} list`)"
    )


def resolve(api: ApiClient, kind: str, text: str) -> str:
    """The whole id of the ``kind`` record ``text`` names (id, unique prefix or contact name)."""
    if len(text) == 16 and all(c in "0123456789abcdef" for c in text):
        return text  # a whole id: let the API say whether it exists
    return match(kind, text, api.all_items(PATHS[kind]))
