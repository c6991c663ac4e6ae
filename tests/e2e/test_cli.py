"""The resource CLI against a running pipeline: contacts, media, rules, checks, import/export."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from services.cli.demo import Receiver
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

# Every worker: what `tocsin up` prints for the whole pipeline is under test.
PIPELINE_UP_ARGS: tuple[str, ...] = ()


def test_configure_with_the_cli_then_page_and_ack(pipeline: Pipeline) -> None:
    with Receiver() as receiver:
        made = pipeline.cli(
            "contacts", "create", "--name", "cli ops", "--timezone", "Europe/Oslo", "--json"
        )
        assert made.returncode == 0, made.stderr
        cid = json.loads(made.stdout)["id"]
        bad = pipeline.cli("contacts", "create", "--name", "x", "--timezone", "Nowhere/Land")
        assert bad.returncode == 1 and "unknown timezone" in bad.stderr
        m = pipeline.cli(
            "media",
            "create",
            "--contact",
            cid,
            "--type",
            "webhook",
            "--address",
            receiver.url,
            "--interval",
            "0",
        )
        assert m.returncode == 0, m.stderr
        r = pipeline.cli(
            "rules", "create", "--contact", cid, "--critical", "webhook", "--entity", "cli-host"
        )
        assert r.returncode == 0, r.stderr
        listed = json.loads(pipeline.cli("rules", "list", "--contact", cid, "--json").stdout)
        assert listed[0]["critical"]["media"] == ["webhook"] and listed[0]["entities"] == [
            "cli-host"
        ]

        check = f"svc-{int(time.time() * 1000)}"
        sent = pipeline.cli(
            "send",
            "--entity",
            "cli-host",
            "--check",
            check,
            "--state",
            "critical",
            "--initial-failure-delay",
            "0",
        )
        assert sent.returncode == 0 and "sent 1 event" in sent.stdout
        assert receiver.wait_for(lambda d: d.get("check") == check and d["type"] == "problem", 30)
        shown = pipeline.cli("checks", "show", f"cli-host:{check}", "--json")
        assert json.loads(shown.stdout)["state"] == "critical"
        acked = pipeline.cli(
            "ack", f"cli-host:{check}", "--duration", "10m", "--summary", "looking"
        )
        assert acked.returncode == 0, acked.stderr
        assert receiver.wait_for(
            lambda d: d.get("check") == check and d["type"] == "acknowledgement", 30
        )
        table = pipeline.cli("deliveries", "--check", check)
        assert table.returncode == 0 and "2 item(s)" in table.stdout
        log = json.loads(pipeline.cli("deliveries", "--check", check, "--json").stdout)
        assert {(e["type"], e["medium_type"]) for e in log} == {
            ("problem", "webhook"),
            ("acknowledgement", "webhook"),
        }
        assert pipeline.cli("contacts", "delete", cid).returncode == 0


def test_export_then_import_is_idempotent(pipeline: Pipeline, tmp_path: Path) -> None:
    config = {
        "contacts": [
            {
                "name": "import team",
                "timezone": "America/New_York",
                "media": [
                    {
                        "type": "webhook",
                        "address": "http://127.0.0.1:9/hook",
                        "interval": 300,
                        "settings": {"secret": "s3cr3t"},
                    }
                ],
                "rules": [
                    {
                        "tags": ["team=import"],
                        "critical": {"media": ["webhook"]},
                        "time_restrictions": [
                            {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "16:00"}
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "tocsin.yaml"
    path.write_text(yaml.safe_dump(config))
    first = pipeline.cli("import", str(path))
    assert first.returncode == 0, first.stderr
    assert (
        "1 contact create" in first.stdout
        and "1 medium create" in first.stdout
        and "1 rule create" in first.stdout
    )
    second = pipeline.cli("import", str(path))
    assert second.returncode == 0
    assert "create" not in second.stdout and "update" not in second.stdout, second.stdout

    exported = yaml.safe_load(pipeline.cli("export").stdout)
    team = next(c for c in exported["contacts"] if c["name"] == "import team")
    assert team["media"][0]["settings"] == {"secret": "***"}
    export_path = tmp_path / "export.yaml"
    export_path.write_text(yaml.safe_dump({"contacts": [team]}))
    again = pipeline.cli("import", str(export_path))
    assert "create" not in again.stdout and "update" not in again.stdout, again.stdout

    team["timezone"] = "Europe/Oslo"
    export_path.write_text(yaml.safe_dump({"contacts": [team]}))
    changed = pipeline.cli("import", str(export_path), "--dry-run")
    assert "dry run: 1 contact update" in changed.stdout
    assert pipeline.cli("contacts", "delete", team["id"]).returncode == 0


def test_up_prints_the_dashboard_url_and_sms_as_information(pipeline: Pipeline) -> None:
    started = pipeline.log_path.read_text(errors="replace")
    assert f"dashboard: {pipeline.settings.api_url}/ui/" in started
    assert "sms: not installed (TOCSIN_SMS_URL is unset" in started


def test_media_test_sends_one_message_and_prints_the_outcome(pipeline: Pipeline) -> None:
    with Receiver() as receiver:
        made = pipeline.cli("contacts", "create", "--name", "media tester", "--json")
        cid = json.loads(made.stdout)["id"]
        medium = json.loads(
            pipeline.cli(
                "media", "create", "--contact", "media tester", "--type", "webhook",
                "--address", receiver.url, "--json",
            ).stdout
        )  # fmt: skip
        tested = pipeline.cli("media", "test", medium["id"][:8], "--json")
        assert tested.returncode == 0, tested.stderr
        result = json.loads(tested.stdout)
        assert result["outcome"]["outcome"] == "delivered"
        got = receiver.wait_for(lambda d: d.get("type") == "test", 10)
        assert got is not None and got["check"] == "medium-test"
        assert pipeline.cli("contacts", "delete", cid).returncode == 0
