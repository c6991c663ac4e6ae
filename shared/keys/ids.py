"""Ids derived from names: a check's from ``entity:check``, a history record's from its check.

Derived, not looked up, so the processor never needs a lookup round trip.
"""

from __future__ import annotations

import hashlib


def check_id(entity: str, check: str) -> str:
    """Stable id of the check ``entity:check`` (20 hex characters), unique per (entity, check).

    ``entity:check`` alone is ambiguous when the check name holds a ``:``:
    entity ``web`` / check ``prod:disk`` and entity ``web:prod`` / check
    ``disk`` hashed alike, so an ``ok`` for one resolved the other (and an
    Argus source could reach checks of entities named ``<source>:...``).
    Entities often hold a ``:`` (Alertmanager's ``host:9100``), check names
    rarely, so a check name without ``:`` keeps the historical form: reading
    up to the *last* ``:`` splits it unambiguously, and existing ids need no
    migration.  A check name with ``:`` hashes ``entity NUL check`` instead;
    names never contain NUL (the models refuse control characters), so the
    two forms never meet.
    """
    raw = f"{entity}\0{check}" if ":" in check else f"{entity}:{check}"
    return hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


def entity_id(entity: str) -> str:
    """Stable id of an entity by name."""
    return hashlib.blake2b(entity.encode(), digest_size=10).hexdigest()


def state_id(check: str, seq: int) -> str:
    """Id of the ``seq``-th state record of check id ``check``."""
    return f"{check}.{seq}"
