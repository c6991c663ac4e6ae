"""The dashboard in a real browser (Playwright driving Debian's Chromium) over a whole pipeline.

Seeds contacts and events through the API of a running ``tocsin up``, logs in,
reads the overview (and watches it refresh by itself), filters the checks,
acknowledges a failing check and sees the acknowledgement arrive, and saves a
screenshot of every page at 1280 px and at phone width, under the test's tmp
dir and ``test-output/screenshots/``.
"""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cli.demo import Receiver
from tests.e2e.conftest import TOKEN, Pipeline

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Names the elements sticking out of the viewport, for the failure message.
WIDE_ELEMENTS = """(limit) => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > limit + 1)
  .slice(0, 8).map(e => `${e.tagName}.${e.className}#${e.id}: ${e.textContent.slice(0, 40)}`)"""

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def _wait(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


class Refusing:
    """A webhook endpoint that refuses every delivery (400), so the overview has failures."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(400)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (deploy/test.sh installs Debian's chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _seed(api: httpx.Client, ok_url: str, bad_url: str) -> None:
    """Two contacts (one on a refusing hook), rules with time restrictions, four checks."""
    route = {"media": ["webhook"]}
    ann = api.post("/contacts", json={"name": "Ann Oncall", "timezone": "Europe/Oslo"}).json()
    api.post(
        "/media",
        json={"contact_id": ann["id"], "type": "webhook", "address": ok_url, "interval": 0},
    )
    api.post("/rules", json={"contact_id": ann["id"], "critical": route, "warning": route, "unknown": route})  # fmt: skip
    bob = api.post("/contacts", json={"name": "Bob Broken", "timezone": "America/New_York"}).json()
    api.post(
        "/media",
        json={"contact_id": bob["id"], "type": "webhook", "address": bad_url, "interval": 0},
    )
    api.post(
        "/rules",
        json={
            "contact_id": bob["id"],
            "entities": ["db1"],
            "critical": route,
            "time_restrictions": [
                {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}
            ],
        },
    ).raise_for_status()
    base = {"initial_failure_delay": 0}
    now = time.time()
    events = [
        # db1:disk's history for the timeline: ok, warning, then critical now.
        {**base, "entity": "db1", "check": "disk", "state": "ok", "time": now - 1800, "tags": ["role=db"]},
        {**base, "entity": "db1", "check": "disk", "state": "warning", "time": now - 600, "summary": "85% full", "tags": ["role=db"]},
        {**base, "entity": "db1", "check": "disk", "state": "critical", "summary": "97% full", "tags": ["role=db"]},
        {**base, "entity": "web1", "check": "http", "state": "warning", "summary": "slow: 2.3 s", "tags": ["role=web"]},
        {**base, "entity": "web1", "check": "ping", "state": "ok", "summary": "rtt 0.4 ms"},
        {**base, "entity": "web2", "check": "ping", "state": "ok", "summary": "rtt 0.5 ms"},
    ]  # fmt: skip
    assert api.post("/events", json=events).status_code == 202
    _wait(lambda: api.get("/checks").json()["total"] == 4)
    _wait(lambda: api.get("/deliveries").json()["total"] >= 2)


def _shot(page: Page, tmp: Path, name: str) -> None:
    path = tmp / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, OUT / path.name)


def _login(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/")
    expect(page).to_have_url(f"{base}/ui/login?next=%2Fui")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


def test_dashboard_in_a_real_browser(pipeline: Pipeline, browser: Browser, tmp_path: Path) -> None:
    base = pipeline.settings.api_url.rstrip("/")
    refusing = Refusing()
    with Receiver() as receiver, pipeline.api as api:
        _seed(api, receiver.url, refusing.url)
        # Times are sent in UTC and shown on the browser's clock (UTC on hover).
        ctx = browser.new_context(viewport=DESKTOP, timezone_id="Europe/Oslo")
        page = ctx.new_page()
        errors: list[str] = []
        # Script errors and CSP refusals (4xx answers to refused forms are expected).
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )

        page.goto(f"{base}/ui/login")
        _shot(page, tmp_path, "01-login-1280")
        _login(page, base)

        # Overview: counts, the unacknowledged failure, the refused deliveries highlighted.
        expect(page.locator('[data-count="critical"]')).to_have_text("1")
        expect(page.locator('[data-count="warning"]')).to_have_text("1")
        expect(page.locator('[data-count="ok"]')).to_have_text("2")
        expect(page.locator('[data-count="unacknowledged"]')).to_have_text("2")
        # Bob's hook refuses (400): the delivery fails for good and is dead-lettered.
        expect(page.locator("tr.row-bad")).to_have_count(1, timeout=20_000)
        expect(page.locator('[data-count="dead-letters"]')).to_have_text("1", timeout=20_000)
        _shot(page, tmp_path, "02-overview-1280")
        stamp = page.locator("time").first
        expect(stamp).to_contain_text("Europe/Oslo")
        assert (stamp.get_attribute("title") or "").endswith(" UTC")
        # Every tile's label fits inside its tile at 1280 px ("unacknowledged" did not).
        overflow = page.evaluate(
            "[...document.querySelectorAll('.tile')].filter(t => t.scrollWidth > t.clientWidth)"
            ".map(t => t.textContent.trim())"
        )
        assert overflow == [], overflow

        # Auto-refresh: a new failure shows up without a reload.
        api.post("/events", json={"entity": "web2", "check": "ping", "state": "critical", "initial_failure_delay": 0})  # fmt: skip
        expect(page.locator('[data-count="critical"]')).to_have_text("2", timeout=20_000)
        expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

        # Checks: filter by state (the select submits by itself), then search.
        page.get_by_role("link", name="Checks", exact=True).click()
        expect(page.locator("#check-count")).to_have_text("4 of 4 checks")
        page.get_by_label("State").select_option("critical")
        expect(page.locator("#check-count")).to_have_text("2 of 4 checks")
        page.get_by_label("Search").fill("disk")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#check-count")).to_have_text("1 of 4 checks")
        _shot(page, tmp_path, "03-checks-filtered-1280")

        # Acknowledge: a bad duration is refused inline, a good one reaches the processor.
        page.get_by_role("link", name="disk").click()
        expect(page.get_by_role("heading", name="db1:disk")).to_be_visible()
        expect(page.locator("#dry-targets")).to_contain_text("Ann Oncall")
        page.get_by_label("Duration").first.fill("later")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#ack-duration-error")).to_contain_text("give a duration")
        _shot(page, tmp_path, "04-check-ack-error-1280")
        page.get_by_label("Duration").first.fill("2h")
        page.get_by_label("Comment").fill("looking at it")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("status")).to_contain_text("Acknowledgement sent")

        def acked() -> bool:
            page.reload()
            return "yes, until" in page.locator("#ack-state").inner_text()

        _wait(acked, 30)
        expect(page.locator("#ack-state")).to_contain_text("looking at it")
        _shot(page, tmp_path, "05-check-acknowledged-1280")
        page.goto(f"{base}/ui/")
        expect(page.locator('[data-count="unacknowledged"]')).to_have_text(
            "2"
        )  # web1:http, web2:ping

        # Incidents: the list and one incident with its log (the ack is in it).
        page.get_by_role("link", name="Incidents", exact=True).click()
        expect(page.locator("tbody tr")).to_have_count(3)
        _shot(page, tmp_path, "06-incidents-1280")
        page.locator("tbody tr", has_text="db1:disk").get_by_role("link").click()
        expect(page.locator("#incident-status")).to_contain_text("acknowledged")
        page.get_by_label("Comment", exact=True).last.fill("disk ordered")
        page.get_by_role("button", name="Add comment").click()
        expect(page.locator("#incident-log")).to_contain_text("disk ordered")
        _shot(page, tmp_path, "07-incident-1280")

        # Contacts: media, rules in words, and the dry run.
        page.get_by_role("link", name="Contacts", exact=True).click()
        expect(page.get_by_text("Mon-Sun 00:00-24:00 (America/New_York)")).to_be_visible()
        page.get_by_label("Entity", exact=True).fill("db1")
        page.get_by_label("Check", exact=True).fill("disk")
        page.get_by_role("button", name="Ask").click()
        expect(page.locator("#dry-targets")).to_contain_text("Bob Broken")
        _shot(page, tmp_path, "08-contacts-1280")

        # Dead letters: the overview's tile opens the page; Bob's refused page is there.
        page.goto(f"{base}/ui/")
        page.locator('[data-count="dead-letters"]').click()
        expect(page.get_by_role("heading", name="Dead letters", level=1)).to_be_visible()
        expect(page.locator("#dead-requeue tbody tr")).to_have_count(2)  # problem and ack
        expect(page.locator("#dead-requeue")).to_contain_text("db1:disk")
        _shot(page, tmp_path, "14-dead-letters-1280")
        assert not errors, errors

        # Phone width: same pages, no horizontal scrolling of the page itself.
        phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        mobile = phone.new_page()
        _login(mobile, base)
        for name, path in [
            ("09-overview-phone", "/ui/"),
            ("10-checks-phone", "/ui/checks"),
            ("11-check-phone", "/ui/check?entity=db1&check=disk"),
            ("12-contacts-phone", "/ui/contacts"),
            ("15-dead-letters-phone", "/ui/dead"),
        ]:
            mobile.goto(base + path)
            # A time never wraps over several lines (it did in tables on phones).
            tall = mobile.evaluate(
                "[...document.querySelectorAll('time')].filter(t => t.getClientRects().length > 1)"
                ".map(t => t.textContent)"
            )
            assert tall == [], f"{path}: times broken over lines: {tall}"
            width = mobile.evaluate("document.documentElement.scrollWidth")
            wide = mobile.evaluate(WIDE_ELEMENTS, PHONE["width"])
            assert width <= PHONE["width"] + 1, f"{path} is {width}px wide on a phone: {wide}"
            _shot(mobile, tmp_path, name)
        mobile.goto(base + "/ui/check?entity=db1&check=disk")
        path = tmp_path / "13-check-deliveries-phone.png"
        mobile.locator("section[aria-labelledby=notes-h]").screenshot(path=str(path))
        shutil.copy(path, OUT / path.name)
        phone.close()
        ctx.close()
    refusing.close()
