"""``tocsin users``, ``tokens``, ``login``, ``whoami`` and ``audit`` against a real API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli_api import Cli, cli  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_an_admin_creates_a_user_who_logs_in_and_is_audited(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    login_file = tmp_path / "login"
    made = cli.json("users", "create", "olga", "--role", "responder", "--email", "o@example.org")
    assert made["role"] == "responder" and made["username"] == "olga"
    tok = cli.json("tokens", "create", "laptop", "--user", "olga", "--expires", "30d")
    assert tok["token"].startswith("tcn_") and tok["expires_at"] > 0

    # Olga logs in: without TOCSIN_API_TOKEN the CLI uses her stored token.
    env = {k: v for k, v in cli.env.items() if k != "TOCSIN_API_TOKEN"}
    olga = Cli(cli.settings, env | {"TOCSIN_LOGIN_FILE": str(login_file)})
    logged = olga("login", "--token-stdin", "--json", input=tok["token"] + "\n")
    assert logged.exit_code == 0, logged.stderr
    assert login_file.read_text().strip() == tok["token"]
    assert oct(login_file.stat().st_mode & 0o777) == "0o600"
    assert olga.json("whoami")["name"] == "olga"
    assert [t["name"] for t in olga.json("tokens", "list")] == ["laptop"]
    refused = olga("contacts", "create", "--name", "x")
    assert refused.exit_code == 1 and "HTTP 403" in refused.stderr

    # The admin sees what happened, and the secret is nowhere in it.
    log = cli.json("audit", "--since", "1h")
    actions = [(r["actor"], r["action"]) for r in log["items"]]
    assert ("admin", "create_token") in actions and ("olga", "denied:create_contact") in actions
    assert tok["token"] not in str(log)
    assert cli.json("audit", "--actor", "olga")["total"] == 1

    # Revoked: the stored token stops working and the CLI says why.
    revoked = cli("tokens", "revoke", tok["id"], "--user", "olga")
    assert revoked.exit_code == 0, revoked.stderr
    after = olga("whoami")
    assert after.exit_code == 1 and "revoked" in after.stderr
    assert olga("logout").exit_code == 0 and not login_file.exists()


def test_login_refuses_a_bad_token_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    login_file = tmp_path / "login"
    bad = Cli(cli.settings, cli.env | {"TOCSIN_LOGIN_FILE": str(login_file)})
    result = bad("login", "--token-stdin", input="tcn_not-a-token\n")
    assert result.exit_code == 1 and "refused" in result.stderr
    assert "tcn_not-a-token" not in result.stderr and not login_file.exists()


def test_users_update_and_bootstrap_switch(cli: Cli) -> None:  # noqa: F811
    uid = cli.json("users", "create", "pia", "--role", "admin")["id"]
    assert cli.json("users", "update", uid, "--role", "viewer", "--disable")["disabled"] is True
    refused = cli("users", "bootstrap", "--disable")
    assert refused.exit_code == 1 and "no enabled admin user" in refused.stderr
    assert cli.json("users", "bootstrap")["disabled"] is False
    assert [u["username"] for u in cli.json("users", "list")] == ["pia"]
