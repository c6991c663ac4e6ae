"""`tocsin sources` and `tocsin incidents` against a running pipeline."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


def test_sources_and_incidents_from_the_cli(pipeline: Pipeline) -> None:
    name = f"nav{int(time.time() * 1000) % 10**8}"
    made = pipeline.cli("sources", "create-argus", name, "--type", "nav")
    assert made.returncode == 0, made.stderr
    token = made.stdout.split("token: ")[1].split()[0]
    res = pipeline.cli("sources", "list", "--json")
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert any(s["name"] == name and s["kind"] == "argus" for s in listed)

    import httpx

    with httpx.Client(
        base_url=pipeline.settings.api_url + "/api/v2", headers={"Authorization": f"Token {token}"}
    ) as src:
        created = src.post(
            "/incidents/",
            json={
                "start_time": "2026-11-23T10:00:00+00:00",
                "description": "switch down",
                "level": 2,
                "tags": [{"tag": "site=oslo"}],
                "source_incident_id": "sw-1",
            },
        )
        assert created.status_code == 201, created.text
        pk = created.json()["pk"]

    rows = json.loads(
        pipeline.cli("incidents", "list", "--open", "--source", name, "--json").stdout
    )
    assert [r["pk"] for r in rows] == [pk]
    assert pipeline.cli("incidents", "comment", str(pk), "looking at it").returncode == 0
    acked = pipeline.cli("incidents", "ack", str(pk), "--comment", "mine", "--duration", "1h")
    assert acked.returncode == 0, acked.stderr
    shown = json.loads(pipeline.cli("incidents", "show", str(pk), "--json").stdout)
    assert shown["incident"]["acked"] is True
    assert {"OTH", "ACK"} <= {e["type"]["value"] for e in shown["events"]}
    closed = pipeline.cli("incidents", "close", str(pk), "--comment", "fixed")
    assert closed.returncode == 0, closed.stderr
    assert (
        json.loads(pipeline.cli("incidents", "list", "--open", "--source", name, "--json").stdout)
        == []
    )
    again = pipeline.cli("incidents", "close", str(pk))
    assert again.returncode == 1 and "HTTP 400" in again.stderr
