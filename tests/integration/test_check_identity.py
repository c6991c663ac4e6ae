"""Two checks whose ``entity:check`` spellings coincide stay two checks through the processor."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from services.processor.worker import ProcessorMetrics, make_handler
from shared.amqp import Names, partition_key, partition_of
from shared.check_store import CheckStore
from shared.config import Settings
from shared.consumer import Message
from shared.keys import Keys
from shared.models import ENCODER, CheckEvent
from shared.store import connect_redis

pytestmark = pytest.mark.integration


def _message(settings: Settings, entity: str, check: str, state: str, t: float) -> Message:
    event = CheckEvent(
        id=f"{entity}/{check}/{t}",
        entity=entity,
        check=check,
        type="service",
        state=state,
        time=t,
        received=t,
        initial_failure_delay=0,
    )
    k = partition_of(entity, check, settings.partitions)
    return Message(
        body=ENCODER.encode([event]),
        delivery_tag=1,
        queue=Names(settings.namespace).processor(k),
        routing_key=partition_key(k),
    )


def test_an_ok_for_one_spelling_does_not_resolve_the_other(settings: Settings) -> None:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    handle = make_handler(
        r, Names(settings.namespace), keys, settings, ProcessorMetrics(CollectorRegistry())
    )
    handle([_message(settings, "web:prod", "disk", "critical", 100.0)])
    handle([_message(settings, "web", "prod:disk", "ok", 110.0)])
    store = CheckStore(r, keys)
    failing, other = store.get("web:prod", "disk"), store.get("web", "prod:disk")
    assert failing is not None and failing.state == "critical"
    assert other is not None and other.state == "ok"
