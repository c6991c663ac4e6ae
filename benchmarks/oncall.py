"""On call at scale: 1,000 schedules, 10,000 pending escalations (docs/oncall.md#scale).

``python -m benchmarks.oncall [--schedules 1000] [--escalations 10000] [--rounds 5]``
against the Redis of ``TOCSIN_REDIS_URL``, in a fresh namespace deleted
afterwards, with no broker (the scheduler's publisher is a counting stub,
so its figures are the scheduler's own work plus Redis).  It prints one JSON
object with:

- ``oncall_now_cold_ms``: "who is on call now" over all schedules, pure
  (``on_call`` per schedule, decoded schedules in memory), with the hand-off
  cache emptied first (a process's first query);
- ``oncall_now_ms``: the same again, hand-offs memoised (every later query);
- ``oncall_load_and_compute_ms``: the same including ``HGETALL`` and decoding
  from Redis every time;
- ``oncall_cached_ms``: what ``GET /oncall`` does before encoding its answer:
  one ``GET`` of the version, schedules decoded once per version;
- ``memory_bytes``: ``MEMORY USAGE`` of the schedules hash, the due set and
  (extrapolated from a sample of 200) the escalation hashes;
- ``idle_tick_cpu_ms``: scheduler CPU per tick with every escalation pending
  but none due (the steady state);
- ``fire_all_cpu_s`` / ``fire_all_wall_s`` / ``fire_per_step_us``: CPU and wall
  time for one scheduler to claim and fire every escalation at once (the
  worst case: they all fall due in the same second).

Schedules are random but seeded: 1-3 layers of 2-8 members, daily, weekly
or 12-hour shifts, a third of the layers restricted to weekdays 08-17, a
quarter of the schedules with five overrides; the timezones vary.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from services.scheduler.worker import Scheduler, SchedulerMetrics
from shared.checks import CheckRecord
from shared.config import Settings
from shared.escalation import Escalation, Policy, Step, Target
from shared.escalation_store import EscalationStore
from shared.keys import Keys
from shared.models import Notification, TimeRecurrence
from shared.oncall import Layer, Override, Schedule, _handoff_epoch, on_call
from shared.oncall_store import OncallStore, ScheduleCache
from shared.records import to_hash
from shared.store import connect_redis, delete_namespace

ZONES = ("Europe/Oslo", "UTC", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
OFFICE = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="17:00")


def make_schedules(n: int, now: float, rnd: random.Random) -> list[Schedule]:
    out = []
    for i in range(n):
        layers = []
        for _ in range(rnd.randint(1, 3)):
            layers.append(
                Layer(
                    members=tuple(f"c{rnd.randrange(2000)}" for _ in range(rnd.randint(2, 8))),
                    shift_hours=rnd.choice((24, 168, 12)),
                    handoff=f"2026-{rnd.randint(1, 11):02d}-{rnd.randint(1, 28):02d}T09:00",
                    restrictions=(OFFICE,) if rnd.random() < 0.33 else (),
                )
            )
        overrides: tuple[Override, ...] = ()
        if rnd.random() < 0.25:
            overrides = tuple(
                Override(
                    id=f"o{i}-{k}",
                    contact_id=f"c{rnd.randrange(2000)}",
                    start=now + rnd.uniform(-5, 5) * 86400,
                    end=now + rnd.uniform(5, 10) * 86400,
                    created=k,
                )
                for k in range(5)
            )
        out.append(
            Schedule(
                id=f"s{i}",
                name=f"schedule {i}",
                timezone=rnd.choice(ZONES),
                layers=tuple(layers),
                overrides=overrides,
            )
        )
    return out


class CountingSender:
    """Stands in for the AMQP publisher: counts what would be published."""

    def __init__(self, settings: Settings) -> None:
        from shared.amqp import Names

        self.names = Names(settings.namespace)
        self.sent = 0

    def send(self, bodies: list[bytes], **_: Any) -> list[str]:
        self.sent += len(bodies)
        return []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=1000)
    ap.add_argument("--escalations", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    base = Settings.from_env()
    settings = msgspec.structs.replace(base, namespace="bench-oncall-" + uuid.uuid4().hex[:8])
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    rnd = random.Random(24)
    now = time.time()
    result: dict[str, Any] = {"schedules": args.schedules, "escalations": args.escalations}
    try:
        schedules = make_schedules(args.schedules, now, rnd)
        store = OncallStore(r, keys)
        pipe = r.pipeline(transaction=False)
        enc = msgspec.json.Encoder()
        for s in schedules:
            pipe.hset(keys.schedules(), s.id, enc.encode(s))
        pipe.execute()

        cold, pure, loaded = [], [], []
        for _ in range(args.rounds):
            _handoff_epoch.cache_clear()  # a fresh process: every hand-off computed
            t0 = time.perf_counter()
            found = [on_call(s, now) for s in schedules]
            cold.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            found = [on_call(s, now) for s in schedules]
            pure.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            found = [on_call(s, now) for s in store.schedules().values()]
            loaded.append((time.perf_counter() - t0) * 1000)
        result["oncall_now_cold_ms"] = [round(x, 1) for x in cold]
        result["oncall_now_ms"] = [round(x, 1) for x in pure]
        result["oncall_load_and_compute_ms"] = [round(x, 1) for x in loaded]
        cache, cached = ScheduleCache(), []
        cache.get(store)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            found = [on_call(s, now) for s in cache.get(store).values()]
            cached.append((time.perf_counter() - t0) * 1000)
        result["oncall_cached_ms"] = [round(x, 1) for x in cached]
        result["nobody_on_call"] = sum(1 for f in found if f is None)

        policy = Policy(
            id="pol",
            name="bench",
            steps=(
                Step(targets=(Target(schedule="s0"),), wait_s=300),
                Step(targets=(Target(schedule="s1"), Target(contact="lead")), wait_s=600),
            ),
        )
        r.hset(keys.policies(), "pol", enc.encode(policy))
        esc_store = EscalationStore(r, keys)
        far = now + 3600
        for start in range(0, args.escalations, 1000):
            pipe = r.pipeline(transaction=False)
            for i in range(start, min(start + 1000, args.escalations)):
                cid, nid = f"chk{i}", f"n{i}"
                pipe.hset(
                    keys.check(cid),
                    mapping=to_hash(
                        CheckRecord(
                            entity_name=f"host{i}",
                            name="http",
                            state="critical",
                            episode_id=f"ep{i}",
                        )
                    ),
                )
                n = Notification(
                    id=nid,
                    type="problem",
                    check_id=cid,
                    entity=f"host{i}",
                    check="http",
                    state="critical",
                    severity="critical",
                    time=now,
                    episode_id=f"ep{i}",
                )
                pipe.hset(keys.notification(nid), mapping=to_hash(n))
                esc = Escalation(
                    id=f"e{i}",
                    policy_id="pol",
                    notification_id=nid,
                    check_id=cid,
                    episode_id=f"ep{i}",
                    started=now,
                )
                esc_store.start(pipe, esc, far)
            pipe.execute()

        sample = [keys.escalation(f"e{i}") for i in range(min(200, args.escalations))]
        per_esc = statistics.mean(int(r.memory_usage(k) or 0) for k in sample)
        result["memory_bytes"] = {
            "schedules_hash": int(r.memory_usage(keys.schedules()) or 0),
            "due_set": int(r.memory_usage(keys.escalation_due()) or 0),
            "escalation_hashes": int(per_esc * args.escalations),
            "per_escalation": int(per_esc),
        }

        sender = CountingSender(settings)
        sched = Scheduler(settings, r, sender, SchedulerMetrics(CollectorRegistry()))  # type: ignore[arg-type]
        idle = []
        for _ in range(args.rounds * 10):
            c0 = time.process_time()
            sched.tick(time.time())
            idle.append((time.process_time() - c0) * 1000)
        result["idle_tick_cpu_ms"] = {
            "median": round(statistics.median(idle), 3),
            "max": round(max(idle), 3),
        }

        due_now = {f"e{i}": now for i in range(args.escalations)}
        for start in range(0, args.escalations, 5000):
            chunk = dict(list(due_now.items())[start : start + 5000])
            r.zadd(keys.escalation_due(), chunk)
        c0, w0 = time.process_time(), time.perf_counter()
        fired = 0
        while fired < args.escalations:
            got = sched.tick(time.time())
            if got == 0:
                break
            fired += got
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        result["fired"] = fired
        result["pages"] = sender.sent
        result["fire_all_cpu_s"] = round(cpu, 2)
        result["fire_all_wall_s"] = round(wall, 2)
        result["fire_per_step_us"] = round(cpu / max(1, fired) * 1e6, 1)
    finally:
        delete_namespace(r, settings.namespace)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
