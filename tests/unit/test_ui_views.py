"""The dashboard's pure parts: form parsing, filters, counts, timeline, dry run, sessions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from services.api.ui import session
from services.api.ui.views import (
    CheckFilter,
    InvalidForm,
    contact_views,
    delivery_tally,
    filter_checks,
    fmt_duration,
    overview,
    parse_duration,
    parse_maintenance,
    timeline,
)
from shared.checks import CheckDetail, CheckStateEntry, Maintenance
from shared.delivery_log import DeliveryLogEntry
from shared.directory import DirectorySnapshot
from shared.explain.preview import who_would_be_notified
from shared.keys import check_id
from shared.models import Contact, Medium, Rule, SeverityRoute, TimeRecurrence

# Wednesday 2026-11-25 12:00 UTC
NOON_WED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


def chk(entity: str, check: str, state: str | None, **kw: object) -> CheckDetail:
    base: dict[str, object] = dict(
        id=check_id(entity, check),
        entity=entity,
        check=check,
        state=state,
        summary=f"{check} summary",
        details="",
        last_update=kw.pop("last_update", 100.0),
        enabled=True,
        failing=state not in (None, "ok"),
        tags=(),
    )
    base.update(kw)
    return CheckDetail(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90", 90, id="bare seconds"),
        pytest.param("30m", 1800, id="minutes"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param("1d 12h", 129600, id="days and hours"),
        pytest.param(" 1h30m ", 5400, id="compact with spaces around"),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("soon", id="words"),
        pytest.param("0m", id="zero"),
        pytest.param("400d", id="over a year"),
        pytest.param("-5m", id="negative"),
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidForm) as err:
        parse_duration(text)
    assert err.value.field == "duration"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(" " * 9_999 + "x", id="blanks then x"),
        pytest.param("1" + " " * 9_998 + "x", id="number, blanks, x"),
        pytest.param("1d" + " " * 9_997 + "x", id="unit, blanks, x"),
        pytest.param("1 " * 5_000, id="numbers and blanks"),
        pytest.param("9" * 10_000, id="digits"),
    ],
)
def test_parse_duration_answers_long_input_quickly(text: str) -> None:
    """The old pattern backtracked exponentially on blanks (110 of them: 7 s)."""
    assert len(text) >= 9_999
    started = time.perf_counter()
    with pytest.raises(InvalidForm):
        parse_duration(text)
    assert time.perf_counter() - started < 0.05


def test_duration_pattern_is_linear_without_the_length_cap() -> None:
    """The rewritten pattern itself stays fast; the cap is a second line of defence."""
    from services.api.ui.views import _DURATION

    for text in ("1" + " " * 9_998 + "x", "1d " * 3_000 + "x", "1 " * 5_000):
        started = time.perf_counter()
        assert _DURATION.fullmatch(text) is None
        assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        pytest.param("2026-11-25T13:00", "2026-11-25T12:30", "end", id="end before start"),
        pytest.param("2026-11-25T10:00", "2026-11-25T11:00", "end", id="already over"),
        pytest.param("tomorrow", "2026-11-25T14:00", "start", id="unreadable start"),
    ],
)
def test_parse_maintenance_refuses(start: str, end: str, field: str) -> None:
    with pytest.raises(InvalidForm) as err:
        parse_maintenance(start, end, NOON_WED)
    assert err.value.field == field


def test_parse_maintenance_reads_utc() -> None:
    t0, t1 = parse_maintenance("2026-11-25T13:00", "2026-11-25T14:30", NOON_WED)
    assert (t0 - NOON_WED, t1 - NOON_WED) == (3600, 9000)


def test_parse_maintenance_takes_a_duration_from_now_or_from_a_start() -> None:
    assert parse_maintenance("", "", NOON_WED, "2h") == (NOON_WED, NOON_WED + 7200)
    t0, t1 = parse_maintenance("2026-11-25T13:00", "", NOON_WED, "30m")
    assert (t0 - NOON_WED, t1 - NOON_WED) == (3600, 5400)
    with pytest.raises(InvalidForm) as err:
        parse_maintenance("", "", NOON_WED, "soon")
    assert err.value.field == "duration"
    with pytest.raises(InvalidForm) as err:
        parse_maintenance("", "", NOON_WED, "")
    assert err.value.field == "duration"


def test_times_are_time_elements_in_utc_for_the_browser_to_localise() -> None:
    from services.api.ui.views import time_tag

    html = str(time_tag(NOON_WED))
    assert html.startswith('<time datetime="2026-11-25T12:00:00Z"')
    assert 'title="2026-11-25 12:00:00 UTC">2026-11-25 12:00:00 UTC</time>' in html
    assert str(time_tag(None)) == "—"


CHECKS = [
    chk("web1", "http", "warning", tags=("role=web",), last_update=300.0),
    chk("db1", "disk", "critical", tags=("role=db",), last_update=200.0),
    chk("web1", "ping", "ok", last_update=100.0),
    chk("web2", "ping", "critical", last_update=400.0),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, ["db1:disk", "web2:ping", "web1:http", "web1:ping"], id="worst first"),
        pytest.param({"state": "failing"}, ["db1:disk", "web2:ping", "web1:http"], id="failing"),
        pytest.param({"state": "critical", "entity": "web2"}, ["web2:ping"], id="state+entity"),
        pytest.param({"tag": "role=web"}, ["web1:http"], id="tag"),
        pytest.param({"q": "PING"}, ["web2:ping", "web1:ping"], id="search ignores case"),
        pytest.param({"q": "role=db"}, ["db1:disk"], id="search finds tags"),
        pytest.param(
            {"sort": "last_update"},
            ["web2:ping", "web1:http", "db1:disk", "web1:ping"],
            id="newest",
        ),
        pytest.param(
            {"sort": "entity", "dir": "desc"},
            ["web2:ping", "web1:http", "web1:ping", "db1:disk"],
            id="entity descending, ties by check",
        ),
        pytest.param(
            {"state": "bogus", "sort": "nope"},
            ["db1:disk", "web2:ping", "web1:http", "web1:ping"],
            id="bad params ignored",
        ),
    ],
)
def test_filter_checks(params: dict[str, str], expected: list[str]) -> None:
    rows = filter_checks(CHECKS, CheckFilter.of(params))
    assert [f"{c.entity}:{c.check}" for c in rows] == expected


def test_overview_leaves_acked_maintained_and_disabled_out_of_unacknowledged() -> None:
    disabled = chk("db2", "disk", "critical", enabled=False)
    m = Maintenance(id="m", check_id=check_id("web1", "http"), start_time=0, end_time=1e10)
    a = Maintenance(id="a", check_id=check_id("db1", "disk"), start_time=0, end_time=1e10)
    ov = overview([*CHECKS, disabled], {a.check_id: a}, {m.check_id: m})
    assert ov.by_state == {"ok": 1, "warning": 1, "critical": 3, "unknown": 0}
    assert [f"{c.entity}:{c.check}" for c in ov.unacknowledged] == ["web2:ping"]
    assert [c.check for c in ov.in_maintenance] == ["http"]
    assert (ov.failing, ov.disabled, ov.total) == (4, 1, 5)


def entry(mtype: str, outcome: str, t: float) -> DeliveryLogEntry:
    return DeliveryLogEntry(
        delivery_id="d", notification_id="n", medium_id="m", medium_type=mtype, address="a",
        type="problem", entity="e", check="c", outcome=outcome, attempts=1, latency_ms=1, time=t,  # type: ignore[arg-type]
    )  # fmt: skip


def test_delivery_tally_counts_the_last_hour_per_medium() -> None:
    log = [  # newest first, as the log is kept
        entry("webhook", "delivered", 5000),
        entry("email", "failed", 4900),
        entry("webhook", "retry", 4800),
        entry("webhook", "dead", 4700),
        entry("webhook", "delivered", 1000),  # older than the hour: not counted
    ]
    tallies = {t.medium_type: t for t in delivery_tally(log, since=5000 - 3600)}
    assert (
        tallies["webhook"].delivered,
        tallies["webhook"].retry,
        tallies["webhook"].problems,
    ) == (1, 1, 1)
    assert tallies["email"].problems == 1


def state(s: str, t: float) -> CheckStateEntry:
    return CheckStateEntry(id=s, state=s, timestamp=t, last_update=t, summary="", details="", count=1, notified=False)  # fmt: skip


def test_timeline_spans_from_first_record_to_now() -> None:
    segs = timeline(
        [state("critical", 900), state("warning", 600), state("ok", 0)], now=1200, width=600
    )
    assert [(s.state, s.x, s.width) for s in segs] == [
        ("ok", 0, 300), ("warning", 300, 150), ("critical", 450, 150),
    ]  # fmt: skip
    assert "for 5m" in segs[1].label
    assert timeline([], now=1) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [pytest.param(0, "0s", id="zero"), pytest.param(3725, "1h 2m", id="two units"), pytest.param(90061, "1d 1h", id="days")],
)  # fmt: skip
def test_fmt_duration(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text


def snapshot() -> DirectorySnapshot:
    hours = TimeRecurrence(days=(1, 2, 3, 4, 5), start="08:00", end="16:00")
    return DirectorySnapshot(
        version=1,
        contacts={
            "c1": Contact(id="c1", name="Ann", timezone="Europe/Oslo"),
            "c2": Contact(id="c2", name="Bob", timezone="America/New_York"),
            "c3": Contact(id="c3", name="Cid"),
        },
        media={
            "m1": Medium(id="m1", contact_id="c1", type="webhook", address="https://h.example/s3cret"),
            "m2": Medium(id="m2", contact_id="c2", type="email", address="bob@example.com"),
            "m3": Medium(id="m3", contact_id="c3", type="email", address="cid@example.com"),
        },
        rules={
            "r1": Rule(id="r1", contact_id="c1", time_restrictions=(hours,), critical=SeverityRoute(media=("webhook",))),
            "r2": Rule(id="r2", contact_id="c2", time_restrictions=(hours,), critical=SeverityRoute(media=("email",))),
            "r3": Rule(id="r3", contact_id="c3", entities=("db1",), critical=SeverityRoute(blackhole=True)),
        },
    )  # fmt: skip


def test_dry_run_applies_time_restrictions_in_each_contacts_zone() -> None:
    # Wednesday 12:00 UTC is 13:00 in Oslo (inside 08-16) and 07:00 in New York (outside).
    dry = who_would_be_notified(snapshot(), chk("db1", "disk", "critical"), NOON_WED)
    assert dry.targets == [("Ann", "webhook", "https://h.example/***")]
    reasons = dict(dry.suppressed)
    assert "America/New_York excludes Wed 07:00" in reasons["Bob"]
    assert "blackholed" in reasons["Cid"]


def test_dry_run_of_a_healthy_check_asks_as_critical() -> None:
    dry = who_would_be_notified(snapshot(), chk("web1", "ping", "ok"), NOON_WED)
    assert dry.severity == "critical" and [t[0] for t in dry.targets] == ["Ann"]


def test_contact_views_render_rules_in_words() -> None:
    views = {v.contact.name: v for v in contact_views(snapshot())}
    assert views["Ann"].rules[0].spans == ["Mon-Fri 08:00-16:00 (Europe/Oslo)"]
    assert views["Ann"].media == [("webhook", "https://h.example/***", 900, None)]
    assert dict(views["Cid"].rules[0].routes)["critical"] == "blackhole"
    assert dict(views["Cid"].rules[0].routes)["warning"] == "nothing"


# --------------------------------------------------------------------------- sessions


def test_session_round_trip_and_expiry() -> None:
    cookie = session.new_session("tok", now=1000)
    nonce = session.session_nonce("tok", cookie, now=1001)
    assert nonce is not None
    assert session.session_nonce("tok", cookie, now=1000 + session.SESSION_S) is None
    assert session.session_nonce("other-token", cookie, now=1001) is None
    assert session.csrf_ok("tok", nonce, session.csrf_token("tok", nonce))
    assert not session.csrf_ok("tok", nonce, session.csrf_token("tok", "another-session"))
    assert not session.csrf_ok("tok", nonce, None)


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("99999999999.nonce.deadbeef", id="bad signature"),
    ],
)
def test_forged_sessions_are_refused(cookie: str | None) -> None:
    assert session.session_nonce("tok", cookie, now=0) is None


def test_extended_expiry_breaks_the_signature() -> None:
    expiry, nonce, sig = session.new_session("tok", now=1000).split(".")
    assert session.session_nonce("tok", f"{int(expiry) + 10**6}.{nonce}.{sig}", now=1001) is None
