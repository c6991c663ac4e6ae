"""Schedules, overrides and escalation policies in Redis (load, validate, store; no decisions).

Each schedule is one JSON value in a hash (its overrides inside it), each
policy too: "who is on call" needs the whole schedule anyway, and a thousand
schedules load in one ``HGETALL``.  Every write bumps ``oncall::version`` so
readers (the scheduler, the API's "on call now") reload only on change.
Overrides that ended more than :data:`OVERRIDE_KEEP_S` ago are pruned on each
write, and a schedule holds at most :data:`MAX_OVERRIDES`.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import redis

from shared.directory import ValidationFailed
from shared.escalation import Policy, policy_error
from shared.keys import Keys
from shared.oncall import Override, Schedule, override_error, schedule_error

OVERRIDE_KEEP_S = 30 * 86400
MAX_OVERRIDES = 1000

_ENCODER = msgspec.json.Encoder()
_SCHEDULE = msgspec.json.Decoder(Schedule)
_POLICY = msgspec.json.Decoder(Policy)


def _fail(err: tuple[str, str] | None) -> None:
    if err is not None:
        raise ValidationFailed(*err)


class OncallStore:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.k = keys

    def version(self) -> int:
        return int(self.r.get(self.k.oncall_version()) or 0)

    # -- schedules
    def schedules(self) -> dict[str, Schedule]:
        return {
            sid: _SCHEDULE.decode(raw) for sid, raw in self.r.hgetall(self.k.schedules()).items()
        }

    def get_schedule(self, sid: str) -> Schedule | None:
        raw = self.r.hget(self.k.schedules(), sid)
        return _SCHEDULE.decode(raw) if raw else None

    def put_schedule(self, s: Schedule, contacts: Mapping[str, object] | None = None) -> Schedule:
        """Validate and store ``s`` (``contacts``: when given, members must be among them)."""
        _fail(schedule_error(s))
        if contacts is not None:
            for i, layer in enumerate(s.layers):
                for j, m in enumerate(layer.members):
                    if m not in contacts:
                        raise ValidationFailed(
                            f"contact {m!r} not found", f"layers[{i}].members[{j}]"
                        )
        self._write(self.k.schedules(), s.id, _ENCODER.encode(s))
        return s

    def delete_schedule(self, sid: str) -> bool:
        """Delete a schedule; refused while a policy names it (the policy would page nobody)."""
        users = [p.name for p in self.policies().values() if sid in _schedules_of(p)]
        if users:
            raise ValidationFailed(
                f"schedule is used by escalation policies: {', '.join(sorted(users))}", "id"
            )
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k.schedules(), sid)
        pipe.incr(self.k.oncall_version())
        return bool(pipe.execute()[0])

    def add_override(self, sid: str, o: Override, now: float) -> Schedule | None:
        """Add ``o`` to schedule ``sid`` (None: no such schedule); prunes old overrides."""
        _fail(override_error(o))
        s = self.get_schedule(sid)
        if s is None:
            return None
        kept = [x for x in s.overrides if x.end > now - OVERRIDE_KEEP_S]
        if len(kept) >= MAX_OVERRIDES:
            raise ValidationFailed(f"a schedule holds at most {MAX_OVERRIDES} overrides", "id")
        s = msgspec.structs.replace(s, overrides=(*kept, o))
        self._write(self.k.schedules(), sid, _ENCODER.encode(s))
        return s

    def delete_override(self, sid: str, oid: str) -> bool:
        s = self.get_schedule(sid)
        if s is None or all(o.id != oid for o in s.overrides):
            return False
        s = msgspec.structs.replace(s, overrides=tuple(o for o in s.overrides if o.id != oid))
        self._write(self.k.schedules(), sid, _ENCODER.encode(s))
        return True

    # -- policies
    def policies(self) -> dict[str, Policy]:
        return {pid: _POLICY.decode(raw) for pid, raw in self.r.hgetall(self.k.policies()).items()}

    def get_policy(self, pid: str) -> Policy | None:
        raw = self.r.hget(self.k.policies(), pid)
        return _POLICY.decode(raw) if raw else None

    def put_policy(self, p: Policy, contacts: Mapping[str, object]) -> Policy:
        _fail(policy_error(p, self.schedules(), contacts))
        self._write(self.k.policies(), p.id, _ENCODER.encode(p))
        return p

    def delete_policy(self, pid: str) -> bool:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k.policies(), pid)
        pipe.incr(self.k.oncall_version())
        return bool(pipe.execute()[0])

    def _write(self, key: str, field: str, value: bytes) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, field, value)
        pipe.incr(self.k.oncall_version())
        pipe.execute()


def _schedules_of(p: Policy) -> set[str]:
    return {t.schedule for step in p.steps for t in step.targets if t.schedule}


class ScheduleCache:
    """Decoded schedules, reloaded only when ``oncall::version`` moves (one ``GET`` per read).

    A write between reading the version and the hash is reloaded on the next
    read, as the version then differs again.  Shared by request threads: the
    swap of the (version, schedules) pair is one assignment.
    """

    def __init__(self) -> None:
        self._entry: tuple[int, dict[str, Schedule]] = (-1, {})

    def get(self, store: OncallStore) -> dict[str, Schedule]:
        version = store.version()
        cached_version, schedules = self._entry
        if version != cached_version:
            schedules = store.schedules()
            self._entry = (version, schedules)
        return schedules
