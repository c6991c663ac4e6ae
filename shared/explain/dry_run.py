"""Dry run, read-only shell: load what :func:`shared.explain.simulate.simulate` needs.

- :func:`dry_run` loads the check with the processor's own loader, the
  configuration snapshot and the notifier state with the notifier's own reader,
  :func:`shared.notifier_state_store.read_notifier_state` (reads only: no incident id is reserved; the id the next episode would get
  is peeked), then calls :func:`~shared.explain.simulate.simulate`.
- :func:`who_now` routes a hypothetical problem of a check's current state
  (skipping the processor's delays): "who is on the hook for this check now?".

Nothing here writes to Redis.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from shared.check_load import load
from shared.directory import Directory
from shared.explain.simulate import DryRun, StateReader, route, simulate
from shared.keys import Keys, check_id
from shared.models import CheckEvent, Notification, severity_of
from shared.notifier_state_store import read_notifier_state
from shared.processing.effects import notification_id
from shared.routing.selection import compile_index


def dry_run(r: Any, keys: Keys, event: CheckEvent, history_max_age_s: int = 30 * 86400) -> DryRun:
    """Run :func:`simulate` on the current Redis state and configuration (reads only)."""
    cid = check_id(event.entity, event.check)
    loaded = load(r, keys, {cid: [event]}, {}, history_max_age_s)
    next_id = int(r.get(keys.incident_seq()) or 0) + 1
    index = compile_index(Directory(r, keys).snapshot())
    return simulate(loaded.views[cid], event, next_id, index, _reader(r, keys))


def who_now(
    r: Any, keys: Keys, entity: str, check: str, state: str, at: float | None = None
) -> DryRun:
    """Who a ``state`` problem of ``entity:check`` would reach at ``at`` (default now).

    For the dashboard: it skips the processor's delays and routes a problem
    notification directly, with the check's tags and the notifier's current
    intervals and rollups.
    """
    t = time.time() if at is None else at
    cid = check_id(entity, check)
    tags = tuple(sorted(r.smembers(keys.check_tags(cid))))
    n = Notification(
        id=notification_id(cid, f"who-now:{uuid.uuid4().hex}"),
        type="problem",
        check_id=cid,
        entity=entity,
        check=check,
        state=state,
        severity=severity_of(state),
        time=t,
        tags=tags,
    )
    index = compile_index(Directory(r, keys).snapshot())
    return route(index, _reader(r, keys), n)


def _reader(r: Any, keys: Keys) -> StateReader:
    """The notifier's own state reader (:mod:`shared.notifier_state_store`)."""
    return lambda q: read_notifier_state(r, keys, q)[0]
