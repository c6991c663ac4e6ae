"""Keys of checks and what the processor writes about them: entities, checks, history, maintenances, notifications, incidents.

The keys of one check carry its id as a Redis Cluster hash tag (``{id}``), so
a check's records live on one shard and its update is one pipeline.
"""

from __future__ import annotations


class CheckKeys:
    """The check part of :class:`shared.keys.Keys` (one namespace prefix, ``p``)."""

    __slots__ = ()
    p: str

    # -- entities
    def entity_ids(self) -> str:
        return f"{self.p}entity::ids"

    def entity_by_name(self) -> str:
        return f"{self.p}entity::by_name"

    def entity(self, eid: str) -> str:
        return f"{self.p}entity:{eid}:attrs"

    def entity_check_ids(self, eid: str) -> str:
        return f"{self.p}entity:{eid}:attrs:check_ids"

    # -- checks
    def check_ids(self) -> str:
        return f"{self.p}check::ids"

    def check_by_name(self) -> str:
        """HASH ``entity:check`` -> check id."""
        return f"{self.p}check::by_name"

    def check_by_entity_name(self, entity: str) -> str:
        return f"{self.p}check::by_entity_name:{entity}"

    def check_by_enabled(self, enabled: bool) -> str:
        return f"{self.p}check::by_enabled:{'true' if enabled else 'false'}"

    def check_by_state(self, state: str) -> str:
        return f"{self.p}check::by_state:{state}"

    def check(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:attrs"

    def check_tags(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:attrs:tags"

    def check_explain(self, cid: str) -> str:
        """LIST of the check's decision records (shared/explain/records.py), newest first, capped, expiring."""
        return f"{self.p}check:{{{cid}}}:explain"

    def check_state_ids(self, cid: str) -> str:
        """ZSET of state record ids scored by timestamp."""
        return f"{self.p}check:{{{cid}}}:state_ids"

    def scheduled_by_start(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:scheduled_maintenances_by_start_ids"

    def scheduled_by_end(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:scheduled_maintenances_by_end_ids"

    def unscheduled_by_start(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:unscheduled_maintenances_by_start_ids"

    def unscheduled_by_end(self, cid: str) -> str:
        return f"{self.p}check:{{{cid}}}:unscheduled_maintenances_by_end_ids"

    # -- check states (history records)
    def check_state(self, sid: str) -> str:
        cid, _, seq = sid.partition(".")
        return f"{self.p}check_state:{{{cid}}}.{seq}:attrs"

    # -- maintenance records
    def scheduled_maintenance_ids(self) -> str:
        return f"{self.p}scheduled_maintenance::ids"

    def scheduled_maintenance(self, mid: str) -> str:
        return f"{self.p}scheduled_maintenance:{mid}:attrs"

    def unscheduled_maintenance_ids(self) -> str:
        return f"{self.p}unscheduled_maintenance::ids"

    def unscheduled_maintenance(self, mid: str) -> str:
        return f"{self.p}unscheduled_maintenance:{mid}:attrs"

    # -- notifications
    def notification(self, nid: str) -> str:
        return f"{self.p}notification:{nid}:attrs"

    def notification_log(self) -> str:
        """Capped LIST of recent notification ids, newest first."""
        return f"{self.p}notification::log"

    def outbox(self, partition: int) -> str:
        """HASH notification id -> created time: persisted but not yet published."""
        return f"{self.p}outbox:p{partition}"

    def processed_events(self, partition: int) -> str:
        """ZSET of event ids a processor partition applied (redelivery dedup), capped."""
        return f"{self.p}processed:p{partition}"

    # -- incidents (Argus model)
    def incident_ids(self) -> str:
        return f"{self.p}incident::ids"

    def incident_seq(self) -> str:
        return f"{self.p}incident::seq"

    def incident(self, iid: str) -> str:
        return f"{self.p}incident:{iid}:attrs"

    def incident_events(self, iid: str) -> str:
        return f"{self.p}incident:{iid}:events"

    def incident_by_open(self, is_open: bool) -> str:
        return f"{self.p}incident::by_open:{'true' if is_open else 'false'}"

    # -- incident listing indexes and retention (shared/incident_index.py, shared/sweeper.py)
    def incident_index(self, name: str) -> str:
        """ZSET incident id -> start time: ``open``, ``acked`` (ever acknowledged).

        ``closed`` is the exception: scored by end time, for the retention sweeper.
        """
        return f"{self.p}incident::idx:{name}"

    def incident_by_source(self, source: str) -> str:
        """ZSET incident id -> start time, per incident ``source`` (``tocsin`` or a source pk)."""
        return f"{self.p}incident::idx:source:{source}"

    def incident_by_tag(self, tag: str) -> str:
        """ZSET incident id -> start time, per ``key=value`` tag."""
        return f"{self.p}incident::idx:tag:{tag}"

    def incident_index_version(self) -> str:
        """STRING: the index layout built for the existing incidents (the start-up migration)."""
        return f"{self.p}incident::idx_version"

    def sweep_lease(self) -> str:
        """STRING with a TTL: the replica that runs the retention sweep this interval."""
        return f"{self.p}sweep::lease"

    def sweep_cursor(self, kind: str) -> str:
        """STRING: where the retention sweep's SSCAN over ``kind`` ids goes on next run."""
        return f"{self.p}sweep::cursor:{kind}"

    # -- Argus compatibility (services/api/argus/)
    def incident_by_source_id(self) -> str:
        """HASH ``<source pk>:<source_incident_id>`` -> incident pk (unique per source)."""
        return f"{self.p}incident::by_source_id"

    def incident_acks(self, iid: str) -> str:
        """HASH ACK event pk -> expiration (JSON number or null)."""
        return f"{self.p}incident:{iid}:acks"
