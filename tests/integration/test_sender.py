"""The API's publisher: concurrent sends are group-committed, and each returns once durable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest

from shared.amqp import OutMessage, Publisher
from shared.config import Settings
from shared.sender import Sender
from tests.support import collect_events, declare

pytestmark = pytest.mark.integration


def wait_until(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_sends_waiting_together_share_one_commit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(settings)
    sender = Sender(settings)
    groups: list[int] = []
    release = threading.Event()
    real = Publisher.publish

    def publish(self: Publisher, messages: Iterable[OutMessage]) -> int:
        batch = list(messages)
        groups.append(len(batch))
        if len(groups) == 1:
            release.wait(10)  # hold the first commit while the others queue up
        return real(self, batch)

    monkeypatch.setattr(Publisher, "publish", publish)
    returned: list[list[str]] = []

    def one(i: int) -> None:
        body = b'{"entity":"e","check":"c%d","state":"ok"}' % i
        returned.append(sender.send([body]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    threads[0].start()
    assert wait_until(lambda: groups == [1])
    for t in threads[1:]:
        t.start()
    assert wait_until(lambda: len(sender._pending) == 7)
    assert returned == []  # nobody returns before their messages are committed
    release.set()
    for t in threads:
        t.join(10)
    sender.close()
    assert groups == [1, 7]
    assert len(returned) == 8
    got = collect_events(settings, n=8, timeout=10)
    # Event ids are <message id>:<index>, as ingest gives them.
    assert sorted(e.id for e in got) == sorted(f"{i}:0" for ids in returned for i in ids)


def test_a_broker_that_is_away_fails_the_send_and_ping(settings: Settings) -> None:
    import msgspec

    away = msgspec.structs.replace(settings, amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    sender = Sender(away)
    with pytest.raises(Exception) as caught:
        sender.send([b"{}"])
    assert "Connection" in type(caught.value).__name__ or "connect" in str(caught.value).lower()
    assert sender.ping() is False
    sender.close()
