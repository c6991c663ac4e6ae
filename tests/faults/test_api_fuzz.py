"""Schemathesis against the API's own OpenAPI document: no request makes it answer 5xx.

Plus the API half of the nasty corpus: oversized, invalid UTF-8, NaN, deep
nesting and huge integers are refused with 4xx and a JSON reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from shared.config import Settings
from tests.conftest import cleanup_namespace
from tests.faults.conftest import fault_env, free_port, make_settings, wait_until

schemathesis = pytest.importorskip("schemathesis")

pytestmark = [pytest.mark.integration, pytest.mark.faults]

TOKEN = "fuzz-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every operation of the schema gets its own examples. The suite's run is derandomized
# (the same requests each run, so a failure reproduces) with a few per operation;
# TOCSIN_FUZZ_EXAMPLES=N asks for N per operation, drawn at random: a deeper run by hand
# (docs/testing.md).
DEEP_EXAMPLES = os.environ.get("TOCSIN_FUZZ_EXAMPLES")
EXAMPLES_PER_OPERATION = int(DEEP_EXAMPLES or 4)


@pytest.fixture(scope="module")  # one API process for the module: each start costs seconds
def api(services_up: None) -> Iterator[Settings]:
    s = make_settings(TOCSIN_API_LISTEN=f"127.0.0.1:{free_port()}")
    env = fault_env(s, TOCSIN_API_TOKEN=TOKEN, TOCSIN_API_LISTEN=s.api_listen)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    # One client for the polls: httpx.get builds a client, and its TLS context, per call,
    # which took CPU from the starting API every 0.1 s.
    poller = httpx.Client(timeout=2)

    def up() -> bool:
        try:
            return poller.get(f"{s.api_url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        with poller:
            assert wait_until(up, 30), "API did not start"
        yield s
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        cleanup_namespace(s)


# A few hundred requests (four per operation); with twelve per operation it took 30 s on
# a quiet box and passed the suite's 120 s hang limit when other work loaded the two
# cores (seen at load 14). A deeper run gets time in proportion.
@pytest.mark.timeout(max(300, 75 * EXAMPLES_PER_OPERATION))
def test_no_generated_request_gets_a_server_error(api: Settings) -> None:
    schema = schemathesis.openapi.from_url(f"{api.api_url}/schema/openapi.json", headers=AUTH)
    failures: list[str] = []
    calls = 0
    called: set[str] = set()
    operations: set[str] = set()
    for result in schema.get_all_operations():
        op = result.ok()
        operations.add(op.label)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=DEEP_EXAMPLES is None,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            response = case.call(base_url=api.api_url, headers=AUTH, timeout=15)
            calls += 1
            called.add(case.operation.label)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        run()
    print(f"schemathesis: {calls} requests, {len(operations)} operations")
    assert calls > 50
    assert called == operations, sorted(operations - called)  # every operation was requested
    assert not failures, "\n".join(failures[:20])


NASTY_HTTP = {
    "11-MB body": b'{"entity":"w","check":"c","state":"ok","summary":"' + b"x" * (11 << 20) + b'"}',
    "invalid UTF-8": b'{"entity":"w\xff","check":"c","state":"ok"}',
    "NaN time": b'{"entity":"w","check":"c","state":"ok","time":NaN}',
    "huge integer": b'{"entity":"w","check":"c","state":"ok","time":1' + b"0" * 400 + b"}",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "control chars": b'{"entity":"w\\u0000\\u001b","check":"c","state":"ok"}',
    "not JSON": b"\x00\x01nope",
}


@pytest.mark.parametrize("case", list(NASTY_HTTP))
def test_nasty_event_bodies_are_refused_with_a_reason(api: Settings, case: str) -> None:
    r = httpx.post(
        f"{api.api_url}/events",
        content=NASTY_HTTP[case],
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.json().get("error"), r.text[:300]
