"""The dashboard's login session and CSRF tokens: HMAC-signed cookies, live sessions in Redis.

A session cookie is ``<expiry>.<nonce>.<signature>``; the key is derived from
the admin token, so rotating the token logs every browser out.  A signed
cookie alone is not enough: the session must also be live in Redis
(:class:`SessionStore`, expiring with the cookie), so logging out revokes it
and a copied cookie stops working at once instead of after 12 h.  The CSRF
token of a form is bound to the session's nonce (HMAC of it), so a page of
another session, or another site, cannot produce one.  The token itself is
never stored in the cookie, a URL, Redis or a page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

import msgspec
import redis

from shared.keys import Keys
from shared.people import BOOTSTRAP, Principal, Role

COOKIE = "tocsin_session"
LOGIN_COOKIE = "tocsin_login"
SESSION_S = 12 * 3600


def _key(admin_token: str, purpose: str) -> bytes:
    return hmac.new(admin_token.encode(), f"tocsin-ui:{purpose}".encode(), hashlib.sha256).digest()


def _sign(admin_token: str, purpose: str, message: str) -> str:
    return hmac.new(_key(admin_token, purpose), message.encode(), hashlib.sha256).hexdigest()


def token_matches(admin_token: str, given: str) -> bool:
    """The login form's check, in constant time."""
    return bool(admin_token) and hmac.compare_digest(given.encode(), admin_token.encode())


def new_session(admin_token: str, now: float) -> str:
    """A fresh session cookie value valid for :data:`SESSION_S`."""
    message = f"{int(now + SESSION_S)}.{secrets.token_urlsafe(18)}"
    return f"{message}.{_sign(admin_token, 'session', message)}"


def session_nonce(admin_token: str, cookie: str | None, now: float) -> str | None:
    """The nonce of a valid, unexpired session cookie; None otherwise."""
    if not cookie:
        return None
    expiry, _, rest = cookie.partition(".")
    nonce, _, signature = rest.partition(".")
    if not expiry.isdigit() or not nonce or not signature:
        return None
    expected = _sign(admin_token, "session", f"{expiry}.{nonce}")
    if not hmac.compare_digest(signature.encode(), expected.encode()) or int(expiry) <= now:
        return None
    return nonce


def csrf_token(admin_token: str, nonce: str) -> str:
    """The CSRF token of every form in the session with ``nonce``."""
    return _sign(admin_token, "csrf", nonce)


def csrf_ok(admin_token: str, nonce: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(
        (given or "").encode(), csrf_token(admin_token, nonce).encode()
    )


def new_login_nonce() -> str:
    """Double-submit value of the login form (no session exists yet to bind it to)."""
    return secrets.token_urlsafe(18)


def csrf_equal(a: str, b: str) -> bool:
    """Constant-time comparison of the login form's double-submit values."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def session_ref(nonce: str) -> str:
    """What Redis knows a session by: a hash of its nonce, useless as a cookie."""
    return hashlib.sha256(nonce.encode()).hexdigest()[:32]


class SessionRecord(msgspec.Struct, kw_only=True):
    """A live session as Redis keeps it: whose it is and where it came from, never the cookie."""

    ref: str
    kind: str  # "user" or "bootstrap" (logged in with the admin token)
    role: Role
    name: str
    user_id: str = ""
    created: float = 0.0
    expires: float = 0.0
    client: str = ""

    def principal(self) -> Principal:
        kind: Literal["bootstrap", "user"] = "user" if self.kind == "user" else "bootstrap"
        return Principal(kind=kind, role=self.role, name=self.name, user_id=self.user_id)


def owner_key(who: Principal) -> str:
    """Whose session list a session joins: the user's id, or ``bootstrap``."""
    return who.user_id or "bootstrap"


_record = msgspec.json.Decoder(SessionRecord)


class SessionStore:
    """Live sessions: created at login, checked on every request, deleted at logout.

    Each session is also listed under its owner (``ui_user_sessions``), so a
    user sees and ends their own sessions and disabling a user ends all of theirs.
    """

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.keys = keys

    def start(
        self, admin_token: str, now: float, who: Principal = BOOTSTRAP, client: str = ""
    ) -> str:
        """A new session cookie for ``who``, recorded as live until it expires."""
        cookie = new_session(admin_token, now)
        nonce = session_nonce(admin_token, cookie, now)
        assert nonce is not None  # a cookie we just signed
        ref = session_ref(nonce)
        record = SessionRecord(
            ref=ref,
            kind=who.kind,
            role=who.role,
            name=who.name,
            user_id=who.user_id,
            created=now,
            expires=now + SESSION_S,
            client=client,
        )
        pipe = self.redis.pipeline()
        pipe.set(self.keys.ui_session(ref), msgspec.json.encode(record), ex=SESSION_S)
        pipe.sadd(self.keys.ui_user_sessions(owner_key(who)), ref)
        pipe.expire(self.keys.ui_user_sessions(owner_key(who)), SESSION_S)
        pipe.execute()
        return cookie

    def live(
        self, admin_token: str, cookie: str | None, now: float
    ) -> tuple[str, SessionRecord] | None:
        """Nonce and record of a validly signed, unexpired cookie whose session was not revoked."""
        nonce = session_nonce(admin_token, cookie, now)
        if nonce is None:
            return None
        ref = session_ref(nonce)
        raw = self.redis.get(self.keys.ui_session(ref))
        if raw is None:
            return None
        if raw == "1":  # a session from before per-user logins: the admin token's
            return nonce, SessionRecord(ref=ref, kind="bootstrap", role="admin", name="admin")
        return nonce, _record.decode(raw)

    def live_nonce(self, admin_token: str, cookie: str | None, now: float) -> str | None:
        found = self.live(admin_token, cookie, now)
        return found[0] if found else None

    def revoke(self, nonce: str) -> None:
        self.end(session_ref(nonce))

    def end(self, ref: str) -> None:
        raw = self.redis.get(self.keys.ui_session(ref))
        self.redis.delete(self.keys.ui_session(ref))
        if raw and raw != "1":
            rec = _record.decode(raw)
            self.redis.srem(self.keys.ui_user_sessions(rec.user_id or "bootstrap"), ref)

    def of_owner(self, owner: str) -> list[SessionRecord]:
        """The owner's live sessions, oldest first (expired refs are dropped from the list)."""
        refs = sorted(self.redis.smembers(self.keys.ui_user_sessions(owner)))
        if not refs:
            return []
        raws = self.redis.mget([self.keys.ui_session(r) for r in refs])
        gone = [r for r, raw in zip(refs, raws, strict=True) if raw is None]
        if gone:
            self.redis.srem(self.keys.ui_user_sessions(owner), *gone)
        found = [_record.decode(raw) for raw in raws if raw and raw != "1"]
        return sorted(found, key=lambda rec: rec.created)

    def end_all(self, owner: str) -> int:
        """End every session of ``owner`` (a disabled or deleted user); how many there were."""
        records = self.of_owner(owner)
        for rec in records:
            self.end(rec.ref)
        return len(records)
