"""Pure delivery decisions: classification, backoff, retry/dead decisions, delay bands."""

from __future__ import annotations

import pytest

from services.gateways.core import (
    H_ATTEMPT,
    H_FIRST,
    H_SLOT,
    Progress,
    RetryPolicy,
    SendOutcome,
    SendResult,
    backoff,
    classify,
    decide,
    expiration_ms,
    parse_retry_after,
    progress_from_headers,
    progress_headers,
    retry_level,
)

POLICY = RetryPolicy(attempts=5, deadline_s=300.0, base_s=2.0, max_s=120.0)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param(200, SendOutcome.DELIVERED, id="200 delivered"),
        pytest.param(202, SendOutcome.DELIVERED, id="202 delivered (PagerDuty)"),
        pytest.param(204, SendOutcome.DELIVERED, id="204 delivered"),
        pytest.param(301, SendOutcome.FAILED, id="redirect not followed"),
        pytest.param(400, SendOutcome.FAILED, id="400 refused"),
        pytest.param(404, SendOutcome.FAILED, id="404 refused"),
        pytest.param(429, SendOutcome.RETRY, id="429 throttled"),
        pytest.param(500, SendOutcome.RETRY, id="500 retry"),
        pytest.param(503, SendOutcome.RETRY, id="503 retry"),
        pytest.param(599, SendOutcome.RETRY, id="599 retry"),
    ],
)
def test_classify(status: int, outcome: SendOutcome) -> None:
    assert classify(status) is outcome


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("30", 30.0, id="delta seconds"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("-4", 0.0, id="negative clamps"),
        pytest.param("Tue, 14 Nov 2023 22:14:20 GMT", 60.0, id="http date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="nan"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


@pytest.mark.parametrize(
    ("attempts", "rnd", "expected"),
    [
        pytest.param(1, 0.5, 2.0, id="first retry: base"),
        pytest.param(2, 0.5, 4.0, id="doubles"),
        pytest.param(3, 0.0, 6.0, id="jitter low end -25%"),
        pytest.param(3, 1.0, 10.0, id="jitter high end +25%"),
        pytest.param(20, 0.5, 120.0, id="capped"),
    ],
)
def test_backoff(attempts: int, rnd: float, expected: float) -> None:
    assert backoff(POLICY, attempts, rnd) == pytest.approx(expected)


NOW = 1000.0


@pytest.mark.parametrize(
    ("result", "before", "action", "outcome", "delay", "reason"),
    [
        pytest.param(SendResult.ok(200), Progress(), "delivered", "delivered", 0.0, "", id="delivered"),
        pytest.param(
            SendResult.failed("HTTP 400: no"), Progress(), "dead", "failed", 0.0, "refused: HTTP 400: no",
            id="4xx dead at once",
        ),
        pytest.param(
            SendResult.retry("HTTP 500"), Progress(), "retry", "retry", 2.0, "HTTP 500", id="5xx retried"
        ),
        pytest.param(
            SendResult.retry("HTTP 429", retry_after=30.0), Progress(attempts=1, first_attempt=NOW - 5),
            "retry", "retry", 30.0, "HTTP 429", id="retry-after lengthens the delay",
        ),
        pytest.param(
            SendResult.retry("HTTP 503"), Progress(attempts=4, first_attempt=NOW - 10),
            "dead", "dead", 0.0, "gave up after 5 attempts: HTTP 503", id="attempts exhausted",
        ),
        pytest.param(
            SendResult.retry("timeout"), Progress(attempts=2, first_attempt=NOW - 298),
            "dead", "dead", 0.0, "gave up after 3 attempts, deadline of 300 s reached: timeout",
            id="next try would pass the deadline",
        ),
        pytest.param(
            SendResult.retry("HTTP 429", retry_after=3600.0), Progress(attempts=1, first_attempt=NOW),
            "dead", "dead", 0.0, "gave up after 2 attempts, deadline of 300 s reached: HTTP 429",
            id="retry-after beyond the deadline",
        ),
    ],
)  # fmt: skip
def test_decide(
    result: SendResult, before: Progress, action: str, outcome: str, delay: float, reason: str
) -> None:
    d = decide(result, before, NOW, POLICY, rnd=0.5)
    assert (d.action, d.outcome, d.reason) == (action, outcome, reason)
    assert d.delay == pytest.approx(delay)
    assert d.progress.attempts == before.attempts + 1
    assert d.progress.first_attempt == (
        before.first_attempt if before.first_attempt is not None else NOW
    )


@pytest.mark.parametrize(
    ("delay", "level"),
    [
        pytest.param(0.0, 0, id="zero"),
        pytest.param(0.3, 0, id="below two bands"),
        pytest.param(0.5, 1, id="0.5 s band"),
        pytest.param(1.0, 2, id="1 s band"),
        pytest.param(1.99, 2, id="just under 2 s"),
        pytest.param(2.0, 3, id="2 s band"),
        pytest.param(120.0, 8, id="two minutes"),
        pytest.param(1e9, 11, id="capped at the top band"),
    ],
)
def test_retry_level(delay: float, level: int) -> None:
    assert retry_level(delay) == level


def test_expiration_is_whole_positive_milliseconds() -> None:
    assert expiration_ms(1.2345) == "1234"
    assert expiration_ms(0.0) == "1"


@pytest.mark.parametrize(
    ("headers", "progress"),
    [
        pytest.param({}, Progress(), id="first attempt"),
        pytest.param(
            {H_ATTEMPT: 2, H_FIRST: "1000.5", H_SLOT: b"1002.0"},
            Progress(attempts=2, first_attempt=1000.5, slot=1002.0),
            id="values as AMQP delivers them",
        ),
        pytest.param({H_ATTEMPT: "x", H_FIRST: "inf"}, Progress(), id="garbage ignored"),
        pytest.param({H_ATTEMPT: -3}, Progress(), id="negative attempts"),
    ],
)
def test_progress_from_headers(headers: dict[str, object], progress: Progress) -> None:
    assert progress_from_headers(headers) == progress


def test_progress_round_trips_through_headers() -> None:
    p = Progress(attempts=3, first_attempt=1234.25, slot=1240.5)
    headers = progress_headers(p, "HTTP 500")
    assert progress_from_headers(headers) == p
    assert headers["x-tocsin-last-error"] == "HTTP 500"


def test_a_lane_head_reads_the_same_raw_or_as_redis_py_gives_it() -> None:
    from services.gateways.admission import _head

    seq = 1_796_375_595_169_638  # microseconds: exact through a float
    assert _head(["d1", str(seq)]) == ("d1", seq)  # packed reads: raw reply
    assert _head([("d1", float(seq))]) == ("d1", seq)  # redis-py's ZRANGE WITHSCORES
    assert _head([]) == (None, None)
