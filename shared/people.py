"""Users, roles and personal API tokens: the records and the pure decisions over them.

Who may do what is decided here from plain values and a timestamp, so the
rules are testable without Redis or HTTP.  Roles: ``admin`` does everything,
``responder`` reads everything and acts on alerts (ack, maintenance,
comments, incident events, test notifications), ``viewer`` only reads, and
``source`` is an Argus source system, limited by the Argus handlers to its own
incidents.  See docs/users.md.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Role = Literal["admin", "responder", "viewer", "source"]
ROLES: tuple[Role, ...] = ("admin", "responder", "viewer", "source")
# People's roles, each allowed what the ones after it are.
LADDER: tuple[Role, ...] = ("admin", "responder", "viewer")
USER_ROLES: tuple[Role, ...] = ("admin", "responder", "viewer")

# A route's way of authenticating when it is not by role: open to anyone
# (health, metrics), its own secret or signature (webhooks, signed links), or
# the dashboard's session.
Auth = Literal["public", "signature", "session"]
AUTH_KINDS: tuple[Auth, ...] = ("public", "signature", "session")

# People's Argus pks start here; source systems (Argus users too) count from 1.
USER_PK_BASE = 1_000_000
# A personal token's last-used time is written at most this often (one write per minute).
TOUCH_EVERY_S = 60.0
TOKEN_PREFIX = "tcn_"
# Names the audit log and Argus records give non-users: the break-glass token, the dashboard.
RESERVED_NAMES = frozenset({"admin", "dashboard", "tocsin"})
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

Name = Annotated[str, Meta(min_length=1, max_length=64)]


class User(msgspec.Struct, kw_only=True):
    id: str
    username: str
    role: Role
    email: str = ""
    contact_id: str = ""
    disabled: bool = False
    created_at: float = 0.0
    password_hash: str = ""  # argon2id (services/api/passwords.py); never shown
    pk: int = 0  # the user's Argus pk (from USER_PK_BASE, so never a source system's)
    # The single sign-on account this user is: the provider's issuer and its stable ``sub``.
    sso_issuer: str = ""
    sso_subject: str = ""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the break-glass token, a user (by personal token) or a source system."""

    kind: Literal["bootstrap", "user", "source"]
    role: Role
    name: str
    user_id: str = ""
    token_id: str = ""
    pk: int = 0  # a user's Argus pk


BOOTSTRAP = Principal(kind="bootstrap", role="admin", name="admin")


class ApiToken(msgspec.Struct, kw_only=True):
    """A personal token as stored: its SHA-256, never the token itself."""

    id: str
    user_id: str
    name: str
    sha256: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used: float | None = None


class TokenOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A token as the API shows it; ``token`` only in the answer that created it."""

    id: str
    name: str
    user_id: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used: float | None = None
    token: str | None = None


def allowed_roles(minimum: Role, sources: bool) -> tuple[Role, ...]:
    """The roles a route needing ``minimum`` admits (plus ``source`` when ``sources``)."""
    if minimum == "source":
        return ("source",)
    ladder = LADDER[: LADDER.index(minimum) + 1]
    return (*ladder, "source") if sources else ladder


def new_token() -> str:
    """A fresh personal token: recognisable prefix, 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored and looked up: the SHA-256 of the token (tokens are random, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_refusal(tok: ApiToken, user: User | None, now: float) -> str | None:
    """Why a known token may not be used now (the 401's message), or None when it may."""
    if tok.revoked_at is not None:
        return "this token was revoked"
    if tok.expires_at is not None and tok.expires_at <= now:
        return "this token has expired"
    if user is None:
        return "this token's user no longer exists"
    if user.disabled:
        return "this token's user is disabled"
    return None


def should_touch(tok: ApiToken, now: float) -> bool:
    """Record the last use now?  At most once per :data:`TOUCH_EVERY_S` per token."""
    return tok.last_used is None or now - tok.last_used >= TOUCH_EVERY_S


def token_out(tok: ApiToken, token: str | None = None) -> TokenOut:
    return TokenOut(
        id=tok.id,
        name=tok.name,
        user_id=tok.user_id,
        created_at=tok.created_at,
        expires_at=tok.expires_at,
        revoked_at=tok.revoked_at,
        last_used=tok.last_used,
        token=token,
    )


def username_problem(username: str) -> str | None:
    """Why ``username`` is not acceptable, or None."""
    if not USERNAME_RE.match(username):
        return "a username is 1-64 letters, digits or . _ @ - and starts with a letter or digit"
    if username.lower() in RESERVED_NAMES:
        return f"the username {username!r} is reserved (records use it for the bootstrap token)"
    return None


def role_for_groups(groups: object, mapping: tuple[str, ...], default: str) -> Role | None:
    """The role an SSO user gets from their groups claim: the highest mapped one.

    ``mapping`` holds ``group=role`` pairs; a user in none of them gets
    ``default`` ("" = may not log in: None).  A claim that is not a list of
    strings (or one string) counts as no groups.
    """
    if isinstance(groups, str):
        groups = [groups]
    names = {g for g in groups if isinstance(g, str)} if isinstance(groups, list) else set()
    found = {role for group, _, role in (p.partition("=") for p in mapping) if group in names}
    for role in LADDER:
        if role in found:
            return role
    return next((r for r in LADDER if r == default), None)


def sso_username(claims: dict[str, object]) -> str | None:
    """The username of an SSO login: ``preferred_username``, else ``email``, else None."""
    for key in ("preferred_username", "email"):
        value = claims.get(key)
        if isinstance(value, str) and value and username_problem(value) is None:
            return value
    return None


def bootstrap_problem(
    admins: list[User], their_tokens: list[list[ApiToken]], now: float
) -> str | None:
    """Why the break-glass token may not be disabled now, or None.

    Someone must still be able to reach the API as admin: an enabled admin
    user with at least one token that is neither revoked nor expired.
    """
    for user, tokens in zip(admins, their_tokens, strict=True):
        if user.role == "admin" and any(token_refusal(t, user, now) is None for t in tokens):
            return None
    return (
        "no enabled admin user holds a usable personal token; create one first, "
        "else nobody could reach the API as admin"
    )


def expiry_problem(expires_at: float | None, now: float) -> str | None:
    if expires_at is not None and expires_at <= now:
        return "expires_at must be in the future (epoch seconds)"
    return None
