"""``tocsin explain``'s table rows: times and epoch stamps on the operator's clock (--tz)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.cli.explain import timeline_rows

OSLO = ZoneInfo("Europe/Oslo")
T = datetime(2026, 1, 17, 10, 3, tzinfo=OSLO).timestamp()  # a Saturday, CET


def test_event_and_notification_rows_show_local_times() -> None:
    items = [
        {
            "kind": "event",
            "time": T,
            "type": "service",
            "state": "critical",
            "filter": "initial_failure_delay",
            "outcome": "block",
            "reason": "initial_failure_delay: failing for 10 s of 30",
        },
        {
            "kind": "notification",
            "time": T + 30,
            "type": "problem",
            "state": "critical",
            "severity": "critical",
            "routes": [
                {"verdict": "deliver", "code": "ok", "text": "no block", "contact": "Alice",
                 "medium_type": "webhook"},
                {"verdict": "suppress", "code": "interval", "contact": "Bob",
                 "text": f"interval: critical blocked until {T + 3600:.0f}"},
            ],
        },
    ]  # fmt: skip
    rows = timeline_rows(items, OSLO)
    assert rows[0] == (
        "2026-01-17 10:03:00 CET",
        "event critical",
        "initial_failure_delay: block",
        "-",
        "initial_failure_delay: failing for 10 s of 30",
    )
    assert rows[1][:4] == (
        "2026-01-17 10:03:30 CET",
        "problem critical (critical)",
        "deliver",
        "Alice / webhook",
    )
    # Later verdicts of the same notification leave time and what blank; epochs in reasons are local.
    assert rows[2] == (
        "",
        "",
        "interval",
        "Bob",
        "interval: critical blocked until 2026-01-17 11:03:00 CET",
    )
