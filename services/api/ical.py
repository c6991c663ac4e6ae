"""A schedule's shifts as an iCalendar feed (RFC 5545), so people see them in their calendar.

One ``VEVENT`` per shift with someone on call, times in UTC (every calendar
client converts them), a stable ``UID`` per shift start and schedule so a
refreshed feed updates events instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from shared.oncall import Schedule, Shift


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """Escape a TEXT value (backslash, semicolon, comma, newline)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts, start = [], 0
    while start < len(raw):
        size = 75 if start == 0 else 74
        end = min(start + size, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            end -= 1
        parts.append(raw[start:end].decode())
        start = end
    return "\r\n ".join(parts)


def render_calendar(
    s: Schedule, shifts: Sequence[Shift], names: Mapping[str, str], now: float
) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Tocsin//on-call schedules//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{_text('On call: ' + s.name)}",
    ]
    for sh in shifts:
        if sh.contact_id is None:
            continue
        who = names.get(sh.contact_id, sh.contact_id)
        kind = "override" if sh.source.startswith("override:") else "rotation"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{s.id}-{int(sh.start)}-{sh.contact_id}@tocsin",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(sh.start)}",
            f"DTEND:{_stamp(sh.end)}",
            f"SUMMARY:{_text(f'{who} on call ({s.name})')}",
            f"DESCRIPTION:{_text(f'{kind} ({sh.source}); schedule zone {s.timezone}')}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(_fold(x) for x in lines) + "\r\n").encode()
