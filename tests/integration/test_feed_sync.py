"""Calendar feed re-sync: a layer imported from a feed URL follows the feed (docs/oncall.md).

A local HTTP server serves the .ics; the test changes what it serves and
re-syncs through the API, then checks the clear errors of a feed that is
unreachable, answers 404, or is not a calendar (the layer is left as it was),
and the scheduler's periodic sync (lease holder only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from services.api.context import ApiContext
from services.scheduler.worker import Scheduler, SchedulerMetrics
from shared.config import Settings
from shared.destinations import Allowlist
from shared.feed_sync import fetcher
from shared.keys import Keys
from shared.media import validate_medium_settings
from shared.oncall_store import OncallStore
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_client
from tests.conftest import settings_env

pytestmark = pytest.mark.integration

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def rotation(names: list[str], hours: int = 24) -> str:
    """One recurring event per person: a gapless rotation of ``hours`` shifts whose first
    member's shift began on the last whole hour (so a sync from now starts with them)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tocsin test//EN"]
    for i, who in enumerate(names):
        start = base() + timedelta(hours=hours * i)
        end = start + timedelta(hours=hours)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{who}-{i}@test",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{end:%Y%m%dT%H%M%SZ}",
            f"RRULE:FREQ=HOURLY;INTERVAL={hours * len(names)}",
            f"SUMMARY:{who} on call",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n"


def base() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class Feed:
    """What the local server answers: status and body, changeable by the test."""

    def __init__(self) -> None:
        self.status = 200
        self.body = ""
        self.hits = 0


@pytest.fixture
def feed() -> Iterator[tuple[Feed, str]]:
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            data = state.body.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/team.ics"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    s = msgspec.structs.replace(settings, api_token=TOKEN)
    ctx = ApiContext(
        settings=s,
        redis=connect_redis(s),
        sender=Sender(s),
        validate_medium_settings=validate_medium_settings,
    )
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def _contact(c: TestClient, name: str) -> str:  # type: ignore[type-arg]
    got = c.post("/contacts", json={"name": name}, headers=AUTH)
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def _schedule(c: TestClient, member: str) -> str:  # type: ignore[type-arg]
    body = {
        "name": f"ops-{time.time_ns()}",
        "layers": [{"members": [member], "shift_hours": 168, "handoff": "2026-01-05T09:00"}],
    }
    got = c.post("/schedules", json=body, headers=AUTH)
    assert got.status_code == 201, got.text
    return str(got.json()["id"])


def test_a_feed_layer_follows_its_feed_and_keeps_it_when_the_feed_fails(
    client: TestClient,  # type: ignore[type-arg]
    feed: tuple[Feed, str],
) -> None:
    state, url = feed
    kari, ola, per, lead = (_contact(client, n) for n in ("Kari", "Ola", "Per", "Lead"))
    sid = _schedule(client, lead)
    state.body = rotation(["Kari", "Ola"])
    got = client.post(f"/schedules/{sid}/import-ical", json={"url": url}, headers=AUTH)
    assert got.status_code == 201, got.text
    assert got.json()["layer"]["members"] == [kari, ola]
    assert got.json()["layer"]["feed_url"] == url
    override = client.post(
        f"/schedules/{sid}/overrides",
        json={"contact_id": lead, "start": time.time() + 86400, "end": time.time() + 90000},
        headers=AUTH,
    )
    assert override.status_code == 201, override.text

    # The team changes its calendar: Per joins, 12-hour shifts.
    state.body = rotation(["Per", "Kari", "Ola"], hours=12)
    synced = client.post(f"/schedules/{sid}/sync", headers=AUTH)
    assert synced.status_code == 200, synced.text
    [layer] = synced.json()["layers"]
    assert (layer["layer"], layer["ok"], layer["url"]) == (1, True, url)
    assert (layer["members"], layer["shift_hours"]) == ([per, kari, ola], 12)
    sched = client.get(f"/schedules/{sid}", headers=AUTH).json()
    assert sched["layers"][0]["members"] == [lead]  # the hand-made layer is untouched
    assert "feed_url" not in sched["layers"][0]
    assert sched["layers"][1]["members"] == [per, kari, ola]
    assert sched["layers"][1]["feed_url"] == url
    assert sched["layers"][1]["name"] == "imported from a calendar"
    assert len(sched["overrides"]) == 1  # overrides survive a sync
    # The layer's hand-off starts Per's shift (member 0); 12 h shifts rotate Per, Kari, Ola.
    handoff = datetime.fromisoformat(sched["layers"][1]["handoff"]).replace(tzinfo=UTC)
    when = (handoff + timedelta(hours=12 * 3 * 20 + 12 + 1)).timestamp()
    who = client.get(f"/schedules/{sid}/oncall", params={"at": when}, headers=AUTH).json()
    assert (who["contact_id"], who["source"]) == (kari, "layer:1")

    # Both changes are on the audit record with before/after (the calendar secret hidden).
    def audited(action: str) -> dict[str, Any]:
        got = client.get("/audit", params={"action": action}, headers=AUTH).json()["items"]
        [rec] = [r for r in got if r["action"] == action]
        assert rec["target"] == f"schedule:{sid}" and rec["after"]["secret"] == ""
        return dict(rec)

    imported = audited("import_feed")
    assert len(imported["before"]["layers"]) == 1
    assert imported["after"]["layers"][1]["feed_url"] == url
    resynced = audited("sync_feeds")
    assert resynced["before"]["layers"][1]["members"] == [kari, ola]
    assert resynced["after"]["layers"][1]["members"] == [per, kari, ola]

    def sync_fails(status: int, text: str) -> None:
        bad = client.post(f"/schedules/{sid}/sync", headers=AUTH)
        assert bad.status_code == status, bad.text
        assert bad.json()["field"] == "layers[1].feed_url"
        assert text in bad.json()["error"] and url in bad.json()["error"], bad.json()
        after = client.get(f"/schedules/{sid}", headers=AUTH).json()
        assert after["layers"][1]["members"] == [per, kari, ola]  # left as it was

    state.status = 404
    sync_fails(502, "answered HTTP 404")
    state.status, state.body = 200, "this is not a calendar"
    sync_fails(422, "not an iCalendar feed")
    state.body = rotation(["Nobody Known"])
    sync_fails(422, "no shift naming a contact")


def test_feed_errors_on_import_and_a_schedule_without_feeds(
    client: TestClient,  # type: ignore[type-arg]
    feed: tuple[Feed, str],
) -> None:
    state, url = feed
    sid = _schedule(client, _contact(client, "Kari"))
    plain = client.post(f"/schedules/{sid}/sync", headers=AUTH)
    assert plain.status_code == 422 and plain.json()["field"] == "layers"
    closed = "http://127.0.0.1:9/nothing.ics"  # the discard port: connection refused
    got = client.post(f"/schedules/{sid}/import-ical", json={"url": closed}, headers=AUTH)
    assert got.status_code == 502 and got.json()["field"] == "url", got.text
    assert "unreachable" in got.json()["error"]
    both = client.post(f"/schedules/{sid}/import-ical", json={"url": url, "ics": "x"}, headers=AUTH)
    assert both.status_code == 422 and both.json()["field"] == "ics"
    state.body = "BEGIN:VCALENDAR"
    broken = client.post(f"/schedules/{sid}/import-ical", json={"url": url}, headers=AUTH)
    assert broken.status_code == 422 and broken.json()["field"] == "url", broken.text
    ftp = client.post(f"/schedules/{sid}/import-ical", json={"url": "ftp://x/y"}, headers=AUTH)
    assert ftp.status_code == 422 and ftp.json()["field"] == "url", ftp.text


def test_the_guard_refuses_a_private_feed_unless_allowed(feed: tuple[Feed, str]) -> None:
    state, url = feed
    state.body = rotation(["Kari", "Ola"])
    with pytest.raises(Exception, match="not a globally routable address"):
        fetcher(Allowlist.parse(()))(url)
    assert state.hits == 0
    assert "BEGIN:VCALENDAR" in fetcher(Allowlist.parse(("127.0.0.0/8",)))(url)


def test_the_lease_holding_scheduler_resyncs_feeds(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    feed: tuple[Feed, str],
) -> None:
    state, url = feed
    kari, ola = _contact(client, "Kari"), _contact(client, "Ola")
    sid = _schedule(client, kari)
    state.body = rotation(["Kari", "Ola"])
    assert client.post(f"/schedules/{sid}/import-ical", json={"url": url}, headers=AUTH).is_success
    state.body = rotation(["Ola", "Kari"])
    r = connect_redis(settings)
    registry = CollectorRegistry()
    scheduler = Scheduler(settings, r, Sender(settings), SchedulerMetrics(registry))
    fetch = fetcher(Allowlist.parse(settings.destination_allow))
    hits = state.hits
    assert scheduler.sync_feeds(fetch, time.time()) == {}  # no lease yet: a standby syncs nothing
    assert state.hits == hits
    scheduler.tick(time.time())  # takes the lease
    results = scheduler.sync_feeds(fetch, time.time())
    assert [(x.layer, x.ok, x.members) for x in results[sid]] == [(1, True, (ola, kari))]
    stored = OncallStore(r, Keys(settings.namespace)).get_schedule(sid)
    assert stored is not None and stored.layers[1].members == (ola, kari)
    state.status = 500
    [failed] = scheduler.sync_feeds(fetch, time.time())[sid]
    assert not failed.ok and failed.unreachable and "HTTP 500" in failed.error
    assert registry.get_sample_value("tocsin_scheduler_feed_syncs_total", {"outcome": "ok"}) == 1
    assert (
        registry.get_sample_value("tocsin_scheduler_feed_syncs_total", {"outcome": "failed"}) == 1
    )
    scheduler.sender.close()


def test_a_running_scheduler_resyncs_feeds_periodically(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    feed: tuple[Feed, str],
) -> None:
    """`tocsin worker scheduler` with TOCSIN_ONCALL_FEED_SYNC_S=1: the feed changes and the
    stored layer follows without anyone calling the API."""
    state, url = feed
    kari, ola = _contact(client, "Kari"), _contact(client, "Ola")
    sid = _schedule(client, kari)
    state.body = rotation(["Kari", "Ola"])
    assert client.post(f"/schedules/{sid}/import-ical", json={"url": url}, headers=AUTH).is_success
    state.body = rotation(["Ola", "Kari"])
    env = settings_env(settings) | {
        "TOCSIN_ONCALL_FEED_SYNC_S": "1",
        "TOCSIN_SCHEDULER_TICK_MS": "100",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    store = OncallStore(connect_redis(settings), Keys(settings.namespace))
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.scheduler"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        members: tuple[str, ...] = ()
        while time.monotonic() < deadline:
            s = store.get_schedule(sid)
            members = s.layers[1].members if s is not None else ()
            if members == (ola, kari):
                break
            time.sleep(0.1)  # polling Redis for the scheduler's write
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert members == (ola, kari)
    assert state.hits >= 2  # the import, then the scheduler
