"""Single sign-on in a real browser against a real local OpenID Connect provider.

Chromium opens the dashboard, follows "Sign in with single sign-on" to
oidc-provider-mock (in a thread), picks a user on the provider's own page and
comes back logged in with the role the user's groups give.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from oidc_provider_mock import User as MockUser
from oidc_provider_mock import run_server_in_thread

from services.api.app import create_app
from services.api.people_store import PeopleStore
from services.api.worker import build_context
from shared.config import Settings
from tests.api_app import serving
from tests.e2e.test_ui_browser import browser  # noqa: F401 - the fixture
from tests.integration.cli_api import free_port

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

PEOPLE = [
    MockUser(sub="s-ada", claims={"preferred_username": "ada", "groups": ["ops"]}),
    MockUser(sub="s-bo", claims={"preferred_username": "bo", "groups": ["staff"]}),
]


@pytest.fixture
def dashboard(settings: Settings) -> Iterator[tuple[str, Settings]]:
    """The API under uvicorn with single sign-on pointed at a provider in a thread."""
    with run_server_in_thread(user_claims=PEOPLE, require_nonce=True) as idp:
        port = free_port()
        s = msgspec.structs.replace(
            settings,
            api_listen=f"127.0.0.1:{port}",
            api_token="sso-browser-admin-token",
            oidc_issuer=f"http://localhost:{idp.server_port}",
            oidc_client_id="tocsin-dashboard",
            oidc_client_secret="sso-browser-client-secret",
            oidc_roles=("ops=responder", "staff=viewer"),
        )
        ctx = build_context(s)
        try:
            with serving(create_app(ctx), port, log_config=None):
                yield f"http://127.0.0.1:{port}", s
        finally:
            ctx.sender.close()


def test_sign_in_with_the_provider_in_a_real_browser(
    dashboard: tuple[str, Settings],
    browser: Any,  # noqa: F811
) -> None:
    base, s = dashboard
    page = browser.new_page()
    try:
        page.goto(f"{base}/ui/checks")
        page.get_by_role("link", name="Sign in with single sign-on").click()
        expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
        page.get_by_role("button", name="s-ada").click()
        expect(page).to_have_url(f"{base}/ui/checks")
        expect(page.get_by_role("heading", name="Checks", level=1)).to_be_visible()
        expect(page.get_by_role("link", name="Sessions")).to_be_visible()
        # A responder: no audit page in the navigation.
        expect(page.get_by_role("link", name="Audit")).to_have_count(0)
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    finally:
        page.close()
    ctx = build_context(s)
    try:
        ada = PeopleStore(ctx.redis, ctx.keys).user_by_name("ada")
        assert ada is not None and ada.role == "responder"
    finally:
        ctx.sender.close()
