"""Ids as people type them: whole, a unique prefix, or a contact's name."""

from __future__ import annotations

from typing import Any

import pytest

from services.cli.contacts import MEDIUM_COLS
from services.cli.ids import match
from services.cli.output import with_names

CONTACTS = [
    {"id": "29f7f9534e1cc0aa", "name": "Alice"},
    {"id": "29f7f9534e1cc0bb", "name": "Bob"},
    {"id": "7a00000000000000", "name": "Carol"},
    {"id": "7b00000000000000", "name": "Carol"},
]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("29f7f9534e1cc0aa", "29f7f9534e1cc0aa", id="whole id"),
        pytest.param("29f7f9534e1cc0a", "29f7f9534e1cc0aa", id="a table cut the last character"),
        pytest.param("7a", "7a00000000000000", id="short unique prefix"),
        pytest.param("Bob", "29f7f9534e1cc0bb", id="name"),
    ],
)
def test_a_contact_is_found_by_id_prefix_or_name(text: str, found: str) -> None:
    assert match("contact", text, CONTACTS) == found


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("29f7f9534e1cc0", "ambiguous", id="prefix of two ids"),
        pytest.param("Carol", "2 contacts are named 'Carol'", id="name of two contacts"),
        pytest.param("ffff", "no contact with id or name 'ffff'", id="nothing"),
    ],
)
def test_ambiguity_and_absence_are_refused_not_guessed(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        match("contact", text, CONTACTS)


def test_media_and_rules_are_not_found_by_a_contact_name() -> None:
    with pytest.raises(ValueError, match="no medium with id 'Alice'"):
        match("medium", "Alice", CONTACTS)


class _Api:
    def all_items(self, path: str, **_: Any) -> list[dict[str, Any]]:
        assert path == "/contacts"
        return CONTACTS


def test_tables_name_the_contact_instead_of_its_id() -> None:
    columns = dict(with_names(_Api(), MEDIUM_COLS))  # type: ignore[arg-type]
    assert columns["contact"]({"contact_id": "7a00000000000000"}) == "Carol"
    assert columns["contact"]({"contact_id": "gone"}) == "gone"
