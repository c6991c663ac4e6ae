"""Bad input is data, not a crash: fuzzed and nasty bodies for every source decoder and the API."""

from __future__ import annotations

import functools
import json
import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.formats import alertmanager, flapjack, generic
from shared.formats.bodies import Decoded

pytestmark = pytest.mark.faults

NOW = 1_700_000_000.0
Decoder = Callable[[bytes, float], Decoded]
DECODERS: dict[str, Decoder] = {
    "flapjack": lambda b, t: flapjack.decode_body(b, t, "m1"),
    "alertmanager": lambda b, t: alertmanager.decode_body(b, t, "m1"),
    "generic": lambda b, t: generic.decode_body(b, t, "m1"),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "entity",
                    "check",
                    "state",
                    "time",
                    "tags",
                    "alerts",
                    "labels",
                    "status",
                    "mapping",
                    "payload",
                    "summary",
                    "type",
                    "duration",
                    "startsAt",
                    "source",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


def _assert_well_formed(d: Decoded) -> None:
    assert isinstance(d, Decoded)
    for raw, reason in d.rejected:
        assert isinstance(raw, bytes) and isinstance(reason, str) and reason.strip()
    for ev in d.accepted:
        assert 1 <= len(ev.entity) <= 255 and 1 <= len(ev.check) <= 255
        assert not any(ord(c) < 32 for c in ev.entity + ev.check)


@pytest.mark.parametrize("name", list(DECODERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300))
def test_random_bytes_never_crash_a_decoder(name: str, body: bytes) -> None:
    _assert_well_formed(DECODERS[name](body, NOW))


@pytest.mark.parametrize("name", list(DECODERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values)
def test_random_json_never_crashes_a_decoder(name: str, doc: object) -> None:
    body = json.dumps(doc, allow_nan=True).encode()
    d = DECODERS[name](body, NOW)
    _assert_well_formed(d)
    if not isinstance(doc, list | dict):  # (an empty batch is valid and means nothing)
        assert d.rejected, "a scalar body must be rejected with a reason"


def _event(**kw: object) -> dict[str, object]:
    return {"entity": "web1", "check": "http", "state": "critical", **kw}


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Built when a test first asks (tens of MB, 0.6 CPU-s): not at collection, which every
# pytest process does for every module.
NASTY: dict[str, Callable[[], bytes]] = {
    "deep-nesting": lambda: _nest(100_000),
    "deep-object": lambda: b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "ten-megabytes": lambda: json.dumps(_event(summary="x" * 10_000_000)).encode(),
    "seventeen-megabytes": lambda: b'"' + b"x" * (17 * 1024 * 1024) + b'"',
    "invalid-utf8": lambda: b'{"entity": "web\xff\xfe1", "check": "http", "state": "ok"}',
    "nan": lambda: b'{"entity": "web1", "check": "http", "state": "ok", "time": NaN}',
    "infinity": lambda: b'{"entity": "web1", "check": "http", "state": "ok", "time": Infinity}',
    "huge-integer": lambda: json.dumps(_event(time=10**400)).encode(),
    "huge-duration": lambda: json.dumps(
        _event(state="acknowledgement", type="action", duration=10**30)
    ).encode(),
    "control-chars-in-name": lambda: json.dumps(_event(entity="web\x001\n\x1b[31m")).encode(),
    "empty-name": lambda: json.dumps(_event(check="")).encode(),
    "long-name": lambda: json.dumps(_event(check="c" * 10_000)).encode(),
    "100k+1-events": lambda: json.dumps([_event(check=f"c{i}") for i in range(100_001)]).encode(),
    "not-json": lambda: b"\x00\x01\x02 definitely not json",
    "empty": lambda: b"",
    "number": lambda: b"42",
}


@functools.cache
def _nasty(case: str) -> bytes:
    return NASTY[case]()


@pytest.mark.parametrize("name", list(DECODERS))
@pytest.mark.parametrize("case", list(NASTY))
def test_nasty_payloads_are_rejected_with_a_reason_in_bounded_memory_and_time(
    name: str, case: str
) -> None:
    body = _nasty(case)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        d = DECODERS[name](body, NOW)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    _assert_well_formed(d)
    assert not d.accepted, f"{case} accepted by {name}: {d.accepted[:1]}"
    assert d.rejected, f"{case}: neither accepted nor rejected"
    # Bounded: a small multiple of the body, never unbounded growth; quick.
    assert peak < 8 * len(body) + 64 * 1024 * 1024, f"{case}: peak {peak / 1e6:.0f} MB"
    assert elapsed < 20, f"{case}: {elapsed:.1f} s"
    assert all(len(raw) <= max(len(body), 4096) for raw, _ in d.rejected)
