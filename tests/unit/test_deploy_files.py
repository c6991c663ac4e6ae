"""Lint the deployment files that cannot run here (no Docker engine on CI machines)."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.cli.supervisor import default_workers

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def test_compose_runs_every_worker_of_tocsin_up_as_its_own_service() -> None:
    services = _compose()["services"]
    commands = {
        tuple(s["command"])
        for s in services.values()
        if "command" in s and s.get("image") == "tocsin:latest"
    }
    expected = set()
    for w in default_workers():
        expected.add(
            ("worker", "gateway", w.split(":")[1]) if w.startswith("gateway:") else ("worker", w)
        )
    assert expected <= commands


def test_every_compose_service_has_a_healthcheck_and_workers_wait_for_healthy_backends() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        if svc.get("image") == "tocsin:latest":
            assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
            assert svc["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
            assert svc["environment"]["TOCSIN_METRICS_HOST"] == "0.0.0.0"


def test_dockerfile_installs_the_package_and_uses_the_cli_entrypoint() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tocsin"]' in text
    assert "pip install ." in text
    for path in ("shared", "services", "pyproject.toml"):
        assert path in text


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./deploy/test.sh" in ci
    assert "./deploy/test.sh" in readme and "./deploy/run-local.sh" in readme
