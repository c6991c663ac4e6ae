"""Wording shared by the human-readable media (email, Slack, SMS): pure functions of a Delivery.

Follows Flapjack's message templates (docs/payloads.md): the type and
state come first, then which check, then when and why.
"""

from __future__ import annotations

import time as _time
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.models import Delivery
from shared.severity import severity_key

ROLLUP_TYPES = frozenset({"rollup", "rollup_recovery"})

TYPE_SENTENCE = {
    "problem": "Problem",
    "recovery": "Recovery",
    "acknowledgement": "Acknowledgement",
    "test": "Test",
    "rollup": "Problem summary",
    "rollup_recovery": "Problem summaries finishing",
}


def state_title(state: str) -> str:
    """``OK`` upper-case, others title-cased (``Critical``), as Flapjack shows them."""
    return "OK" if state.lower() == "ok" else state.title()


def clean(value: str) -> str:
    """One line: control characters and line breaks become spaces (headers, SMS, titles)."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def check_name(d: Delivery) -> str:
    return clean(f"{d.entity}:{d.check}")


def format_time(ts: float, short: bool = False) -> str:
    """UTC time: ``23 Nov 18:20`` (short) or ``2026-11-23 18:20:05 UTC``."""
    t = _time.gmtime(ts)
    if short:
        return f"{t.tm_mday} {_time.strftime('%b %H:%M', t)}"
    return _time.strftime("%Y-%m-%d %H:%M:%S UTC", t)


def format_duration(seconds: float) -> str:
    """``2h 5m``, ``4m 3s``, ``12s``: compact, largest units first."""
    s = int(max(0, seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    if not days and not hours:
        parts.append(f"{s}s" if s or not minutes else "")
    return " ".join(p for p in parts if p) or "0s"


def rollup_count(d: Delivery) -> int:
    return len(d.checks)


def rollup_states_summary(d: Delivery) -> str:
    """``Critical: 2, Warning: 1`` over the rollup's checks, most severe first."""
    counts: dict[str, int] = {}
    for item in d.checks:
        counts[item.state] = counts.get(item.state, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (severity_key(kv[0]), kv[0]))
    return ", ".join(f"{state_title(s)}: {n}" for s, n in ranked)


def acked_state(d: Delivery) -> str:
    """The failing state an acknowledgement acknowledged (its event's state is ``acknowledgement``).

    The processor gives an acknowledgement the check's state at the time as
    ``previous_state``; an old delivery without one reads ``critical``, the
    severity acknowledgements route with when nothing else is known.
    """
    if d.state in ("warning", "critical", "unknown"):
        return d.state
    prev = d.previous_state
    return prev if prev is not None and prev != "ok" else "critical"


def ack_line(d: Delivery, by: bool = False) -> str:
    """``ACKNOWLEDGED: web1:http (critical): <comment>``, optionally ``... by alice: ...``."""
    who = f" by {clean(d.acknowledged_by)}" if by and d.acknowledged_by else ""
    comment = clean(d.summary)
    text = f"ACKNOWLEDGED: {check_name(d)} ({acked_state(d)}){who}"
    return f"{text}: {comment}" if comment else text


def headline(d: Delivery) -> str:
    """One line naming what happened: ``Problem: 'web1:http' is Critical``."""
    kind = TYPE_SENTENCE.get(d.type, d.type.title())
    if d.type in ROLLUP_TYPES:
        n = rollup_count(d)
        return f"{kind}: {n} failing check{'s' if n != 1 else ''}"
    if d.type == "acknowledgement":
        who = f" by {clean(d.acknowledged_by)}" if d.acknowledged_by else ""
        return f"Acknowledged: '{check_name(d)}' ({state_title(acked_state(d))}){who}"
    if d.type == "test":
        return f"{kind}: '{check_name(d)}' ({state_title(d.state)})"
    return f"{kind}: '{check_name(d)}' is {state_title(d.state)}"


def local_time(ts: float, tz_name: str) -> str:
    """``2026-01-14 17:41:00 CET (16:41:00 UTC)`` in the contact's zone; UTC alone for UTC.

    An unknown zone name falls back to UTC rather than losing the message.
    """
    utc = format_time(ts)
    try:
        tz = ZoneInfo(tz_name) if tz_name not in ("", "UTC") else None
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
    if tz is None:
        return utc
    local = datetime.fromtimestamp(ts, tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or tz.key} ({utc[11:]})"


def check_url(public_url: str | None, d: Delivery) -> str | None:
    """The dashboard page of ``d``'s check (rollups: the failing checks), if the URL is known."""
    if not public_url:
        return None
    base = public_url.rstrip("/")
    if d.type in ROLLUP_TYPES:
        return f"{base}/ui/checks?state=failing"
    return f"{base}/ui/check?{urlencode({'entity': d.entity, 'check': d.check})}"
