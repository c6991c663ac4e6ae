"""``TOCSIN_AMQP_URL`` may name a cluster's nodes, comma-separated, tried in order."""

from __future__ import annotations

from shared.amqp import amqp_urls, connection_parameters
from shared.config import redact_url

NODES = "amqp://u:pw@10.0.0.1:5672/%2F, amqp://u:pw@10.0.0.2:5673/%2F?heartbeat=5,"


def test_one_url_is_one_node_and_a_comma_list_is_each_in_order() -> None:
    assert amqp_urls("amqp://u:pw@h:5672/%2F") == ["amqp://u:pw@h:5672/%2F"]
    assert amqp_urls(NODES) == [
        "amqp://u:pw@10.0.0.1:5672/%2F",
        "amqp://u:pw@10.0.0.2:5673/%2F?heartbeat=5",
    ]


def test_each_node_gets_the_connection_name_and_defaults_unless_its_url_sets_them() -> None:
    first, second = connection_parameters(NODES, "tocsin-test")
    assert (first.host, first.port, second.host, second.port) == (
        "10.0.0.1",
        5672,
        "10.0.0.2",
        5673,
    )
    assert first.client_properties == {"connection_name": "tocsin-test"}
    assert (first.heartbeat, second.heartbeat) == (30, 5)
    assert first.blocked_connection_timeout == 300


def test_every_password_of_a_node_list_is_hidden() -> None:
    shown = redact_url(NODES)
    assert "pw" not in shown
    assert shown.count("u:***@") == 2 and "10.0.0.2:5673" in shown
