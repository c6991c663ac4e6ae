"""Reading decision records back, and showing their times to people.

The workers write the records (``shared/explain.py`` packs them and queues the
push inside their MULTI); the API's ``GET /explain`` and ``tocsin explain``
read them here, oldest first, skipping any this version cannot decode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from shared.explain import Record
from shared.keys import Keys

_DECODER = msgspec.json.Decoder(Record)


def decode_records(raw: Sequence[bytes | str]) -> list[Record]:
    """Decode stored records, skipping any this version cannot read."""
    out: list[Record] = []
    for item in raw:
        try:
            out.append(_DECODER.decode(item))
        except msgspec.DecodeError:
            continue
    return out


def read_records(r: Any, keys: Keys, cid: str, since: float | None = None) -> list[Record]:
    """The check's records, oldest first, optionally only those at or after ``since``."""
    records = decode_records(r.lrange(keys.check_explain(cid), 0, -1))
    records.reverse()
    if since is not None:
        records = [rec for rec in records if rec.time >= since]
    return records


# --------------------------------------------------------------------------- presentation

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
