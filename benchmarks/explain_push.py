"""What pushing decision records costs Redis: microseconds of Redis time per push.

``python -m benchmarks.explain_push [--keys 5000] [--rounds 4] [--storage PATH]``
fills ``--keys`` record lists in a fresh namespace of the Redis at
``TOCSIN_REDIS_URL`` with 20 records each (640-byte notification records,
the size a webhook route's record has), then pushes one more record onto
every list per round through ``shared/explain/storage.queue_records``, one
``MULTI`` per round, as the workers do.  It reads the push script's Redis time
from ``INFO commandstats`` (``cmdstat_eval``, reset before the rounds), so the
figure is Redis's own CPU for the script, whatever else runs on the box,
provided nothing else runs ``EVAL`` on that Redis meanwhile.

``--storage PATH`` loads ``storage.py`` from another checkout, to compare two
trees in one sitting.  The namespace is deleted afterwards.  One JSON object
on the last line of stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import redis

from shared.config import Settings
from shared.explain import storage as this_storage
from shared.explain.records import ENCODER, NotificationRecord, Route
from shared.keys import Keys
from shared.store import connect_redis, delete_namespace

RECORDS_PER_LIST = 20
TTL_S = 7 * 86400
CAP = 200


def _record(t: float) -> bytes:
    route = Route(
        verdict="deliver",
        code="rule_matched",
        text="rule r1 matches: critical on webhook, interval 0 s, no time restriction",
        contact_id="c" * 16,
        contact="bench",
        medium_id="m" * 16,
        medium_type="webhook",
    )
    return ENCODER.encode(
        NotificationRecord(
            time=t,
            notification_id="n" * 32,
            type="problem",
            state="critical",
            severity="critical",
            routes=(route, route),
            deliveries=1,
        )
    )


def _load(path: Path | None) -> ModuleType:
    if path is None:
        return this_storage
    spec = importlib.util.spec_from_file_location("storage_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(
    r: redis.Redis, storage: ModuleType, keys_n: int, rounds: int
) -> dict[str, float | int | str]:
    """Redis's time per push of one record onto lists of ``RECORDS_PER_LIST``."""
    ns = f"pushbench{uuid.uuid4().hex[:8]}"
    keys = Keys(ns)
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(keys_n):
            old = [_record(1_000_000.0 + j) for j in range(RECORDS_PER_LIST)]
            pipe.lpush(keys.check_explain(f"c{i}"), *old)
        pipe.execute()
        r.config_resetstat()
        for n in range(rounds):
            pipe = r.pipeline(transaction=True)
            records = {f"c{i}": [_record(1_000_600.0 + n)] for i in range(keys_n)}
            storage.queue_records(pipe, keys, records, CAP, TTL_S)
            pipe.execute()
        stats = r.info("commandstats").get("cmdstat_eval", {})
    finally:
        delete_namespace(r, ns)
    pushes = keys_n * rounds
    return {
        "namespace": ns,
        "keys": keys_n,
        "rounds": rounds,
        "record_bytes": len(_record(1.0)),
        "eval_calls": int(stats.get("calls", 0)),
        "redis_us_per_push": round(float(stats.get("usec", 0)) / pushes, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=5000, help="record lists (checks)")
    p.add_argument("--rounds", type=int, default=4, help="pushes per list")
    p.add_argument("--storage", type=Path, help="storage.py of another checkout")
    args = p.parse_args(argv)
    r = connect_redis(Settings.from_env())
    result = measure(r, _load(args.storage), args.keys, args.rounds)
    result["storage"] = str(args.storage or Path(this_storage.__file__))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
