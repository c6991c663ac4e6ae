"""``tocsin up`` (every worker, supervised) and ``tocsin worker NAME`` (one, in the foreground).

``tocsin worker NAME`` is what each child of ``tocsin up`` runs (see
``supervisor.py``), and what a container runs.  It imports that worker's
``run`` inside the command, so ``tocsin`` itself loads no worker: that lazy
import is the one exception to the import rule a service may make
(docs/architecture.md, tests/unit/test_import_rule.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import msgspec
import typer
from rich.table import Table

from services.cli.environment import settings_or_exit
from services.cli.output import err, out
from shared.errors import ConfigError
from shared.models import MEDIUM_TYPES

if TYPE_CHECKING:
    from services.cli.supervisor import Child

WORKERS = ("ingest", "processor", "notifier", "scheduler", "api", "gateway")


def register(app: typer.Typer) -> None:
    """Add ``up`` and ``worker`` to the ``tocsin`` command."""
    app.command()(up)
    app.command()(worker)


def up(
    demo: Annotated[bool, typer.Option(help="Run the demo once the pipeline is ready.")] = False,
    metrics_port: Annotated[
        int, typer.Option(help="First metrics port; worker i serves /metrics on port+i (0: off).")
    ] = -1,
    workers: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset, e.g. ingest,processor,gateway:webhook."),
    ] = None,
    processors: Annotated[
        int,
        typer.Option(
            help="Processor processes splitting the partitions; 0: one per core, at most 4."
        ),
    ] = 0,
    replicas: Annotated[
        str | None,
        typer.Option(
            help="Processes per worker, e.g. notifier=2,gateway:webhook=2,api=2 (1-16 each). "
            "Workers compete on their queue; api=N runs N uvicorn processes on the one port; "
            "processor=N is --processors N.  See docs/scaling.md."
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the started workers as one JSON line on stdout."),
    ] = False,
) -> None:
    """Run every worker (ingest, processor, notifier, scheduler, gateways, api), supervised."""
    from services.cli.demo import run_demo
    from services.cli.supervisor import (
        Supervisor,
        child_env,
        default_processors,
        default_workers,
        parse_replicas,
        plan_children,
    )
    from shared.tokens import ensure_token

    settings = settings_or_exit()
    names = workers.split(",") if workers else default_workers()
    try:
        counts = parse_replicas(replicas or "", names)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--replicas") from None
    if "processor" in counts:
        if processors > 0 and processors != counts["processor"]:
            raise typer.BadParameter(
                f"processor={counts['processor']} contradicts --processors {processors}",
                param_hint="--replicas",
            )
        processors = counts["processor"]
    say = err.print if as_json else out.print
    token, created = ensure_token(settings)
    if created:
        say(f"[bold]API token (shown once):[/bold] {token}")
        say(f"stored in {settings.token_path} (mode 0600); the CLI reads it from there")
    base_port = (settings.metrics_port or 9700) if metrics_port < 0 else metrics_port
    extra = {"TOCSIN_API_TOKEN": token}
    if sys.stderr.isatty() and "TOCSIN_LOG_FORMAT" not in os.environ:
        extra["TOCSIN_LOG_FORMAT"] = "text"
    if demo:
        allow = ",".join(p for p in (*settings.destination_allow, "127.0.0.1/32") if p)
        extra["TOCSIN_DESTINATION_ALLOW"] = allow
        say("demo: allowing webhook deliveries to 127.0.0.1 (TOCSIN_DESTINATION_ALLOW)")
    children = plan_children(
        names,
        child_env(extra),
        base_port,
        processors=processors if processors > 0 else default_processors(),
        partitions=settings.partitions,
        replicas=counts,
    )
    sup = Supervisor(children)
    sup.install_signal_handlers()
    sup.start_all()
    table = Table("worker", "pid", "metrics")
    for c in children:
        table.add_row(
            c.name,
            str(c.proc.pid if c.proc else "-"),
            f"http://127.0.0.1:{c.metrics_port}/metrics" if c.metrics_port else "-",
        )
    if not as_json:
        out.print(table)
    ready = False
    if "api" in names:
        ready = _wait_healthy(settings.api_url, 60.0)
        say(
            f"API: {settings.api_url} ({'healthy' if ready else '[red]not healthy yet[/red]'}); "
            f"OpenAPI at {settings.api_url}/schema"
        )
        say(f"dashboard: {settings.api_url}/ui/ (log in with the API token)")
    if as_json:
        print(_up_json(children, settings.api_url if "api" in names else None, ready), flush=True)
    if not settings.sms_url and any(n in ("gateway", "gateway:sms") for n in names):
        say(
            "sms: not installed (TOCSIN_SMS_URL is unset; set it to your SMS provider's "
            "endpoint to enable sms media)"
        )
    if demo and ready:
        threading.Thread(
            target=run_demo, args=(settings.api_url, token, out.print), daemon=True
        ).start()
    say("running; Ctrl-C to stop")
    sup.run()
    say("stopped")


def worker(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(WORKERS)}")],
    medium: Annotated[
        str | None, typer.Argument(help=f"For gateway: {', '.join(MEDIUM_TYPES)}")
    ] = None,
) -> None:
    """Run one worker in the foreground, as a container does."""
    settings = settings_or_exit()
    try:
        if name == "ingest":
            from services.ingest.worker import run as run_ingest

            run_ingest(settings)
        elif name == "processor":
            from services.processor.worker import run as run_processor

            run_processor(settings)
        elif name == "notifier":
            from services.notifier.worker import run as run_notifier

            run_notifier(settings)
        elif name == "scheduler":
            from services.scheduler.worker import run as run_scheduler

            run_scheduler(settings)
        elif name == "api":
            from services.api.worker import run as run_api

            run_api(settings)
        elif name == "gateway":
            if medium not in MEDIUM_TYPES:
                err.print(f"gateway needs a medium type: one of {', '.join(MEDIUM_TYPES)}")
                raise typer.Exit(2)
            from services.gateways.worker import run as run_gateway

            run_gateway(settings, medium)
        else:
            err.print(f"unknown worker {name!r}; one of: {', '.join(WORKERS)}")
            raise typer.Exit(2)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _up_json(children: list[Child], api_url: str | None, healthy: bool) -> str:
    """What ``tocsin up --json`` prints once: each process, and the replicas per worker."""
    replicas: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for c in children:
        worker = c.name.split("#")[0]
        # The API's replicas are uvicorn processes inside one child (one port).
        count = int(c.env.get("TOCSIN_API_WORKERS", "1")) if worker == "api" else 1
        replicas[worker] = replicas.get(worker, 0) + count
        rows.append(
            {
                "name": c.name,
                "worker": worker,
                "pid": c.proc.pid if c.proc else None,
                "metrics_port": c.metrics_port or None,
                "processes": count,
            }
        )
    doc = {"processes": rows, "replicas": replicas, "api": api_url, "api_healthy": healthy}
    return msgspec.json.encode(doc).decode()


def _wait_healthy(api_url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False
