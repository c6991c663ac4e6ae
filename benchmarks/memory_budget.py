"""Memory budget: measured Redis bytes per check, per incident, per notification, per delivery.

``python -m benchmarks.memory_budget [--checks 2000] [--runs 3]`` drives the
processor's real batch handler (in process, no broker) in a fresh namespace
of the configured Redis, in three phases over ``--checks`` checks:

1. ``ok`` once per check: what a known, quiet check costs;
2. ``critical`` (``initial_failure_delay`` 0): one open incident and one
   problem notification per check, one more state record;
3. ``ok`` again: the incident closes, one recovery notification.

After each phase it sums ``MEMORY USAGE`` of the namespace's keys by kind of
key (benchmarks/observe.py), so other users of a shared Redis do not count.
The notifier's and the gateway's per-notification records (the ``notified``
marker, the ``delivered`` marker, one delivery-log entry) are written with
the shapes those workers use, and measured the same way.  Prints one JSON
object per run on stderr and the medians (with min/max) as one JSON object
on the last line of stdout; docs/scaling.md "Memory budget" turns them into
the formula.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import statistics
import sys
import time
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from benchmarks.observe import namespace_memory
from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names, partition_key, partition_of
from shared.broker import Message
from shared.config import Settings
from shared.keys import Keys, check_id
from shared.models import ENCODER, CheckEvent
from shared.store import connect_redis, delete_namespace

_ids = itertools.count()


def _events(checks: int, state: str, t: float) -> list[CheckEvent]:
    return [
        CheckEvent(
            id=f"m{next(_ids)}",
            entity=f"budget-host-{i // 10:04d}",
            check=f"svc-{i % 10}",
            type="service",
            state=state,
            time=t,
            received=time.time(),
            summary=f"{state}: a typical one-line summary of {i}",
            tags=("role=web", "team=ops"),
            initial_failure_delay=0,
        )
        for i in range(checks)
    ]


def _apply(settings: Settings, handler: Any, evs: list[CheckEvent]) -> int:
    """Run events through the processor handler as partition messages; notifications made."""
    by_part: dict[int, list[CheckEvent]] = {}
    for e in evs:
        by_part.setdefault(partition_of(e.entity, e.check, settings.partitions), []).append(e)
    names = Names(settings.namespace)
    made = 0
    for tag, (k, part) in enumerate(sorted(by_part.items()), start=1):
        for start in range(0, len(part), 500):
            msg = Message(
                body=ENCODER.encode(part[start : start + 500]),
                delivery_tag=tag,
                queue=names.processor(k),
                routing_key=partition_key(k),
            )
            made += len(handler([msg]).outputs)
    return made


def _bytes(settings: Settings) -> dict[str, int]:
    mem = namespace_memory(connect_redis(settings), settings.namespace)
    kinds: dict[str, int] = mem["by_kind"]
    kinds["_total"] = mem["total"]
    return kinds


def _sum(kinds: dict[str, int], *prefixes: str) -> int:
    return sum(v for k, v in kinds.items() if k != "_total" and k.startswith(prefixes))


def one_run(base: Settings, checks: int) -> dict[str, float]:
    settings = msgspec.structs.replace(base, namespace="budget" + secrets.token_hex(4))
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    handler = make_handler(
        r, Names(settings.namespace), keys, settings, ProcessorMetrics(CollectorRegistry())
    )
    try:
        t = time.time() - 3600
        _apply(settings, handler, _events(checks, "ok", t))
        quiet = _bytes(settings)
        problems = _apply(settings, handler, _events(checks, "critical", t + 60))
        failing = _bytes(settings)
        recoveries = _apply(settings, handler, _events(checks, "ok", t + 120))
        closed = _bytes(settings)
        # The notifier's and the gateway's records per notification / delivery.
        pipe = r.pipeline(transaction=False)
        for _ in range(checks):
            pipe.set(keys.notified(secrets.token_hex(12)), "1", ex=settings.notification_ttl_s)
            did = secrets.token_hex(12)
            pipe.set(keys.delivered(did), int(time.time()), nx=True, ex=86400)
        pipe.execute()
        markers = _bytes(settings)
        pipe = r.pipeline(transaction=False)
        for e in _events(checks, "ok", t):
            pipe.llen(keys.check_explain(check_id(e.entity, e.check)))
        explain_records = sum(pipe.execute())
        notifications = _sum(closed, "notification:")
        check_keys = _sum(closed, "check:", "check_state:")
        return {
            "bytes_per_quiet_check": round(quiet["_total"] / checks, 1),
            # Failing adds the incident, a notification and a state record.
            "bytes_per_failing_check_delta": round((failing["_total"] - quiet["_total"]) / checks),
            "bytes_per_open_incident": round(_sum(failing, "incident:") / checks, 1),
            "bytes_per_incident_index_entries": round(_sum(failing, "incident::") / checks, 1),
            "bytes_per_closed_incident": round(
                (_sum(closed, "incident:") + _sum(closed, "incident::")) / checks, 1
            ),
            "bytes_per_notification": round(notifications / (problems + recoveries), 1),
            "bytes_per_marker_pair": round((_sum(markers, "notified:", "delivered:")) / checks, 1),
            "bytes_per_state_record": round(
                (_sum(closed, "check_state:") - _sum(quiet, "check_state:")) / (2 * checks), 1
            ),
            "bytes_per_check_keys_after_3_events": round(check_keys / checks, 1),
            "bytes_per_explain_record": round(
                _sum(closed, "check:{id}:explain") / max(1, explain_records), 1
            ),
            "explain_records_per_check": round(explain_records / checks, 2),
            "notifications": problems + recoveries,
        }
    finally:
        delete_namespace(r, settings.namespace)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory_budget", description=__doc__)
    p.add_argument("--checks", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    base = Settings.from_env()
    runs = []
    for n in range(args.runs):
        result = one_run(base, args.checks)
        print(json.dumps({"run": n + 1, **result}), file=sys.stderr, flush=True)
        runs.append(result)
    summary = {
        key: {
            "median": statistics.median(r[key] for r in runs),
            "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs),
        }
        for key in runs[0]
    }
    print(json.dumps({"checks": args.checks, "runs": args.runs, **summary}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
