"""`tocsin up --replicas`: parsed strictly, planned as competing copies (the API as uvicorn workers)."""

from __future__ import annotations

import pytest

from services.cli.supervisor import default_workers, parse_replicas, plan_children

WORKERS = ["ingest", "processor", "notifier", "gateway:webhook", "api"]


def test_replicas_parse_into_counts_per_worker() -> None:
    got = parse_replicas(" notifier=2, gateway:webhook=3,api=2,", WORKERS)
    assert got == {"notifier": 2, "gateway:webhook": 3, "api": 2}
    assert parse_replicas("", WORKERS) == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("notifier", "expected <worker>=<count>"),
        ("notifier=two", "expected <worker>=<count>"),
        ("notifer=2", "'notifer' is not a worker here; one of: ingest, processor"),
        ("gateway:fax=2", "'gateway:fax' is not a worker here"),
        ("notifier=2,notifier=3", "'notifier' is given twice"),
        ("notifier=0", "notifier=0: the count must be between 1 and 16"),
        ("api=17", "api=17: the count must be between 1 and 16"),
        ("notifier=-1", "expected <worker>=<count>"),
    ],
)
def test_bad_replicas_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_replicas(spec, WORKERS)
    assert message in str(info.value)


def test_replicas_are_extra_children_with_their_own_metrics_ports() -> None:
    replicas = {"notifier": 2, "gateway:webhook": 2}
    children = plan_children(WORKERS, {}, 9700, replicas=replicas)
    assert [c.name for c in children] == [
        "ingest",
        "processor",
        "notifier",
        "notifier#2",
        "gateway:webhook",
        "gateway:webhook#2",
        "api",
    ]
    assert children[3].argv[-1] == "services.notifier"
    assert children[5].argv[-2:] == ["services.gateways", "webhook"]
    assert len({c.metrics_port for c in children}) == len(children)


def test_api_replicas_are_uvicorn_workers_of_one_child_on_one_port() -> None:
    children = plan_children(default_workers(), {}, 0, replicas={"api": 3})
    [api] = [c for c in children if c.name.startswith("api")]
    assert api.env["TOCSIN_API_WORKERS"] == "3"
    one = plan_children(default_workers(), {}, 0, replicas={"api": 1})
    assert "TOCSIN_API_WORKERS" not in next(c for c in one if c.name == "api").env
