"""``tocsin check`` reports consumer lag of backlogged processor partitions."""

from __future__ import annotations

import time

import pytest

from services.cli.health import gather
from shared.amqp import Names
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.support import declare, publish

pytestmark = pytest.mark.integration


def test_a_backlogged_partition_shows_its_lag_and_an_idle_one_none(settings: Settings) -> None:
    declare(settings)
    names, keys = Names(settings.namespace), Keys(settings.namespace)
    r = connect_redis(settings)
    r.zadd(keys.processed_events(0), {"old-event": time.time() - 30})
    r.zadd(keys.processed_events(1), {"other": time.time() - 30})
    publish(settings, b"[]", routing_key="p0", exchange=names.checks)

    report = gather(settings)

    by_name = {q.name: q for q in report.queues}
    assert by_name[names.processor(0)].messages == 1
    lag = by_name[names.processor(0)].lag_s
    assert lag is not None and 29 <= lag < 60
    assert by_name[names.processor(1)].lag_s is None  # nothing waiting: no lag
