"""``GET /checks/{e}/{c}/explain``, ``POST /simulate``, ``tocsin explain`` and ``tocsin simulate``.

Events go through the real processor and notifier handlers in-process (see
``test_explain_dry_run.Pipeline``), so the timeline shows what they recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
import redis
from click.testing import Result
from litestar.testing import TestClient
from typer.testing import CliRunner

from benchmarks.ports import free_port as _free_port
from services.api.context import ApiContext
from services.cli.explain import timeline_rows
from services.cli.main import app
from shared.config import Settings
from shared.delivery_log import DeliveryLogEntry, append_entries
from shared.directory import Directory
from shared.explain.display import humanize
from shared.explain.dry_run import who_now
from shared.keys import Keys
from shared.models import CheckEvent, Contact, Medium, Rule, SeverityRoute, TimeRecurrence
from shared.sender import Sender
from shared.store import connect_redis
from tests.api_app import api_app, api_client, serving
from tests.conftest import settings_env
from tests.integration.test_explain_dry_run import Pipeline, snapshot

pytestmark = pytest.mark.integration

TOKEN = "explain-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAT = datetime(2026, 1, 17, 9, 3, tzinfo=UTC).timestamp()  # Sat 10:03 in Oslo
MON = datetime(2026, 1, 19, 9, 0, tzinfo=UTC).timestamp()  # Mon 10:00 in Oslo
WEBHOOK = SeverityRoute(media=("webhook",))


def event(t: float, state: str = "critical", eid: str | None = None) -> CheckEvent:
    return CheckEvent(
        id=eid or f"e{t}",
        entity="web1",
        check="http",
        type="service",
        state=state,
        time=t,
        received=t,
    )


@pytest.fixture
def s(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, api_token=TOKEN)


@pytest.fixture
def story(s: Settings) -> redis.Redis:
    """Alice always, Bob Mon-Fri 08-16 Oslo; a failure held by the initial delay, then paged."""
    r = connect_redis(s)
    keys = Keys(s.namespace)
    d = Directory(r, keys)
    d.put_contact(Contact(id="alice", name="Alice"))
    d.put_contact(Contact(id="bob", name="Bob", timezone="Europe/Oslo"))
    d.put_medium(
        Medium(id="a-web", contact_id="alice", type="webhook", address="http://x/a", interval=600)
    )
    d.put_medium(Medium(id="b-web", contact_id="bob", type="webhook", address="http://x/b"))
    d.put_rule(Rule(id="1", contact_id="alice", critical=WEBHOOK))
    workdays = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00")
    d.put_rule(Rule(id="7", contact_id="bob", time_restrictions=(workdays,), critical=WEBHOOK))
    pipe = Pipeline(s, r)
    assert pipe.send(event(SAT)) == []
    assert pipe.send(event(SAT + 12)) == []
    assert pipe.send(event(SAT + 40)) == [("alice", "a-web", "problem")]
    pipe_ = r.pipeline()
    append_entries(
        pipe_,
        keys,
        [
            DeliveryLogEntry(
                delivery_id="d1",
                notification_id="n1",
                medium_id="a-web",
                medium_type="webhook",
                address="http://x/***",
                type="problem",
                entity="web1",
                check="http",
                outcome="delivered",
                attempts=2,
                latency_ms=120.4,
                time=SAT + 41,
                contact_id="alice",
            )
        ],
    )
    pipe_.execute()
    return r


@pytest.fixture
def client(s: Settings, story: redis.Redis) -> Iterator[TestClient]:  # type: ignore[type-arg]
    ctx = ApiContext(settings=s, redis=story, sender=Sender(s))
    with api_client(ctx) as c:
        yield c
    ctx.sender.close()


def test_explain_timeline(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.get("/checks/web1/http/explain", params={"since": "all"}, headers=AUTH)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["kind"] for i in items] == ["event", "event", "event", "notification", "delivery"]
    held = items[1]
    assert (held["filter"], held["outcome"]) == ("initial_failure_delay", "block")
    assert held["reason"] == "initial_failure_delay: failing for 12 s of 30"
    sent = items[2]
    assert (sent["filter"], sent["outcome"], sent["notification_type"]) == (
        "state_change",
        "notify",
        "problem",
    )
    routes = {x["contact"]: x for x in items[3]["routes"]}
    assert routes["Alice"]["verdict"] == "deliver" and routes["Alice"]["medium_type"] == "webhook"
    assert routes["Bob"]["code"] == "time_restriction"
    assert routes["Bob"]["text"] == (
        "time restriction Mon-Fri 08:00-16:00 Europe/Oslo excludes Sat 10:03"
    )
    assert items[4]["text"] == "delivered in 120 ms after 2 attempts"


def test_explain_since_and_errors(client: TestClient) -> None:  # type: ignore[type-arg]
    recent = client.get("/checks/web1/http/explain", params={"since": "1h"}, headers=AUTH)
    assert recent.status_code == 200 and recent.json()["items"] == []  # all of it is older
    bad = client.get("/checks/web1/http/explain", params={"since": "soon"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    assert client.get("/checks/web1/http/explain").status_code == 401


def test_simulate_changes_nothing_and_explains_everyone(
    client: TestClient,  # type: ignore[type-arg]
    s: Settings,
    story: redis.Redis,
) -> None:
    keys = Keys(s.namespace)
    before = snapshot(story, keys)
    body = {"event": {"entity": "web1", "check": "http", "state": "critical"}, "time": SAT + 200}
    r = client.post("/simulate", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["would_notify"] and dry["notification_type"] == "problem"
    assert dry["processor"]["filter"] == "repeat_failure_delay"
    assert "notified 160 s ago >= 60" in dry["processor"]["reason"]
    routes = {x["contact"]: x for x in dry["notifier"]["routes"]}
    assert routes["Alice"]["code"] == "interval"
    assert f"blocked until {SAT + 40 + 600:.0f}" in routes["Alice"]["text"]
    assert routes["Bob"]["code"] == "time_restriction"
    assert dry["recipients"] == []

    monday = client.post("/simulate", json={**body, "time": MON}, headers=AUTH).json()
    assert sorted((x["contact"], x["type"]) for x in monday["recipients"]) == [
        ("Alice", "problem"),
        ("Bob", "problem"),
    ]
    held = client.post("/simulate", json={**body, "time": SAT + 50}, headers=AUTH).json()
    assert (
        not held["would_notify"] and "notified 10 s ago, repeat 60" in held["processor"]["reason"]
    )
    assert snapshot(story, keys) == before

    bad = client.post("/simulate", json={"event": {"entity": "web1"}}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"].startswith("event")


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(s: Settings, story: redis.Redis) -> Iterator[dict[str, str]]:
    port = _free_port()
    ctx = ApiContext(settings=s, redis=story, sender=Sender(s))
    with api_app(ctx) as app, serving(app, port, log_level="warning"):
        yield settings_env(s) | {
            "TOCSIN_API_LISTEN": f"127.0.0.1:{port}",
            "TOCSIN_API_TOKEN": TOKEN,
        }
    ctx.sender.close()


def tocsin(env: dict[str, str], *args: str) -> Result:
    """``tocsin ARGS`` in this process (the CLI's parsing, API calls, output, exit code)."""
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_explain_and_simulate(cli_env: dict[str, str]) -> None:
    raw = tocsin(cli_env, "explain", "web1:http", "--since", "all", "--json")
    assert raw.exit_code == 0, raw.stderr
    items = json.loads(raw.stdout)["items"]
    assert [i["kind"] for i in items][:3] == ["event"] * 3
    assert items[1]["reason"] == "initial_failure_delay: failing for 12 s of 30"
    bob = next(r for r in items[3]["routes"] if r["contact"] == "Bob")
    assert bob["code"] == "time_restriction" and "excludes Sat 10:03" in bob["text"]
    assert items[4]["text"] == "delivered in 120 ms after 2 attempts"
    # The table shows these rows (rich wraps them by width): times on the operator's clock.
    times = [row[0] for row in timeline_rows(items, ZoneInfo("Europe/Oslo"))]
    assert "2026-01-17 10:03:12 CET" in times
    table = tocsin(cli_env, "explain", "web1:http", "--since", "all", "--tz", "Europe/Oslo")
    assert table.exit_code == 0 and table.stdout, table.stderr

    ev = json.dumps({"entity": "web1", "check": "http", "state": "critical"})
    dry = tocsin(cli_env, "simulate", "--event", ev, "--time", str(SAT + 200), "--json")
    assert dry.exit_code == 0, dry.stderr
    body = json.loads(dry.stdout)
    assert body["would_notify"]
    routes = {r["contact"]: r for r in body["notifier"]["routes"]}
    assert routes["Bob"]["code"] == "time_restriction"
    # SAT + 640 (Alice's medium interval), as the table prints it with --tz UTC.
    assert "blocked until 2026-01-17 09:13:40 UTC" in humanize(
        routes["Alice"]["text"], ZoneInfo("UTC")
    )
    words = tocsin(cli_env, "simulate", "--event", ev, "--time", str(SAT + 200), "--tz", "UTC")
    assert words.exit_code == 0 and words.stdout, words.stderr

    bad = tocsin(cli_env, "simulate", "--event", "{not json")
    assert bad.exit_code == 2 and "--event" in bad.stderr


def test_who_now_routes_the_current_check_for_the_dashboard(
    s: Settings, story: redis.Redis
) -> None:
    keys = Keys(s.namespace)
    before = snapshot(story, keys)
    saturday = who_now(story, keys, "web1", "http", "critical", at=SAT + 100)
    assert saturday.processor is None and saturday.notification_type == "problem"
    codes = {r.contact: r.code for r in saturday.notifier.routes}  # type: ignore[union-attr]
    assert codes == {"Alice": "interval", "Bob": "time_restriction"}
    monday = who_now(story, keys, "web1", "http", "warning", at=MON)
    # Both rules route only critical: a warning reaches nobody, and says so.
    assert monday.recipients == ()
    assert {r.code for r in monday.notifier.routes} == {"no_media"}  # type: ignore[union-attr]
    assert snapshot(story, keys) == before
