"""Decision records: why a page went out or did not, per check (docs/explain.md).

The processor and the notifier already return a reason with every verdict
(``shared/processing/filters.py``, ``shared/routing/selection.py`` and
``core.py``).  This module only *packs* those verdicts into compact msgspec
records, so an explanation is, by construction, what the pipeline decided:

- :class:`EventRecord` — one per event: the filter that decided, its outcome
  and reason (with the numbers), the reasons of the filters that passed before
  it, and the notification it produced, if any.
- :class:`NotificationRecord` — one per notification: per contact and medium,
  ``deliver`` or ``suppress`` with the reason code and text.

Records live on a capped, expiring Redis LIST per check
(``Keys.check_explain``), newest first, written inside the workers' existing
MULTI (:func:`queue_records`).  Gateway outcomes are not duplicated here: the
timeline joins the delivery log (``shared/delivery_log.py``) by check.

Reading the records back (for ``GET /explain`` and ``tocsin explain``) is not
the workers' business: it lives in ``services/explain/records.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec

from shared.keys import Keys
from shared.models import CheckEvent, Contact, Medium, Notification
from shared.store import is_cluster


class Route(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One contact/medium verdict of the notifier: ``deliver`` or ``suppress`` (``code`` = reason)."""

    verdict: str
    code: str
    text: str
    contact_id: str | None = None
    contact: str | None = None
    medium_id: str | None = None
    medium_type: str | None = None


class EventRecord(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag="event", tag_field="kind"
):
    """The processor's decision on one event: which filter decided, how, and why."""

    time: float
    event_id: str
    type: str
    state: str
    filter: str
    outcome: str
    reason: str
    summary: str = ""
    passed: tuple[str, ...] = ()  # reasons of the filters that let the event through first
    notification_id: str | None = None
    notification_type: str | None = None


class NotificationRecord(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag="notification",
    tag_field="kind",
):
    """The notifier's decisions on one notification, per contact and medium."""

    time: float
    notification_id: str
    type: str
    state: str
    severity: str
    routes: tuple[Route, ...] = ()
    deliveries: int = 0


class EscalationRecord(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag="escalation",
    tag_field="kind",
):
    """One step of an escalation (docs/oncall.md): who was on call, who was paged, or why
    it stopped.  The pages' own routing verdicts follow as notification records."""

    time: float
    escalation_id: str
    policy_id: str
    step: int
    outcome: str  # paged, nobody, stopped, finished
    paged: tuple[str, ...] = ()  # contact names (ids when unknown)
    why: tuple[str, ...] = ()
    on_call: dict[str, str | None] = msgspec.field(default_factory=dict)
    reason: str = ""


Record = EventRecord | NotificationRecord | EscalationRecord

ENCODER = msgspec.json.Encoder()


class FilterVerdict(Protocol):
    """A processor filter's verdict (``shared.processing.effects.FilterVerdict``)."""

    @property
    def filter(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str: ...


class RouteVerdict(Protocol):
    """A notifier verdict (``shared.routing.selection.RouteVerdict``)."""

    @property
    def verdict(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def contact_id(self) -> str | None: ...
    @property
    def medium_id(self) -> str | None: ...


# --------------------------------------------------------------------------- building (pure)


def event_record(
    event: CheckEvent, decisions: Sequence[FilterVerdict], notification: Notification | None
) -> EventRecord:
    """Pack the filter chain's verdicts on ``event`` (the last one decided)."""
    if decisions:
        last = decisions[-1]
        name, outcome, reason = last.filter, last.outcome, last.reason
        passed = tuple(d.reason for d in decisions[:-1])
    else:  # a chain always yields a verdict; keep the record well-formed anyway
        name, outcome, reason, passed = "none", "block", "no filter ran", ()
    if notification is not None and outcome == "pass":
        outcome = "notify"  # a chain that runs out notifies (filters.py)
    return EventRecord(
        time=event.time,
        event_id=event.id,
        type=event.type,
        state=event.state,
        summary=event.summary[:200],
        filter=name,
        outcome=outcome,
        reason=reason,
        passed=passed,
        notification_id=notification.id if notification is not None else None,
        notification_type=notification.type if notification is not None else None,
    )


def routine(previous_state: str | None, state: str, verdict: FilterVerdict) -> bool:
    """An ``ok`` event on a check that was ok (or is new), with no recovery pending: nothing to decide.

    The processor does not store these: a healthy check reports ok every
    minute, and 200 of those would push the last failure's story out of the
    capped list (and cost a write per event for no answer).  A check first seen
    ok is not recorded either, so a quiet check costs no record list in Redis
    (docs/explain.md, "What is kept").
    """
    return (
        previous_state in (None, "ok")
        and state == "ok"
        and verdict.filter == "ok"
        and verdict.outcome == "block"
    )


def route_of(
    d: RouteVerdict, contacts: Mapping[str, Contact], media: Mapping[str, Medium]
) -> Route:
    """One notifier verdict with the contact's name and the medium's type for people."""
    contact = contacts.get(d.contact_id) if d.contact_id else None
    medium = media.get(d.medium_id) if d.medium_id else None
    return Route(
        verdict=d.verdict,
        code=d.code,
        text=d.text,
        contact_id=d.contact_id,
        contact=contact.name if contact is not None else None,
        medium_id=d.medium_id,
        medium_type=medium.type if medium is not None else None,
    )


def notification_record(
    n: Notification,
    decisions: Sequence[RouteVerdict],
    deliveries: int,
    contacts: Mapping[str, Contact],
    media: Mapping[str, Medium],
) -> NotificationRecord:
    """Pack the notifier's verdicts on ``n`` (from ``expand``'s ``Expansion.decisions``)."""
    return NotificationRecord(
        time=n.time,
        notification_id=n.id,
        type=n.type,
        state=n.state,
        severity=n.severity,
        routes=tuple(route_of(d, contacts, media) for d in decisions),
        deliveries=deliveries,
    )


# --------------------------------------------------------------------------- storage


# One EVAL per batch pushes, caps and expires every check's records: a few µs per check,
# a third of LPUSH + LTRIM + EXPIRE per check (measured by python -m benchmarks.explain_cost;
# docs/explain.md).  ARGV: ttl, cap, then per key a count and its records.
_PUSH = """
local ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  for j = 1, n do
    redis.call('LPUSH', key, ARGV[at + j])
  end
  at = at + n + 1
  redis.call('LTRIM', key, 0, cap - 1)
  redis.call('EXPIRE', key, ttl)
  -- Age, too: records more than ttl older than the newest (event time) leave from the tail,
  -- a few per call, so a busy check keeps ttl seconds of records, not always ``cap``.
  local ok, newest = pcall(cjson.decode, redis.call('LINDEX', key, 0))
  if ok and type(newest) == 'table' and tonumber(newest['time']) then
    local cutoff = tonumber(newest['time']) - ttl
    for _ = 1, 8 do
      local tail = redis.call('LINDEX', key, -1)
      local good, rec = pcall(cjson.decode, tail)
      if not (good and type(rec) == 'table' and tonumber(rec['time'])
              and tonumber(rec['time']) < cutoff) then
        break
      end
      redis.call('RPOP', key)
    end
  end
end
return #KEYS
"""
_CHUNK = 1000


def queue_records(
    pipe: Any,
    keys: Keys,
    records: Mapping[str, Sequence[bytes]],
    max_records: int,
    ttl_s: int,
) -> None:
    """Queue the push of encoded records (oldest first) per check id on a (MULTI) pipeline.

    Each check's list keeps its newest ``max_records``, drops records more than
    ``ttl_s`` older (event time) than its newest, and expires ``ttl_s`` after
    its last write (``TOCSIN_RETAIN_EXPLAIN_S``, docs/scaling.md "Retention").  The commands run inside the caller's transaction.
    """
    if max_records <= 0:
        return
    items = [(cid, encoded[-max_records:]) for cid, encoded in records.items() if encoded]
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        argv: list[Any] = [ttl_s, max_records]
        for _, encoded in chunk:
            argv.append(len(encoded))
            argv.extend(encoded)
        names = [keys.check_explain(cid) for cid, _ in chunk]
        pipe.eval(_PUSH, len(names), *names, *argv)


def write_records(
    r: Any,
    keys: Keys,
    records: Mapping[str, Sequence[bytes]],
    max_records: int,
    ttl_s: int,
) -> None:
    """Push decision records outside any transaction: one script call per hash slot.

    For writers whose transaction cannot hold them on Redis Cluster (each
    check's list is in its own check's slot): they run after the decisions
    they describe were committed, so a record never tells of a decision that
    lost a race, and a crash in between loses only records (docs/scaling.md).
    On a single Redis it is one MULTI, as :func:`queue_records` in the caller's
    transaction would be.
    """
    if max_records <= 0 or not records:
        return
    if not is_cluster(r):
        pipe = r.pipeline(transaction=True)
        queue_records(pipe, keys, records, max_records, ttl_s)
        pipe.execute()
        return
    by_slot: dict[int, dict[str, Sequence[bytes]]] = {}
    for cid, encoded in records.items():
        by_slot.setdefault(r.keyslot(keys.check_explain(cid)), {})[cid] = encoded
    pipe = r.pipeline(transaction=False)
    # The cluster pipeline has no ``eval``; the command itself routes by its first key.
    evals = _Evals(pipe)
    for part in by_slot.values():
        queue_records(evals, keys, part, max_records, ttl_s)
    pipe.execute()


class _Evals:
    """``eval`` on a cluster pipeline, for :func:`queue_records`."""

    __slots__ = ("pipe",)

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def eval(self, *args: Any) -> None:
        self.pipe.execute_command("EVAL", *args)
