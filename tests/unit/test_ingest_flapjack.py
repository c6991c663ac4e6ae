"""Flapjack event decoding and validation (pure, no I/O)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.formats.bodies import MAX_EVENTS_PER_BODY
from shared.formats.flapjack import decode_body

NOW = 1_800_000_000.0


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


GOOD = {"entity": "web1", "check": "http", "state": "critical"}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            GOOD,
            {"state": "critical", "type": "service", "time": NOW},
            id="minimal, time defaults to receive time",
        ),
        pytest.param({**GOOD, "state": "OK"}, {"state": "ok"}, id="state is case-insensitive"),
        pytest.param(
            {**GOOD, "time": 1_700_000_000}, {"time": 1_700_000_000.0}, id="explicit time kept"
        ),
        pytest.param(
            {**GOOD, "state": "acknowledgement", "duration": 600},
            {"type": "action", "duration": 600},
            id="ack is an action",
        ),
        pytest.param(
            {**GOOD, "state": "test_notifications", "type": "action"},
            {"type": "action"},
            id="test notifications",
        ),
        pytest.param(
            {**GOOD, "unknown_field": 1, "x": [1]},
            {"state": "critical"},
            id="unknown fields ignored",
        ),
        pytest.param(
            {**GOOD, "summary": "a\x00b\x07c\nd"},
            {"summary": "abc\nd"},
            id="control chars stripped from text",
        ),
        pytest.param(
            {**GOOD, "tags": ["a=1", "a=1", "b=2"]},
            {"tags": ("a=1", "b=2")},
            id="duplicate tags dropped",
        ),
        pytest.param(
            {**GOOD, "acknowledgement_id": 42, "state": "acknowledgement"},
            {"acknowledgement_id": "42"},
            id="numeric ack id",
        ),
        pytest.param(
            {**GOOD, "time": NOW + 299}, {"time": NOW + 299}, id="slightly in the future is fine"
        ),
    ],
)
def test_good_events(event: dict[str, object], expected: dict[str, object]) -> None:
    decoded = decode_body(body(event), NOW, message_id="m")
    assert decoded.rejected == []
    (accepted,) = decoded.accepted
    assert accepted.id == "m:0"
    for key, value in expected.items():
        assert getattr(accepted, key) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(
            body({**GOOD, "state": "sideways"}),
            "state: unknown value 'sideways'",
            id="unknown state",
        ),
        pytest.param(
            body({"check": "http", "state": "ok"}),
            "missing required field `entity`",
            id="missing entity",
        ),
        pytest.param(
            body({**GOOD, "entity": ""}), "length >= 1 - at `$.entity`", id="empty entity"
        ),
        pytest.param(
            body({**GOOD, "entity": "x" * 256}), "length <= 255 - at `$.entity`", id="huge entity"
        ),
        pytest.param(body({**GOOD, "check": "a\nb"}), "at `$.check`", id="control char in name"),
        pytest.param(
            body({**GOOD, "time": "yesterday"}),
            "Expected `float | null`, got `str` - at `$.time`",
            id="time of wrong type",
        ),
        pytest.param(
            body({**GOOD, "time": NOW + 301}), "time: 301 s in the future", id="future time"
        ),
        pytest.param(body({**GOOD, "time": -5}), "at `$.time`", id="negative time"),
        pytest.param(
            body({**GOOD, "initial_failure_delay": -1}),
            "at `$.initial_failure_delay`",
            id="negative delay",
        ),
        pytest.param(body({**GOOD, "tags": "a=1"}), "at `$.tags`", id="tags not a list"),
        pytest.param(body({**GOOD, "summary": "x" * 70000}), "at `$.summary`", id="huge summary"),
        pytest.param(
            body({**GOOD, "type": "service", "state": "acknowledgement"}),
            "not a state of type 'service'",
            id="type mismatch",
        ),
        pytest.param(
            body({**GOOD, "type": "metric"}), "type: unknown value 'metric'", id="unknown type"
        ),
        pytest.param(b"not json at all", "not valid JSON", id="not JSON"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="invalid UTF-8"),
        pytest.param(
            b'{"entity": "a", "check": "b", "state": "ok", "time": NaN}', "not valid JSON", id="NaN"
        ),
        pytest.param(body({**GOOD, "time": 10**30}), "at `$.time`", id="huge number"),
        pytest.param(
            body("just a string"), "expected an event object or an array", id="a JSON string"
        ),
        pytest.param(body(42), "expected an event object or an array", id="a JSON number"),
    ],
)
def test_bad_events_are_rejected_with_a_reason_naming_the_field(raw: bytes, reason: str) -> None:
    decoded = decode_body(raw, NOW)
    assert decoded.accepted == []
    assert len(decoded.rejected) == 1
    assert reason in decoded.rejected[0][1]


def test_array_mixing_good_and_bad_passes_the_good_and_names_each_bad_index() -> None:
    raw = body(
        [
            GOOD,
            {**GOOD, "state": "nope"},
            {**GOOD, "check": "disk"},
            {"entity": "x"},
            {**GOOD, "time": NOW + 10_000},
        ]
    )
    decoded = decode_body(raw, NOW, message_id="batch")
    assert [(e.check, e.id) for e in decoded.accepted] == [("http", "batch:0"), ("disk", "batch:2")]
    reasons = [r for _, r in decoded.rejected]
    assert len(reasons) == 3
    assert "$[1]" in reasons[0] and "unknown value 'nope'" in reasons[0]
    assert "$[3]" in reasons[1] and "check" in reasons[1]
    assert "$[4]" in reasons[2] and "in the future" in reasons[2]
    # Each dead letter carries just the bad element, so replaying it does not duplicate the good ones.
    assert json.loads(decoded.rejected[0][0])["state"] == "nope"


def test_too_many_events_in_one_body_are_refused() -> None:
    raw = body([GOOD] * (MAX_EVENTS_PER_BODY + 1))
    decoded = decode_body(raw, NOW)
    assert decoded.accepted == [] and "exceed the limit" in decoded.rejected[0][1]


def test_deeply_nested_body_is_rejected_not_crashing() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    decoded = decode_body(raw, NOW)
    assert decoded.accepted == [] and decoded.rejected


def test_ids_are_random_without_a_message_id_and_stable_with_one() -> None:
    a = decode_body(body(GOOD), NOW).accepted[0].id
    b = decode_body(body(GOOD), NOW).accepted[0].id
    assert a != b
    assert (
        decode_body(body(GOOD), NOW, "x").accepted[0].id
        == decode_body(body(GOOD), NOW, "x").accepted[0].id
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    decoded = decode_body(raw, NOW)
    assert len(decoded.accepted) + len(decoded.rejected) >= 1 or raw.strip() in (b"[]",)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"entity": json_values, "check": json_values, "state": json_values},
        optional={"time": json_values, "tags": json_values, "summary": json_values},
    )
)
def test_arbitrary_event_shapes_are_accepted_or_rejected_never_raise(
    event: dict[str, object],
) -> None:
    decoded = decode_body(body(event), NOW)
    assert len(decoded.accepted) + len(decoded.rejected) == 1
