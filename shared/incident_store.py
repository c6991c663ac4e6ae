"""Incidents as the processor opened and closed them: list (newest first, filtered) and read one.

The processor writes incidents (``services/processor/store.py``), the Argus
API changes them (``services/api/argus/``); :class:`IncidentStore` reads them
for the API, the CLI and the dashboard, through the listing indexes of
``shared/incident_index.py``.
"""

from __future__ import annotations

import builtins

import redis

from shared import incident_index
from shared.checks import INCIDENT_EVENT_DECODER, Incident, IncidentEvent
from shared.keys import Keys
from shared.records import from_hash


class IncidentStore:
    """Read incidents and their event logs."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    def list_incidents(
        self,
        open: bool | None = None,
        level_lte: int | None = None,
        tag: str | None = None,
        offset: int = 0,
        limit: int = 100,
        acked: bool | None = None,
    ) -> builtins.list[Incident]:
        """Incidents newest first, filtered by open/acked/maximum level/tag (``key=value``).

        Walks the smallest fitting index (shared/incident_index.py) and stops
        once ``offset + limit`` incidents matched.
        """
        k = self.keys
        indexes = [k.incident_ids()]
        if open is True:
            indexes.append(k.incident_index("open"))
        if acked is True:
            indexes.append(k.incident_index("acked"))
        if tag is not None:
            indexes.append(k.incident_by_tag(tag))
        index = incident_index.pick(self.r, k, indexes)
        out: builtins.list[Incident] = []
        for batch in incident_index.newest_first(self.r, index, first=offset + limit):
            pipe = self.r.pipeline(transaction=False)
            for iid, _ in batch:
                pipe.hgetall(k.incident(iid))
            found = [from_hash(Incident, a) for a in pipe.execute() if a]
            for inc in sorted(found, key=lambda i: (i.start_time, i.id), reverse=True):
                if open is not None and inc.open != open:
                    continue
                if level_lte is not None and inc.level > level_lte:
                    continue
                if tag is not None and tag not in inc.tags:
                    continue
                if acked is not None and inc.acked != acked:
                    continue
                out.append(inc)
            if len(out) >= offset + limit:
                break
        return out[offset : offset + limit]

    def get_incident(self, iid: int | str) -> tuple[Incident, builtins.list[IncidentEvent]] | None:
        """An incident and its event log (oldest first), or None."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.incident(str(iid)))
        pipe.lrange(self.keys.incident_events(str(iid)), 0, -1)
        attrs, events = pipe.execute()
        if not attrs:
            return None
        return from_hash(Incident, attrs), [INCIDENT_EVENT_DECODER.decode(e) for e in events]
