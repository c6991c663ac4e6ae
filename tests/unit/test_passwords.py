"""The dummy hash an unknown user's login is verified against."""

from __future__ import annotations

from argon2 import PasswordHasher

from services.api.passwords import DUMMY_HASH, password_matches


def test_dummy_hash_costs_what_a_users_hash_costs() -> None:
    # The hasher's algorithm and parameters (what a stored hash has), so verifying
    # against it takes as long and timing does not tell which usernames exist.
    assert DUMMY_HASH.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(DUMMY_HASH)
    assert password_matches(DUMMY_HASH, "tocsin: no such user")  # a well-formed hash
