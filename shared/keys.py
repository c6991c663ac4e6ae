"""Redis key schema (the seed's Flapjack v2 layout) under the namespace prefix.

Every key Tocsin touches is built here, never inline.  Keys that belong to one
check carry the check id in a Redis Cluster hash tag (``{id}``) so all of a
check's records live on one shard and a check's update is one pipeline.

Ids: a check's id is derived from ``entity:check`` (see :func:`check_id`) so
the processor never needs a lookup round trip; a check state's id is
``<check id>.<sequence>``.
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


class Keys:
    """Builds the namespaced key names; one instance per namespace."""

    __slots__ = ("p",)

    def __init__(self, namespace: str) -> None:
        self.p = f"{namespace}:"

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
        """LIST of the check's decision records (shared/explain.py), newest first, capped, expiring."""
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

    # -- contacts, media, rules
    def contact_ids(self) -> str:
        return f"{self.p}contact::ids"

    def contact(self, cid: str) -> str:
        return f"{self.p}contact:{cid}:attrs"

    def contact_medium_ids(self, cid: str) -> str:
        return f"{self.p}contact:{cid}:medium_ids"

    def contact_rule_ids(self, cid: str) -> str:
        return f"{self.p}contact:{cid}:notification_rule_ids"

    def contact_block_ids(self, cid: str) -> str:
        """ZSET of notification block ids scored by ``expire_at``."""
        return f"{self.p}contact:{cid}:notification_block_ids"

    def medium_ids(self) -> str:
        return f"{self.p}medium::ids"

    def medium_by_type(self, mtype: str) -> str:
        return f"{self.p}medium::by_type:{mtype}"

    def medium(self, mid: str) -> str:
        return f"{self.p}medium:{mid}:attrs"

    def rule_ids(self) -> str:
        return f"{self.p}notification_rule::ids"

    def rule(self, rid: str) -> str:
        return f"{self.p}notification_rule:{rid}:attrs"

    def notification_block(self, bid: str) -> str:
        return f"{self.p}notification_block:{bid}:attrs"

    def config_version(self) -> str:
        """Counter bumped on every contact/medium/rule change; notifiers reload on change."""
        return f"{self.p}config::version"

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

    def argus_source_seq(self) -> str:
        return f"{self.p}argus_source::seq"

    def argus_sources(self) -> str:
        """HASH source pk -> source system record (JSON, token only hashed)."""
        return f"{self.p}argus_source::by_pk"

    def argus_source_by_name(self) -> str:
        """HASH ``<type>/<name>`` -> source pk ((name, type) unique)."""
        return f"{self.p}argus_source::by_name"

    def argus_source_by_token(self) -> str:
        """HASH sha256(token) -> source pk."""
        return f"{self.p}argus_source::by_token"

    def timeslot_seq(self) -> str:
        return f"{self.p}timeslot::seq"

    def timeslots(self) -> str:
        """HASH timeslot pk -> timeslot (JSON, with the ids of rules that use it)."""
        return f"{self.p}timeslot::by_pk"

    def argus_records(self, kind: str) -> str:
        """HASH pk -> JSON record of Argus ``kind`` (profile, filter, destination, maintenance)."""
        return f"{self.p}argus_{kind}::by_pk"

    def argus_record_seq(self, kind: str) -> str:
        return f"{self.p}argus_{kind}::seq"

    # -- gateways
    def media_installed(self) -> str:
        """HASH medium type -> time a gateway last registered it."""
        return f"{self.p}media::installed"

    def delivered(self, delivery_id: str) -> str:
        """Marker set (``SET NX`` with TTL) once a delivery succeeded."""
        return f"{self.p}delivered:{delivery_id}"

    def delivery_log(self) -> str:
        """Capped LIST of delivery attempt outcomes (JSON), newest first."""
        return f"{self.p}delivery::log"

    # -- delivery order and shared rate limits (shared/lanes.py, services/gateways/ratelimit.py)
    def lane(self, lane_id: str) -> str:
        """ZSET delivery id -> seq: deliveries of one (medium address, check) not yet finished.

        The hash tag is the lane, so the notifier's ZADD and the gateway's
        gate read and ZREM each touch one slot.
        """
        return f"{self.p}lane:{{{lane_id}}}"

    def delivery_seq(self) -> str:
        """STRING: the last delivery ``seq`` handed out (microseconds, strictly increasing)."""
        return f"{self.p}delivery::seq"

    def rate_bucket(self, medium_type: str, address_id: str) -> str:
        """HASH ``{tokens, updated}``: the token bucket of one medium address, shared by gateways."""
        return f"{self.p}rate:{medium_type}:{{{address_id}}}"

    # -- notifier dedup
    def notified(self, notification_id: str) -> str:
        """Marker set once the notifier expanded a notification (idempotency)."""
        return f"{self.p}notified:{notification_id}"

    def notified_latest(self, check_id: str) -> str:
        """STRING: time of the check's latest notification the notifier expanded.

        Several notifiers may take a check's notifications out of order; an
        older one arriving after it is superseded (docs/scaling.md).
        """
        return f"{self.p}notified:{{{check_id}}}:latest"

    def auth_failures(self, client: str) -> str:
        """ZSET of recent wrong-token times of one client address, shared by API processes."""
        return f"{self.p}auth:failures:{{{client}}}"

    def notifier_outbox(self) -> str:
        """HASH delivery id -> encoded outbox entry: written with the effects, cleared after publish."""
        return f"{self.p}notifier::outbox"

    def medium_rollup(self, mid: str) -> str:
        """HASH ``{active}``: whether the medium is currently in rollup mode."""
        return f"{self.p}medium:{mid}:rollup"

    def medium_rollup_checks(self, mid: str) -> str:
        """HASH check id -> encoded RollupItem: the checks alerting on the medium."""
        return f"{self.p}medium:{mid}:rollup_checks"

    def episode_media(self, episode_id: str) -> str:
        """SET of medium ids that got a problem in the failure episode (recoveries go there)."""
        return f"{self.p}episode:{episode_id}:medium_ids"

    # -- event sources (shared/formats/generic.py, services/ingest/redis_list.py)
    def sources(self) -> str:
        """HASH source name -> declared generic source (JSON: mapping, token hash)."""
        return f"{self.p}source::by_name"

    def drain_processing(self, list_name: str) -> str:
        """LIST of items taken from a Flapjack list but not yet published.

        The hash tag is the list's own name, so it shares the list's cluster slot
        and one script can move items between them.
        """
        return f"{self.p}drain:{{{list_name}}}:processing"

    def drain_batch(self, list_name: str) -> str:
        """STRING ``<batch id> <epoch>`` naming the batch in the processing list."""
        return f"{self.p}drain:{{{list_name}}}:batch"

    def drain_lock(self, list_name: str) -> str:
        """STRING lease: which ingest process drains the list (one at a time)."""
        return f"{self.p}drain:{{{list_name}}}:lock"

    def source_checks(self, source: str) -> str:
        """SET of the check ids an event source has named (shared/check_quota.py)."""
        return f"{self.p}source:{{{source}}}:checks"

    # -- dashboard (services/api/ui/session.py)
    def ui_session(self, ref: str) -> str:
        """STRING with a TTL: a live dashboard login session (``ref`` is a hash of its nonce)."""
        return f"{self.p}ui:session:{ref}"

    # -- on call (shared/oncall_store.py, shared/escalation_store.py); one hash tag, so the
    # scheduler's scripts may touch the due set and an escalation in one call on a cluster
    def schedules(self) -> str:
        """HASH schedule id -> JSON schedule with its overrides (ended ones pruned on write)."""
        return f"{self.p}oncall:{{oncall}}:schedules"

    def policies(self) -> str:
        """HASH policy id -> JSON escalation policy."""
        return f"{self.p}oncall:{{oncall}}:policies"

    def oncall_version(self) -> str:
        """STRING counter bumped by every schedule or policy write (caches reload on change)."""
        return f"{self.p}oncall:{{oncall}}:version"

    def escalation_due(self) -> str:
        """ZSET escalation id -> when its next step is due (epoch); claimed by the scheduler."""
        return f"{self.p}oncall:{{oncall}}:due"

    def escalation(self, eid: str) -> str:
        """HASH ``{record, step}`` of one running escalation; expires after the last step."""
        return f"{self.p}oncall:{{oncall}}:escalation:{eid}"

    def escalation_timeline(self, eid: str) -> str:
        """LIST of JSON timeline entries (who was on call, who was paged, why it stopped)."""
        return f"{self.p}oncall:{{oncall}}:escalation:{eid}:timeline"

    def check_escalations(self, cid: str) -> str:
        """ZSET escalation ids of a check by start time, capped (explain reads it)."""
        return f"{self.p}oncall:{{oncall}}:check:{cid}:escalations"

    def scheduler_lease(self) -> str:
        """STRING with a PX expiry: which scheduler process may claim due steps."""
        return f"{self.p}oncall:{{oncall}}:lease"

    # -- acknowledging from the page (services/api/integrations/)
    def ack_once(self, episode: str, contact: str) -> str:
        """STRING with a TTL: this contact already acknowledged this episode from a page."""
        return f"{self.p}ack:once:{episode}:{contact}"

    def ack_seen(self, channel: str, digest: str) -> str:
        """STRING with a TTL: an inbound request already taken (replay guard)."""
        return f"{self.p}ack:seen:{channel}:{digest}"

    # -- people (shared/people.py, services/api/people_store.py)
    def users(self) -> str:
        """HASH user id -> User JSON."""
        return f"{self.p}users"

    def user_seq(self) -> str:
        """STRING counter of users' Argus pks."""
        return f"{self.p}users:seq"

    def user_by_name(self) -> str:
        """HASH username -> user id."""
        return f"{self.p}users:by_name"

    def user_by_sso(self) -> str:
        """HASH JSON ``[issuer, sub]`` of a single sign-on account -> user id."""
        return f"{self.p}users:by_sso"

    def api_tokens(self) -> str:
        """HASH token id -> ApiToken JSON (hashes only; revoked ones kept to say so)."""
        return f"{self.p}users:tokens"

    def api_token_by_hash(self) -> str:
        """HASH SHA-256 of a personal token -> token id."""
        return f"{self.p}users:tokens:by_hash"

    def api_token_last_used(self) -> str:
        """HASH token id -> epoch of its last use (apart, so a use never rewrites a revocation)."""
        return f"{self.p}users:tokens:last_used"

    def bootstrap_disabled(self) -> str:
        """STRING present while the break-glass TOCSIN_API_TOKEN is disabled."""
        return f"{self.p}auth:bootstrap_disabled"

    def audit(self) -> str:
        """STREAM of audit records, capped (services/api/audit.py)."""
        return f"{self.p}audit"

    def ui_user_sessions(self, owner: str) -> str:
        """SET of the session refs of one user (``owner`` = user id, or ``bootstrap``)."""
        return f"{self.p}ui:user_sessions:{owner}"

    # -- whole namespace
    def pattern(self) -> str:
        """Glob matching every key of the namespace (for cleanup in tests and tools)."""
        return f"{self.p}*"
