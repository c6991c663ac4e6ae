"""Users and personal tokens in Redis: load, call the rules in shared/people.py, store."""

from __future__ import annotations

import secrets

import msgspec
import redis

from shared.keys import Keys
from shared.people import USER_PK_BASE, ApiToken, User, new_token, token_hash

_user = msgspec.json.Decoder(User)
_token = msgspec.json.Decoder(ApiToken)
_enc = msgspec.json.Encoder()


class NameTaken(Exception):
    """The username is held by another user."""


class AccountTaken(Exception):
    """The single sign-on account is linked to another user."""


def _sso_field(issuer: str, subject: str) -> str:
    return _enc.encode([issuer, subject]).decode()


class PeopleStore:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.keys = keys

    # -- users
    def users(self) -> list[User]:
        raw = self.redis.hvals(self.keys.users())
        return sorted((_user.decode(v) for v in raw), key=lambda u: u.username)

    def user(self, uid: str) -> User | None:
        raw = self.redis.hget(self.keys.users(), uid)
        return _user.decode(raw) if raw else None

    def user_by_name(self, username: str) -> User | None:
        uid = self.redis.hget(self.keys.user_by_name(), username.lower())
        return self.user(uid) if uid else None

    def user_by_sso(self, issuer: str, subject: str) -> User | None:
        """The user linked to this single sign-on account, or None."""
        uid = self.redis.hget(self.keys.user_by_sso(), _sso_field(issuer, subject))
        return self.user(uid) if uid else None

    def link_sso(self, user: User, issuer: str, subject: str) -> User:
        """Link ``user`` to the account ``issuer`` + ``subject`` (moving a link to another
        issuer); :class:`AccountTaken` if another user holds that account."""
        field = _sso_field(issuer, subject)
        taken = not self.redis.hsetnx(self.keys.user_by_sso(), field, user.id)
        if taken and self.redis.hget(self.keys.user_by_sso(), field) != user.id:
            raise AccountTaken(subject)
        linked = msgspec.structs.replace(user, sso_issuer=issuer, sso_subject=subject)
        pipe = self.redis.pipeline()
        if user.sso_subject and (user.sso_issuer, user.sso_subject) != (issuer, subject):
            pipe.hdel(self.keys.user_by_sso(), _sso_field(user.sso_issuer, user.sso_subject))
        pipe.hset(self.keys.users(), user.id, _enc.encode(linked))
        pipe.execute()
        return linked

    def create_user(self, user: User) -> User:
        """Store a new user with the next Argus pk; :class:`NameTaken` if the username is held."""
        if not self.redis.hsetnx(self.keys.user_by_name(), user.username.lower(), user.id):
            raise NameTaken(user.username)
        user = msgspec.structs.replace(
            user, pk=USER_PK_BASE + int(self.redis.incr(self.keys.user_seq()))
        )
        self.redis.hset(self.keys.users(), user.id, _enc.encode(user))
        return user

    def save_user(self, before: User, after: User) -> None:
        """Write ``after`` (a changed ``before``), moving the name index if it was renamed."""
        if before.username.lower() != after.username.lower():
            if not self.redis.hsetnx(self.keys.user_by_name(), after.username.lower(), after.id):
                raise NameTaken(after.username)
            self.redis.hdel(self.keys.user_by_name(), before.username.lower())
        self.redis.hset(self.keys.users(), after.id, _enc.encode(after))

    def delete_user(self, user: User, now: float) -> None:
        """Remove the user; their tokens are revoked (kept, so a use says why it fails)."""
        for tok in self.tokens_of(user.id):
            if tok.revoked_at is None:
                self.revoke(tok, now)
        pipe = self.redis.pipeline()
        pipe.hdel(self.keys.users(), user.id)
        pipe.hdel(self.keys.user_by_name(), user.username.lower())
        if user.sso_subject:
            pipe.hdel(self.keys.user_by_sso(), _sso_field(user.sso_issuer, user.sso_subject))
        pipe.execute()

    # -- personal tokens
    def tokens_of(self, uid: str) -> list[ApiToken]:
        raw = self.redis.hvals(self.keys.api_tokens())
        used = self.redis.hgetall(self.keys.api_token_last_used())
        mine = [
            msgspec.structs.replace(t, last_used=float(used[t.id])) if t.id in used else t
            for t in (_token.decode(v) for v in raw)
            if t.user_id == uid
        ]
        return sorted(mine, key=lambda t: t.created_at)

    def token(self, tid: str) -> ApiToken | None:
        pipe = self.redis.pipeline()
        pipe.hget(self.keys.api_tokens(), tid)
        pipe.hget(self.keys.api_token_last_used(), tid)
        raw, used = pipe.execute()
        if not raw:
            return None
        tok = _token.decode(raw)
        return msgspec.structs.replace(tok, last_used=float(used)) if used else tok

    def token_by_secret(self, secret: str) -> ApiToken | None:
        """The token whose secret this is (looked up by its hash), or None."""
        tid = self.redis.hget(self.keys.api_token_by_hash(), token_hash(secret))
        return self.token(tid) if tid else None

    def issue(
        self, uid: str, name: str, expires_at: float | None, now: float
    ) -> tuple[ApiToken, str]:
        """A new token for user ``uid``: the record and the secret (returned once, never stored)."""
        secret = new_token()
        tok = ApiToken(
            id=secrets.token_hex(6),
            user_id=uid,
            name=name,
            sha256=token_hash(secret),
            created_at=now,
            expires_at=expires_at,
        )
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.api_tokens(), tok.id, _enc.encode(tok))
        pipe.hset(self.keys.api_token_by_hash(), tok.sha256, tok.id)
        pipe.execute()
        return tok, secret

    def revoke(self, tok: ApiToken, now: float) -> ApiToken:
        done = msgspec.structs.replace(tok, revoked_at=now, last_used=None)
        self.redis.hset(self.keys.api_tokens(), tok.id, _enc.encode(done))
        return done

    def touch(self, tok: ApiToken, now: float) -> None:
        """Record a use (the caller decides how often, see ``should_touch``)."""
        self.redis.hset(self.keys.api_token_last_used(), tok.id, repr(now))

    # -- the break-glass token
    def bootstrap_disabled(self) -> bool:
        return bool(self.redis.exists(self.keys.bootstrap_disabled()))

    def set_bootstrap_disabled(self, disabled: bool) -> None:
        if disabled:
            self.redis.set(self.keys.bootstrap_disabled(), "1")
        else:
            self.redis.delete(self.keys.bootstrap_disabled())
