"""What the CLI says when something is wrong: it names the cause and the way out."""

from __future__ import annotations

import pytest

from tests.integration.cli_api import Cli, cli, free_port

pytestmark = pytest.mark.integration
__all__ = ["cli"]


def test_api_down_names_the_url_and_how_to_start_it(cli: Cli) -> None:
    port = free_port()
    down = Cli(cli.settings, cli.env | {"TOCSIN_API_LISTEN": f"127.0.0.1:{port}"})
    result = down("contacts", "list")
    assert result.exit_code == 1
    assert f"cannot reach the API at http://127.0.0.1:{port}" in result.stderr
    assert "tocsin up" in result.stderr and "TOCSIN_API_LISTEN" in result.stderr
    assert "HTTP 0" not in result.stderr


def test_a_wrong_token_says_where_it_was_read_from(cli: Cli, tmp_path: object) -> None:
    env = {k: v for k, v in cli.env.items() if k != "TOCSIN_API_TOKEN"}
    token_file = f"{tmp_path}/token"
    with open(token_file, "w") as fh:
        fh.write("not-the-token\n")
    from_file = Cli(cli.settings, env | {"TOCSIN_TOKEN_FILE": token_file})("contacts", "list")
    assert from_file.exit_code == 1
    assert "HTTP 401" in from_file.stderr and f"token file {token_file}" in from_file.stderr
    from_env = Cli(cli.settings, cli.env | {"TOCSIN_API_TOKEN": "wrong"})("contacts", "list")
    assert from_env.exit_code == 1 and "read its token from TOCSIN_API_TOKEN" in from_env.stderr


def test_explain_of_an_unknown_check_fails_with_no_such_check(cli: Cli) -> None:
    result = cli("explain", "nosuch:thing")
    assert result.exit_code == 1
    assert "no such check nosuch:thing" in result.stderr


@pytest.mark.parametrize(
    ("when", "says"),
    [
        pytest.param(
            "mon-fri 08:00-25:00", "bad end '25:00' (use HH:MM from 00:00 to 23:59", id="25:00"
        ),
        pytest.param("mon-fri 8-17", "bad start '8' (use HH:MM", id="hours only"),
        pytest.param("weekdays 08:00-17:00", "bad days 'weekdays' (use 1-5, mon-fri", id="days"),
    ],
)
def test_a_bad_when_says_what_to_write_without_a_regex(cli: Cli, when: str, says: str) -> None:
    contact = cli.json("contacts", "create", "--name", "Eve")
    result = cli("rules", "create", "--contact", contact["id"], "--when", when)
    assert result.exit_code == 2
    assert says in result.stderr, result.stderr
    assert "regex" not in result.stderr and "^" not in result.stderr


def test_the_demo_with_the_api_down_says_how_to_start_it(cli: Cli) -> None:
    port = free_port()
    down = Cli(cli.settings, cli.env | {"TOCSIN_API_LISTEN": f"127.0.0.1:{port}"})
    result = down("demo", "--timeout", "1")
    assert result.exit_code == 1
    assert f"cannot reach the API at http://127.0.0.1:{port}" in result.stderr
    assert "tocsin up" in result.stderr and "Traceback" not in result.output


def test_send_with_the_broker_down_names_it_without_its_password(cli: Cli) -> None:
    url = f"amqp://guest:hunter2@127.0.0.1:{free_port()}/%2F"
    down = Cli(cli.settings, cli.env | {"TOCSIN_AMQP_URL": url})
    result = down("send", "--entity", "web1", "--check", "http", "--state", "ok")
    assert result.exit_code == 1
    assert "cannot reach RabbitMQ at amqp://guest:" in result.stderr
    assert "hunter2" not in result.output + result.stderr and "Traceback" not in result.output
