"""The real Prometheus Alertmanager posting its webhook to Tocsin, through to check states.

Alertmanager (Debian's ``prometheus-alertmanager``; deploy/test.sh installs it
when it can) runs on free loopback ports with a webhook receiver pointing at
the Tocsin API served by uvicorn in a thread; ingest and the processor run as
threads.  Alerts posted to Alertmanager's API become check states in Redis and
notifications on ``NS.notifications``, and the resolve becomes ``ok`` and a
recovery.  Skipped only when the binary is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client import CollectorRegistry

from benchmarks.ports import free_port as _free_port
from services.api.context import ApiContext
from services.ingest.worker import IngestMetrics, make_handler
from services.processor.worker import build_consumer
from shared.amqp import Names
from shared.check_store import CheckStore
from shared.checks import CheckDetail
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.formats import alertmanager
from shared.intake import SOURCE_DECODERS
from shared.keys import Keys
from shared.models import NOTIFICATION_REF_DECODER, Notification
from shared.records import from_hash
from shared.sender import Sender
from shared.store import connect_redis
from shared.telemetry import ConsumerMetrics
from tests.api_app import api_app, serving
from tests.support import collect, declare, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The processor as a stage on its own: it publishes refs (no notifier runs here)."""
    return msgspec.structs.replace(settings, processor_expands=False)


BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "am-test-token"
CHECK = "TocsinProbe[cluster=eu1]"

CONFIG = """
route:
  receiver: tocsin
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: tocsin
    webhook_configs:
      - url: "http://127.0.0.1:{api_port}/sources/alertmanager?token={token}"
        send_resolved: true
"""


def _wait_for(what: str, probe: Callable[[], Any], timeout: float, log: Path | None = None) -> Any:
    """Poll an external process until ``probe`` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.fixture
def api_port(settings: Settings) -> Iterator[int]:
    s = msgspec.structs.replace(settings, api_token=TOKEN, identity_labels=("cluster",))
    ctx = ApiContext(settings=s, redis=connect_redis(s), sender=Sender(s))
    port = _free_port()
    with api_app(ctx) as app, serving(app, port, log_level="warning"):
        yield port
    ctx.sender.close()


@pytest.fixture
def alertmanager_url(api_port: int, tmp_path: Path) -> Iterator[str]:
    if BINARY is None:
        pytest.skip(
            "Alertmanager binary not installed (apt-get install prometheus-alertmanager; "
            "deploy/test.sh does this when apt-get is available)"
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(api_port=api_port, token=TOKEN))
    port = _free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_for("Alertmanager to be ready", ready, 20, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ingest(settings: Settings) -> BatchConsumer:
    names = Names(settings.namespace)
    registry = CollectorRegistry()
    decoders = {**SOURCE_DECODERS, "alertmanager": alertmanager.decoder(("cluster",))}
    return BatchConsumer(
        amqp_url=settings.amqp_url,
        names=names,
        partitions=settings.partitions,
        queues=[names.ingest],
        handler=make_handler(names, settings.partitions, IngestMetrics(registry), decoders),
        stage="ingest",
        metrics=ConsumerMetrics(registry, "ingest"),
        batch_wait_ms=5,
    )


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _post_alert(url: str, **times: str) -> None:
    alert = {
        "labels": {
            "alertname": "TocsinProbe",
            "instance": "web-9:9100",
            "cluster": "eu1",
            "severity": "critical",
        },
        "annotations": {"summary": "probe failing", "description": "synthetic test alert"},
        "generatorURL": "http://prometheus.invalid/graph",
        **times,
    }
    r = httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
    assert r.status_code == 200, r.text


def _notifications(settings: Settings, n: int) -> list[Notification]:
    names, keys, r = Names(settings.namespace), Keys(settings.namespace), connect_redis(settings)
    got = collect(settings, [names.notifications], n=n, timeout=20)
    refs = [NOTIFICATION_REF_DECODER.decode(m["body"]).id for m in got]
    return [from_hash(Notification, r.hgetall(keys.notification(i))) for i in refs]


def test_alertmanager_webhook_becomes_check_state_and_notifications(
    settings: Settings, alertmanager_url: str
) -> None:
    declare(settings)
    store = CheckStore(connect_redis(settings), Keys(settings.namespace))

    def state(expected: str) -> Callable[[], CheckDetail | None]:
        def probe() -> CheckDetail | None:
            detail = store.get("web-9:9100", CHECK)
            return detail if detail is not None and detail.state == expected else None

        return probe

    started = time.time()
    with running(_ingest(settings)), running(build_consumer(settings, CollectorRegistry())):
        _post_alert(alertmanager_url, startsAt=_rfc3339(started))
        firing = _wait_for("the check to become critical", state("critical"), 20)
        assert firing.summary == "probe failing"
        assert "cluster=eu1" in firing.tags and "severity=critical" in firing.tags
        (problem,) = _notifications(settings, 1)
        assert (problem.type, problem.state, problem.check) == ("problem", "critical", CHECK)

        ended = time.time()
        _post_alert(alertmanager_url, startsAt=_rfc3339(started), endsAt=_rfc3339(ended))
        resolved = _wait_for("the check to become ok", state("ok"), 20)
        assert resolved.last_update == pytest.approx(ended, abs=1)
        (recovery,) = _notifications(settings, 1)
        assert (recovery.type, recovery.state) == ("recovery", "ok")
