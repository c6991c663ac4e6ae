"""Keys of notifications on their way out: notifier dedup and state, lanes, rate limits, gateways, the Flapjack drain.

What the notifier, the gateways and the ingest drain keep while a page is in
flight: idempotency markers, blocks and rollups, lanes and buckets.
"""

from __future__ import annotations


class DeliveryKeys:
    """The delivery part of :class:`shared.keys.Keys` (one namespace prefix, ``p``)."""

    __slots__ = ()
    p: str
    rp: str

    def contact_block_ids(self, cid: str) -> str:
        """ZSET of notification block ids scored by ``expire_at``."""
        return f"{self.rp}contact:{cid}:notification_block_ids"

    def notification_block(self, bid: str) -> str:
        return f"{self.rp}notification_block:{bid}:attrs"

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

        In the routing slot, so the notifier's ZADD is part of its batch's
        MULTI on Redis Cluster too (a lane's ``{...}`` after the routing tag is
        the older name's and no longer chooses the slot).
        """
        return f"{self.rp}lane:{{{lane_id}}}"

    def delivery_seq(self) -> str:
        """STRING: the last delivery ``seq`` handed out (microseconds, strictly increasing)."""
        return f"{self.p}delivery::seq"

    def rate_bucket(self, medium_type: str, address_id: str) -> str:
        """HASH ``{tokens, updated}``: the token bucket of one medium address, shared by gateways."""
        return f"{self.p}rate:{medium_type}:{{{address_id}}}"

    # -- notifier dedup
    def notified(self, notification_id: str) -> str:
        """Marker set once the notifier expanded a notification (idempotency)."""
        return f"{self.rp}notified:{notification_id}"

    def notified_latest(self, check_id: str) -> str:
        """STRING: time of the check's latest notification the notifier expanded.

        Several notifiers may take a check's notifications out of order; an
        older one arriving after it is superseded (docs/scaling.md).
        """
        return f"{self.rp}notified:{{{check_id}}}:latest"

    def notifier_outbox(self) -> str:
        """HASH delivery id -> encoded outbox entry: written with the effects, cleared after publish."""
        return f"{self.rp}notifier::outbox"

    def medium_rollup(self, mid: str) -> str:
        """HASH ``{active}``: whether the medium is currently in rollup mode."""
        return f"{self.rp}medium:{mid}:rollup"

    def medium_rollup_checks(self, mid: str) -> str:
        """HASH check id -> encoded RollupItem: the checks alerting on the medium."""
        return f"{self.rp}medium:{mid}:rollup_checks"

    def episode_media(self, episode_id: str) -> str:
        """SET of medium ids that got a problem in the failure episode (recoveries go there)."""
        return f"{self.rp}episode:{episode_id}:medium_ids"

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
