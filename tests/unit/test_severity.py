"""One severity order (critical > warning > unknown) agreed on by every component.

A rollup holding a warning and an unknown is the case where the old rankings
disagreed: the notifier named unknown the worst while Slack coloured warning.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.ui.views import CheckFilter, filter_checks
from services.gateways import pagerduty, slack
from shared.checks import CheckDetail
from shared.directory import DirectorySnapshot
from shared.models import (
    Contact,
    ContactRef,
    Delivery,
    Medium,
    MediumRef,
    Notification,
    Rule,
    SeverityRoute,
)
from shared.processing.service_events import worse as processor_worse
from shared.routing.expansion import expand
from shared.routing.notifier_state import NotifierState, apply
from shared.routing.selection import compile_index, select
from shared.severity import SEVERITY_ORDER, severity_key, worse, worst

T0 = datetime(2026, 1, 12, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(["unknown", "warning"], "warning", id="warning above unknown"),
        pytest.param(["warning", "critical", "unknown"], "critical", id="critical above all"),
        pytest.param(["unknown"], "unknown", id="unknown alone"),
        pytest.param(["ok", "unknown"], "unknown", id="any failure above ok"),
        pytest.param([], "ok", id="nothing: the default"),
    ],
)
def test_worst(states: list[str], expected: str) -> None:
    assert worst(states) == expected


def test_order_is_flapjacks() -> None:
    assert SEVERITY_ORDER[:3] == ("critical", "warning", "unknown")
    assert sorted(["ok", "bogus", "unknown", "critical", "warning"], key=severity_key) == [
        "critical",
        "warning",
        "unknown",
        "ok",
        "bogus",
    ]


def test_processor_episode_worst_uses_the_shared_order() -> None:
    assert processor_worse("unknown", "warning") == "warning"
    assert processor_worse("warning", "unknown") == "warning"
    assert processor_worse(None, "unknown") == "unknown"
    assert worse("critical", "warning") == "critical"


def _rollup_of_warning_and_unknown() -> Delivery:
    """The notifier's own rollup delivery for a warning and an unknown check."""
    route = SeverityRoute(media=("webhook",))
    snap = DirectorySnapshot(
        version=1,
        contacts={"a": Contact(id="a", name="A")},
        media={
            "m": Medium(id="m", contact_id="a", type="webhook", address="x", rollup_threshold=2)
        },
        rules={"r": Rule(id="r", contact_id="a", critical=route, warning=route, unknown=route)},
    )
    index = compile_index(snap)
    state = NotifierState()
    out = []
    for i, st in enumerate(["unknown", "warning"]):
        n = Notification(
            id=f"n{i}",
            type="problem",
            check_id=f"c{i}",
            entity="web1",
            check=f"c{i}",
            state=st,
            severity=st,  # type: ignore[arg-type]
            time=T0 + i,
        )
        o = expand(index, state, n, select(index, n))
        apply(state, o.effects, n)
        out.extend(o.deliveries)
    return out[-1]


def test_rollup_worst_slack_and_pagerduty_agree() -> None:
    d = _rollup_of_warning_and_unknown()
    assert d.type == "rollup"
    assert d.state == "warning"
    assert [c.state for c in d.checks] == ["warning", "unknown"]
    assert slack.colour(d) == slack.STATE_COLOURS["warning"]
    payload = pagerduty.render(d)["payload"]
    assert isinstance(payload, dict) and payload["severity"] == "warning"


def test_pagerduty_rollup_severity_follows_its_worst_check() -> None:
    d = _rollup_of_warning_and_unknown()
    # Even if a delivery's own state was written otherwise, the checks decide.
    forged = Delivery(
        id=d.id,
        notification_id=d.notification_id,
        type="rollup",
        entity=d.entity,
        check=d.check,
        state="unknown",
        time=d.time,
        contact=ContactRef("a", "A"),
        medium=MediumRef(id="m", type="pagerduty", address="k"),
        checks=d.checks,
    )
    payload = pagerduty.render(forged)["payload"]
    assert isinstance(payload, dict) and payload["severity"] == "warning"


def _check(name: str, state: str) -> CheckDetail:
    return CheckDetail(
        id=f"web1:{name}",
        entity="web1",
        check=name,
        state=state,
        summary="",
        details="",
        last_update=T0,
        enabled=True,
        failing=state != "ok",
        tags=(),
    )


def test_dashboard_sorts_worst_first() -> None:
    checks = [_check(n, s) for n, s in [("a", "ok"), ("b", "unknown"), ("c", "warning")]]
    checks.append(_check("d", "critical"))
    rows = filter_checks(checks, CheckFilter())
    assert [c.state for c in rows] == ["critical", "warning", "unknown", "ok"]
