"""Signed action links: "Acknowledge for 1h / 4h" and "Open in Tocsin" in every page.

A link carries a token that binds one check, one failure episode, one contact
and an expiry, signed with HMAC-SHA256.  The gateways put links into the
messages they render, the API verifies them when someone follows one
(docs/acknowledge.md); both sides only need the secret, so a gateway never
asks Redis for anything to build a link.

Token layout: ``base64url(JSON claims) "." base64url(HMAC-SHA256(secret, claims))``.
The claims are short keys to keep SMS links short.  Pure functions only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal
from urllib.parse import quote, urlencode

import msgspec

from shared.config import Settings
from shared.models import Delivery

LINK_PATH = "/integrations/ack/"
# SMS links: the short form (episode, contact, expiry; the check is the episode's).
SHORT_PATH = "/a/"
# A truncated MAC is enough against online guessing (2**80 tries per link).
_SHORT_MAC_BYTES = 10
_SHORT_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# Durations the pages offer; the POST accepts these names (``?duration=1h``).
DURATIONS: dict[str, int] = {"1h": 3600, "4h": 4 * 3600}
DEFAULT_DURATION = "4h"
# Domain-separates the derived secret from any other use of the API token.
_DERIVATION_LABEL = b"tocsin action links v1"
# Letters of short codes: no 0/O, 1/I/L, so a code read off a phone is typed right.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SHORT_CODE_LEN = 4

Refusal = Literal["malformed", "bad_signature", "expired"]


class LinkClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a link is good for: check ``e:c``, episode ``ep``, contact ``ct``, until ``x``."""

    e: str  # entity
    c: str  # check
    ep: str  # episode (incident) id
    ct: str  # contact id
    x: int  # expiry, epoch seconds


class ActionLinks(msgspec.Struct, frozen=True, kw_only=True):
    """The URLs a page carries (the webhook JSON's ``actions`` object)."""

    acknowledge: str  # POST acknowledges for the default 4 h; GET shows the confirmation page
    acknowledge_1h: str
    open: str


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(LinkClaims)


def action_secret(settings: Settings) -> bytes | None:
    """The link-signing key: ``TOCSIN_ACTION_SECRET``, else one derived from the API token.

    ``tocsin up`` hands the API token to every worker, so gateways and the API
    agree on the derived key without another secret to manage; setting
    ``TOCSIN_ACTION_SECRET`` lets an operator rotate links (and only links).
    None when neither is set: no links are made and every link is refused.
    """
    if settings.action_secret:
        return settings.action_secret.encode()
    if settings.api_token:
        return hmac.new(settings.api_token.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()
    return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, claims: LinkClaims) -> str:
    """The token for ``claims``."""
    body = _b64(_ENCODER.encode(claims))
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: bytes | None, token: str, now: float) -> LinkClaims | Refusal:
    """The claims of a genuine, unexpired token, or why it is refused.

    The signature is checked (in constant time) before the claims are decoded,
    so nothing an attacker wrote is parsed unless the key signed it.
    """
    body, dot, mac_text = token.partition(".")
    if not dot or not body or not mac_text or len(token) > 2048:
        return "malformed"
    if secret is None:
        return "bad_signature"
    try:
        mac = _unb64(mac_text)
    except (ValueError, TypeError):
        return "malformed"
    expected = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return "bad_signature"
    try:
        claims = _DECODER.decode(_unb64(body))
    except (ValueError, TypeError, msgspec.DecodeError):
        return "malformed"
    if now >= claims.x:
        return "expired"
    return claims


class ShortClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a short (SMS) link is good for: episode ``ep`` as contact ``ct`` until ``x``."""

    ep: str
    ct: str
    x: int


def _short_mac(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, b"short:" + body.encode(), hashlib.sha256).digest()
    return _b64(mac[:_SHORT_MAC_BYTES])


def sign_short(secret: bytes, claims: ShortClaims) -> str:
    """``<episode>.<contact>.<expiry base36>.<mac>``: about 45 characters."""
    body = f"{claims.ep}.{claims.ct}.{_b36(claims.x)}"
    return f"{body}.{_short_mac(secret, body)}"


def verify_short(secret: bytes | None, token: str, now: float) -> ShortClaims | Refusal:
    """The claims of a genuine, unexpired short token, or why it is refused."""
    parts = token.split(".")
    if len(parts) != 4 or len(token) > 200 or not all(parts):
        return "malformed"
    if secret is None:
        return "bad_signature"
    body = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3].encode(), _short_mac(secret, body).encode()):
        return "bad_signature"
    try:
        expiry = int(parts[2], 36)
    except ValueError:
        return "malformed"
    if now >= expiry:
        return "expired"
    return ShortClaims(ep=parts[0], ct=parts[1], x=expiry)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def short_link(settings: Settings, d: Delivery) -> str | None:
    """The SMS form of the Acknowledge link (4 h; the page offers 1 h too), when it can be made.

    Needs what :func:`links_for` needs, and ids that fit a URL as they are.
    """
    secret = action_secret(settings)
    if d.type != "problem" or not d.episode_id or not settings.public_url or secret is None:
        return None
    if not set(d.episode_id + d.contact.id) <= _SHORT_SAFE:
        return None
    claims = ShortClaims(
        ep=d.episode_id, ct=d.contact.id, x=int(d.time + settings.action_link_ttl_s)
    )
    return f"{settings.public_url.rstrip('/')}{SHORT_PATH}{sign_short(secret, claims)}"


def open_url(public_url: str, entity: str, check: str) -> str:
    """The check's dashboard page."""
    query = urlencode({"entity": entity, "check": check})
    return f"{public_url.rstrip('/')}/ui/check?{query}"


def link_token(settings: Settings, d: Delivery) -> str | None:
    """The token for delivery ``d``: problems of a known episode, when a key is configured.

    The expiry counts from the notification's time, so every render of one
    delivery (a retry, another gateway replica) carries the same token.
    """
    secret = action_secret(settings)
    if d.type != "problem" or not d.episode_id or secret is None:
        return None
    claims = LinkClaims(
        e=d.entity,
        c=d.check,
        ep=d.episode_id,
        ct=d.contact.id,
        x=int(d.time + settings.action_link_ttl_s),
    )
    return sign(secret, claims)


def links_for(settings: Settings, d: Delivery) -> ActionLinks | None:
    """The links for delivery ``d`` (see :func:`link_token`), when ``TOCSIN_PUBLIC_URL`` is set."""
    token = link_token(settings, d)
    if token is None or not settings.public_url:
        return None
    url = f"{settings.public_url.rstrip('/')}{LINK_PATH}{quote(token, safe='')}"
    return ActionLinks(
        acknowledge=url,
        acknowledge_1h=f"{url}?duration=1h",
        open=open_url(settings.public_url, d.entity, d.check),
    )


def short_code(entity: str, check: str) -> str:
    """A 4-letter name for a check that people type into an SMS reply ("ACK 7KQP").

    Derived from the check's name, so the gateway that writes it and the API
    that reads a reply agree without storing anything; the API resolves it
    among the checks recently paged to that number, where a clash is unlikely
    and is refused rather than guessed.
    """
    digest = hashlib.sha256(f"{entity}:{check}".encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    letters = []
    for _ in range(SHORT_CODE_LEN):
        n, r = divmod(n, len(_CODE_ALPHABET))
        letters.append(_CODE_ALPHABET[r])
    return "".join(letters)
