"""Tocsin's exception tree; each class tells the caller what to do.

TocsinError
 ├── ConfigError      bad settings: stop at start with the message
 ├── InvalidMessage   bad input: never retry, dead-letter with the reason
 ├── Retryable        transient trouble (Redis down, 5xx, timeout): try again later
 └── Permanent        the other side refused for good (4xx): dead-letter with the reason
"""

from __future__ import annotations


class TocsinError(Exception):
    """Base of every error Tocsin raises on purpose."""


class ConfigError(TocsinError):
    """A setting is missing or malformed; the process cannot start."""


class InvalidMessage(TocsinError):
    """Input that can never be processed; goes to ``NS.dead`` with ``reason``."""

    def __init__(self, reason: str, body: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.body = body


class Retryable(TocsinError):
    """A transient failure: the same work may succeed if offered again later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Permanent(TocsinError):
    """The receiving side refused for good; retrying would not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
