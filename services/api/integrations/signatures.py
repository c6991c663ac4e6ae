"""Request signatures of the ways back in (docs/acknowledge.md): pure checks over bytes and a clock.

Each verifier answers ``None`` for a genuine request or a short reason it is
refused; the routes count the reason and answer 401 without saying more.
Comparisons are constant-time, and nothing in the body is parsed before its
signature holds.
"""

from __future__ import annotations

import hashlib
import hmac

# Slack's replay window: a request whose timestamp is further from now is refused.
SLACK_MAX_SKEW_S = 300
# The SMS provider signs a timestamp too; same window.
SMS_MAX_SKEW_S = 300
# More signatures than this in one PagerDuty header is not a rotation, it is an attack.
PAGERDUTY_MAX_SIGNATURES = 8


def _hex_hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _timestamp(value: str | None, now: float, max_skew: float) -> tuple[str, str | None]:
    """The timestamp as sent, or why it is refused (missing, not a number, outside the window)."""
    if not value or not value.isdigit() or len(value) > 12:
        return "", "missing or malformed timestamp"
    if abs(now - int(value)) > max_skew:
        return "", "stale timestamp (replay window)"
    return value, None


def slack(
    secret: str | None, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """Slack's v0 scheme: ``v0=`` hex HMAC-SHA256 of ``v0:<timestamp>:<body>``, 5-minute window."""
    if not secret:
        return "no signing secret configured"
    ts, refused = _timestamp(timestamp, now, SLACK_MAX_SKEW_S)
    if refused:
        return refused
    if not signature or not signature.startswith("v0="):
        return "missing or malformed signature"
    expected = "v0=" + _hex_hmac(secret.encode(), b"v0:" + ts.encode() + b":" + body)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "bad signature"
    return None


def pagerduty(secret: str | None, header: str | None, body: bytes) -> str | None:
    """PagerDuty V3: ``v1=`` hex HMAC-SHA256 of the body; several comma-separated during rotation."""
    if not secret:
        return "no webhook secret configured"
    if not header:
        return "missing or malformed signature"
    offered = [s.strip() for s in header.split(",") if s.strip()]
    v1 = [s for s in offered if s.startswith("v1=")]
    if not v1 or len(offered) > PAGERDUTY_MAX_SIGNATURES:
        return "missing or malformed signature"
    expected = ("v1=" + _hex_hmac(secret.encode(), body)).encode()
    # Compare against every offered signature, so the time taken says nothing about which matched.
    matched = [hmac.compare_digest(s.encode(), expected) for s in v1]
    return None if any(matched) else "bad signature"


def sms_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the SMS provider (or its adapter) sends in ``X-Tocsin-Signature``."""
    return "sha256=" + _hex_hmac(secret.encode(), timestamp.encode() + b"." + body)


def sms(
    secret: str | None, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """``sha256=`` hex HMAC-SHA256 of ``<timestamp>.<body>`` with ``TOCSIN_SMS_INBOUND_SECRET``."""
    if not secret:
        return "no inbound secret configured"
    ts, refused = _timestamp(timestamp, now, SMS_MAX_SKEW_S)
    if refused:
        return refused
    if not signature or not signature.startswith("sha256="):
        return "missing or malformed signature"
    if not hmac.compare_digest(signature.encode(), sms_signature(secret, ts, body).encode()):
        return "bad signature"
    return None
