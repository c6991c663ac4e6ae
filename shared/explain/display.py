"""Showing decision records to people: timestamps on the operator's clock.

Reason texts carry exact epoch numbers (``blocked until 1795000000``);
``tocsin explain`` and ``tocsin simulate`` show them as local times, and
nothing else of the pipeline's words changes.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

# Epoch seconds inside reason texts (years 2001..2286): shown as local times to people.
_EPOCH = re.compile(r"\b(1\d{9}|[2-9]\d{9})(\.\d+)?\b")


def local_time(ts: float, tz: ZoneInfo | None) -> str:
    """``2026-11-23 14:03:07 CET``: a timestamp on the operator's clock (None = system zone)."""
    dt = (
        datetime.fromtimestamp(ts, tz)
        if tz is not None
        else datetime.fromtimestamp(ts).astimezone()
    )
    return f"{dt:%Y-%m-%d %H:%M:%S} {dt.tzname() or ''}".rstrip()


def humanize(text: str, tz: ZoneInfo | None) -> str:
    """A reason text with the epoch timestamps it names shown as local times.

    Reasons carry exact numbers (``blocked until 1795000000``); only their
    presentation changes, so they remain the pipeline's own words.
    """
    return _EPOCH.sub(lambda m: local_time(float(m.group(0)), tz), text)
