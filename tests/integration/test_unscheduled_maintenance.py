"""Unscheduled maintenance on any check: API, CLI and the processor's verdict.

A healthy check is silenced ahead of planned work; its failure inside the
window notifies nobody; listings show both kinds (ended ones on request) and
each can be ended early, an acknowledgement placed with a past event time too.
"""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from services.api.context import ApiContext
from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names
from shared.check_store import CheckStore
from shared.explain.reading import read_records
from shared.explain.records import EventRecord
from shared.keys import Keys, check_id
from shared.store import connect_redis
from tests.integration.cli_api import Cli, cli
from tests.integration.test_processor_worker import ev, message
from tests.integration.test_ui_pages import anon, client, csrf_of, ctx, seed_check

pytestmark = pytest.mark.integration
__all__ = ["anon", "cli", "client", "ctx"]


def _processor(cli: Cli):  # type: ignore[no-untyped-def]
    s = cli.settings
    r = connect_redis(s)
    handle = make_handler(
        r, Names(s.namespace), Keys(s.namespace), s, ProcessorMetrics(CollectorRegistry())
    )

    def send(check: str, state: str, t: float, **kw: object) -> EventRecord | None:
        """Process one event; the processor's record of it (None: a routine ok, not recorded)."""
        e = ev("web1", check, t, state, initial_failure_delay=0, repeat_failure_delay=0, **kw)
        handle([message(s, [e])])
        records = read_records(r, Keys(s.namespace), check_id("web1", check))
        last = records[-1] if records else None
        assert last is None or isinstance(last, EventRecord)
        return last if last is not None and last.event_id == e.id else None

    return send


def test_silence_a_healthy_check_ahead_of_work(cli: Cli) -> None:
    send = _processor(cli)
    now = time.time()
    send("http", "ok", now - 30)
    with cli.api as api:
        ack = api.post("/checks/web1/http/acknowledgements", json={"summary": "x"})
        assert ack.status_code == 409  # acknowledging stays for failing checks only
        made = api.post(
            "/checks/web1/http/maintenances",
            json={"type": "unscheduled", "end_time": now + 3600, "summary": "upgrade"},
        )
        assert made.status_code == 201, made.text
        m = made.json()
        assert (m["type"], m["active"], m["summary"]) == ("unscheduled", True, "upgrade")
        later = api.post(
            "/checks/web1/http/maintenances",
            json={"start_time": now + 7200, "end_time": now + 9000, "summary": "disk swap"},
        )
        assert later.status_code == 201 and later.json()["type"] == "scheduled"
        bad = api.post(
            "/checks/web1/http/maintenances",
            json={"type": "unscheduled", "start_time": now - 20, "end_time": now - 10},
        )
        assert bad.status_code == 422 and bad.json()["field"] == "end_time"
        wrong = api.post(
            "/checks/web1/http/maintenances", json={"type": "forever", "end_time": now + 60}
        )
        assert wrong.status_code == 400

    # The failure inside the window notifies nobody.
    record = send("http", "critical", now + 1)
    assert record is not None and record.notification_id is None
    assert record.filter == "unscheduled_maintenance", record

    listed = cli.json("maintenance", "list", "web1:http")
    assert [(x["type"], x["summary"]) for x in listed] == [
        ("unscheduled", "upgrade"),
        ("scheduled", "disk swap"),
    ]
    ended = cli("maintenance", "delete", "web1:http", m["id"])
    assert ended.exit_code == 0 and "ended" in ended.output
    assert [x["type"] for x in cli.json("maintenance", "list", "web1:http")] == ["scheduled"]
    past = cli.json("maintenance", "list", "web1:http", "--past")
    gone = next(x for x in past if x["id"] == m["id"])
    assert gone["active"] is False and gone["end_time"] <= time.time()

    # Ended early: the next failure notifies.
    again = send("http", "critical", time.time() + 1)
    assert again is not None and again.notification_id is not None, again


def test_cli_puts_any_check_in_unscheduled_maintenance(cli: Cli) -> None:
    send = _processor(cli)
    send("disk", "ok", time.time() - 5)
    made = cli.json("maintenance", "add", "web1:disk", "--unscheduled", "--duration", "1h")
    assert made["type"] == "unscheduled" and made["active"] is True
    record = send("disk", "warning", time.time())
    assert record is not None and record.filter == "unscheduled_maintenance"


def test_an_ack_with_a_past_event_time_is_listed_and_endable(cli: Cli) -> None:
    send = _processor(cli)
    now = time.time()
    send("db", "critical", now - 7300)
    send("db", "acknowledgement", now - 7200, duration=14400)
    with cli.api as api:
        [window] = api.get("/checks/web1/db/maintenances").json()["items"]
        assert window["type"] == "unscheduled" and window["active"] is True
        assert window["start_time"] == pytest.approx(now - 7200)
        assert api.delete(f"/checks/web1/db/maintenances/{window['id']}").status_code == 204
        assert api.get("/checks/web1/db/maintenances").json()["items"] == []
        [ended] = api.get("/checks/web1/db/maintenances", params={"past": "true"}).json()["items"]
        assert ended["id"] == window["id"] and ended["end_time"] < now + 60
        assert api.get("/checks/web1/db").json()["acknowledgement"] is None
        missing = api.delete("/checks/web1/db/maintenances/nope")
        assert missing.status_code == 404


def test_dashboard_silences_a_healthy_check_and_ends_it_now(
    client: TestClient,  # type: ignore[type-arg]
    ctx: ApiContext,
) -> None:
    seed_check(ctx.redis, ctx.keys, "web1", "http", "ok", time.time())
    csrf = csrf_of(client.get("/ui/check?entity=web1&check=http").text)
    base = {"csrf": csrf, "entity": "web1", "check": "http"}
    r = client.post(
        "/ui/check/maintenance",
        data={**base, "duration": "2h", "summary": "upgrade", "type": "unscheduled"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    assert "<td>unscheduled</td>" in page and "upgrade" in page and "End now" in page
    [window] = CheckStore(ctx.redis, ctx.keys).maintenances("web1", "http", time.time())
    assert window.type == "unscheduled" and window.active
    ended = client.post(
        "/ui/check/maintenance/end", data={**base, "id": window.id}, follow_redirects=False
    )
    assert ended.status_code == 303
    assert CheckStore(ctx.redis, ctx.keys).maintenances("web1", "http", time.time()) == []
    [past] = CheckStore(ctx.redis, ctx.keys).maintenances("web1", "http", time.time(), past=True)
    assert past.id == window.id and not past.active
    # Still listed on the page as ended, without an end button.
    page = client.get("/ui/check?entity=web1&check=http").text
    assert "upgrade" in page and "End now" not in page
