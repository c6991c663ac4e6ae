"""The gate of the signed ways in (Slack, SMS, PagerDuty): ``acking.admit``, its steps and order.

The routes' end-to-end behaviour is in tests/e2e/test_acknowledge_e2e.py; here
each step is checked on its own, with the limiter, the counters and the replay
guard replaced by recorders, so the order is visible in milliseconds.
"""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest
from litestar import Response

from services.api.integrations import acking
from services.api.integrations.acking import AckOutcome, admit


class _Request:
    """Just what ``admit`` reads of a request: its body."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def body(self) -> bytes:
        return self._body


class _Body(msgspec.Struct):
    id: str


class Recorder:
    """Stands in for the limiter, the counters and the replay guard; remembers the calls."""

    def __init__(self, locked: bool = False, seen: frozenset[str] = frozenset()) -> None:
        self.locked = locked
        self.seen = seen
        self.calls: list[tuple[str, object]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(acking, "refuse_guessers", self.refuse_guessers)
        monkeypatch.setattr(acking, "ctx_of", lambda request: "ctx")
        monkeypatch.setattr(acking, "count", self.count)
        monkeypatch.setattr(acking, "count_forgery", self.count_forgery)
        monkeypatch.setattr(acking, "first_time", self.first_time)

    def refuse_guessers(self, request: Any) -> None:
        self.calls.append(("lockout", None))
        if self.locked:
            raise RuntimeError("429")

    def count(self, ctx: Any, channel: str, outcome: AckOutcome) -> AckOutcome:
        self.calls.append(("count", outcome))
        return outcome

    def count_forgery(self, request: Any, channel: str, outcome: AckOutcome) -> AckOutcome:
        self.calls.append(("forgery", outcome))
        return outcome

    def first_time(self, ctx: Any, channel: str, key: str) -> bool:
        self.calls.append(("replay_guard", key))
        return key not in self.seen


def _admit(body: bytes, signature_error: str | None = None) -> Any:
    checked: list[bytes] = []

    def check_signature(ctx: Any, raw: bytes) -> str | None:
        checked.append(raw)
        return signature_error

    async def go() -> Any:
        return await admit(
            _Request(body),  # type: ignore[arg-type]
            "sms",
            check_signature,
            msgspec.json.Decoder(_Body).decode,
            "expected {id}",
            lambda parsed: parsed.id,
            Response({"error": "already taken"}, status_code=409),
        )

    result = anyio.run(go)
    assert checked == [body]  # the signature is checked over the raw body, once
    return result


def test_a_genuine_first_request_passes_with_its_decoded_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = Recorder()
    rec.install(monkeypatch)
    assert _admit(b'{"id": "m1"}') == ("ctx", _Body(id="m1"))
    assert rec.calls == [("lockout", None), ("replay_guard", "m1")]


def test_a_forged_signature_is_401_and_counted_against_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = Recorder()
    rec.install(monkeypatch)
    answer = _admit(b'{"id": "m1"}', signature_error="bad signature")
    assert isinstance(answer, Response)
    assert (answer.status_code, answer.content) == (401, {"error": "bad signature"})
    # Nothing after the signature runs: the body is not decoded, nothing is remembered.
    assert rec.calls == [("lockout", None), ("forgery", AckOutcome.BAD_SIGNATURE)]


def test_a_malformed_body_is_400_and_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    rec.install(monkeypatch)
    answer = _admit(b"not json")
    assert isinstance(answer, Response)
    assert (answer.status_code, answer.content) == (400, {"error": "expected {id}"})
    assert rec.calls == [("lockout", None), ("count", AckOutcome.MALFORMED)]


def test_a_replay_gets_the_routes_own_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(seen=frozenset({"m1"}))
    rec.install(monkeypatch)
    answer = _admit(b'{"id": "m1"}')
    assert isinstance(answer, Response)
    assert (answer.status_code, answer.content) == (409, {"error": "already taken"})
    assert rec.calls == [
        ("lockout", None),
        ("replay_guard", "m1"),
        ("count", AckOutcome.REPLAY),
    ]


def test_a_locked_out_client_is_refused_before_anything_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = Recorder(locked=True)
    rec.install(monkeypatch)

    async def go() -> None:
        await admit(
            _Request(b"{}"),  # type: ignore[arg-type]
            "slack",
            lambda ctx, raw: pytest.fail("signature checked for a locked-out client"),
            msgspec.json.decode,
            "",
            lambda parsed: "",
            Response({}),
        )

    with pytest.raises(RuntimeError, match="429"):
        anyio.run(go)
    assert rec.calls == [("lockout", None)]
