"""Keys of the configuration: contacts, media, rules, Argus sources, timeslots and profiles, event sources.

Every contact, medium or rule change bumps :meth:`ConfigKeys.config_version`;
notifiers reload their routing index when it moves.
"""

from __future__ import annotations


class ConfigKeys:
    """The config part of :class:`shared.keys.Keys` (one namespace prefix, ``p``)."""

    __slots__ = ()
    p: str
    rp: str

    # -- contacts, media, rules
    def contact_ids(self) -> str:
        return f"{self.rp}contact::ids"

    def contact(self, cid: str) -> str:
        return f"{self.rp}contact:{cid}:attrs"

    def contact_medium_ids(self, cid: str) -> str:
        return f"{self.rp}contact:{cid}:medium_ids"

    def contact_rule_ids(self, cid: str) -> str:
        return f"{self.rp}contact:{cid}:notification_rule_ids"

    def medium_ids(self) -> str:
        return f"{self.rp}medium::ids"

    def medium_by_type(self, mtype: str) -> str:
        return f"{self.rp}medium::by_type:{mtype}"

    def medium(self, mid: str) -> str:
        return f"{self.rp}medium:{mid}:attrs"

    def rule_ids(self) -> str:
        return f"{self.rp}notification_rule::ids"

    def rule(self, rid: str) -> str:
        return f"{self.rp}notification_rule:{rid}:attrs"

    def config_version(self) -> str:
        """Counter bumped on every contact/medium/rule change; notifiers reload on change."""
        return f"{self.rp}config::version"

    def argus_source_seq(self) -> str:
        return f"{self.rp}argus_source::seq"

    def argus_sources(self) -> str:
        """HASH source pk -> source system record (JSON, token only hashed)."""
        return f"{self.rp}argus_source::by_pk"

    def argus_source_by_name(self) -> str:
        """HASH ``<type>/<name>`` -> source pk ((name, type) unique)."""
        return f"{self.rp}argus_source::by_name"

    def argus_source_by_token(self) -> str:
        """HASH sha256(token) -> source pk."""
        return f"{self.rp}argus_source::by_token"

    def timeslot_seq(self) -> str:
        return f"{self.rp}timeslot::seq"

    def timeslots(self) -> str:
        """HASH timeslot pk -> timeslot (JSON, with the ids of rules that use it)."""
        return f"{self.rp}timeslot::by_pk"

    def argus_records(self, kind: str) -> str:
        """HASH pk -> JSON record of Argus ``kind`` (profile, filter, destination, maintenance)."""
        return f"{self.rp}argus_{kind}::by_pk"

    def argus_record_seq(self, kind: str) -> str:
        return f"{self.rp}argus_{kind}::seq"

    # -- event sources (shared/formats/generic.py, services/ingest/redis_list.py)
    def sources(self) -> str:
        """HASH source name -> declared generic source (JSON: mapping, token hash)."""
        return f"{self.p}source::by_name"
