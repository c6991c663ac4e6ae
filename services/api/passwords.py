"""Dashboard passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when a login names an unknown user, so it costs as much as a known one.
DUMMY_HASH = _hasher.hash("tocsin: no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str, given: str) -> bool:
    """Check ``given`` against an argon2id hash; False for an empty or malformed hash."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, given)
    except (VerificationError, InvalidHashError):
        return False
