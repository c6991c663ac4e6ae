"""The processor's retention hook: runs the sweeper (shared/sweeper.py) from the idle loop.

The processor is always deployed, owns the incidents and already wakes up
once a second for its outbox sweep, so the retention sweep rides along
instead of being one more process to deploy.  A lease lets one replica sweep
per ``TOCSIN_RETAIN_SWEEP_INTERVAL_S``; a failed sweep is logged, counted and
retried next interval (it never stops the processor).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from prometheus_client import CollectorRegistry, Counter

from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.keys import Keys
from shared.sweeper import Sweeper, Windows

log = logging.getLogger(__name__)


def make_retention_hook(
    r: redis.Redis, keys: Keys, settings: Settings, registry: CollectorRegistry
) -> Callable[[BatchConsumer], None]:
    """An idle hook that sweeps expired incidents and acknowledgements at most once per interval."""
    swept = Counter(
        "tocsin_retention_swept",
        "Records deleted by the retention sweeper, per kind",
        ["kind"],
        registry=registry,
    )
    failures = Counter(
        "tocsin_retention_sweep_failures", "Retention sweeps that failed", registry=registry
    )
    sweeper = Sweeper(
        r,
        keys,
        Windows(
            incidents_s=settings.retain_incidents_s,
            maintenances_s=settings.retain_maintenances_s,
            processed_s=settings.retain_processed_s,
            partitions=settings.partitions,
        ),
        settings.retain_sweep_interval_s,
    )
    next_run = 0.0

    def hook(_consumer: BatchConsumer) -> None:
        nonlocal next_run
        now = time.time()
        if now < next_run:
            return
        next_run = now + settings.retain_sweep_interval_s
        try:
            out = sweeper.run(now)
        except redis.exceptions.RedisError as exc:
            failures.inc()
            log.warning("retention sweep failed", extra={"error": repr(exc)})
            return
        swept.labels("incident").inc(out.incidents)
        swept.labels("maintenance").inc(out.maintenances)
        swept.labels("processed_event_id").inc(out.processed)

    return hook
