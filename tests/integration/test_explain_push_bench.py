"""Smoke test of the push-cost benchmark (``python -m benchmarks.explain_push``).

The figure (Redis time per push) is a benchmark's, in docs/benchmarks.md; here
the harness runs on a few lists so a change that breaks it fails the suite.
It resets Redis's command statistics, which no test reads.
"""

from __future__ import annotations

import pytest

from benchmarks.explain_push import measure
from shared.config import Settings
from shared.explain import storage
from shared.store import connect_redis

pytestmark = pytest.mark.integration


def test_the_benchmark_pushes_through_the_storage_module_and_cleans_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = connect_redis(settings)
    calls = []
    real = storage.queue_records

    def counting(*args: object, **kw: object) -> None:
        calls.append(1)
        real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(storage, "queue_records", counting)
    result = measure(r, storage, keys_n=20, rounds=2)
    assert len(calls) == 2
    assert result["eval_calls"] >= 2  # other tests may run scripts meanwhile
    assert result["redis_us_per_push"] > 0 and result["record_bytes"] > 500
    assert not list(r.scan_iter(f"{result['namespace']}*"))
