"""SMS replies: what a reply asks for, and which page it answers (pure parts of the route)."""

from __future__ import annotations

import pytest

from services.api.integrations.sms_routes import Reply, paged_entry, parse_reply
from shared.action_links import short_code
from shared.delivery_log import DeliveryLogEntry

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ACK", Reply(None, 14400)),
        (" ack 1h ", Reply(None, 3600)),
        ("ACK 30m", Reply(None, 1800)),
        ("ACK 7kqp", Reply("7KQP", 14400)),
        ("ACK 7KQP 1h", Reply("7KQP", 3600)),
        ("ACK 48h", None),  # longer than a day
        ("ACK 0m", None),
        ("ACKNOWLEDGE", None),
        ("yes", None),
        ("ACK 7KQP please", None),
    ],
)
def test_parse_reply(text: str, expected: Reply | None) -> None:
    assert parse_reply(text) == expected


def entry(check: str, medium: str = "m1", **kw: object) -> DeliveryLogEntry:
    base: dict[str, object] = {
        "delivery_id": f"n:{medium}",
        "notification_id": "n",
        "medium_id": medium,
        "medium_type": "sms",
        "address": "+1555***",
        "type": "problem",
        "entity": "web1",
        "check": check,
        "outcome": "delivered",
        "attempts": 1,
        "latency_ms": 1.0,
        "time": NOW - 60,
    }
    base.update(kw)
    return DeliveryLogEntry(**base)  # type: ignore[arg-type]


def test_the_last_delivered_problem_page_to_the_number_is_the_one() -> None:
    log = [
        entry("disk", type="recovery"),
        entry("cpu", medium="other"),
        entry("load", outcome="retry"),
        entry("http"),
        entry("ping"),
    ]
    found = paged_entry(log, {"m1"}, None, NOW)
    assert found is not None and found.check == "http"


def test_a_code_picks_its_check_among_recent_pages() -> None:
    log = [entry("http"), entry("ping")]
    found = paged_entry(log, {"m1"}, short_code("web1", "ping"), NOW)
    assert found is not None and found.check == "ping"
    assert paged_entry(log, {"m1"}, "ZZZZ", NOW) is None


def test_pages_older_than_a_week_are_not_answered() -> None:
    assert paged_entry([entry("http", time=NOW - 8 * 86400)], {"m1"}, None, NOW) is None
