"""The ``tocsin`` command line (README, "CLI")."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import msgspec
import typer
from rich.table import Table

from services.cli.dead import register as register_dead
from services.cli.environment import settings_or_exit, token_or_exit
from services.cli.explain import register as register_explain
from services.cli.help import install as install_help
from services.cli.incidents import register as register_incidents
from services.cli.oncall import register as register_oncall
from services.cli.output import err, out
from services.cli.people import register as register_people
from services.cli.processes import register as register_processes
from services.cli.profiles import register as register_profiles
from services.cli.queues import register as register_queues
from services.cli.resources import register as register_resources
from shared.config import redact_url

install_help()  # option types in --help: none for flags, TEXT/INTEGER for values
app = typer.Typer(
    help="Tocsin: route monitoring events to the people who need them.",
    no_args_is_help=True,
    add_completion=False,
)
register_processes(app)  # first: `up` and `worker` head the help, as they always did


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
    from shared.consumer import AMQP_ERRORS
    from shared.sender import Sender

    settings = settings_or_exit()
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

    report = gather(settings_or_exit())
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

    settings = settings_or_exit()
    try:
        ok = run_demo(settings.api_url, token_or_exit(settings), out.print, timeout=timeout)
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
register_queues(app)
register_people(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
