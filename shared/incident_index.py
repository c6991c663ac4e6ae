"""Sorted-set indexes of incidents, so a listing reads one page, not every incident.

Every index is a ZSET of incident ids scored by start time (``incident::ids``
holds them all; ``open``, ``acked`` and one per source and per tag narrow it),
except ``closed``, scored by end time, which the retention sweeper reads
(shared/sweeper.py) and scored by when the close was recorded.  The writers (the processor's MULTI, the Argus store's
MULTI) queue the commands built here in the same transaction that writes the
incident, so an index never disagrees with a committed incident for long.

An index is a *candidate set*: a reader still applies its exact filter to
each incident it loads (``acked`` means "was ever acknowledged", an incident
whose end time lies in the future stays in ``open``), so a stale member costs
a wasted read, never a wrong answer.  A listing therefore walks the smallest
index that covers its filters, newest first, in batches, and stops once the
page is full: the cost of a page depends on the page and on how selective the
filters are beyond the index, not on how many incidents exist
(benchmarks/incident_listing.py).

:func:`build` is the start-up migration that indexes incidents written before
these indexes existed; it is idempotent, runs once per namespace, in the
background of the processor (about 200 s per million incidents on a loaded
2-core box), and until it is done listings walk ``incident::ids`` (complete,
only slower).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import msgspec
import redis

from shared.keys import Keys
from shared.records import from_hash

log = logging.getLogger(__name__)

# A Redis command as (name, key, arguments...), for a pipeline or the processor's writer.
Command = tuple[str, ...]

# Bump when the index layout changes: :func:`build` runs again once.
INDEX_VERSION = "1"
# Candidate ids read per round trip while a listing fills its page.
SCAN_BATCH = 500


class IndexedIncident(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an incident its index entries depend on."""

    id: str
    start_time: float
    end_time: float | None = None
    stateless: bool = False
    source: str = "tocsin"
    tags: tuple[str, ...] = ()
    acked: bool = False


def _score(t: float) -> str:
    return repr(float(t))


def retired_at(inc: IndexedIncident) -> float | None:
    """When the incident stopped being open (end time; start time if stateless), or None."""
    if inc.stateless:
        return inc.start_time
    return inc.end_time


def write_commands(
    keys: Keys, new: IndexedIncident, old: IndexedIncident | None, closed_at: float | None = None
) -> list[Command]:
    """Commands that bring the index entries of ``new`` up to date (``old``: as indexed before).

    ``closed_at``: when Tocsin recorded the close (wall clock), the ``closed``
    score retention counts from; None = the incident's own end (or start, if
    stateless).  The first close recorded wins (``ZADD NX``), so rewriting a
    closed incident does not extend its retention.
    """
    iid, start = new.id, _score(new.start_time)
    out: list[Command] = [("ZADD", keys.incident_ids(), start, iid)]
    out.append(("ZADD", keys.incident_by_source(new.source), start, iid))
    if old is not None and old.source != new.source:
        out.append(("ZREM", keys.incident_by_source(old.source), iid))
    for tag in sorted(set(new.tags)):
        out.append(("ZADD", keys.incident_by_tag(tag), start, iid))
    if old is not None:
        for tag in sorted(set(old.tags) - set(new.tags)):
            out.append(("ZREM", keys.incident_by_tag(tag), iid))
    if new.acked:
        out.append(("ZADD", keys.incident_index("acked"), start, iid))
    retired = retired_at(new)
    if retired is None:
        out.append(("ZADD", keys.incident_index("open"), start, iid))
        out.append(("ZREM", keys.incident_index("closed"), iid))
    else:
        out.append(("ZREM", keys.incident_index("open"), iid))
        when = retired if closed_at is None else closed_at
        out.append(("ZADD", keys.incident_index("closed"), "NX", _score(when), iid))
    return out


def close_commands(keys: Keys, iid: str, closed_at: float) -> list[Command]:
    """An incident was closed (recorded at wall-clock ``closed_at``): leaves ``open``, joins ``closed``.

    Retention counts from when Tocsin recorded the close, not from the event's
    own time: a replay of old events or a source with a wrong clock must not
    make a fresh incident due at once.
    """
    return [
        ("ZREM", keys.incident_index("open"), iid),
        ("ZADD", keys.incident_index("closed"), "NX", _score(closed_at), iid),
    ]


def ack_commands(keys: Keys, iid: str, start_time: float) -> list[Command]:
    """An incident was acknowledged (its index score is its start time)."""
    return [("ZADD", keys.incident_index("acked"), _score(start_time), iid)]


def remove_commands(keys: Keys, iid: str, source: str, tags: Iterable[str]) -> list[Command]:
    """Every index entry of a deleted incident."""
    out: list[Command] = [("ZREM", keys.incident_ids(), iid)]
    out += [("ZREM", keys.incident_index(name), iid) for name in ("open", "acked", "closed")]
    out.append(("ZREM", keys.incident_by_source(source), iid))
    out += [("ZREM", keys.incident_by_tag(tag), iid) for tag in sorted(set(tags))]
    return out


def queue(pipe: redis.client.Pipeline, commands: Sequence[Command]) -> None:
    """Queue index commands on a pipeline (inside the caller's MULTI)."""
    for cmd in commands:
        pipe.execute_command(*cmd)


# --------------------------------------------------------------------------- reading


def pick(r: redis.Redis, keys: Keys, candidates: Sequence[str]) -> str:
    """The candidate index with the fewest members (ZCARD is O(1)); the first one on ties.

    Until :func:`build` has indexed the incidents that predate the indexes,
    only ``incident::ids`` (which always had them all) is complete: use it.
    """
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.incident_index_version())
    for key in candidates:
        pipe.zcard(key)
    version, *sizes = pipe.execute()
    if version != INDEX_VERSION or not candidates:
        return keys.incident_ids()
    return min(zip(sizes, range(len(candidates)), candidates, strict=True))[2]


def newest_first(
    r: redis.Redis, key: str, at_most: float | None = None, first: int = SCAN_BATCH
) -> Iterator[list[tuple[str, float]]]:
    """Batches of ``(id, start)`` from index ``key``, newest start first, from ``at_most`` down.

    The first batch has ``first`` ids (a page's worth), later ones double up
    to :data:`SCAN_BATCH`: a page whose filters are all covered by the index
    reads no more than it shows.  Incidents with equal start times are never
    split between batches (see :func:`_batches`).
    """
    top = "+inf" if at_most is None else _score(at_most)
    yield from _batches(
        lambda offset, num: r.zrevrangebyscore(
            key, top, "-inf", start=offset, num=num, withscores=True
        ),
        lambda score: r.zrangebyscore(key, score, score, withscores=True),
        first,
    )


def oldest_first(
    r: redis.Redis, key: str, at_least: float, first: int = SCAN_BATCH
) -> Iterator[list[tuple[str, float]]]:
    """Batches of ``(id, start)`` from index ``key``, oldest start first, from ``at_least`` up."""
    bottom = _score(at_least)
    yield from _batches(
        lambda offset, num: r.zrangebyscore(
            key, bottom, "+inf", start=offset, num=num, withscores=True
        ),
        lambda score: r.zrangebyscore(key, score, score, withscores=True),
        first,
    )


def _batches(
    fetch: Callable[[int, int], list[tuple[str, float]]],
    fetch_equal: Callable[[str], list[tuple[str, float]]],
    first: int,
) -> Iterator[list[tuple[str, float]]]:
    """Batches in index order; a full batch is extended by every member sharing its last score.

    Redis orders equal scores by member *string* ("10" before "9"), callers by
    (start, pk): keeping a group of equal start times in one batch lets them
    sort it, so a page boundary inside the group neither skips nor repeats.
    """
    offset, num = 0, max(1, first)
    while True:
        rows = [(str(m), float(s)) for m, s in fetch(offset, num)]
        if not rows:
            return
        full = len(rows) == num
        if full:
            last = rows[-1][1]
            group = [(str(m), float(s)) for m, s in fetch_equal(_score(last))]
            rows = [row for row in rows if row[1] != last] + group
        yield rows
        if not full:
            return
        # Members before ``offset`` and the whole tie group are behind us now.
        offset += len(rows)
        num = min(max(num * 2, 1), max(SCAN_BATCH, first))


# --------------------------------------------------------------------------- migration


def from_attrs(attrs: Mapping[str, str]) -> IndexedIncident | None:
    """The index fields of an incident hash (the processor's and the Argus API's)."""
    try:
        return from_hash(IndexedIncident, attrs)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


# The hash fields the indexes depend on (HMGET reads only these).
_FIELDS = list(IndexedIncident.__struct_fields__)


def _merged(commands: Sequence[Command]) -> list[Command]:
    """ZADDs to one key merged into one command (order kept per key; ZREMs as they are)."""
    adds: dict[tuple[str, ...], list[str]] = {}
    rest: list[Command] = []
    for cmd in commands:
        if cmd[0] == "ZADD":
            head = cmd[:-2]  # ("ZADD", key) or ("ZADD", key, "NX")
            adds.setdefault(head, []).extend(cmd[-2:])
        else:
            rest.append(cmd)
    return [*rest, *((*head, *args) for head, args in adds.items())]


def build(r: redis.Redis, keys: Keys, batch: int = 1000) -> int:
    """Index every existing incident once per namespace (idempotent); returns how many.

    Runs at worker start.  ZADDs of an incident's current fields are safe to
    repeat and to race with live writers: a writer that closes an incident
    while this reads it may leave a stale ``open`` entry, which readers
    filter out and the sweeper removes with the incident.
    """
    if r.get(keys.incident_index_version()) == INDEX_VERSION:
        return 0
    done = 0
    cursor = 0
    while True:
        cursor, rows = r.zscan(keys.incident_ids(), cursor, count=batch)
        ids = [str(m) for m, _ in rows]
        if ids:
            pipe = r.pipeline(transaction=False)
            for iid in ids:
                pipe.hmget(keys.incident(iid), _FIELDS)
            found = [dict(zip(_FIELDS, v, strict=True)) for v in pipe.execute()]
            commands: list[Command] = []
            for attrs in found:
                inc = from_attrs({f: v for f, v in attrs.items() if v is not None})
                if inc is not None:
                    commands += write_commands(keys, inc, None)
                    done += 1
            pipe = r.pipeline(transaction=False)
            queue(pipe, _merged(commands))
            pipe.execute()
        if cursor == 0:
            break
    r.set(keys.incident_index_version(), INDEX_VERSION)
    if done:
        log.info("incident indexes built", extra={"incidents": done})
    return done


__all__ = [
    "INDEX_VERSION",
    "Command",
    "IndexedIncident",
    "ack_commands",
    "build",
    "close_commands",
    "from_attrs",
    "newest_first",
    "oldest_first",
    "pick",
    "queue",
    "remove_commands",
    "retired_at",
    "write_commands",
]
