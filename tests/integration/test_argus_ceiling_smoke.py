"""The Argus client-ceiling benchmark's canned server satisfies the real argus-api-client.

If the client refused the canned incident or event, the benchmark would
measure errors, not the client's ceiling (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pyargus.client import Client
from pyargus.models import Incident

from benchmarks.argus_client_ceiling import DEFAULT_LOAD
from benchmarks.ports import free_port, wait_listening

pytestmark = pytest.mark.integration


@pytest.fixture
def canned() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.argus_client_ceiling", "--serve", str(port)]
    )
    try:
        assert wait_listening(port, 10), "canned server did not listen"
        yield f"http://127.0.0.1:{port}/api/v2/"
    finally:
        server.terminate()
        server.wait(10)


def test_the_real_client_creates_and_resolves_against_the_canned_server(canned: str) -> None:
    client = Client(canned, "x", timeout=5)
    for _ in range(3):  # keep-alive: several requests on one connection
        created = client.post_incident(
            Incident(source_incident_id="s1", description="d", level=2, stateful=True)
        )
        assert created.pk == 4242 and created.open and created.tags
        event = client.resolve_incident(created.pk, description="done")
        assert event.pk == 9191 and event.type == "END"


@pytest.mark.skipif(not DEFAULT_LOAD.exists(), reason="no shared load generator on this machine")
def test_the_benchmark_reports_the_client_and_server_cost() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.argus_client_ceiling", "-n", "40", "-k", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["create"]["ok"] == report["resolve"]["ok"] == 40
    assert report["create"]["errors"] == report["resolve"]["errors"] == 0
    assert report["client_cpu_ms_per_request"] > 0
    assert report["server_cpu_ms_per_request"] >= 0
    assert report["loadavg1_at_start"] >= 0
