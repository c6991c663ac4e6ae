"""Redis key schema (the seed's Flapjack v2 layout) under the namespace prefix.

Every key Tocsin touches is built here, never inline.  Keys that belong to one
check carry the check id in a Redis Cluster hash tag (``{id}``) so all of a
check's records live on one shard and a check's update is one pipeline.

Ids: a check's id is derived from ``entity:check`` (see :func:`check_id`) so
the processor never needs a lookup round trip; a check state's id is
``<check id>.<sequence>``.

The builders are grouped by what the keys hold, one module each:
:mod:`~shared.keys.check_keys`, :mod:`~shared.keys.config_keys`,
:mod:`~shared.keys.delivery_keys`, :mod:`~shared.keys.oncall_keys`,
:mod:`~shared.keys.access_keys`; :class:`Keys` is all of them for one
namespace, and :mod:`~shared.keys.ids` derives the ids.
"""

from __future__ import annotations

from shared.keys.access_keys import AccessKeys
from shared.keys.check_keys import CheckKeys
from shared.keys.config_keys import ConfigKeys
from shared.keys.delivery_keys import DeliveryKeys
from shared.keys.ids import check_id, entity_id, state_id
from shared.keys.oncall_keys import OnCallKeys

__all__ = ["PEOPLE_TAG", "ROUTING_TAG", "Keys", "check_id", "entity_id", "state_id"]

# Hash tag of the routing slot: configuration (contacts, media, rules, Argus profile
# records, ``config::version``) and the notifier's coordination state (markers, blocks,
# rollups, episode media, lanes, the outbox).  One slot so that on Redis Cluster a
# configuration write and its version bump are one MULTI, and a notifier batch's
# WATCH/MULTI over everything it read stays one transaction (docs/scaling.md).
ROUTING_TAG = "{routing}"
# Hash tag of the people slot: users, their tokens, dashboard sessions, the
# bootstrap switch and the audit stream, which the API changes together.
PEOPLE_TAG = "{people}"


class Keys(CheckKeys, ConfigKeys, DeliveryKeys, OnCallKeys, AccessKeys):
    """Builds the namespaced key names; one instance per namespace.

    ``p`` prefixes every key; ``rp`` (``<ns>:{routing}:``) and ``pp``
    (``<ns>:{people}:``) prefix the keys of the routing and people slots.
    Each of those is the older untagged name with the tag inserted after the
    namespace, so :func:`shared.store.migrate_routing_keys` moves an existing
    namespace by a rename.
    """

    __slots__ = ("p", "pp", "rp")

    def __init__(self, namespace: str) -> None:
        self.p = f"{namespace}:"
        self.rp = f"{namespace}:{ROUTING_TAG}:"
        self.pp = f"{namespace}:{PEOPLE_TAG}:"

    # -- whole namespace
    def pattern(self) -> str:
        """Glob matching every key of the namespace (for cleanup in tests and tools)."""
        return f"{self.p}*"
