"""What a person types, in one place: durations, times, days, time restrictions, check names.

The command-line options and the ``tocsin import`` file go through the same
functions, so whatever ``--when 'mon-fri 08:00-17:00'`` or ``--interval 15m``
accepts, the file accepts too (``days: [mon, fri]``, ``interval: 10m``,
``end: 17:00`` even when YAML has read it as the number 1020).  Errors say what
to write instead, never a regular expression.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK = re.compile(r"^(\d{1,2}):(\d\d)$")


def parse_duration(text: str | int) -> int:
    """``90``, ``90s``, ``15m``, ``4h``, ``2d``, ``1w`` (or an int of seconds) -> seconds."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _DURATION.match(str(text).strip().lower())
    if not match:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 15m, 4h, 2d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds, ISO 8601 (``2026-11-23T14:00+01:00``; naive = local), or ``now[+duration]``."""
    t = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return t
    if text.startswith("now+"):
        return t + parse_duration(text[4:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {text!r} (use epoch seconds, ISO 8601 or now+1h)") from None
    return dt.timestamp() if dt.tzinfo else dt.astimezone().timestamp()


def split_check(name: str) -> tuple[str, str]:
    """``entity:check`` -> (entity, check); the check name may itself contain ':'."""
    entity, sep, check = name.partition(":")
    if not sep or not entity or not check:
        raise ValueError(f"expected ENTITY:CHECK, got {name!r}")
    return entity, check


def _day(token: str) -> int | None:
    token = token.strip().lower()
    if token.isdigit():
        return int(token) if 1 <= int(token) <= 7 else None
    return DAY_NAMES.get(token[:3]) if len(token) >= 3 else None


def parse_days(value: str | int | Sequence[str | int]) -> list[int]:
    """``1-5``, ``mon-fri``, ``sat,sun``, ``[mon, tue]``, ``[1, 2]`` -> sorted ISO day numbers."""
    parts: list[str] = []
    for item in [value] if isinstance(value, str | int) else value:
        parts.extend(str(item).split(","))
    days: set[int] = set()
    for part in parts:
        lo, _, hi = part.strip().partition("-")
        a = _day(lo)
        b = _day(hi) if hi else a
        if a is None or b is None:
            raise ValueError(f"bad days {value!r} (use 1-5, mon-fri, sat,sun; Monday = 1)")
        days.update(range(a, b + 1) if a <= b else [*range(a, 8), *range(1, b + 1)])
    if not days:
        raise ValueError(f"bad days {value!r} (use 1-5, mon-fri, sat,sun; Monday = 1)")
    return sorted(days)


def parse_clock(value: str | int, what: str = "time", end: bool = False) -> str:
    """``8:00``, ``08:00``, ``24:00`` (an end only) -> ``HH:MM``.

    YAML 1.1 reads an unquoted ``17:00`` as the base-60 number 1020; such a
    number is turned back into the clock time it was written as.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
        value = f"{value // 60}:{value % 60:02d}"
    match = _CLOCK.match(str(value).strip())
    hint = "use HH:MM from 00:00 to 23:59" + (", or 24:00 for the end of the day" if end else "")
    if not match:
        raise ValueError(f"bad {what} {value!r} ({hint})")
    h, m = int(match.group(1)), int(match.group(2))
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise ValueError(f"bad {what} {value!r} ({hint})")
    return f"{h:02d}:{m:02d}"


def parse_recurrence(value: str | dict[str, Any]) -> dict[str, Any]:
    """``mon-fri 08:00-16:00``, ``sat,sun all-day``, or a mapping -> a time recurrence.

    A mapping (the file's form) may spell ``days`` the same ways as the
    option; unknown keys are refused by name.
    """
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"days", "start", "end", "all_day"})
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)} (use days, start, end, all_day)")
        out: dict[str, Any] = {"days": parse_days(value.get("days", "1-7"))}
        if value.get("all_day"):
            out["all_day"] = True
        else:
            out["start"] = parse_clock(value.get("start", "00:00"), "start")
            out["end"] = parse_clock(value.get("end", "24:00"), "end", end=True)
        return out
    parts = str(value).split()
    if len(parts) != 2:
        raise ValueError(f"bad time restriction {value!r} (use e.g. 'mon-fri 08:00-16:00')")
    days = parse_days(parts[0])
    if parts[1] in ("all-day", "all_day", "allday"):
        return {"days": days, "all_day": True}
    start, sep, end = parts[1].partition("-")
    if not sep:
        raise ValueError(f"bad span {parts[1]!r} (use HH:MM-HH:MM, e.g. 08:00-16:00, or all-day)")
    return {
        "days": days,
        "start": parse_clock(start, "start"),
        "end": parse_clock(end, "end", True),
    }


def describe_days(days: Sequence[int]) -> str:
    """[1, 2, 3, 4, 5] -> ``Mon-Fri``; [6, 7] -> ``Sat-Sun``; [1, 3] -> ``Mon,Wed``."""
    ds = sorted(set(days))
    if ds == list(range(1, 8)):
        return "every day"
    runs: list[tuple[int, int]] = []
    for d in ds:
        if runs and d == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return ",".join(
        DAY_LABELS[a - 1] if a == b else f"{DAY_LABELS[a - 1]}-{DAY_LABELS[b - 1]}" for a, b in runs
    )


def describe_recurrence(rec: dict[str, Any]) -> str:
    """A time recurrence for people: ``Mon-Fri 08:00-17:00``, ``Sat-Sun all day``."""
    days = describe_days(rec.get("days") or range(1, 8))
    if rec.get("all_day"):
        return f"{days} all day"
    return f"{days} {rec.get('start', '00:00')}-{rec.get('end', '24:00')}"


def pairs(values: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> a dict; the value may contain ``=``."""
    outp = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {v!r}")
        outp[k] = val
    return outp
