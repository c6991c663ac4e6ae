"""How ``tocsin dead`` names dead letters: stable ids, their check, their age, whole words."""

from __future__ import annotations

import pytest

from services.cli.dead_view import age, pick, short_reason
from shared.deadletters import check_of, letter_id


def test_ids_are_stable_and_prefer_the_message_id() -> None:
    assert letter_id("m-42", b"{}", "bad") == "m-42"
    one = letter_id(None, b'{"entity": "a"}', "state: bad")
    assert one == letter_id(None, b'{"entity": "a"}', "state: bad")
    assert one != letter_id(None, b'{"entity": "b"}', "state: bad")
    assert one.startswith("h") and len(one) == 12


@pytest.mark.parametrize(
    ("body", "check"),
    [
        pytest.param(b'{"entity": "web1", "check": "http", "state": "x"}', "web1:http", id="event"),
        pytest.param(
            b'[{"entity": "a", "check": "b"}, {"entity": "c", "check": "d"}]', "a:b +1", id="array"
        ),
        pytest.param(b'{"id": "n1"}', "-", id="no check in it"),
        pytest.param(b"\xff not json", "-", id="not JSON"),
    ],
)
def test_the_check_a_letter_is_about(body: bytes, check: str) -> None:
    assert check_of(body) == check


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (5, "5s"), (125, "2m"), (7200, "2h"), (3 * 86400 + 5, "3d"), (-3, "0s")],
)
def test_ages(seconds: float | None, text: str) -> None:
    assert age(seconds) == text


def test_reasons_are_cut_between_words() -> None:
    reason = "webhook: refused: HTTP 400: " + "payload rejected " * 20
    cut = short_reason(reason, width=60)
    assert len(cut) <= 60 and cut.endswith(" …")
    assert cut[: -len(" …")].split()[-1] in {"payload", "rejected"}


def test_letters_are_picked_by_id_or_unique_prefix_never_by_position() -> None:
    known = ["poison-1", "poison-2", "hab12cd34ef5"]
    assert pick(["hab"], known) == ({"hab12cd34ef5"}, [])
    assert pick(["poison-2"], known) == ({"poison-2"}, [])
    _, ambiguous = pick(["poison"], known)
    assert ambiguous == ["'poison' matches 2 dead letters; give more of the id"]
    _, positional = pick(["3"], known)
    assert "not by list position" in positional[0]
