"""End to end through `tocsin up`: `tocsin explain` says why a page was held and who got nothing.

A failure is reported three times: at t0, t0+10 (inside the 30 s
initial_failure_delay: held) and t0+40 (paged).  Alice is always on call;
Bob's rule is restricted to every weekday but today (in his zone), so the
page reaches only Alice and the explanation names Bob's time restriction.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline, pipeline  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.e2e


def _zone_away_from_midnight() -> str:
    """A zone whose local clock is not about to change the day during the test."""
    for name in ("UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Auckland"):
        if 1 <= datetime.now(ZoneInfo(name)).hour <= 22:
            return name
    return "UTC"


def test_explain_tells_why_held_and_why_not_sent(pipeline: Pipeline) -> None:  # noqa: F811
    bob_tz = _zone_away_from_midnight()
    today = datetime.now(ZoneInfo(bob_tz)).isoweekday()
    other_days = [d for d in range(1, 8) if d != today]
    route = {"media": ["webhook"]}
    check = f"http-{time.time_ns()}"
    with Receiver() as alice_rx, Receiver() as bob_rx, pipeline.api as api:
        for name, tz, url, rule in (
            ("Alice", "UTC", alice_rx.url, {}),
            (
                "Bob",
                bob_tz,
                bob_rx.url,
                {"time_restrictions": [{"days": other_days, "start": "00:00", "end": "24:00"}]},
            ),
        ):
            contact = api.post("/contacts", json={"name": name, "timezone": tz}).json()
            medium = api.post(
                "/media",
                json={"contact_id": contact["id"], "type": "webhook", "address": url},
            )
            assert medium.status_code == 201, medium.text
            made = api.post(
                "/rules",
                json={"contact_id": contact["id"], "entities": ["web9"], "critical": route, **rule},
            )
            assert made.status_code == 201, made.text

        t0 = time.time() - 40
        events = [
            {"entity": "web9", "check": check, "state": "critical", "time": t0 + dt}
            for dt in (0, 10, 40)
        ]
        assert api.post("/events", json=events).status_code == 202
        got = alice_rx.wait_for(lambda d: d.get("check") == check, 30)
        assert got is not None and got["type"] == "problem", pipeline.log_tail()
        assert bob_rx.wait_for(lambda d: True, 2) is None

    # The gateway logs the delivery just after sending it: wait for it to show.
    deadline = time.monotonic() + 20
    while True:
        raw = pipeline.tocsin("explain", f"web9:{check}", "--since", "1h", "--json")
        assert raw.returncode == 0, raw.stderr
        kinds = [i["kind"] for i in json.loads(raw.stdout)["items"]]
        if "delivery" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert kinds == ["event", "event", "event", "notification", "delivery"], kinds

    # The reasons, from --json (a table wraps long reasons at any width).
    reasons = raw.stdout
    # Why the report at t0+10 was not sent: the filter and its numbers.
    assert "initial_failure_delay: failing for 10 s of 30" in reasons
    assert "state_change: first problem of the episode" in reasons
    # Why Bob got nothing: his restriction, in his zone, against the event's local time.
    assert "time_restriction" in reasons and f"{bob_tz} excludes" in reasons
    assert "delivered in" in reasons

    # Each record carries the event's own time (the table shows it on the operator's
    # clock: tests/unit/test_cli_explain_rows.py).
    times = [i["time"] for i in json.loads(raw.stdout)["items"] if i["kind"] == "event"]
    assert times == pytest.approx([t0, t0 + 10, t0 + 40])
