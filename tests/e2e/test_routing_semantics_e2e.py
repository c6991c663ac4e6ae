"""Routing semantics end to end through `tocsin up`: items that cross ingest, processor, notifier, gateway.

- Rollup accounting: three failing checks roll up a webhook medium (threshold
  2); two enter scheduled maintenance (written by the API, read by the
  notifier from the processor's records), the next notification brings the
  rollup recovery; one leaves maintenance while still failing and the next
  notification rolls up again.
- A tag strategy ``none`` blackhole ("everything except checks tagged buf")
  in front of a Slack medium, and the acknowledgement text: who acknowledged
  travels from the event to the Slack message with the comment.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline, pipeline  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.e2e

# Slack is one of the media routed to.
PIPELINE_UP_ARGS = (
    "--workers",
    "ingest,processor,notifier,scheduler,gateway:webhook,gateway:slack,api",
    "--processors",
    "1",
)


def _event(api: httpx.Client, entity: str, check: str, state: str, **extra: Any) -> None:
    body = {
        "entity": entity,
        "check": check,
        "state": state,
        "initial_failure_delay": 0,
        "repeat_failure_delay": 0,
        **extra,
    }
    r = api.post("/events", json=body)
    assert r.status_code == 202, r.text


def _next(rx: Receiver, pipe: Pipeline, timeout: float = 30) -> dict[str, Any]:
    got = rx.wait_for(lambda _d: True, timeout)
    assert got is not None, f"no delivery arrived:\n{pipe.log_tail()}"
    return got


def _shape(d: dict[str, Any]) -> str:
    if d["type"].startswith("rollup"):
        return f"{d['type']}[{','.join(sorted(c['check'] for c in d['checks']))}]"
    return f"{d['type']}:{d['check']}"


def _wait_state(api: httpx.Client, entity: str, check: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = api.get(f"/checks/{entity}/{check}")
        if r.status_code == 200 and r.json()["state"] == state:
            return
        time.sleep(0.1)
    pytest.fail(f"{entity}:{check} never became {state}")


def _routes(api: httpx.Client, entity: str, check: str) -> list[tuple[str, str]]:
    """The notifier's (code, text) verdicts recorded for the check, once there are any."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = api.get(f"/checks/{entity}/{check}/explain", params={"since": "all"})
        if r.status_code == 200:
            found = [
                (route["code"], route["text"])
                for item in r.json()["items"]
                if item["kind"] == "notification"
                for route in item.get("routes", [])
            ]
            if found:
                return found
        time.sleep(0.1)
    pytest.fail(f"no routing verdict recorded for {entity}:{check}")


def test_rollup_counts_only_checks_still_alerting(pipeline: Pipeline) -> None:  # noqa: F811
    entity = f"r{uuid.uuid4().hex[:8]}"
    route = {"media": ["webhook"]}
    with Receiver() as rx, pipeline.api as api:
        contact = api.post("/contacts", json={"name": f"rollup-{entity}"}).json()["id"]
        medium = api.post(
            "/media",
            json={
                "contact_id": contact,
                "type": "webhook",
                "address": rx.url,
                "interval": 0,
                "rollup_threshold": 2,
            },
        )
        assert medium.status_code == 201, medium.text
        rule = {"contact_id": contact, "entities": [entity], "critical": route}
        assert api.post("/rules", json=rule).status_code == 201
        got = []
        for check in ("c1", "c2", "c3"):
            _event(api, entity, check, "critical")
            got.append(_shape(_next(rx, pipeline)))
        assert got == ["problem:c1", "rollup[c1,c2]", "rollup[c1,c2,c3]"], pipeline.log_tail()

        now = time.time()
        windows = {}
        for check in ("c1", "c2"):
            m = api.post(
                f"/checks/{entity}/{check}/maintenances",
                json={"start_time": now - 1, "end_time": now + 3600, "summary": "disk swap"},
            )
            assert m.status_code == 201, m.text
            windows[check] = m.json()["id"]
        _event(api, entity, "c3", "critical")
        after = sorted(_shape(_next(rx, pipeline)) for _ in range(2))
        assert after == ["problem:c3", "rollup_recovery[c3]"], pipeline.log_tail()

        gone = api.delete(f"/checks/{entity}/c1/maintenances/{windows['c1']}")
        assert gone.status_code == 204, gone.text
        _event(api, entity, "c3", "critical")
        assert _shape(_next(rx, pipeline)) == "rollup[c1,c3]", pipeline.log_tail()
        api.delete(f"/contacts/{contact}")


def test_none_strategy_blackhole_and_ack_text(pipeline: Pipeline) -> None:  # noqa: F811
    entity = f"s{uuid.uuid4().hex[:8]}"
    with Receiver() as rx, pipeline.api as api:
        contact = api.post("/contacts", json={"name": f"slack-{entity}"}).json()["id"]
        medium = api.post(
            "/media",
            json={"contact_id": contact, "type": "slack", "address": rx.url, "interval": 0},
        )
        assert medium.status_code == 201, medium.text
        rules = [
            {"entities": [entity], "critical": {"media": ["slack"]}},
            # Blackhole everything except checks tagged buf.
            {"tags": ["buf"], "tag_strategy": "none", "critical": {"blackhole": True}},
        ]
        ids = []
        for rule in rules:
            made = api.post("/rules", json={"contact_id": contact, **rule})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        _event(api, entity, "quiet", "critical")
        _event(api, entity, "loud", "critical", tags=["buf"])
        problem = _next(rx, pipeline)
        assert problem["attachments"][0]["title"] == f"Problem: '{entity}:loud' is Critical"
        _wait_state(api, entity, "quiet", "critical")
        _event(
            api,
            entity,
            "loud",
            "acknowledgement",
            summary="on it, disk replaced",
            acknowledged_by="alice",
        )
        ack = _next(rx, pipeline)
        assert rx.wait_for(lambda _d: True, 1) is None, "the blackholed check got through"
        # The notifier's recorded reason names both rules (explain crosses the workers too).
        routes = _routes(api, entity, "quiet")
        api.delete(f"/contacts/{contact}")
    hole, slack_rule = (ids[1], ids[0])
    want = f"blackholed by rule {hole} for critical; rule {slack_rule}: matched, routes critical to slack"
    assert ("blackhole", want) in routes, routes
    [att] = ack["attachments"]
    assert att["title"] == f"Acknowledged: '{entity}:loud' (Critical) by alice"
    assert att["text"] == "on it, disk replaced"
    assert {f["title"]: f["value"] for f in att["fields"]}["Acknowledged by"] == "alice"


def test_rollup_of_warning_and_unknown_is_coloured_warning(pipeline: Pipeline) -> None:  # noqa: F811
    """One severity order across processor, notifier and the Slack gateway."""
    entity = f"w{uuid.uuid4().hex[:8]}"
    route = {"media": ["slack"]}
    with Receiver() as rx, pipeline.api as api:
        contact = api.post("/contacts", json={"name": f"order-{entity}"}).json()["id"]
        medium = api.post(
            "/media",
            json={
                "contact_id": contact,
                "type": "slack",
                "address": rx.url,
                "interval": 0,
                "rollup_threshold": 2,
            },
        )
        assert medium.status_code == 201, medium.text
        rule = {"contact_id": contact, "entities": [entity], "warning": route, "unknown": route}
        assert api.post("/rules", json=rule).status_code == 201
        _event(api, entity, "u", "unknown")
        first = _next(rx, pipeline)
        _event(api, entity, "w", "warning")
        rolled = _next(rx, pipeline)
        api.delete(f"/contacts/{contact}")
    assert first["attachments"][0]["title"] == f"Problem: '{entity}:u' is Unknown"
    [att] = rolled["attachments"]
    assert att["title"] == "Problem summary: 2 failing checks"
    assert att["color"] == "#daa038"  # warning's colour: warning > unknown
    assert att["text"].splitlines() == [f"{entity}:w (Warning)", f"{entity}:u (Unknown)"]


def test_unscheduled_maintenance_silences_a_healthy_check(pipeline: Pipeline) -> None:  # noqa: F811
    """API -> processor -> notifier: a check silenced while ok stays quiet when it fails."""
    entity = f"m{uuid.uuid4().hex[:8]}"
    with Receiver() as rx, pipeline.api as api:
        contact = api.post("/contacts", json={"name": f"maint-{entity}"}).json()["id"]
        medium = api.post(
            "/media",
            json={"contact_id": contact, "type": "webhook", "address": rx.url, "interval": 0},
        )
        assert medium.status_code == 201, medium.text
        rule = {"contact_id": contact, "entities": [entity], "critical": {"media": ["webhook"]}}
        assert api.post("/rules", json=rule).status_code == 201
        for check in ("quiet", "loud"):
            _event(api, entity, check, "ok")
            _wait_state(api, entity, check, "ok")
        window = api.post(
            f"/checks/{entity}/quiet/maintenances",
            json={"type": "unscheduled", "end_time": time.time() + 3600, "summary": "upgrade"},
        )
        assert window.status_code == 201, window.text
        _event(api, entity, "quiet", "critical")
        _event(api, entity, "loud", "critical")
        got = _next(rx, pipeline)
        _wait_state(api, entity, "quiet", "critical")
        extra = rx.wait_for(lambda _d: True, 1)
        api.delete(f"/contacts/{contact}")
    assert got["check"] == "loud" and extra is None, (got, extra)
