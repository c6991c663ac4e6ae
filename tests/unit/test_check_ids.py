"""Check ids: one id per (entity, check), stable for existing checks."""

from __future__ import annotations

import hashlib

import pytest

from shared.keys import check_id


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(("web", "prod:disk"), ("web:prod", "disk"), id="colon moved across"),
        pytest.param(("nav", "prod:disk"), ("nav:prod", "disk"), id="argus source reaching"),
        pytest.param(("a", "b:c:d"), ("a:b:c", "d"), id="several colons"),
        pytest.param(("a", ":b"), ("a:", "b"), id="colon at the edge"),
    ],
)
def test_colons_cannot_make_two_checks_one(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert check_id(*a) != check_id(*b)


@pytest.mark.parametrize(
    ("entity", "check"),
    [
        pytest.param("web1", "http", id="plain"),
        pytest.param("node1:9100", "HighLoad", id="alertmanager host:port entity"),
    ],
)
def test_checks_without_a_colon_keep_their_id(entity: str, check: str) -> None:
    """No migration for them: the id is the historical hash of ``entity:check``."""
    legacy = hashlib.blake2b(f"{entity}:{check}".encode(), digest_size=10).hexdigest()
    assert check_id(entity, check) == legacy
