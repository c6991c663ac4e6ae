"""Smoke test of the publish-mode benchmark (``python -m benchmarks.publish_modes``).

The figures are a benchmark's, in docs/benchmarks.md; here both publishers
run a few small batches so a change that breaks the harness fails the suite.
"""

from __future__ import annotations

import pika
import pytest

from benchmarks.publish_modes import measure
from shared.amqp import connect
from shared.config import Settings

pytestmark = pytest.mark.integration


def test_both_modes_publish_every_batch_and_the_queue_is_removed(settings: Settings) -> None:
    rows = measure(settings.amqp_url, rounds=1, sizes=[(1, 5), (20, 3)])
    assert [(r["mode"], r["batch"]) for r in rows] == [
        ("transaction", 1),
        ("confirms", 1),
        ("transaction", 20),
        ("confirms", 20),
    ]
    assert all(float(str(r["p99_ms"])) >= float(str(r["p50_ms"])) > 0 for r in rows)
    conn = connect(settings.amqp_url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            conn.channel().queue_declare(str(rows[0]["queue"]), passive=True)
    finally:
        conn.close()
