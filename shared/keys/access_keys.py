"""Keys of who may do what: users, tokens, sessions, the failed-auth limiter, page acks, the audit stream.

The API alone writes these.
"""

from __future__ import annotations


class AccessKeys:
    """The access part of :class:`shared.keys.Keys` (one namespace prefix, ``p``)."""

    __slots__ = ()
    p: str
    pp: str

    def auth_failures(self, client: str) -> str:
        """ZSET of recent wrong-token times of one client address, shared by API processes."""
        return f"{self.p}auth:failures:{{{client}}}"

    # -- dashboard (services/api/ui/session.py)
    def ui_session(self, ref: str) -> str:
        """STRING with a TTL: a live dashboard login session (``ref`` is a hash of its nonce)."""
        return f"{self.pp}ui:session:{ref}"

    # -- acknowledging from the page (services/api/integrations/)
    def ack_once(self, episode: str, contact: str) -> str:
        """STRING with a TTL: this contact already acknowledged this episode from a page."""
        return f"{self.p}ack:once:{episode}:{contact}"

    def ack_seen(self, channel: str, digest: str) -> str:
        """STRING with a TTL: an inbound request already taken (replay guard)."""
        return f"{self.p}ack:seen:{channel}:{digest}"

    # -- people (shared/people.py, services/api/people_store.py)
    def users(self) -> str:
        """HASH user id -> User JSON."""
        return f"{self.pp}users"

    def user_seq(self) -> str:
        """STRING counter of users' Argus pks."""
        return f"{self.pp}users:seq"

    def user_by_name(self) -> str:
        """HASH username -> user id."""
        return f"{self.pp}users:by_name"

    def user_by_sso(self) -> str:
        """HASH JSON ``[issuer, sub]`` of a single sign-on account -> user id."""
        return f"{self.pp}users:by_sso"

    def api_tokens(self) -> str:
        """HASH token id -> ApiToken JSON (hashes only; revoked ones kept to say so)."""
        return f"{self.pp}users:tokens"

    def api_token_by_hash(self) -> str:
        """HASH SHA-256 of a personal token -> token id."""
        return f"{self.pp}users:tokens:by_hash"

    def api_token_last_used(self) -> str:
        """HASH token id -> epoch of its last use (apart, so a use never rewrites a revocation)."""
        return f"{self.pp}users:tokens:last_used"

    def bootstrap_disabled(self) -> str:
        """STRING present while the break-glass TOCSIN_API_TOKEN is disabled."""
        return f"{self.pp}auth:bootstrap_disabled"

    def audit(self) -> str:
        """STREAM of audit records, capped (services/api/audit.py)."""
        return f"{self.pp}audit"

    def ui_user_sessions(self, owner: str) -> str:
        """SET of the session refs of one user (``owner`` = user id, or ``bootstrap``)."""
        return f"{self.pp}ui:user_sessions:{owner}"
