"""`tocsin up` plans its children: one per worker, processors split the partitions."""

from __future__ import annotations

from services.cli.supervisor import default_workers, plan_children, processor_shares


def test_one_processor_serves_every_partition() -> None:
    assert processor_shares(1, 8) == [("processor", {})]


def test_processors_split_the_partitions_round_robin_without_overlap() -> None:
    shares = processor_shares(3, 8)
    assert [label for label, _ in shares] == ["processor", "processor#2", "processor#3"]
    specs = [env["TOCSIN_PROCESSOR_PARTITIONS"] for _, env in shares]
    assert specs == ["0,3,6", "1,4,7", "2,5"]
    served = sorted(int(k) for spec in specs for k in spec.split(","))
    assert served == list(range(8))


def test_children_get_their_own_metrics_port_and_the_right_command() -> None:
    children = plan_children(default_workers(), {"X": "1"}, 9700, processors=2, partitions=4)
    names = [c.name for c in children]
    assert names[:4] == ["ingest", "processor", "processor#2", "notifier"]
    ports = [c.metrics_port for c in children]
    assert ports == list(range(9700, 9700 + len(children)))
    second = children[2]
    assert second.argv[-1] == "services.processor"
    assert second.env["TOCSIN_PROCESSOR_PARTITIONS"] == "1,3" and second.env["X"] == "1"
    assert "TOCSIN_PROCESSOR_PARTITIONS" not in children[0].env


def test_metrics_off_means_port_zero_for_everyone() -> None:
    assert {
        c.metrics_port for c in plan_children(["ingest", "processor"], {}, 0, processors=2)
    } == {0}


def test_tocsin_up_runs_one_processor_per_core_up_to_four() -> None:
    from services.cli.supervisor import default_processors

    assert [default_processors(n) for n in (1, 2, 3, 8)] == [1, 2, 3, 4]
