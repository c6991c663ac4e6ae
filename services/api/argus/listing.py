"""Walking the incident indexes for ``incidents/``: pages and counts without reading everything.

The filters pick the smallest index that contains every match (open, acked,
one source, one tag; otherwise all incidents by start time,
shared/incident_index.py); the walk reads it in batches in page order, loads
each batch with one pipeline, applies the exact filter and stops as soon as
the caller has what it needs.  A page of 100 reads about 100 incidents
whatever the total (benchmarks/incident_listing.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from services.api.argus import core
from services.api.argus.schemas import row_of
from services.api.argus.store import ArgusStore, IncidentRecord, SourceRecord
from shared import incident_index

Position = tuple[float, int]


def _position(inc: IncidentRecord) -> Position:
    return (inc.start_time, inc.id)


def candidate_indexes(
    store: ArgusStore,
    predicates: Sequence[tuple[str, object]],
    sources: dict[str, SourceRecord],
) -> list[str]:
    """Index keys each of which holds every incident the predicates can match."""
    k = store.k
    out: list[str] = []
    for name, want in predicates:
        if name == "open" and want is True:
            out.append(k.incident_index("open"))
        elif name == "acked" and want is True:
            out.append(k.incident_index("acked"))
        elif name == "source__id__in" and isinstance(want, set) and len(want) == 1:
            # The incident field holds "tocsin" for Tocsin's own source, else the pk.
            values = {field for field, src in sources.items() if src.pk in want}
            if len(values) == 1:
                out.append(k.incident_by_source(values.pop()))
        elif name == "tags" and isinstance(want, dict):
            out += [k.incident_by_tag(next(iter(v))) for v in want.values() if len(v) == 1]
    return out or [k.incident_ids()]


def walk(
    store: ArgusStore,
    predicates: Sequence[tuple[str, object]],
    sources: dict[str, SourceRecord],
    now: float,
    *,
    newest_first: bool = True,
    after: Position | None = None,
    ids: Sequence[str] | None = None,
    first_batch: int = incident_index.SCAN_BATCH,
) -> Iterator[IncidentRecord]:
    """Matching incidents in page order, strictly beyond ``after`` in that order.

    ``ids``: the candidates are known (a lookup by source incident id); else
    the smallest fitting index is walked.  Each batch is sorted by (start,
    pk); a group of equal start times always comes in one batch
    (shared/incident_index.py), so the order is the same across batches.
    """
    batches = _batches(store, predicates, sources, newest_first, after, ids, first_batch)
    for batch in batches:
        for inc in sorted(batch, key=_position, reverse=newest_first):
            pos = _position(inc)
            if after is not None and (pos >= after if newest_first else pos <= after):
                continue
            if core.matches(row_of(inc, sources), predicates, now):
                yield inc


def _batches(
    store: ArgusStore,
    predicates: Sequence[tuple[str, object]],
    sources: dict[str, SourceRecord],
    newest_first: bool,
    after: Position | None,
    ids: Sequence[str] | None,
    first_batch: int,
) -> Iterator[list[IncidentRecord]]:
    if ids is not None:
        yield store.load_many(ids)
        return
    index = incident_index.pick(store.r, store.k, candidate_indexes(store, predicates, sources))
    if newest_first:
        rows = incident_index.newest_first(store.r, index, after[0] if after else None, first_batch)
    else:
        start = after[0] if after else float("-inf")
        rows = incident_index.oldest_first(store.r, index, start, first_batch)
    for batch in rows:
        yield store.load_many([iid for iid, _ in batch])


__all__ = ["candidate_indexes", "walk"]
