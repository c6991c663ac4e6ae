"""End to end through `tocsin up`: two contacts, each on its own webhook receiver.

Alice's rule routes every failing check; Bob's first rule routes checks
tagged ``team=db`` on critical and warning, his second blackholes warnings.  A critical on a ``team=db`` check reaches
both receivers, a warning on it reaches only Alice, and each recovery reaches
exactly the receivers that got the problem.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline, pipeline  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.e2e


def _contact(api: httpx.Client, name: str, url: str, *rules: dict[str, Any]) -> str:
    contact = api.post("/contacts", json={"name": name}).json()
    medium = api.post(
        "/media",
        json={"contact_id": contact["id"], "type": "webhook", "address": url, "interval": 0},
    )
    assert medium.status_code == 201, medium.text
    for rule in rules:
        created = api.post("/rules", json={"contact_id": contact["id"], **rule})
        assert created.status_code == 201, created.text
    return str(contact["id"])


def _event(api: httpx.Client, check: str, state: str) -> None:
    body = {
        "entity": "db1",
        "check": check,
        "state": state,
        "initial_failure_delay": 0,
        "tags": ["team=db"],
    }
    assert api.post("/events", json=body).status_code == 202


def _take(receiver: Receiver, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The next ``n`` deliveries in arrival order (fewer if ``timeout`` passes)."""
    got: list[dict[str, Any]] = []
    while len(got) < n:
        item = receiver.wait_for(lambda _d: True, timeout)
        if item is None:
            break
        got.append(item)
    return got


def _seen(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((d["check"], d["type"], d["state"]) for d in items)


def test_two_contacts_on_two_receivers(pipeline: Pipeline) -> None:  # noqa: F811
    route = {"media": ["webhook"]}
    with Receiver() as alice_rx, Receiver() as bob_rx, pipeline.api as api:
        alice = _contact(
            api, "alice", alice_rx.url, {"critical": route, "warning": route, "unknown": route}
        )
        bob = _contact(
            api,
            "bob",
            bob_rx.url,
            {"tags": ["team=db"], "critical": route, "warning": route},
            {"warning": {"blackhole": True}},
        )
        crit, warn = f"disk-{time.time_ns()}", f"load-{time.time_ns()}"
        _event(api, crit, "critical")
        _event(api, warn, "warning")
        alice_problems, bob_problems = _take(alice_rx, 2), _take(bob_rx, 1)
        _event(api, crit, "ok")
        _event(api, warn, "ok")
        alice_recoveries, bob_recoveries = _take(alice_rx, 2), _take(bob_rx, 1)
        alice_extra, bob_extra = _take(alice_rx, 1, timeout=2), _take(bob_rx, 1, timeout=1)
        api.delete(f"/contacts/{alice}")
        api.delete(f"/contacts/{bob}")
    tail = pipeline.log_tail()
    assert _seen(alice_problems) == [(crit, "problem", "critical"), (warn, "problem", "warning")], (
        tail
    )
    assert _seen(bob_problems) == [(crit, "problem", "critical")], tail
    assert {d["contact"]["name"] for d in bob_problems} == {"bob"}
    assert _seen(alice_recoveries) == [(crit, "recovery", "ok"), (warn, "recovery", "ok")], tail
    assert _seen(bob_recoveries) == [(crit, "recovery", "ok")], tail
    assert alice_extra == [] and bob_extra == [], "unexpected extra deliveries"
