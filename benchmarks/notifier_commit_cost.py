"""What the notifier's optimistic transaction costs per batch, and what a race costs.

Runs the notifier's batch handler directly (no broker) on batches of problem
notifications for distinct checks, routed to 20 contacts (half with a rollup
threshold), against the local Redis, and prints one JSON line:

- ``watched_ms``: milliseconds per batch as the worker runs it (WATCH, read,
  decide, MULTI);
- ``unwatched_ms``: the same with the WATCH left out (what one notifier
  alone could afford; unsafe with replicas), so the difference is its cost;
- ``two_replicas``: two threads, each its own handler, on interleaved
  batches of the same storm: batches per second together and the conflicts
  (batches decided again).

    python -m benchmarks.notifier_commit_cost --batches 20 --batch-size 100
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from shared.amqp import Names
from shared.config import Settings
from shared.consumer import Message
from shared.directory import Directory
from shared.keys import Keys
from shared.models import (
    ENCODER,
    Contact,
    Medium,
    Notification,
    NotificationRef,
    Rule,
    SeverityRoute,
)
from shared.notifier.expander import NotifierMetrics, make_handler
from shared.notifier.store import NotifierStore
from shared.records import to_hash
from shared.store import connect_redis


def _configure(directory: Directory) -> None:
    for i in range(20):
        cid = f"c{i}"
        directory.put_contact(Contact(id=cid, name=cid))
        directory.put_medium(
            Medium(
                id=f"{cid}-m",
                contact_id=cid,
                type="webhook",
                address=f"http://x/{cid}",
                interval=600,
                rollup_threshold=5 if i % 2 else None,
            )
        )
        route = SeverityRoute(media=("webhook",))
        directory.put_rule(Rule(id=f"r{i}", contact_id=cid, critical=route))


def _batches(settings: Settings, count: int, size: int) -> list[list[Message]]:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    pipe = r.pipeline(transaction=False)
    out: list[list[Message]] = []
    for b in range(count):
        batch = []
        for i in range(size):
            nid = f"{uuid.uuid4().hex}"
            n = Notification(
                id=nid,
                type="problem",
                check_id=f"k{b}-{i}",
                entity="e",
                check=f"k{b}-{i}",
                state="critical",
                severity="critical",
                time=1_790_000_000.0 + b,
            )
            pipe.hset(keys.notification(nid), mapping=to_hash(n))
            body = ENCODER.encode(NotificationRef(nid))
            batch.append(Message(body=body, delivery_tag=i, queue="q", routing_key="q"))
        out.append(batch)
    pipe.execute()
    return out


def _handler(settings: Settings, registry: CollectorRegistry) -> Callable[[Any], Any]:
    r, keys = connect_redis(settings), Keys(settings.namespace)
    store = NotifierStore(r, keys, settings.notification_ttl_s, explain_max_records=0)
    return make_handler(
        store, Directory(r, keys), Names(settings.namespace), NotifierMetrics(registry)
    )


def _timed(handle: Callable[[Any], Any], batches: Sequence[list[Message]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        handle(batch)
    return (time.perf_counter() - started) * 1000 / len(batches)


def _settings() -> Settings:
    env = {k: v for k, v in os.environ.items() if k.startswith("TOCSIN_")}
    env["TOCSIN_NAMESPACE"] = "nc" + uuid.uuid4().hex[:10]
    return Settings.from_env(env)


def measure(count: int, size: int) -> dict[str, Any]:
    from tests.conftest import cleanup_namespace

    result: dict[str, Any] = {"batches": count, "batch_size": size}
    for label, watch in (("watched_ms", True), ("unwatched_ms", False)):
        settings = _settings()
        try:
            _configure(Directory(connect_redis(settings), Keys(settings.namespace)))
            batches = _batches(settings, count, size)
            original = NotifierStore.watch
            if not watch:
                NotifierStore.watch = lambda *_a, **_k: None  # type: ignore[method-assign]
            try:
                result[label] = round(_timed(_handler(settings, CollectorRegistry()), batches), 1)
            finally:
                NotifierStore.watch = original  # type: ignore[method-assign]
        finally:
            cleanup_namespace(settings)
    settings = _settings()
    try:
        _configure(Directory(connect_redis(settings), Keys(settings.namespace)))
        batches = _batches(settings, count, size)
        registries = [CollectorRegistry(), CollectorRegistry()]
        handlers = [_handler(settings, reg) for reg in registries]
        threads = [
            threading.Thread(target=_timed, args=(handlers[i], batches[i::2])) for i in range(2)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        conflicts = sum(
            reg.get_sample_value("tocsin_notifier_commit_conflicts_total") or 0.0
            for reg in registries
        )
        result["two_replicas"] = {
            "batches_per_s": round(count / wall, 1),
            "conflicts": int(conflicts),
        }
    finally:
        cleanup_namespace(settings)
    result["load_average"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(measure(args.batches, args.batch_size)))


if __name__ == "__main__":
    main()
