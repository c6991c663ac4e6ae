"""Reading decision records back (reads only).

The workers write the records (``packing.py`` packs them, ``storage.py``
queues the push inside their MULTI); the API's ``GET /explain`` (and through
it ``tocsin explain``) reads them here, oldest first, skipping any this
version cannot decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from shared.explain.records import Record
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
