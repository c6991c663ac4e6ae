"""deploy/kubernetes/: schema-valid, and consistent with the workers they run.

There is no cluster here: the manifests are checked against the Kubernetes
API schemas (kubernetes-validate, strict: unknown fields fail) and against
Tocsin itself (every worker has a Deployment, probes and scrape ports point
at what the worker serves, the processors' partitions are split exactly once,
KEDA scales existing Deployments on queues Tocsin declares).  docs/scaling.md
says they were validated, not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.cli.supervisor import default_workers
from shared.amqp import Names

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
KEDA = "keda.sh/v1alpha1"


def _docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(ROOT.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _of(kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs() if d["kind"] == kind]


def _container(dep: dict[str, Any]) -> dict[str, Any]:
    [container] = dep["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _config() -> dict[str, str]:
    [cm] = _of("ConfigMap")
    return dict(cm["data"])


@pytest.mark.parametrize(
    "doc",
    [d for d in _docs() if d["apiVersion"] != KEDA],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_each_manifest_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_can_fail() -> None:
    [dep, *_] = _of("Deployment")
    broken = yaml.safe_load(yaml.safe_dump(dep))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_worker_of_tocsin_up_has_a_deployment() -> None:
    ran = {tuple(_container(d)["args"]) for d in _of("Deployment")}
    for w in default_workers():
        args = ("worker", "gateway", w.split(":")[1]) if w.startswith("gateway:") else ("worker", w)
        assert args in ran, w


def test_probes_scrape_annotations_and_requests_fit_what_each_worker_serves() -> None:
    metrics_port = int(_config()["TOCSIN_METRICS_PORT"])
    for dep in _of("Deployment"):
        c, meta = _container(dep), dep["spec"]["template"]["metadata"]
        ports = {p["containerPort"] for p in c["ports"]}
        probe = c["readinessProbe"]["httpGet"]
        assert probe["path"] == "/health" and probe["port"] in ports
        assert meta["annotations"]["prometheus.io/scrape"] == "true"
        scrape = int(meta["annotations"]["prometheus.io/port"])
        assert scrape in ports
        if c["args"][1] == "api":
            listen = {e["name"]: e.get("value") for e in c["env"]}["TOCSIN_API_LISTEN"]
            assert listen == f"0.0.0.0:{scrape}"  # the API serves /health and /metrics itself
        else:
            assert scrape == metrics_port  # workers: shared/telemetry.serve_metrics
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}
        assert dep["spec"]["replicas"] >= 2  # one pod may go without a gap


def test_every_deployment_has_a_disruption_budget_selecting_its_pods() -> None:
    budgets = [p["spec"]["selector"]["matchLabels"] for p in _of("PodDisruptionBudget")]
    for dep in _of("Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"] == labels
        assert labels in budgets, dep["metadata"]["name"]


def test_processors_split_the_partitions_exactly_once() -> None:
    partitions = int(_config()["TOCSIN_PARTITIONS"])
    served: list[int] = []
    for dep in _of("Deployment"):
        c = _container(dep)
        if c["args"] != ["worker", "processor"]:
            continue
        spec = {e["name"]: e.get("value") for e in c["env"]}["TOCSIN_PROCESSOR_PARTITIONS"]
        low, high = (int(x) for x in spec.split("-"))
        served += range(low, high + 1)
    assert sorted(served) == list(range(partitions))


def test_keda_scales_existing_deployments_on_queues_tocsin_declares() -> None:
    names = Names(_config()["TOCSIN_NAMESPACE"])
    queues = set(names.all_queues(int(_config()["TOCSIN_PARTITIONS"])))
    deployments = {d["metadata"]["name"] for d in _of("Deployment")}
    auths = {d["metadata"]["name"] for d in _of("TriggerAuthentication")}
    scaled = _of("ScaledObject")
    assert scaled
    for so in scaled:
        assert so["spec"]["scaleTargetRef"]["name"] in deployments
        for trigger in so["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["queueName"] in queues
            assert trigger["authenticationRef"]["name"] in auths
