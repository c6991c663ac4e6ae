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

import redis

from shared.keys import Keys

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


class SessionStore:
    """Live sessions: created at login, checked on every request, deleted at logout."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.keys = keys

    def start(self, admin_token: str, now: float) -> str:
        """A new session cookie, recorded as live until it expires."""
        cookie = new_session(admin_token, now)
        nonce = session_nonce(admin_token, cookie, now)
        assert nonce is not None  # a cookie we just signed
        self.redis.set(self.keys.ui_session(session_ref(nonce)), "1", ex=SESSION_S)
        return cookie

    def live_nonce(self, admin_token: str, cookie: str | None, now: float) -> str | None:
        """The nonce of a validly signed, unexpired cookie whose session was not revoked."""
        nonce = session_nonce(admin_token, cookie, now)
        if nonce is None or not self.redis.exists(self.keys.ui_session(session_ref(nonce))):
            return None
        return nonce

    def revoke(self, nonce: str) -> None:
        self.redis.delete(self.keys.ui_session(session_ref(nonce)))
