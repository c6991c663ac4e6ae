"""Audit records and the pure filter over them (the stream lives in services/api/audit.py).

Every change and operator action leaves one record: who (actor, their kind
and role), what (action, target, before/after for configuration), when, and
from where (the client address the rate limiter uses).  Records never hold a
secret: handlers pass the same masked views the API returns.
"""

from __future__ import annotations

from typing import Any

import msgspec


class AuditRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    time: float
    actor: str
    action: str
    target: str = ""
    actor_kind: str = ""
    role: str = ""
    method: str = ""
    route: str = ""
    status: int = 0
    client: str = ""
    before: Any = None
    after: Any = None
    detail: str = ""


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    actor: str = ""
    action: str = ""
    target: str = ""
    since: float = 0.0


def matches(record: AuditRecord, query: AuditQuery) -> bool:
    """Does ``record`` pass the filters?  ``action`` matches a prefix (``user.`` finds all)."""
    if query.actor and record.actor != query.actor:
        return False
    if query.action and not record.action.startswith(query.action):
        return False
    if query.target and record.target != query.target:
        return False
    return record.time >= query.since
