"""Dashboard passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when a login names an unknown user, so it costs as much as a known one.
# A constant with the hasher's parameters (m=64 MiB, t=3, p=4; a unit test holds it to
# them): hashing it at import cost every API process 0.3 s of CPU at start.
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$Fas2EJJMZuoXFC+GSngS/Q$rrSHKzP4/rqZDBKyNolC35vkzlk6b9DeFxKgX21j8ug"


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
