"""A pure in-memory driver of the processor core for unit and property tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import msgspec

from shared.checks import Maintenance
from shared.keys import check_id
from shared.models import CheckEvent, Notification
from shared.processing.effects import CheckView, Result
from shared.processing.state_machine import apply_event

ENTITY, CHECK = "web1", "http"
CID = check_id(ENTITY, CHECK)

_ids = itertools.count()


def ev(t: float, state: str, **kw: Any) -> CheckEvent:
    """A check event for web1:http at time ``t``."""
    kind = "action" if state in ("acknowledgement", "test_notifications") else "service"
    return CheckEvent(
        id=kw.pop("id", f"e{next(_ids)}"),
        entity=ENTITY,
        check=CHECK,
        type=kind,
        state=state,
        time=float(t),
        received=float(t),
        **kw,
    )


def maint(start: float, end: float, mid: str = "m1") -> Maintenance:
    return Maintenance(id=mid, check_id=CID, start_time=start, end_time=end, summary="planned")


DISABLE = "disable"


def run(
    events: Iterable[CheckEvent | str], scheduled: Iterable[Maintenance] = ()
) -> tuple[list[Notification], list[Result]]:
    """Feed events (or ``DISABLE`` markers) through the core; notifications and results."""
    view = CheckView(id=CID, scheduled=tuple(scheduled))
    seq = itertools.count(1)
    notes: list[Notification] = []
    results: list[Result] = []
    for item in events:
        if item == DISABLE:
            assert view.record is not None
            view = msgspec.structs.replace(
                view, record=msgspec.structs.replace(view.record, enabled=False)
            )
            continue
        assert isinstance(item, CheckEvent)
        res = apply_event(view, item, next(seq))
        view = res.view
        results.append(res)
        if res.notification is not None:
            notes.append(res.notification)
    return notes, results


def summary(notes: Iterable[Notification]) -> list[tuple[str, str, float]]:
    return [(n.type, n.state, n.time) for n in notes]
