"""The ``tocsin`` command line (README, "CLI")."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import msgspec
import typer
from rich.console import Console
from rich.table import Table

from services.cli.dead import register as register_dead
from services.cli.explain import register as register_explain
from services.cli.help import install as install_help
from services.cli.incidents import register as register_incidents
from services.cli.oncall import register as register_oncall
from services.cli.people import register as register_people
from services.cli.profiles import register as register_profiles
from services.cli.resources import register as register_resources
from shared.config import Settings, redact_url
from shared.consumer import AMQP_ERRORS
from shared.errors import ConfigError
from shared.models import MEDIUM_TYPES

if TYPE_CHECKING:
    from services.cli.supervisor import Child

install_help()  # option types in --help: none for flags, TEXT/INTEGER for values
app = typer.Typer(
    help="Tocsin: route monitoring events to the people who need them.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

WORKERS = ("ingest", "processor", "notifier", "scheduler", "api", "gateway")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _token(settings: Settings) -> str:
    from shared.tokens import read_token

    token = read_token(settings)
    if not token:
        err.print(
            "[red]no API token[/red]: set TOCSIN_API_TOKEN or run `tocsin up` once (it creates one)"
        )
        raise typer.Exit(2)
    return token


@app.command()
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

    settings = _settings()
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


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(WORKERS)}")],
    medium: Annotated[
        str | None, typer.Argument(help=f"For gateway: {', '.join(MEDIUM_TYPES)}")
    ] = None,
) -> None:
    """Run one worker in the foreground, as a container does."""
    settings = _settings()
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


@app.command()
def send(
    entity: Annotated[str | None, typer.Option(help="Entity (host, service, job).")] = None,
    check: Annotated[str | None, typer.Option(help="Check name.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="ok, warning, critical, unknown, acknowledgement, test_notifications."),
    ] = None,
    summary: Annotated[str | None, typer.Option(help="One line: what is wrong.")] = None,
    details: Annotated[str | None, typer.Option(help="Longer text for the message body.")] = None,
    time_: Annotated[
        float | None, typer.Option("--time", help="Event time, epoch seconds (default: now).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value tag; repeatable.")] = None,
    initial_failure_delay: Annotated[
        int | None, typer.Option(help="Seconds failing before the first problem (default 30).")
    ] = None,
    repeat_failure_delay: Annotated[
        int | None, typer.Option(help="Seconds between repeated problems (default 60).")
    ] = None,
    initial_recovery_delay: Annotated[
        int | None, typer.Option(help="Seconds ok before the recovery is sent (default 0).")
    ] = None,
    duration: Annotated[int | None, typer.Option(help="Acknowledgement length in seconds.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="JSON lines, one event per line; '-' for stdin."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Send nothing if any line is invalid.")
    ] = False,
) -> None:
    """Send check results (events) into the pipeline, from options or a JSON-lines file.

    The event fields are those of the README's "Sending events" table.
    """
    from services.cli.send import LineError, parse_lines, send_events
    from shared.sender import Sender

    settings = _settings()
    now = time.time()
    if file is not None:
        stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
        parsed = list(parse_lines(stream, now))
    elif entity and check and state:
        event: dict[str, object] = {"entity": entity, "check": check, "state": state}
        optional = {
            "summary": summary,
            "details": details,
            "time": time_,
            "tags": tag,
            "initial_failure_delay": initial_failure_delay,
            "repeat_failure_delay": repeat_failure_delay,
            "initial_recovery_delay": initial_recovery_delay,
            "duration": duration,
        }
        event.update({k: v for k, v in optional.items() if v is not None})
        parsed = list(parse_lines([json.dumps(event)], now))
    else:
        err.print("give --entity, --check and --state, or --file")
        raise typer.Exit(2)
    errors = [e for _, e in parsed if isinstance(e, LineError)]
    good = [e for _, e in parsed if not isinstance(e, LineError)]
    for e in errors[:20]:
        err.print(f"[red]line {e.line}:[/red] {e.reason}")
    if len(errors) > 20:
        err.print(f"... and {len(errors) - 20} more invalid lines")
    if errors and strict:
        raise typer.Exit(1)
    sender = Sender(settings, name="tocsin-send")
    started = time.monotonic()
    try:
        if len(good) > 1000 and sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(console=err) as progress:
                task = progress.add_task("sending", total=len(good))
                sent = send_events(good, sender.send, lambda n: progress.advance(task, n))
        else:
            sent = send_events(good, sender.send)
    except AMQP_ERRORS as exc:
        err.print(
            f"cannot reach RabbitMQ at {redact_url(settings.amqp_url)} ({type(exc).__name__}); "
            "nothing more was sent. Is it running? The address comes from TOCSIN_AMQP_URL",
            style="red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None
    finally:
        sender.close()
    elapsed = time.monotonic() - started
    out.print(f"sent {sent} event(s) in {elapsed:.2f} s; {len(errors)} invalid line(s) skipped")
    if errors:
        raise typer.Exit(1)


@app.command("check")
def check_health(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Health of Redis, RabbitMQ and every queue (depth, consumers); exit 1 if unhealthy."""
    from services.cli.health import gather, memory_text

    report = gather(_settings())
    if as_json:
        out.print_json(msgspec.json.encode(report).decode())
    else:
        out.print(f"redis: {report.redis}{memory_text(report.redis_memory)}")
        out.print(f"rabbitmq: {report.amqp}")
        table = Table("queue", "messages", "consumers", "status")
        for q in report.queues:
            status = "[green]ok[/green]" if q.problem is None else f"[yellow]{q.problem}[/yellow]"
            table.add_row(
                q.name,
                str(q.messages if q.messages is not None else "-"),
                str(q.consumers if q.consumers is not None else "-"),
                status,
            )
        if report.queues:
            out.print(table)
        if report.dead_letters:
            out.print(
                f"[yellow]{report.dead_letters} dead letter(s)[/yellow] in the dead-letter queue"
            )
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each notification.")] = 30.0,
) -> None:
    """Create demo config and send a failure and a recovery; show both notifications arrive."""
    from services.cli.demo import run_demo

    settings = _settings()
    try:
        ok = run_demo(settings.api_url, _token(settings), out.print, timeout=timeout)
    except httpx.HTTPError as exc:
        err.print(
            f"cannot reach the API at {settings.api_url} ({exc or type(exc).__name__}). Is it "
            "running? Start the pipeline with `tocsin up` (the address comes from "
            "TOCSIN_API_LISTEN)",
            style="red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None
    except RuntimeError as exc:  # the API refused a demo step; its answer says why
        err.print(f"demo failed: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if not ok:
        out.print(
            "hint: the webhook gateway must be allowed to post to 127.0.0.1: start the pipeline with "
            "`tocsin up --demo` or TOCSIN_DESTINATION_ALLOW=127.0.0.1/32"
        )
        raise typer.Exit(1)


register_resources(app)
register_incidents(app)
register_profiles(app)
register_oncall(app)
register_explain(app)
register_dead(app)
register_people(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
