"""The memory benchmarks (budget, incident listing, soak) run end to end on tiny inputs.

They check the reports' shape and consistency, never the figures the docs
quote (those come from the full runs, docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update({"TOCSIN_REDIS_URL": REDIS_URL, "TOCSIN_AMQP_URL": AMQP_URL})
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_memory_budget() -> None:
    rc, out = run("benchmarks.memory_budget", "--checks", "40", "--runs", "1")
    assert rc == 0
    assert out["notifications"]["median"] == 80  # one problem and one recovery per check
    for key in ("bytes_per_quiet_check", "bytes_per_notification", "bytes_per_closed_incident"):
        assert out[key]["median"] > 0, key


def test_incident_listing() -> None:
    rc, out = run("benchmarks.incident_listing", "--sizes", "300,3000", "--repeat", "2")
    assert rc == 0
    assert [r["incidents"] for r in out["results"]] == [300, 3000]
    for result in out["results"]:
        assert result["first_page"]["median_ms"] > 0


def test_soak() -> None:
    seconds, rate = 4, 50
    rc, out = run(
        "benchmarks.soak",
        # 4 s of sending, four samples (the harness's shape, not a soak: benchmarks/soak.py
        # runs 20 min).
        *("--seconds", str(seconds), "--window", "2", "--sample", "1", "--rate", str(rate)),
        *("--checks", "100", "--retain", "10", "--sweep", "1"),
    )
    assert out["events_sent"] >= 0.9 * seconds * rate  # the sender kept its rate
    assert out["checks"]["all_delivered"], out
    assert out["received"] >= out["deliveries"] > 0
    assert rc == (0 if out["ok"] else 1)
    assert out["samples"] and set(out["samples"][-1]["rss_mb"]) == {
        "ingest",
        "processor",
        "notifier",
        "gateway:webhook",
        "api",
    }
