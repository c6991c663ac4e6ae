"""``benchmarks.stage_cost`` runs each stage on a tiny workload and reports consistent counts.

It checks the report's shape and what must hold whatever the box does:
every page delivered, the namespace gone afterwards, and the Redis round
trips each stage makes per page (the figure docs/benchmarks.md compares).
Never CPU or time targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_stage_cost_reports_every_stage_and_cleans_up() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(
        {"TOCSIN_REDIS_URL": REDIS_URL, "TOCSIN_AMQP_URL": AMQP_URL, "TOCSIN_PARTITIONS": "2"}
    )
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.stage_cost", "--pages", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["pages"] == 20 and report["delivered"] == 20
    stages = report["stages"]
    assert set(stages) == {"processor", "notifier", "gateway:webhook"}
    for stage in stages.values():
        assert stage["messages"] == 20
        assert stage["cpu_ms_per_message"] > 0 and stage["wall_ms_per_message"] > 0
    # A lone page: load, reserve its incident id, write; read, WATCH, read state, MULTI;
    # read the lane and take a token, record (more only if a batch is retried).
    assert stages["processor"]["redis_round_trips_per_message"] == pytest.approx(3, abs=0.5)
    assert stages["notifier"]["redis_round_trips_per_message"] == pytest.approx(4, abs=0.5)
    assert stages["gateway:webhook"]["redis_round_trips_per_message"] == pytest.approx(2, abs=0.5)
    assert not redis.Redis.from_url(REDIS_URL).keys(f"{report['namespace']}*")
