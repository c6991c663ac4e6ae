"""``tocsin send``: publish events from flags, a JSON-lines file or stdin.

Lines are validated locally first (the same decoder as ingest), so a typo is
reported with its line number instead of silently landing in the dead-letter
queue; valid events are sent in batches of up to 100 per message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import msgspec

from shared.formats.flapjack import decode_body
from shared.models import ENCODER

BATCH = 100


class LineError(msgspec.Struct):
    line: int
    reason: str


def parse_lines(
    lines: Iterable[str], now: float
) -> Iterator[tuple[int, dict[str, object] | LineError]]:
    """Yield (line number, event dict or error) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        decoded = decode_body(text.encode(), now)
        if decoded.rejected:
            yield number, LineError(number, decoded.rejected[0][1])
            continue
        try:
            yield number, msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            yield number, LineError(number, str(exc))


def batches(events: Iterable[dict[str, object]], size: int = BATCH) -> Iterator[tuple[int, bytes]]:
    """Encode events as JSON arrays of at most ``size`` events: (count, body) pairs."""
    chunk: list[dict[str, object]] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield len(chunk), ENCODER.encode(chunk)
            chunk = []
    if chunk:
        yield len(chunk), ENCODER.encode(chunk)


def send_events(
    events: Iterable[dict[str, object]],
    publish: Callable[[list[bytes]], object],
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Publish events in batches; returns how many were sent."""
    sent = 0
    for n, body in batches(events):
        publish([body])
        sent += n
        if on_progress is not None:
            on_progress(n)
    return sent
